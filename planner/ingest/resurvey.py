"""A later survey of hazards already recorded: new versions, and the land they drop, released.

Each feature of a re-survey file is a new version of the hazard with its id, recorded on the
survey date, with the status the survey found (a technical survey confirms an SHA as a CHA).
The land the previous version held and this one does not is released on the survey date, by
the method the survey was (technical survey: ``reduced``; non-technical: ``cancelled``), as
a release ``<hazard_id> re-survey <date>`` that lands in the same transaction. So the
forecast and the requests see a re-survey's reduction as a release, never as a negative
discovery; land a re-survey adds is recorded on the survey date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner.accounting.live import ledger_update
from planner.errors import InputError, Problem, ValidationError
from planner.ingest.options import IngestOptions, store_facts
from planner.ingest.prepare import prepare
from planner.ingest.transaction import IngestResult, import_record, read_new_file
from planner.layers import COLUMNS
from planner.store import Store

#: what a re-survey can have been, as the method of the land it releases
SURVEY_METHODS = ("reduced", "cancelled")


def ingest_resurvey(store: Store, path: str | Path, *, surveyed_on: dt.date, method: str,
                    options: IngestOptions | None = None) -> IngestResult:
    """Import a re-survey of hazards in the store, all or nothing (see the module notes).

    Parameters
    ----------
    store : Store
        The programme.
    path : str or Path
        The survey file: one polygon per re-surveyed hazard, with its ``hazard_id``.
    surveyed_on : datetime.date
        When the survey was made: the new versions' date and the releases' date.
    method : {"reduced", "cancelled"}
        Technical survey (land it drops is reduced) or non-technical (cancelled).
    options : IngestOptions
        How to read the file (its ``recorded_on`` is the survey date).

    Raises
    ------
    ValidationError
        An id is not in the store, or the survey is not later than its latest version.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from shapely import box
    >>> from planner.programme import Programme
    >>> from planner.store import create_store
    >>> from planner.ingest import ingest
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> st = create_store(d / "p.gpkg", Programme("P", dt.date(2011, 8, 1), "EPSG:3035"))
    >>> sha = gpd.GeoDataFrame({"hazard_id": ["H1"], "status": ["SHA"],
    ...     "recorded_on": ["2010-01-01"]}, geometry=[box(4e6, 3e6, 4e6 + 1000, 3e6 + 1000)],
    ...     crs=3035)
    >>> sha.to_file(d / "sha.geojson")
    >>> _ = ingest(st, "hazards", d / "sha.geojson")
    >>> cha = sha.assign(status="CHA", geometry=[box(4e6, 3e6, 4e6 + 400, 3e6 + 1000)])
    >>> cha.to_file(d / "ts.geojson")
    >>> r = ingest_resurvey(st, d / "ts.geojson", surveyed_on=dt.date(2016, 6, 1),
    ...                     method="reduced")
    >>> round(float(r.derived.area.sum()))
    600000
    """
    if method not in SURVEY_METHODS:
        raise InputError(f"--method {method!r}: a re-survey is {' or '.join(SURVEY_METHODS)} "
                         "(technical or non-technical survey)", argument="method")
    options = replace(options or IngestOptions(), recorded_on=surveyed_on, status=None)
    path = Path(path)
    digest, raw = read_new_file(store, path, options)
    facts = replace(store_facts(store, "hazards"), taken_among=None)   # ids must exist
    features, problems = prepare(raw, "hazards", store.programme(), source=path.name,
                                 options=options, facts=facts)
    derived = _released_land(store, features, surveyed_on, method, path.name)
    record = import_record("hazards", path, digest, raw, options, features, problems)
    import_id = store.add("hazards", features, record, update=ledger_update, derived=derived)
    features["import_id"] = import_id
    derived["import_id"] = import_id
    return IngestResult(import_id=import_id, features=features, problems=problems,
                        record=record, derived=derived)


def _released_land(store: Store, versions: gpd.GeoDataFrame, surveyed_on: dt.date,
                   method: str, source: str) -> gpd.GeoDataFrame:
    """Per re-surveyed hazard, the land its latest version held and the new one does not."""
    ids = [str(i) for i in versions["hazard_id"]]
    known = store.read("hazards")
    known = known[known["hazard_id"].astype(str).isin(ids)]
    known = known.assign(_day=pd.to_datetime(known["recorded_on"]), _order=np.arange(len(known)))
    latest = known.sort_values(["_day", "_order"]).groupby("hazard_id").last()
    problems = [Problem(f"hazard {i}", f"no hazard {i} in the store to re-survey; import it "
                        "with `planner ingest hazards`", "error", "hazard_id")
                for i in ids if i not in latest.index]
    problems += [Problem(f"hazard {i}", f"the survey of {surveyed_on} is not later than the "
                         f"hazard's latest version ({latest.at[i, '_day'].date()})", "error",
                         "surveyed_on")
                 for i in ids if i in latest.index and latest.at[i, "_day"].date() >= surveyed_on]
    if len(set(ids)) < len(ids):
        problems.append(Problem("file", "a hazard appears twice in this re-survey; give one "
                                "polygon per hazard", "error", "hazard_id"))
    if problems:
        raise ValidationError(source, problems)
    before = np.asarray(gpd.GeoSeries(latest.loc[ids, "geometry"].values,
                                      crs=known.crs).values)
    # snap-rounded (1 mm, or 1e-8° in degrees): edges the two versions share, a hair apart
    # after the file's own rounding, would otherwise leave slivers a nanometre wide that no
    # longer are polygons once reprojected
    grid = 1e-8 if versions.crs is not None and versions.crs.is_geographic else 1e-3
    dropped = shapely.difference(before, np.asarray(versions.geometry.values), grid_size=grid)
    dropped = np.array([_polygons(g) for g in dropped], dtype=object)
    keep = ~shapely.is_empty(dropped)
    n = int(keep.sum())
    data: dict[str, list[Any]] = {c.name: [None] * n for c in COLUMNS["releases"]}
    data.update({
        "release_id": [f"{i} re-survey {surveyed_on.isoformat()}" for i, k in zip(
            ids, keep, strict=True) if k],
        "method": [method] * n, "released_on": [surveyed_on] * n,
        "hazard_id": [i for i, k in zip(ids, keep, strict=True) if k],
        "source_file": [source] * n, "import_id": [0] * n})
    return gpd.GeoDataFrame(data, geometry=list(dropped[keep]), crs=versions.crs)


def _polygons(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygonal parts of an overlay's result, as one MultiPolygon (empty if none)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > 0]
    return shapely.MultiPolygon(parts) if parts else shapely.MultiPolygon()
