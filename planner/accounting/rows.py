"""The rows every engine measures, and the ledger assembled from them.

A hazard piece is a row with ``release_row`` -1, a release piece one with ``hazard_row`` -1,
an overlap one with both; areas in the equal-area CRS [m²]. The tile engine (dask) and the
SQL engine (PostGIS) both produce such rows; :func:`ledger_from_rows` sums them into a
:class:`~planner.accounting.ledger.Ledger` and checks them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from planner.accounting.ledger import Ledger
from planner.accounting.pieces import (
    _days,
    check_overlaps,
    hazard_order,
    measure,
    objects,
    overlap_excess,
    release_order,
)
from planner.areas import equal_area_crs
from planner.programme import Programme
from planner.store import Store

_HAZARD_COLUMNS = ("hazard_id", "status", "recorded_on", "found_after_eif", "region")


_RELEASE_COLUMNS = ("release_id", "method", "released_on")


#: the rows every engine measures: a hazard piece has ``release_row`` -1, a release piece
#: ``hazard_row`` -1, an overlap both rows; areas in the equal-area CRS [m²]
ROWS_META = pd.DataFrame({"hazard_row": pd.Series(dtype="int64"),
                           "release_row": pd.Series(dtype="int64"),
                           "area_m2": pd.Series(dtype="float64"),
                           "raw_area_m2": pd.Series(dtype="float64")})


def _tile_rows(hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame) -> pd.DataFrame:
    """Areas of one tile's pieces and overlaps, keyed by store rows.

    A hazard piece is a row with ``release_row`` -1, a release piece one with
    ``hazard_row`` -1, an overlap one with both.
    """
    hz = np.asarray(hazards.geometry.values)
    rl = np.asarray(releases.geometry.values)
    h_row = hazards["row"].to_numpy(dtype=np.int64)
    r_row = releases["row"].to_numpy(dtype=np.int64)
    h_order = hazard_order(_days(hazards["recorded_on"]) if len(hz) else np.empty(0, np.int64),
                           hazards["found_after_eif"].to_numpy(dtype=bool), h_row)
    r_order = release_order(_days(releases["released_on"]) if len(rl)
                            else np.empty(0, np.int64),
                            releases["method"].to_numpy(dtype=object), r_row)
    h_area, r_area, ph, pr, pa = measure(hz, h_order, rl, r_order)
    none_h, none_r = np.full(len(rl), -1), np.full(len(hz), -1)
    return pd.DataFrame({
        "hazard_row": np.r_[h_row, none_h, h_row[ph]].astype(np.int64),
        "release_row": np.r_[none_r, r_row, r_row[pr]].astype(np.int64),
        "area_m2": np.r_[h_area, r_area, pa],
        "raw_area_m2": np.r_[shapely.area(hz) if len(hz) else np.zeros(0),
                             shapely.area(rl) if len(rl) else np.zeros(0),
                             np.zeros(len(pa))],
    })


def ledger_inputs(store: Store) -> tuple[Programme, pd.DataFrame, pd.DataFrame, pyproj.CRS]:
    """What a ledger needs besides geometry: programme, attributes, and its equal-area CRS.

    The CRS is the one :func:`planner.accounting.ledger_from_store` would choose (centred on
    the hazards' bounding boxes), so every engine measures in the same projection. Unknown
    release methods are refused here, before any geometry is read.
    """
    programme = store.programme()
    h_att = store.attributes("hazards", _HAZARD_COLUMNS)
    r_att = store.attributes("releases", _RELEASE_COLUMNS)
    basis = h_att if len(h_att) else r_att
    crs = (equal_area_crs(gpd.GeoSeries(shapely.box(basis["minx"], basis["miny"],
                                                     basis["maxx"], basis["maxy"]),
                                         crs=programme.pyproj_crs))
           if len(basis) else pyproj.CRS.from_epsg(6933))
    release_order(np.zeros(len(r_att), np.int64), r_att["method"].to_numpy(dtype=object),
                  np.arange(len(r_att)))
    return programme, h_att, r_att, crs


#: measures overlapping pairs again, given as store rows (hazard rows, release rows) [m²]
Remeasure = Callable[[np.ndarray, np.ndarray], np.ndarray]


def ledger_from_rows(eif: dt.date, crs: pyproj.CRS, h_att: pd.DataFrame,
                     r_att: pd.DataFrame, rows: pd.DataFrame,
                     remeasure: Remeasure | None = None) -> Ledger:
    """One ledger from measured rows keyed by store row (see :data:`ROWS_META`).

    Areas are summed per hazard piece, per release piece and per overlapping pair, so rows
    of several tiles (or of a database) combine exactly. Hazard pieces are disjoint and so
    are release pieces, so the overlaps of one piece cannot add up to more than its area;
    pairs where they do (:func:`planner.accounting.overlap_excess`) are given to
    ``remeasure``, if any, and a ledger whose overlaps still exceed their pieces is refused
    (:func:`planner.accounting.check_overlaps`).

    Examples
    --------
    A release piece of 10 m² said to overlap a hazard piece of 100 m² by 50 m², measured
    again as 10 m²:

    >>> att = pd.DataFrame({"row": [7], "hazard_id": ["H"], "recorded_on": ["2010-01-01"],
    ...                     "found_after_eif": [False], "status": ["CHA"],
    ...                     "release_id": ["R"], "released_on": ["2012-01-01"],
    ...                     "method": ["cleared"]})
    >>> rows = pd.DataFrame({"hazard_row": [7, -1, 7], "release_row": [-1, 7, 7],
    ...                      "area_m2": [100.0, 10.0, 50.0], "raw_area_m2": [0.0] * 3})
    >>> again = lambda h, r: print("again:", h, r) or np.array([10.0])
    >>> led = ledger_from_rows(dt.date(2011, 1, 1), pyproj.CRS(3035), att, att, rows, again)
    again: [7] [7]
    >>> led.pair_area_m2.tolist()
    [10.0]
    """
    # store rows are increasing, so a row's position is found by bisection
    h_rows, r_rows = h_att["row"].to_numpy(), r_att["row"].to_numpy()
    hr, rr = rows["hazard_row"].to_numpy(), rows["release_row"].to_numpy()
    area, raw = rows["area_m2"].to_numpy(), rows["raw_area_m2"].to_numpy()

    def per(rows_of: np.ndarray, keys: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(rows_of, keys), weights=weights,
                           minlength=len(rows_of))

    only_h, only_r = rr < 0, hr < 0
    pairs = (hr >= 0) & (rr >= 0)
    pair_sum = (pd.DataFrame({"h": np.searchsorted(h_rows, hr[pairs]),
                              "r": np.searchsorted(r_rows, rr[pairs]), "a": area[pairs]})
                .groupby(["h", "r"], sort=True)["a"].sum())
    pair_sum = pair_sum[pair_sum > 0]
    ph = pair_sum.index.get_level_values("h").to_numpy(dtype=np.int64)
    pr = pair_sum.index.get_level_values("r").to_numpy(dtype=np.int64)
    pa = pair_sum.to_numpy(dtype=float, copy=True)
    h_area, r_area = per(h_rows, hr[only_h], area[only_h]), per(r_rows, rr[only_r], area[only_r])
    if remeasure is not None:
        bad = np.flatnonzero(overlap_excess(ph, pr, pa, h_area, r_area))
        if len(bad):
            pa[bad] = remeasure(h_rows[ph[bad]], r_rows[pr[bad]])
            keep = pa > 0
            ph, pr, pa = ph[keep], pr[keep], pa[keep]
    check_overlaps(ph, pr, pa, h_area, r_area)

    return Ledger(
        eif=eif, crs=crs,
        hazard_ids=objects(h_att, "hazard_id"),
        hazard_day=_days(h_att["recorded_on"]) if len(h_att) else np.empty(0, np.int64),
        hazard_after=h_att["found_after_eif"].to_numpy(dtype=bool),
        hazard_status=objects(h_att, "status"), hazard_region=objects(h_att, "region"),
        hazard_area_m2=h_area, hazard_raw_area_m2=per(h_rows, hr[only_h], raw[only_h]),
        release_ids=objects(r_att, "release_id"),
        release_day=_days(r_att["released_on"]) if len(r_att) else np.empty(0, np.int64),
        release_method=r_att["method"].to_numpy(dtype=object),
        release_area_m2=r_area, release_raw_area_m2=per(r_rows, rr[only_r], raw[only_r]),
        pair_hazard=ph, pair_release=pr, pair_area_m2=pa,
    )
