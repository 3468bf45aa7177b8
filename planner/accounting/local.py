"""The single-process engine: the ledger of a programme built in this process.
"""

from __future__ import annotations

import datetime as dt
import logging

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from planner.accounting.ledger import Ledger
from planner.accounting.pieces import Progress, _days, hazard_order, measure, objects, release_order
from planner.areas import equal_area_crs
from planner.errors import InputError
from planner.store import Store

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


def build_ledger(hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame, *, eif: dt.date,
                 crs: pyproj.CRS | None = None, progress: Progress | None = None) -> Ledger:
    """Cut hazards and releases into disjoint pieces and measure them [m²].

    Parameters
    ----------
    hazards : GeoDataFrame
        Columns ``hazard_id``, ``status``, ``recorded_on``, ``found_after_eif`` and optionally
        ``region``; any CRS.
    releases : GeoDataFrame
        Columns ``release_id``, ``method``, ``released_on``; any CRS.
    eif : datetime.date
        Entry into force for the State.
    crs : pyproj.CRS, optional
        Equal-area CRS to measure in (default: Lambert azimuthal equal-area on the hazards).
    progress : callable, optional
        Called as ``progress(step, fraction)``.

    Returns
    -------
    Ledger
    """
    def tell(step: str, frac: float) -> None:
        if progress is not None:
            progress(step, frac)
        log.debug("ledger: %s", step)

    for frame, name in ((hazards, "hazards"), (releases, "releases")):
        if len(frame) and frame.crs is None:
            raise InputError(f"{name} have no CRS; set one with .set_crs() before accounting")
    if crs is None:
        basis = hazards if len(hazards) else releases
        crs = equal_area_crs(basis) if len(basis) else pyproj.CRS.from_epsg(6933)
    elif not crs.is_projected or "Equal Area" not in (crs.coordinate_operation.method_name
                                                      if crs.coordinate_operation else ""):
        raise InputError(f"{crs.name} is not an equal-area projection; areas would be wrong")
    tell("reprojecting to an equal-area CRS", 0.0)
    hz = np.asarray(hazards.geometry.to_crs(crs).values) if len(hazards) else np.empty(0, object)
    rl = np.asarray(releases.geometry.to_crs(crs).values) if len(releases) else np.empty(0,
                                                                                          object)

    h_day = _days(hazards["recorded_on"]) if len(hazards) else np.empty(0, np.int64)
    h_after = (hazards["found_after_eif"].to_numpy(dtype=bool) if len(hazards)
               else np.empty(0, bool))
    r_day = _days(releases["released_on"]) if len(releases) else np.empty(0, np.int64)
    r_method = releases["method"].to_numpy(dtype=object) if len(releases) else np.empty(0,
                                                                                         object)
    h_order = hazard_order(h_day, h_after, np.arange(len(hz)))
    r_order = release_order(r_day, r_method, np.arange(len(rl)))
    h_area, r_area, ph, pr, pa = measure(hz, h_order, rl, r_order, tell)

    return Ledger(
        eif=eif, crs=crs,
        hazard_ids=objects(hazards, "hazard_id"), hazard_day=h_day, hazard_after=h_after,
        hazard_status=objects(hazards, "status"), hazard_region=objects(hazards, "region"),
        hazard_area_m2=h_area,
        hazard_raw_area_m2=np.asarray(shapely.area(hz), dtype=float),
        release_ids=objects(releases, "release_id"), release_day=r_day, release_method=r_method,
        release_area_m2=r_area,
        release_raw_area_m2=np.asarray(shapely.area(rl), dtype=float),
        pair_hazard=ph, pair_release=pr, pair_area_m2=pa,
    )


def ledger_from_store(store: Store, *, progress: Progress | None = None) -> Ledger:
    """:func:`build_ledger` on a store's hazards and releases, holding each layer once.

    The equal-area CRS is centred on the hazards (on the releases when there are none), and
    the releases are reprojected as they are read, so a large programme never has both the
    stored and the reprojected geometries of its biggest layer in memory.
    """
    programme = store.programme()
    hazards = store.read("hazards")
    if len(hazards):
        crs = equal_area_crs(hazards)
        hazards = hazards.to_crs(crs)
        releases = store.read("releases", crs=crs)
    else:
        releases = store.read("releases")
        crs = equal_area_crs(releases) if len(releases) else pyproj.CRS.from_epsg(6933)
        releases = releases.to_crs(crs) if len(releases) else releases
    return build_ledger(hazards, releases, eif=programme.eif, crs=crs, progress=progress)
