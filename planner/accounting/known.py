"""Figures "as known on" a date: the records as they stood then, corrections and all.

An import counts on a date when it was made by the end of that day (UTC) and not retracted
by then. The ledger of those records is built from their geometry (live features and the
archived features of imports retracted since), in the stored ledger's CRS and in the same
order as the stored ledger, so a date after the last change gives the stored figures.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd

from planner.accounting.ledger import Ledger
from planner.accounting.live import ledger_crs_for
from planner.accounting.local import build_ledger
from planner.accounting.pieces import Progress
from planner.layers import LayerName
from planner.store import Store


def imports_known_on(imports: pd.DataFrame, when: dt.date) -> set[int]:
    """The ids of the imports that counted at the end of ``when`` (UTC).

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
    end = pd.Timestamp(when + dt.timedelta(days=1), tz="UTC")
    made = pd.to_datetime(imports["imported_at"], utc=True, format="ISO8601") < end
    if "retracted_at" in imports.columns:
        gone = pd.to_datetime(imports["retracted_at"], utc=True, format="ISO8601") < end
    else:
        gone = pd.Series(False, index=imports.index)
    return {int(i) for i in imports.loc[made & ~gone.fillna(False), "import_id"]}


def _layer_known(store: Store, layer: LayerName, ids: set[int]) -> gpd.GeoDataFrame:
    """A layer's features of the imports ``ids``, live and archived, in store order."""
    live = store.read(layer)
    live["row"] = store.attributes(layer, [])["row"].to_numpy(dtype=np.int64)
    archived = store.read(layer, retracted=True)
    both = pd.concat([live, archived], ignore_index=True) if len(archived) else live
    both = both[both["import_id"].astype("Int64").isin(list(ids))]
    return gpd.GeoDataFrame(both.sort_values("row", ignore_index=True), crs=live.crs)


def ledger_as_known_on(store: Store, when: dt.date, *,
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
    ids = imports_known_on(store.imports(), when)
    _, crs = store.ledger_state()
    hazards = _layer_known(store, "hazards", ids)
    releases = _layer_known(store, "releases", ids)
    crs = crs or ledger_crs_for(hazards, releases)
    return build_ledger(hazards.to_crs(crs) if len(hazards) else hazards,
                        releases.to_crs(crs) if len(releases) else releases,
                        eif=store.programme().eif, crs=crs, progress=progress)
