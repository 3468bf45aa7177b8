"""``POST /api/hazards``, ``POST /api/releases``, ``GET /api/imports``: survey files in;
``POST /api/imports/{id}/retract``: one taken out again (admins).

Each upload is spooled to a folder of its own and imported by :func:`planner.ingest.ingest` in
a killable worker (:mod:`planner.web.uploads`), all or nothing; the answer lists every finding.
"""

from __future__ import annotations

import shutil
import threading
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, File, Form, UploadFile
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from planner.errors import InputError, NotFoundError, TooLargeError
from planner.ingest import IngestOptions, parse_date, retract_import
from planner.layers import LayerName
from planner.store import Retraction
from planner.web.auth import Admin, Editor, Viewer
from planner.web.middleware import too_large
from planner.web.params import Crs
from planner.web.state import ServiceState, State
from planner.web.uploads import UploadJob, UploadOutcome, new_folder, safe_file_name

router = APIRouter(tags=["uploads"])


class ProblemOut(BaseModel):
    """One finding of the checks on import."""

    feature: str
    severity: str
    message: str


class ImportOut(BaseModel):
    """An import that landed."""

    import_id: int
    layer: str
    file_name: str
    sha256: str
    rows: int
    problems: list[ProblemOut]


async def ingest_upload(state: ServiceState, layer: LayerName, upload: UploadFile,
                        crs: str | None, defaults: dict[str, Any],
                        replaces: Retraction | None = None) -> tuple[UploadOutcome, str]:
    """Spool the upload to its own folder and import it in a worker, under the time limit.

    The folder is removed when the job ends, by whichever side finishes last.

    Returns
    -------
    tuple of (UploadOutcome, str)
        What the import found, and the plain file name the upload was stored under.
    """
    settings = state.settings
    name = safe_file_name(upload.filename)
    folder = new_folder(state.upload_root)
    try:
        path = folder / name
        written = 0
        with path.open("wb") as out:
            while chunk := await upload.read(1 << 20):
                written += len(chunk)
                if written > settings.max_upload_bytes:
                    raise TooLargeError(too_large(settings.max_upload_bytes)["detail"],
                                        argument="file")
                out.write(chunk)
        if written == 0:
            raise InputError(f"{name}: the file is empty; choose the survey file again",
                             argument="file")
        options = IngestOptions(crs=crs or None, archive_limits=settings.archive_limits,
                                max_vertices=settings.max_vertices, **defaults)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    job = UploadJob(layer, str(path), options, str(folder), replaces)
    cancelled = threading.Event()

    def work() -> UploadOutcome:
        try:
            return state.uploads.run(job, cancelled)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    try:
        outcome = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except BaseException:
        cancelled.set()     # a cancelled request (client gone, server stopping) kills its job
        raise
    return outcome, name


def import_out(result: UploadOutcome, name: str) -> ImportOut:
    """The answer for an import that landed."""
    return ImportOut(import_id=result.import_id, layer=result.layer, file_name=name,
                     sha256=result.sha256, rows=result.rows,
                     problems=[ProblemOut(feature=p.feature, severity=p.severity,
                                          message=p.message) for p in result.problems])


def form_defaults(status: str | None, method: str | None, recorded_on: str | None,
                  released_on: str | None) -> dict[str, Any]:
    """Values for the columns a file lacks, as :class:`planner.ingest.IngestOptions` fields.

    Raises
    ------
    InputError
        A date that is not one, with ``argument`` naming its field.

    Examples
    --------
    >>> form_defaults("SHA", None, "2015-03-01", None)["recorded_on"]
    datetime.date(2015, 3, 1)
    """
    out: dict[str, Any] = {"status": status or None, "method": method or None}
    for key, value in (("recorded_on", recorded_on), ("released_on", released_on)):
        if value:
            day = parse_date(value)
            if day is None:
                raise InputError(f"{key} {value!r} is not a date; write it as YYYY-MM-DD",
                                 argument=key)
            out[key] = day
    return out


@router.post("/api/hazards", status_code=201, response_model=ImportOut)
async def upload_hazards(state: State, user: Editor, file: Annotated[UploadFile, File()],
                         crs: Crs = None,
                         status: Annotated[str | None, Form(max_length=8)] = None,
                         recorded_on: Annotated[str | None, Form(max_length=32)] = None
                         ) -> ImportOut:
    """Upload hazardous areas (all or nothing; the answer lists every finding)."""
    result, name = await ingest_upload(state, "hazards", file, crs,
                                       form_defaults(status, None, recorded_on, None))
    return import_out(result, name)


@router.post("/api/releases", status_code=201, response_model=ImportOut)
async def upload_releases(state: State, user: Editor, file: Annotated[UploadFile, File()],
                          crs: Crs = None,
                          method: Annotated[str | None, Form(max_length=16)] = None,
                          released_on: Annotated[str | None, Form(max_length=32)] = None
                          ) -> ImportOut:
    """Upload released land (all or nothing; the answer lists every finding)."""
    result, name = await ingest_upload(state, "releases", file, crs,
                                       form_defaults(None, method, None, released_on))
    return import_out(result, name)


@router.get("/api/imports")
def list_imports(state: State, user: Viewer) -> list[dict[str, Any]]:
    """Files imported so far; a retracted one says when, by whom and why."""
    df = state.store.imports()
    df = df.astype(object).where(df.notna(), None)
    return [{str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in df.to_dict(orient="records")]


class RetractIn(BaseModel):
    """Why an import is taken out (kept with its record)."""

    reason: str = Field(min_length=1, max_length=2000)


@router.post("/api/imports/{import_id}/retract")
def retract(state: State, user: Admin,
            import_id: Annotated[int, PathParam(ge=1, le=2**62)], body: RetractIn
            ) -> dict[str, Any]:
    """Take an import out of every figure from now on (admins); nothing is deleted."""
    return retract_import(state.store, import_id, reason=body.reason, by=user.name)


@router.post("/api/imports/{import_id}/replace", status_code=201, response_model=ImportOut)
async def replace(state: State, user: Admin,
                  import_id: Annotated[int, PathParam(ge=1, le=2**62)],
                  file: Annotated[UploadFile, File()],
                  reason: Annotated[str, Form(min_length=1, max_length=2000)],
                  crs: Crs = None) -> ImportOut:
    """Retract an import and import its corrected file in one transaction (admins)."""
    found = state.store.imports()
    match = found[found["import_id"] == import_id]
    if not len(match):
        raise NotFoundError(f"there is no import {import_id} in this store",
                            argument="import_id")
    layer: LayerName = "hazards" if match["layer"].iloc[0] == "hazards" else "releases"
    result, name = await ingest_upload(state, layer, file, crs, {},
                                       Retraction(import_id, reason, user.name))
    return import_out(result, name)
