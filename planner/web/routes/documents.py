"""``/api/extension-request`` and ``/api/marking-plan``: documents and field files (viewers).

Each is one core call, the same the CLI makes, then a format:
:func:`planner.treaty.extension.draft_extension_request` (with the independent check of (f)),
and :func:`planner.field.marking.plan_remaining`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from planner.web.auth import Viewer
from planner.web.params import DateQ, attachment
from planner.web.state import State

router = APIRouter(tags=["documents"])

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
#: Media type of each field-file format of the marking plan.
PLAN_MEDIA = {"gpkg": "application/geopackage+sqlite3",
              "kml": "application/vnd.google-earth.kml+xml",
              "gpx": "application/gpx+xml", "csv": "text/csv"}


@router.get("/api/extension-request", response_class=Response)
def get_extension_request(state: State, user: Viewer,
                          format: Literal["docx", "html", "md"] = "docx",
                          years: Annotated[int | None, Query(ge=0, le=5)] = None,
                          as_of: DateQ = None) -> Response:
    """The draft extension request as DOCX, HTML or Markdown (figures only, no map).

    The same document as ``planner extension-request`` for the same store and arguments
    (default scenario: the recorded history, seeded), verification of (f) included.
    """
    from planner.documents.model import to_docx, to_html, to_markdown
    doc = state.draft(as_of, years).document
    if format == "docx":
        return Response(to_docx(doc), headers=attachment("extension_request.docx"),
                        media_type=DOCX)
    if format == "html":
        return HTMLResponse(to_html(doc))
    return Response(to_markdown(doc), media_type="text/markdown; charset=utf-8")


@router.get("/api/marking-plan", response_class=Response)
def get_marking_plan(state: State, user: Viewer,
                     format: Literal["gpkg", "kml", "gpx", "csv"] = "gpkg",
                     at: DateQ = None,
                     region: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    """A marking and fencing plan of what remains (default options) as a field file."""
    from planner.field import exports
    from planner.field.marking import Selection, plan_remaining

    plan = plan_remaining(state.store, at or dt.date.today(),
                          Selection(regions=[region] if region else []))
    writer = {"gpkg": exports.write_gpkg, "kml": exports.write_kml,
              "gpx": exports.write_gpx, "csv": exports.write_csv}[format]
    with tempfile.TemporaryDirectory() as tmp:
        data = writer(plan, Path(tmp) / f"marking_plan.{format}").read_bytes()
    return Response(data, media_type=PLAN_MEDIA[format],
                    headers=attachment(f"marking_plan.{format}"))
