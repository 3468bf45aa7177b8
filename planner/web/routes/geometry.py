"""``GET /api/hazards`` and ``GET /api/releases``: geometry as GeoJSON pages (viewers only).

Features come from the state's cache (:meth:`planner.web.state.ServiceState.layer_wgs84`),
filtered by bounding box and date, one page at a time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from fastapi import APIRouter
from fastapi.responses import Response

from planner.errors import InputError
from planner.layers import LayerName
from planner.web.auth import Viewer
from planner.web.params import Bbox, DateQ, Limit, Offset
from planner.web.state import ServiceState, State

router = APIRouter(tags=["geometry"])
_GEOJSON: dict[int | str, dict[str, Any]] = {200: {"content": {"application/geo+json": {}}}}


def feature_page(state: ServiceState, layer: LayerName, bbox: str | None,
                 date_from: dt.date | None, date_to: dt.date | None, limit: int, offset: int
                 ) -> Response:
    """One page of a layer's features as a GeoJSON FeatureCollection (WGS 84).

    Raises
    ------
    InputError
        ``limit`` over the configured page size, or a ``bbox`` that is not four numbers.
    """
    most = state.settings.geojson_page_max
    if limit > most:
        raise InputError(f"limit {limit}: at most {most} features per page; use offset to "
                         "page through")
    days, bounds, features = state.layer_wgs84(layer)
    keep = np.ones(len(days), dtype=bool)
    if bbox:
        try:
            minx, miny, maxx, maxy = (float(v) for v in bbox.split(","))
        except ValueError as exc:
            raise InputError("bbox must be minlon,minlat,maxlon,maxlat in degrees") from exc
        keep &= ((bounds[:, 0] <= maxx) & (bounds[:, 2] >= minx)
                 & (bounds[:, 1] <= maxy) & (bounds[:, 3] >= miny))
    if date_from or date_to:
        known = np.array([d or dt.date.max for d in days], dtype=object)
        if date_from:
            keep &= known >= date_from
        if date_to:
            keep &= known <= date_to
    idx = np.flatnonzero(keep)
    page = idx[offset:offset + limit]
    body = (f'{{"type":"FeatureCollection","numberMatched":{len(idx)},'
            f'"numberReturned":{len(page)},"offset":{offset},"features":['
            + ",".join(features[i] for i in page) + "]}")
    return Response(body, media_type="application/geo+json")


@router.get("/api/hazards", response_class=Response, responses=_GEOJSON)
def get_hazards(state: State, user: Viewer, bbox: Bbox = None, recorded_from: DateQ = None,
                recorded_to: DateQ = None, limit: Limit = 1000, offset: Offset = 0
                ) -> Response:
    """Hazards as GeoJSON (WGS 84), filtered by bbox and date, one page at a time."""
    return feature_page(state, "hazards", bbox, recorded_from, recorded_to, limit, offset)


@router.get("/api/releases", response_class=Response, responses=_GEOJSON)
def get_releases(state: State, user: Viewer, bbox: Bbox = None, released_from: DateQ = None,
                 released_to: DateQ = None, limit: Limit = 1000, offset: Offset = 0
                 ) -> Response:
    """Releases as GeoJSON (WGS 84), filtered by bbox and date, one page at a time."""
    return feature_page(state, "releases", bbox, released_from, released_to, limit, offset)
