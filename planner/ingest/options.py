"""How to read a file, and what it is checked against in its store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from planner.areas import lonlat_bounds
from planner.io.archives import ArchiveLimits
from planner.layers import ID_COLUMN, LayerName
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
    first_record_on : datetime.date, optional
        The earliest date recorded in the programme (an earlier date is reported).
    extent_lonlat : (float, float, float, float), optional
        West, south, east, north of the programme's data [degrees, WGS 84]; features far
        outside it are reported (a wrong UTM zone moves data by hundreds of kilometres).
    """

    ids: set[str] = field(default_factory=set)
    first_record_on: dt.date | None = None
    extent_lonlat: tuple[float, float, float, float] | None = None


def store_facts(store: Store, kind: LayerName) -> StoreFacts:
    """The ids, first date and extent of a store's data, for checking a new file."""
    dated: tuple[tuple[LayerName, str], ...] = (("hazards", "recorded_on"),
                                                ("releases", "released_on"))
    # one read per layer gives the ids too: the store is not read again for them
    frames = {layer: store.attributes(layer, [ID_COLUMN[layer], date]) for layer, date in dated}
    dates = [d for layer, date in dated for d in frames[layer][date].dropna()]
    boxes = np.vstack([f[["minx", "miny", "maxx", "maxy"]].to_numpy(dtype=float)
                       for f in frames.values()])
    boxes = boxes[np.isfinite(boxes).all(axis=1)]
    extent = None
    if len(boxes):
        crs = store.programme().pyproj_crs
        outline = shapely.box(boxes[:, 0].min(), boxes[:, 1].min(),
                              boxes[:, 2].max(), boxes[:, 3].max())
        ll = lonlat_bounds(np.array([shapely.segmentize(outline, outline.length / 64)]), crs)[0]
        if np.isfinite(ll).all():
            extent = (float(ll[0]), float(ll[1]), float(ll[2]), float(ll[3]))
    first = pd.Timestamp(min(dates)).date() if dates else None
    return StoreFacts(ids=set(frames[kind][ID_COLUMN[kind]].astype(str)), first_record_on=first,
                      extent_lonlat=extent)
