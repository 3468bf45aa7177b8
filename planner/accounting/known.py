"""Figures "as known on" a date: the records as they stood then, corrections and all.

An import counts on a date when it was made by the end of that day (UTC) and not retracted
by then. The ledger of those records is built from their geometry (live features and the
archived features of imports retracted since), in the stored ledger's CRS and in the same
order as the stored ledger, so a date after the last change gives the stored figures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd

from planner.accounting.ledger import Ledger
from planner.accounting.live import ledger_crs_for
from planner.accounting.local import build_ledger
from planner.accounting.pieces import Progress
from planner.layers import LayerName
from planner.store import Store


def imports_known_on(imports: pd.DataFrame, when: dt.date | dt.datetime) -> set[int]:
    """The ids of the imports that counted at the end of ``when`` (UTC), or at that instant.

    Examples
    --------
    >>> df = pd.DataFrame({"import_id": [1, 2, 3],
    ...     "imported_at": ["2024-01-05T10:00:00+00:00", "2024-03-01T09:00:00+00:00",
    ...                     "2024-01-06T08:00:00+00:00"],
    ...     "retracted_at": [None, None, "2024-02-01T12:00:00+00:00"]})
    >>> sorted(imports_known_on(df, dt.date(2024, 1, 31)))
    [1, 3]
    >>> sorted(imports_known_on(df, dt.date(2024, 3, 1)))
    [1, 2]
    """
    if not len(imports):
        return set()
    if isinstance(when, dt.datetime):   # an instant: what was there then
        end = pd.Timestamp(when).tz_convert("UTC") if pd.Timestamp(when).tzinfo else \
            pd.Timestamp(when, tz="UTC")
        end = end + pd.Timedelta(microseconds=1)
    else:
        end = pd.Timestamp(when + dt.timedelta(days=1), tz="UTC")
    made = pd.to_datetime(imports["imported_at"], utc=True, format="ISO8601") < end
    if "retracted_at" in imports.columns:
        gone = pd.to_datetime(imports["retracted_at"], utc=True, format="ISO8601") < end
    else:
        gone = pd.Series(False, index=imports.index)
    return {int(i) for i in imports.loc[made & ~gone.fillna(False), "import_id"]}


def _layer_known(store: Store, layer: LayerName, ids: set[int]) -> gpd.GeoDataFrame:
    """A layer's features of the imports ``ids``, live and archived, in store order."""
    live = store.read(layer, with_row=True)
    archived = store.read(layer, retracted=True)
    both = pd.concat([live, archived], ignore_index=True) if len(archived) else live
    both = both[both["import_id"].astype("Int64").isin(list(ids))]
    return gpd.GeoDataFrame(both.sort_values("row", ignore_index=True), crs=live.crs)


def ledger_as_known_on(store: Store, when: dt.date | dt.datetime, *,
                       progress: Progress | None = None) -> Ledger:
    """The ledger of the records as they stood at the end of ``when`` (see the module notes).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from planner.demo import build_demo_store
    >>> st = build_demo_store(pathlib.Path(tempfile.mkdtemp()) / "demo.gpkg")
    >>> today = dt.date.today()
    >>> round(ledger_as_known_on(st, today).status(dt.date(2024, 12, 31)).remaining_m2)
    1352724
    >>> ledger_as_known_on(st, dt.date(2000, 1, 1)).status(dt.date(2024, 12, 31)).hazard_count
    0
    """
    hazards, releases = known_records(store, when)
    _, crs = store.ledger_state()
    crs = crs or ledger_crs_for(hazards, releases)
    ledger = build_ledger(hazards.to_crs(crs) if len(hazards) else hazards,
                          releases.to_crs(crs) if len(releases) else releases,
                          eif=store.programme().eif, crs=crs, progress=progress)
    return replace(ledger, known_on=when)


def known_records(store: Store, when: dt.date | dt.datetime | None
                  ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Hazards and releases as they stood on ``when`` (None: as they stand now)."""
    if when is None:
        return store.read("hazards"), store.read("releases")
    ids = imports_known_on(store.imports(), when)
    return _layer_known(store, "hazards", ids), _layer_known(store, "releases", ids)


def hazard_history(store: Store, hazard_id: str) -> pd.DataFrame:
    """Every version of a hazard, oldest first, with what each re-survey released.

    Columns: ``version``, ``recorded_on``, ``status``, ``area_m2`` (the version's polygon,
    equal-area), ``import_id``, ``source_file``, ``released_m2`` (land the version dropped
    from the one before, released on its date) and ``retracted`` (the version's import was
    retracted: it no longer counts).
    """
    from planner.areas import area_m2
    from planner.errors import NotFoundError

    rows = []
    for retracted in (False, True):
        for layer in ("hazards", "releases"):
            frame = store.read(layer, retracted=retracted)
            frame = frame[frame["hazard_id"].astype(str) == str(hazard_id)]
            if layer == "releases":
                frame = frame[frame["release_id"].astype(str).str.contains(" re-survey ")]
            rows.append((layer, retracted, frame))
    versions = pd.concat([f.assign(retracted=r) for lay, r, f in rows if lay == "hazards"],
                         ignore_index=True)
    if not len(versions):
        raise NotFoundError(f"no hazard {hazard_id!r} in this store", argument="hazard_id")
    versions = versions.sort_values(["recorded_on", "import_id"], ignore_index=True)
    released = pd.concat([f for lay, _, f in rows if lay == "releases"], ignore_index=True)
    by_import = (dict(zip(released["import_id"], area_m2(released), strict=True))
                 if len(released) else {})
    return pd.DataFrame({
        "version": np.arange(1, len(versions) + 1),
        "recorded_on": [pd.Timestamp(d).date().isoformat() for d in versions["recorded_on"]],
        "status": versions["status"], "area_m2": area_m2(versions),
        "import_id": versions["import_id"].astype(int),
        "source_file": versions["source_file"],
        "released_m2": [float(by_import.get(i, 0.0)) for i in versions["import_id"]],
        "retracted": versions["retracted"]})
