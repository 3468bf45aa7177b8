"""Copy a programme between stores, ids and history kept.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planner.layers import LayerName
from planner.store.base import ImportRecord, Store
from planner.store.factory import create_store


def copy_store(source: Store, target_location: str | Path, *,
               progress: Callable[[str], None] | None = None) -> Store:
    """Copy a programme into a new store (GeoPackage ⇄ PostGIS), import by import.

    Import by import, so memory holds one import's features at a time. Everything is
    kept: settings, every import record (id, file name, sha256, CRS, warnings,
    time) and every feature with its attributes, in the same order. Users and their tokens are
    not copied: create them again on the target.
    """
    target = create_store(target_location, source.programme())
    imports = source.imports()
    for row in imports.to_dict(orient="records"):
        r: dict[str, Any] = {str(k): v for k, v in row.items()}
        layer: LayerName = "hazards" if r["layer"] == "hazards" else "releases"
        # one import at a time, so that copying a large programme never holds it all
        part = source.read(layer, import_id=int(r["import_id"]))
        warnings = r["warnings"] if isinstance(r["warnings"], list) else json.loads(
            r["warnings"] or "[]")
        record = ImportRecord(layer=layer, file_name=str(r["file_name"]),
                              sha256=str(r["sha256"]), crs_read=r["crs_read"],
                              crs_given=r["crs_given"], rows=int(r["rows"]),
                              warnings=list(warnings),
                              imported_at=dt.datetime.fromisoformat(str(r["imported_at"])),
                              import_id=int(r["import_id"]))
        target.add(layer, part, record)
        if progress is not None:
            progress(f"import {r['import_id']}: {len(part)} {layer} from {r['file_name']}")
    return target
