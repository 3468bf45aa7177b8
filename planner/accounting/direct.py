"""Remaining area by global unions of every polygon: the independent check of the ledger.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from planner.areas import equal_area_crs


def status_direct(hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame, at: dt.date, *,
                  crs: pyproj.CRS | None = None) -> float:
    """Remaining area at ``at`` [m²] by global unions: an independent check of the ledger.

    Remaining = area(union(hazards recorded by ``at``) - union(releases by ``at``)).
    """
    crs = crs or equal_area_crs(hazards)
    t = pd.Timestamp(at)
    h = hazards[pd.to_datetime(hazards["recorded_on"]) <= t].geometry.to_crs(crs)
    r = releases[pd.to_datetime(releases["released_on"]) <= t].geometry.to_crs(crs)
    known = shapely.union_all(np.asarray(h.values))
    gone = shapely.union_all(np.asarray(r.values))
    return float(shapely.area(shapely.difference(known, gone)))


#: a component whose two remaining areas differ by more than this [m²] is reported
COMPONENT_TOLERANCE_M2 = 0.01


def differing_hazards(hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame,
                      remaining_by_hazard: pd.DataFrame, at: dt.date, crs: pyproj.CRS
                      ) -> pd.DataFrame:
    """Where a ledger's remaining area disagrees with unions, component by component.

    Hazards and releases are grouped into the components of overlapping features; in each,
    remaining = area(union(hazards) - union(releases)) is compared with the ledger's
    remaining area of those hazards (``Ledger.remaining_by_hazard``). Returns one row per
    component that differs by more than :data:`COMPONENT_TOLERANCE_M2`: ``hazard_ids``
    (comma-separated), ``ledger_m2``, ``unions_m2`` and ``gap_m2``.

    Examples
    --------
    >>> from shapely import box
    >>> h = gpd.GeoDataFrame({"hazard_id": ["A"], "recorded_on": [dt.date(2010, 1, 1)]},
    ...                      geometry=[box(0, 0, 100, 100)], crs=3035)
    >>> r = gpd.GeoDataFrame({"released_on": [dt.date(2011, 1, 1)]},
    ...                      geometry=[box(0, 0, 50, 100)], crs=3035)
    >>> wrong = pd.DataFrame({"hazard_id": ["A"], "remaining_m2": [6000.0]})
    >>> differing_hazards(h, r, wrong, dt.date(2012, 1, 1), h.crs)[["hazard_ids", "gap_m2"]]
      hazard_ids  gap_m2
    0          A -1000.0
    """
    from planner.accounting.pieces import components

    t = pd.Timestamp(at)
    h = hazards[pd.to_datetime(hazards["recorded_on"]) <= t]
    r = releases[pd.to_datetime(releases["released_on"]) <= t]
    hz = np.asarray(h.geometry.to_crs(crs).values)
    rl = np.asarray(r.geometry.to_crs(crs).values)
    h_label, r_label = components(hz, rl)
    by_id = remaining_by_hazard.set_index("hazard_id")["remaining_m2"]
    ledger_m2 = pd.Series(by_id.reindex(h["hazard_id"]).fillna(0.0).to_numpy()).groupby(
        h_label).sum()
    h_of, r_of = _members(h_label), _members(r_label)
    empty = np.empty(0, np.int64)
    ids_all = h["hazard_id"].to_numpy()
    rows = []
    for key, ledger_value in ledger_m2.items():
        label = int(key)   # type: ignore[call-overload]
        known = shapely.union_all(hz[h_of.get(label, empty)])
        gone = shapely.union_all(rl[r_of.get(label, empty)])
        unions = float(shapely.area(shapely.difference(known, gone)))
        gap = unions - float(ledger_value)
        if abs(gap) > COMPONENT_TOLERANCE_M2:
            ids = ", ".join(str(i) for i in ids_all[h_of[label]])
            rows.append({"hazard_ids": ids, "ledger_m2": float(ledger_value),
                         "unions_m2": unions, "gap_m2": round(gap, 3)})
    return pd.DataFrame(rows, columns=["hazard_ids", "ledger_m2", "unions_m2", "gap_m2"])


def _members(labels: np.ndarray) -> dict[int, np.ndarray]:
    """The indices of each label, in one sort (not one scan per label)."""
    order = np.argsort(labels, kind="stable")
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    return {int(labels[g[0]]): g for g in np.split(order, cuts) if len(g)}
