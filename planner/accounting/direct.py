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
