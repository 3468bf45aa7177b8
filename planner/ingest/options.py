"""How to read a file, and what it is checked against in its store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely

from planner.areas import lonlat_bounds
from planner.io.archives import ArchiveLimits
from planner.layers import LayerName
from planner.store import Store


@dataclass(frozen=True)
class IngestOptions:
    """How to read a file; every field has a sensible default.

    Parameters
    ----------
    layer : str, optional
        Layer (GeoPackage), shapefile name (inside a zip) to read when there are several.
    crs : str, optional
        CRS of the coordinates when the file does not say (no .prj, CSV), e.g. ``EPSG:32648``.
    column_map : mapping, optional
        ``{"hazard_id": "Kenmerk", "released_on": "Datum,Datum1"}``: planner column to the
        file's column(s); with several, the first non-empty value of each row is used.
    recorded_on, released_on : datetime.date, optional
        Date for rows whose file has no date column (or an empty cell).
    status : str, optional
        SHA or CHA for rows without a status.
    method : str, optional
        cancelled, reduced or cleared for rows without a method.
    buffer_m : float, optional
        Turn evidence points into circles of this radius [m]; points are refused otherwise.
    max_edge_m : float
        Longest allowed distance between consecutive vertices [m]; longer ones are GPS jumps.
    max_vertices : int, optional
        Refuse files with more vertices than this (the web service sets it).
    today : datetime.date, optional
        Dates after this are refused as "in the future" (default: today).
    archive_limits : ArchiveLimits
        Limits applied to zip archives before unpacking.
    encoding : str, optional
        Text encoding of a shapefile's attributes (when it has no .cpg) or of a CSV; detected
        and reported when not given.
    set_aside : bool
        Import the features without errors and set the others aside (returned in
        :attr:`IngestResult.set_aside` with their problems) instead of refusing the file.
        Errors about the whole file (no CRS, a required column missing) still refuse it.
    """

    layer: str | None = None
    crs: str | None = None
    column_map: Mapping[str, str] = field(default_factory=dict)
    recorded_on: dt.date | None = None
    released_on: dt.date | None = None
    status: str | None = None
    method: str | None = None
    buffer_m: float | None = None
    max_edge_m: float = 5_000.0
    today: dt.date | None = None
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    max_vertices: int | None = None
    encoding: str | None = None
    set_aside: bool = False


@dataclass(frozen=True)
class StoreFacts:
    """What a new file is checked against in its store.

    Parameters
    ----------
    ids : set of str
        Ids already in the layer (a clash is an error).
    taken_among : callable, optional
        Asks the store which of a file's ids are used already (instead of holding them all).
    first_record_on : datetime.date, optional
        The earliest date recorded in the programme (an earlier date is reported).
    extent_lonlat : (float, float, float, float), optional
        West, south, east, north of the programme's data [degrees, WGS 84]; features far
        outside it are reported (a wrong UTM zone moves data by hundreds of kilometres).
    """

    ids: set[str] = field(default_factory=set)
    first_record_on: dt.date | None = None
    extent_lonlat: tuple[float, float, float, float] | None = None
    taken_among: Callable[[Sequence[str]], set[str]] | None = None

    def taken(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the layer uses already."""
        found = {i for i in ids if i in self.ids}
        return found | (self.taken_among(ids) if self.taken_among is not None else set())


def store_facts(store: Store, kind: LayerName) -> StoreFacts:
    """The first date and extent of a store's data, and how to ask for ids in use.

    Read from the store's indexes and aggregates, not feature by feature, so that importing
    ten features into a programme of a million costs what ten features cost.
    """
    first_days, boxes = [], []
    layers: tuple[LayerName, ...] = ("hazards", "releases")
    for layer in layers:
        first, bounds = store.summary(layer)
        if first is not None:
            first_days.append(first)
        if bounds is not None:
            boxes.append(bounds)
    extent = None
    if boxes:
        b = np.array(boxes, dtype=float)
        crs = store.programme().pyproj_crs
        outline = shapely.box(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        ll = lonlat_bounds(np.array([shapely.segmentize(outline, outline.length / 64)]), crs)[0]
        if np.isfinite(ll).all():
            extent = (float(ll[0]), float(ll[1]), float(ll[2]), float(ll[3]))
    return StoreFacts(first_record_on=min(first_days) if first_days else None,
                      extent_lonlat=extent,
                      taken_among=lambda ids: store.ids_in(kind, ids))
