"""Copy a programme between stores, ids and history kept.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from planner.layers import LayerName
from planner.store.base import ImportRecord, LedgerRows, Store
from planner.store.factory import create_store


def copy_store(source: Store, target_location: str | Path, *,
               progress: Callable[[str], None] | None = None) -> Store:
    """Copy a programme into a new store (GeoPackage ⇄ PostGIS), import by import.

    Import by import, so memory holds one import's features at a time. Everything is
    kept: settings, every import record (id, file name, sha256, CRS, warnings,
    time) and every feature with its attributes, in the same order, and the stored ledger
    when the source has one. Users and their tokens are not copied: create them again on
    the target.
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
    _copy_ledger(source, target)
    return target


def _copy_ledger(source: Store, target: Store) -> None:
    """Give the copy the source's stored ledger, rows and CRS, so figures do not move.

    Features were copied in store order, so the n-th feature of a layer in the source is
    the n-th in the target, whatever keys the target gave them.
    """
    stored = source.read_ledger()
    if stored is None:
        return
    keys = {layer: target.attributes(layer, [])["row"].to_numpy(dtype=np.int64)
            for layer in ("hazards", "releases")}
    h_src = stored.hazards["row"].to_numpy(dtype=np.int64)
    r_src = stored.releases["row"].to_numpy(dtype=np.int64)
    if len(h_src) != len(keys["hazards"]) or len(r_src) != len(keys["releases"]):
        return   # the source changed while it was copied: the copy builds its own

    def moved(src: np.ndarray, dst: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return dst[np.searchsorted(src, rows)]
    o = stored.overlaps
    rows = LedgerRows(
        hazard_row=keys["hazards"], hazard_area_m2=stored.hazards["area_m2"].to_numpy(float),
        hazard_raw_area_m2=stored.hazards["raw_area_m2"].to_numpy(float),
        release_row=keys["releases"], release_area_m2=stored.releases["area_m2"].to_numpy(float),
        release_raw_area_m2=stored.releases["raw_area_m2"].to_numpy(float),
        pair_hazard_row=moved(h_src, keys["hazards"], o["hazard_row"].to_numpy(np.int64)),
        pair_release_row=moved(r_src, keys["releases"], o["release_row"].to_numpy(np.int64)),
        pair_area_m2=o["area_m2"].to_numpy(float))
    target.write_ledger(rows, stored.crs, target.version())
