"""The web service: uploads from the field, figures and maps for planners (FastAPI).

A thin layer over the library: every endpoint calls the same functions as the CLI. Start it
with ``planner serve --store S``; the OpenAPI description is at ``/docs`` and
``/openapi.json``.

Access (:mod:`planner.web.users`): anonymous callers get aggregate figures only (status, series,
deadlines, forecast); ``viewer`` tokens also read geometry, maps and documents; ``editor``
tokens upload; ``admin`` tokens manage users. Tokens come as ``Authorization: Bearer TOKEN``
or, for the pages, as a cookie set by the sign-in form (HttpOnly, SameSite=Strict). The check
is one dependency (:func:`_user`), never repeated in endpoints.

Hostile input: request bodies are cut off at ``max_upload_mb`` (413) before they are parsed;
uploaded names are reduced to a plain file name; archives go through
:func:`planner.ingest.safe_extract` (zip-slip, symlinks, zip bombs); files that are not geodata
get 415; files with too many vertices 413; every import is all-or-nothing in one store
transaction. Errors map to HTTP codes in one table, :data:`ERROR_STATUS`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import AfterValidator, BaseModel, Field

from planner.accounting import Ledger, ledger_with, period_ends
from planner.areas import WGS84
from planner.errors import (
    AuthError,
    CRSMissingError,
    DuplicateImportError,
    ForbiddenError,
    InputError,
    LayerChoiceError,
    NotFoundError,
    PlannerError,
    StoreBusyError,
    StoreError,
    StoreNotFoundError,
    TooLargeError,
    UnsupportedFormatError,
    ValidationError,
)
from planner.ingest import IngestOptions, parse_date
from planner.layers import LayerName
from planner.store import Store, open_store
from planner.web.settings import Settings
from planner.web.uploads import (
    UploadJob,
    UploadOutcome,
    UploadWorkers,
    new_folder,
    remove_stale_folders,
    upload_root,
)
from planner.web.users import ROLES, Role, User, add_user, authenticate, require

#: Exception class → HTTP status; the most specific class in an exception's MRO wins.
ERROR_STATUS: dict[type[Exception], int] = {
    AuthError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    DuplicateImportError: 409,
    TooLargeError: 413,
    UnsupportedFormatError: 415,
    ValidationError: 422,
    CRSMissingError: 422,
    LayerChoiceError: 422,
    InputError: 422,
    StoreNotFoundError: 503,
    StoreBusyError: 503,
    StoreError: 500,
    PlannerError: 400,
}
#: Seconds a client is asked to wait (``Retry-After``) when the store is busy.
RETRY_AFTER_S = 5
#: The form field each error concerns when the core did not say (older messages).
_CLASS_FIELD: dict[type[Exception], str] = {CRSMissingError: "crs", LayerChoiceError: "layer"}
#: How the upload page names each field (the label the user sees).
FIELD_LABELS = {"file": "Survey file", "layer": "It holds", "crs": "Coordinate system",
                "status": "status", "method": "method", "recorded_on": "recorded on",
                "released_on": "released on"}
#: Dates outside these are refused at the edge (422): nothing in the treaty's life is there,
#: and date arithmetic near year 1 or 9999 overflows.
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
#: Keys of the figures that locate land; dropped (recursively) for anonymous callers.
PRIVATE_KEYS = frozenset({"outside_release_ids", "hazard_ids", "area_method"})
COOKIE = "planner_token"
#: Pages whose forms change state; a POST to them must come from the service's own pages.
FORM_PATHS = ("/login", "/logout", "/upload")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
logger = logging.getLogger(__name__)
UPLOAD_PATHS = ("/api/hazards", "/api/releases", "/upload")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
_CSP = ("default-src 'self'; img-src 'self' data: https://tile.openstreetmap.org "
        "https://*.tile.openstreetmap.org; "
        "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'self'; form-action 'self'; base-uri 'none'")


def status_for(exc: BaseException) -> int:
    """HTTP status of an exception, from :data:`ERROR_STATUS`.

    Examples
    --------
    >>> status_for(CRSMissingError("x")), status_for(DuplicateImportError("y"))
    (422, 409)
    """
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500


def error_field(exc: BaseException) -> str | None:
    """The input an error concerns, by its core name (``"crs"``...), or None.

    Examples
    --------
    >>> error_field(InputError("x", argument="recorded_on")), error_field(CRSMissingError("y"))
    ('recorded_on', 'crs')
    """
    argument = getattr(exc, "argument", None)
    if argument:
        return str(argument)
    for cls in type(exc).__mro__:
        if cls in _CLASS_FIELD:
            return _CLASS_FIELD[cls]
    return None


def error_headers(exc: BaseException) -> dict[str, str]:
    """HTTP headers an error's answer carries (``Retry-After`` for a busy store...)."""
    if isinstance(exc, StoreBusyError):
        return {"Retry-After": str(RETRY_AFTER_S)}
    if status_for(exc) == 401:
        return {"WWW-Authenticate": "Bearer"}
    return {}


def public_figures(value: Any) -> Any:
    """``value`` without what locates land (:data:`PRIVATE_KEYS`), for anonymous callers.

    Examples
    --------
    >>> public_figures({"remaining_m2": 5.0, "outside_release_ids": ["R1"],
    ...                 "groups": [{"name": "a", "hazard_ids": ["H1"]}]})
    {'remaining_m2': 5.0, 'groups': [{'name': 'a'}]}
    """
    if isinstance(value, dict):
        return {k: public_figures(v) for k, v in value.items() if k not in PRIVATE_KEYS}
    if isinstance(value, list):
        return [public_figures(v) for v in value]
    return value


def _sane_date(day: dt.date | None) -> dt.date | None:
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"dates must be between {FIRST_DAY} and {LAST_DAY}")
    return day


def safe_file_name(name: str | None) -> str:
    """A plain file name from whatever a client sent (no folders, no odd characters).

    Examples
    --------
    >>> safe_file_name("../../etc/passwd"), safe_file_name("C:\\\\x\\\\survey 2019.zip")
    ('passwd', 'survey_2019.zip')
    """
    base = (name or "").replace("\\", "/").split("/")[-1]
    cleaned = _SAFE_NAME.sub("_", base).strip("._") or "upload"
    return cleaned[-120:]


# -- request-size limit (before anything is parsed) ------------------------------------------
class BodyLimit:
    """ASGI middleware: refuse upload bodies over ``limit`` bytes with 413, while streaming."""

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: MutableMapping[str, Any],
                       receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
                       send: Callable[[MutableMapping[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not str(
                scope.get("path", "")).startswith(UPLOAD_PATHS):
            await self.app(scope, receive, send)
            return
        allowance = self.limit + 256 * 1024   # the multipart envelope around the file
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > allowance:
                await _send_json(send, 413, _too_large(self.limit))
                return
        seen = 0

        async def limited() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > allowance:
                    raise HTTPException(413, _too_large(self.limit)["detail"])
            return message

        await self.app(scope, limited, send)


class InternalErrors:
    """ASGI middleware: an unexpected exception is logged with an id and answered 500.

    The answer says only "internal error, id …" (JSON for the API, a short page for a
    browser): no exception text, no path, no traceback. The log has all of it under the id.
    """

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any],
                       receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
                       send: Callable[[MutableMapping[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            error_id = uuid.uuid4().hex[:12]
            logger.error("internal error %s on %s %s", error_id, scope.get("method"),
                         scope.get("path"), exc_info=exc)
            if started:    # too late for an answer: the connection is closed by the server
                return
            text = (f"internal error, id {error_id}: the service logged what happened; "
                    "tell the administrator this id")
            headers = dict(scope.get("headers") or [])
            if (not str(scope.get("path", "")).startswith("/api")
                    and b"text/html" in headers.get(b"accept", b"")):
                page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                        f"<title>internal error</title></head><body><h1>500</h1>"
                        f"<p role=\"alert\">{text}</p><p><a href=\"/\">Back to the start "
                        f"page</a>.</p></body></html>").encode()
                await _send(send, 500, page, b"text/html; charset=utf-8",
                            [(b"content-security-policy", _CSP.encode())])
            else:
                await _send(send, 500, json.dumps({"error": "InternalError", "detail": text,
                                                   "error_id": error_id}).encode(),
                            b"application/json")


async def _send(send: Callable[[MutableMapping[str, Any]], Awaitable[None]], status: int,
                data: bytes, media: bytes, extra: list[tuple[bytes, bytes]] | None = None
                ) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", media),
                            (b"content-length", str(len(data)).encode()),
                            (b"x-content-type-options", b"nosniff"), *(extra or [])]})
    await send({"type": "http.response.body", "body": data})


# -- cross-site request forgery ----------------------------------------------------------------
def csrf_token(session_token: str) -> str:
    """The anti-forgery value of a signed-in browser's forms: an HMAC of its session token.

    Another site cannot compute it (the cookie is HttpOnly and never leaves this origin), and
    it needs no server secret, so every worker process agrees on it.

    Examples
    --------
    >>> len(csrf_token("abc")), csrf_token("abc") == csrf_token("abd")
    (64, False)
    """
    return hmac.new(session_token.strip().encode(), b"planner-csrf-v1",
                    hashlib.sha256).hexdigest()


def _origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL (lower case), or ``""`` if it has none."""
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]+)", url.strip())
    return match.group(1).lower() if match else ""


class SameOrigin:
    """ASGI middleware: a browser's state-changing request must come from this service's pages.

    Applies to every request that is not GET/HEAD/OPTIONS and carries no ``Authorization``
    header, when it carries the sign-in cookie or goes to a form page (:data:`FORM_PATHS`). Its
    ``Origin`` header (or, when a browser sends none, its ``Referer``) must be the service's own
    origin, scheme, host and port: a page on the same site but another port is another origin
    and is refused with 403, though a SameSite=Strict cookie still travels with its request.
    Requests with a bearer token pass: another site cannot make a browser send one.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], trusted: list[str]) -> None:
        self.app = app
        self.trusted = {_origin_of(o) for o in trusted if _origin_of(o)}

    async def __call__(self, scope: MutableMapping[str, Any],
                       receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
                       send: Callable[[MutableMapping[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] == "http" and scope.get("method", "GET") not in _SAFE_METHODS:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope.get("headers") or []}
            cookie = f"{COOKIE}=" in headers.get("cookie", "")
            path = str(scope.get("path", ""))
            if "authorization" not in headers and (cookie or path in FORM_PATHS):
                own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()
                came_from = _origin_of(headers.get("origin", "")) or _origin_of(
                    headers.get("referer", ""))
                if came_from not in self.trusted | {own}:
                    detail = ("this request came from another site or page ("
                              f"{came_from or 'no Origin or Referer'}), not from this service's "
                              "own pages, so it was refused; nothing was changed. Open the form "
                              "on this service and submit it again.")
                    await _send(send, 403, json.dumps({"error": "ForbiddenError",
                                                       "detail": detail}).encode(),
                                b"application/json")
                    return
        await self.app(scope, receive, send)


def _too_large(limit: int) -> dict[str, str]:
    return {"error": "TooLargeError",
            "detail": f"the upload is larger than the limit of {limit / 1e6:.0f} MB; split it "
                      "or zip it (ask the administrator to raise PLANNER_MAX_UPLOAD_MB)"}


async def _send_json(send: Callable[[MutableMapping[str, Any]], Awaitable[None]], status: int,
                     body: dict[str, str]) -> None:
    import json

    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


# -- response models ------------------------------------------------------------------------
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


class UserIn(BaseModel):
    """A user to create."""

    name: str = Field(min_length=1, max_length=64)
    role: Literal["viewer", "editor", "admin"]


class UserOut(BaseModel):
    """A user; ``token`` only in the answer that created it."""

    name: str
    role: str
    created_at: str | None = None
    token: str | None = None


# -- access: one dependency ------------------------------------------------------------------
def current_user(request: Request) -> User | None:
    """The caller, from ``Authorization: Bearer TOKEN`` or the sign-in cookie (None if none)."""
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    return authenticate(request.app.state.planner.store, token)


def _needs(role: Role) -> Callable[[User | None], User]:
    def check(user: Annotated[User | None, Depends(current_user)]) -> User:
        return require(user, role)
    return check


OptionalUser = Annotated[User | None, Depends(current_user)]
Viewer = Annotated[User, Depends(_needs("viewer"))]
Editor = Annotated[User, Depends(_needs("editor"))]
Admin = Annotated[User, Depends(_needs("admin"))]
Crs = Annotated[str | None, Form(max_length=64, description="CRS when the file has none")]
Bbox = Annotated[str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat")]
Limit = Annotated[int, Query(ge=1, le=100_000, description="features per page")]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
DateQ = Annotated[dt.date | None, Query(description=f"ISO date, {FIRST_DAY} to {LAST_DAY}"),
                  AfterValidator(_sane_date)]


# -- the app ---------------------------------------------------------------------------------
class _State:
    """The store and what is cached from it, shared by all requests."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store = open_store(settings.store)
        if settings.engine == "postgis":
            from planner.store.postgis import PostGISStore

            if not isinstance(self.store, PostGISStore):
                raise InputError("PLANNER_ENGINE=postgis builds the ledger inside a PostGIS "
                                 "store, but the store is a GeoPackage; use a postgresql:// "
                                 "store or PLANNER_ENGINE=single or dask")
        self.lock = threading.Lock()
        self.cache: dict[str, tuple[tuple[int, int], Any]] = {}
        self.upload_root = upload_root(settings.upload_dir)
        remove_stale_folders(self.upload_root)     # left by a server that was killed
        self.uploads = UploadWorkers(settings.store, settings.upload_workers,
                                     settings.max_upload_seconds)

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        version = self.store.version()
        with self.lock:
            hit = self.cache.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]
        value = make()
        with self.lock:
            self.cache[key] = (version, value)
        return value

    def ledger(self) -> Ledger:
        return self.cached("ledger", lambda: ledger_with(
            self.store, self.settings.engine, workers=self.settings.workers))

    def layer_wgs84(self, layer: LayerName) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Per feature: its date, its bounds (WGS 84) and its GeoJSON text, cached."""
        def make() -> tuple[np.ndarray, np.ndarray, list[str]]:
            frame = self.store.read(layer, crs=WGS84)
            bounds = frame.geometry.bounds.to_numpy()
            col = "recorded_on" if layer == "hazards" else "released_on"
            days = np.array([_as_date(v) for v in frame[col]], dtype=object)
            frame[col] = [d.isoformat() if d else None for d in days]
            frame = frame.drop(columns=["import_id"])
            features = json.loads(frame.to_json(drop_id=True, to_wgs84=False))["features"]
            return days, bounds, [json.dumps(f, separators=(",", ":")) for f in features]
        return self.cached(f"layer:{layer}", make)


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI application for one store."""
    state = _State(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        restore = _stop_uploads_on_signals(state.uploads)
        try:
            yield
        finally:
            state.uploads.close()
            restore()

    app = FastAPI(title="planner", version="0.1.0", lifespan=lifespan,
                  description="Cluster-munition land release: uploads, figures, maps and "
                              "Article 4 documents for one programme.")
    app.state.planner = state
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization"])

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", _CSP)
            response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
            response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    app.add_middleware(SameOrigin, trusted=settings.trusted_origins)
    app.add_middleware(InternalErrors)    # outermost of ours: catches what the others raise

    @app.exception_handler(PlannerError)
    async def planner_error(request: Request, exc: PlannerError) -> Response:
        code = status_for(exc)
        if _wants_html(request):
            page = _page(request, "error.html", "error", None, code,
                         status_code=code, message=str(exc))
            page.headers.update(error_headers(exc))
            return page
        body: dict[str, Any] = {"error": type(exc).__name__, "detail": str(exc)}
        field = error_field(exc)
        if field:
            body["field"] = field
        if isinstance(exc, ValidationError):
            body["problems"] = [{"feature": p.feature, "severity": p.severity,
                                 "message": p.message} for p in exc.problems]
        return JSONResponse(body, status_code=code, headers=error_headers(exc))

    def _page(request: Request, template: str, title: str, user: User | None,
              code: int = 200, **context: Any) -> HTMLResponse:
        programme = state.store.programme()
        cookie = request.cookies.get(COOKIE)
        return _TEMPLATES.TemplateResponse(request, template, {
            "title": title, "programme": programme.name, "user": user,
            "csrf": csrf_token(cookie) if cookie else "", **context}, status_code=code)

    def _form_token_ok(request: Request, csrf: str | None) -> None:
        """Refuse a cookie-signed form post whose anti-forgery value is missing or wrong."""
        if request.headers.get("authorization"):
            return   # a bearer token is its own proof; no browser sends one for another site
        cookie = request.cookies.get(COOKIE)
        if cookie and not hmac.compare_digest(csrf or "", csrf_token(cookie)):
            raise ForbiddenError("the form is out of date or was sent from another page; "
                                 "reload this page and submit it again (nothing was changed)")

    # -- uploads ------------------------------------------------------------------------
    async def _ingest_upload(layer: LayerName, upload: UploadFile, crs: str | None,
                             defaults: dict[str, Any]) -> tuple[UploadOutcome, str]:
        """Spool the upload to its own folder and import it in a worker, under the time limit.

        The folder is removed when the job ends, by whichever side finishes last.
        """
        name = safe_file_name(upload.filename)
        folder = new_folder(state.upload_root)
        try:
            path = folder / name
            written = 0
            with path.open("wb") as out:
                while chunk := await upload.read(1 << 20):
                    written += len(chunk)
                    if written > settings.max_upload_bytes:
                        raise TooLargeError(_too_large(settings.max_upload_bytes)["detail"],
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
        job = UploadJob(layer, str(path), options, str(folder))
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

    def _import_out(result: UploadOutcome, name: str) -> ImportOut:
        return ImportOut(import_id=result.import_id, layer=result.layer, file_name=name,
                         sha256=result.sha256, rows=result.rows,
                         problems=[ProblemOut(feature=p.feature, severity=p.severity,
                                              message=p.message) for p in result.problems])

    def _defaults(status: str | None, method: str | None, recorded_on: str | None,
                  released_on: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"status": status or None, "method": method or None}
        for key, value in (("recorded_on", recorded_on), ("released_on", released_on)):
            if value:
                day = parse_date(value)
                if day is None:
                    raise InputError(f"{key} {value!r} is not a date; write it as YYYY-MM-DD",
                                     argument=key)
                out[key] = day
        return out

    @app.post("/api/hazards", status_code=201, response_model=ImportOut, tags=["uploads"])
    async def upload_hazards(user: Editor, file: Annotated[UploadFile, File()], crs: Crs = None,
                       status: Annotated[str | None, Form(max_length=8)] = None,
                       recorded_on: Annotated[str | None, Form(max_length=32)] = None
                       ) -> ImportOut:
        """Upload hazardous areas (all or nothing; the answer lists every finding)."""
        result, name = await _ingest_upload("hazards", file, crs,
                                            _defaults(status, None, recorded_on, None))
        return _import_out(result, name)

    @app.post("/api/releases", status_code=201, response_model=ImportOut, tags=["uploads"])
    async def upload_releases(user: Editor, file: Annotated[UploadFile, File()],
                              crs: Crs = None,
                        method: Annotated[str | None, Form(max_length=16)] = None,
                        released_on: Annotated[str | None, Form(max_length=32)] = None
                        ) -> ImportOut:
        """Upload released land (all or nothing; the answer lists every finding)."""
        result, name = await _ingest_upload("releases", file, crs,
                                            _defaults(None, method, None, released_on))
        return _import_out(result, name)

    @app.get("/api/imports", tags=["uploads"])
    def list_imports(user: Viewer) -> list[dict[str, Any]]:
        """Files imported so far."""
        df = state.store.imports()
        return [{str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                for row in df.to_dict(orient="records")]

    # -- geometry -----------------------------------------------------------------------
    def _geojson(layer: LayerName, bbox: str | None, date_from: dt.date | None,
                 date_to: dt.date | None, limit: int, offset: int) -> Response:
        if limit > settings.geojson_page_max:
            raise InputError(f"limit {limit}: at most {settings.geojson_page_max} features per "
                             "page; use offset to page through")
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

    @app.get("/api/hazards", tags=["geometry"], response_class=Response,
             responses={200: {"content": {"application/geo+json": {}}}})
    def get_hazards(user: Viewer, bbox: Bbox = None, recorded_from: DateQ = None,
                    recorded_to: DateQ = None, limit: Limit = 1000, offset: Offset = 0
                    ) -> Response:
        """Hazards as GeoJSON (WGS 84), filtered by bbox and date, one page at a time."""
        return _geojson("hazards", bbox, recorded_from, recorded_to, limit, offset)

    @app.get("/api/releases", tags=["geometry"], response_class=Response,
             responses={200: {"content": {"application/geo+json": {}}}})
    def get_releases(user: Viewer, bbox: Bbox = None, released_from: DateQ = None,
                     released_to: DateQ = None, limit: Limit = 1000, offset: Offset = 0
                     ) -> Response:
        """Releases as GeoJSON (WGS 84), filtered by bbox and date, one page at a time."""
        return _geojson("releases", bbox, released_from, released_to, limit, offset)

    # -- figures (aggregate: no locations, open to anonymous callers) ---------------------
    @app.get("/api/status", tags=["figures"])
    def get_status(user: OptionalUser, at: DateQ = None) -> dict[str, Any]:
        """Baseline, discovered, released by method and remaining [m²] at a date.

        Anonymous callers get the figures only: no ids of releases outside hazards and no
        centre of the equal-area projection (both locate land).
        """
        led = state.ledger()
        s = led.status(at or dt.date.today())
        out = {"programme": state.store.programme().name, **s.to_dict()}
        if user is None:
            out = public_figures(out)
            out["outside_release_count"] = len(s.outside_release_ids)
            out["area_method"] = ("union areas in a Lambert azimuthal equal-area projection "
                                  "centred on the data (the centre is shown to signed-in users)")
        return out

    @app.get("/api/series", tags=["figures"])
    def get_series(freq: Literal["year", "month"] = "year", start: DateQ = None,
                   end: DateQ = None) -> list[dict[str, Any]]:
        """Figures at each year (or month) end [m²]."""
        led = state.ledger()
        first = start or led.first_day or dt.date.today()
        last = end or dt.date.today()
        if last < first:
            raise InputError("end must not be before start", argument="end")
        if (last.year - first.year) > 200:
            raise InputError("a series may span at most 200 years", argument="start")
        df = led.series(period_ends(first, last, freq))
        df["date"] = df["date"].map(lambda d: d.isoformat())
        return df.to_dict(orient="records")  # type: ignore[return-value]

    @app.get("/api/deadlines", tags=["figures"])
    def get_deadlines(user: OptionalUser, meeting: DateQ = None) -> dict[str, Any]:
        """Article 4 deadlines; with a meeting date, the latest filing date.

        Anonymous callers get no hazard ids (regions only).
        """
        from planner.treaty.deadlines import deadline_report

        out = deadline_report(state.store.programme(), meeting).to_dict()
        return out if user is not None else public_figures(out)

    @app.get("/api/forecast", tags=["figures"])
    def get_forecast(as_of: DateQ = None, window_years: Annotated[int | None, Query(
                         ge=1, le=100)] = None,
                     draws: Annotated[int, Query(ge=100, le=20_000)] = 10_000,
                     seed: Annotated[int, Query(ge=0, le=2**31)] = 20111,
                     user: OptionalUser = None) -> dict[str, Any]:
        """Completion forecast (historical bootstrap) with method and assumptions."""
        from planner.treaty.forecast import Scenario, forecast

        f = forecast(state.ledger(), state.store.programme(),
                     Scenario(window_years=window_years, draws=draws, seed=seed), as_of=as_of)
        return f.to_dict() if user is not None else public_figures(f.to_dict())

    # -- documents and plans (viewers) ------------------------------------------------------
    @app.get("/api/extension-request", tags=["documents"], response_class=Response)
    def get_extension_request(user: Viewer, format: Literal["docx", "html", "md"] = "docx",
                              years: Annotated[int | None, Query(ge=0, le=5)] = None,
                              as_of: DateQ = None) -> Response:
        """The draft extension request as DOCX, HTML or Markdown (figures only, no map)."""
        from planner.documents.model import to_docx, to_html, to_markdown
        from planner.treaty.extension import request_document, request_figures
        from planner.treaty.forecast import forecast, release_history

        led, programme = state.ledger(), state.store.programme()
        f = forecast(led, programme, as_of=as_of)
        fig = request_figures(led, programme, f, years=years)
        doc = request_document(fig, f, history=release_history(led, f.as_of))
        if format == "docx":
            return Response(to_docx(doc), headers=_attachment("extension_request.docx"),
                            media_type="application/vnd.openxmlformats-officedocument."
                                       "wordprocessingml.document")
        if format == "html":
            return HTMLResponse(to_html(doc))
        return Response(to_markdown(doc), media_type="text/markdown; charset=utf-8")

    @app.get("/api/marking-plan", tags=["documents"], response_class=Response)
    def get_marking_plan(user: Viewer, format: Literal["gpkg", "kml", "gpx", "csv"] = "gpkg",
                         at: DateQ = None,
                         region: Annotated[str | None, Query(max_length=100)] = None
                         ) -> Response:
        """A marking and fencing plan of what remains (default options) as a field file."""
        from planner.field import exports
        from planner.field.marking import marking_plan, remaining_hazards, select_hazards

        left = remaining_hazards(state.store.read("hazards"), state.store.read("releases"),
                                 at or dt.date.today())
        chosen = select_hazards(left, regions=[region] if region else [])
        plan = marking_plan(chosen)
        writer = {"gpkg": exports.write_gpkg, "kml": exports.write_kml,
                  "gpx": exports.write_gpx, "csv": exports.write_csv}[format]
        media = {"gpkg": "application/geopackage+sqlite3",
                 "kml": "application/vnd.google-earth.kml+xml",
                 "gpx": "application/gpx+xml", "csv": "text/csv"}[format]
        with tempfile.TemporaryDirectory() as tmp:
            path = writer(plan, Path(tmp) / f"marking_plan.{format}")
            data = path.read_bytes()
        return Response(data, media_type=media, headers=_attachment(f"marking_plan.{format}"))

    # -- users (admins) ---------------------------------------------------------------------
    @app.get("/api/users", tags=["users"], response_model=list[UserOut])
    def list_users(user: Admin) -> list[UserOut]:
        """Users and their roles (never their tokens)."""
        return [UserOut(**u) for u in state.store.users()]

    @app.post("/api/users", tags=["users"], status_code=201, response_model=UserOut)
    def create_user(user: Admin, new: UserIn) -> UserOut:
        """Create a user; the answer holds their token, shown this once."""
        token = add_user(state.store, new.name, new.role)
        return UserOut(name=new.name, role=new.role, token=token)

    @app.delete("/api/users/{name}", tags=["users"], status_code=204, response_class=Response)
    def delete_user(user: Admin, name: str) -> Response:
        """Remove a user; their token stops working at once."""
        if not state.store.remove_user(name):
            raise NotFoundError(f"no user called {name!r}")
        return Response(status_code=204)

    # -- pages ------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, user: OptionalUser) -> HTMLResponse:
        return _page(request, "index.html", "home", user,
                     eif=state.store.programme().eif.isoformat())

    @app.post("/login", include_in_schema=False)
    def login(request: Request, token: Annotated[str, Form(max_length=200)]) -> Response:
        user = authenticate(state.store, token)
        response = RedirectResponse("/", status_code=303)
        if user is not None:
            response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict",
                                secure=request.url.scheme == "https", max_age=12 * 3600)
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: Annotated[str | None, Form(max_length=128)] = None
               ) -> Response:
        _form_token_ok(request, csrf)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/upload", response_class=HTMLResponse, include_in_schema=False)
    def upload_page(request: Request, user: OptionalUser) -> HTMLResponse:
        return _page(request, "upload.html", "upload", user, max_mb=f"{settings.max_upload_mb:g}")

    @app.post("/upload", response_class=HTMLResponse, include_in_schema=False)
    async def upload_form(request: Request, user: Editor, file: Annotated[UploadFile, File()],
                    layer: Annotated[Literal["hazards", "releases"], Form()] = "hazards",
                    crs: Crs = None,
                    csrf: Annotated[str | None, Form(max_length=128)] = None) -> HTMLResponse:
        _form_token_ok(request, csrf)
        max_mb = f"{settings.max_upload_mb:g}"
        try:
            result, name = await _ingest_upload(layer, file, crs, {})
        except ValidationError as exc:
            return _page(request, "upload.html", "upload", user, 422, max_mb=max_mb,
                         error=f"{exc.source}: every problem is listed below; fix them and "
                               "upload again.", problems=exc.problems)
        except PlannerError as exc:
            field = error_field(exc)
            page = _page(request, "upload.html", "upload", user, status_for(exc),
                         max_mb=max_mb, error=str(exc), problems=[], field=field,
                         field_label=FIELD_LABELS.get(field or "", field))
            page.headers.update(error_headers(exc))
            return page
        return _page(request, "upload.html", "upload", user, 201, max_mb=max_mb,
                     result=_import_out(result, name), problems=result.problems)

    @app.get("/imports/{import_id}/map", response_class=HTMLResponse, include_in_schema=False)
    def import_map(import_id: int, user: Viewer) -> HTMLResponse:
        from planner.field.maps import map_html, programme_map

        for layer in ("hazards", "releases"):
            part = state.store.read(layer, import_id=import_id)
            if len(part):
                empty = part.iloc[0:0]
                m = (programme_map(part, title=f"import {import_id}") if layer == "hazards"
                     else programme_map(empty.assign(status=[]), part,
                                        title=f"import {import_id}"))
                return HTMLResponse(map_html(m))
        raise NotFoundError(f"no features from import {import_id}")

    @app.get("/map", response_class=HTMLResponse, include_in_schema=False)
    def map_page(user: Viewer) -> HTMLResponse:
        from planner.field.maps import map_html, programme_map

        m = programme_map(state.store.read("hazards"), state.store.read("releases"),
                          title=state.store.programme().name)
        return HTMLResponse(map_html(m))

    @app.get("/status", response_class=HTMLResponse, include_in_schema=False)
    def status_page(request: Request, user: OptionalUser, at: DateQ = None) -> HTMLResponse:
        from planner.treaty.charts import burndown_png
        from planner.treaty.forecast import forecast, release_history

        led = state.ledger()
        when = at or (led.last_day or dt.date.today())
        s = led.status(when)
        rows = [("(d) contaminated at entry into force", s.baseline_m2),
                ("(d) discovered after entry into force", s.discovered_m2),
                ("(e) released: cancelled", s.cancelled_m2),
                ("(e) released: reduced", s.reduced_m2),
                ("(e) released: cleared", s.cleared_m2), ("(f) remaining", s.remaining_m2)]
        statement, chart, method = "", None, ""
        try:
            f = forecast(led, state.store.programme())
            png = burndown_png(release_history(led, f.as_of), f,
                               deadlines=[("deadline", f.deadline)])
            statement, method = f.statement, f.method
            chart = base64.b64encode(png).decode("ascii")
        except InputError as exc:
            statement = f"No forecast: {exc}"
        return _page(request, "status.html", "status", user, at=when.isoformat(), rows=rows,
                     statement=statement, chart=chart, method=method)

    @app.get("/health", tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness: the store opens and answers."""
        return {"status": "ok", "imports": state.store.version()[0]}

    return app


def _stop_uploads_on_signals(uploads: UploadWorkers) -> Callable[[], None]:
    """On SIGTERM/SIGINT, kill the upload workers at once, then let the server stop as usual.

    The server (uvicorn) waits for requests in progress before it stops; killing the workers
    first ends each upload at once with "stopping, send it again", so the server exits within
    moments rather than after the longest upload. Returns a function that restores the
    handlers. Does nothing outside the main thread (signals cannot be caught there).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}

    def handler(sig: int, frame: Any) -> None:
        uploads.close()
        before = previous.get(sig)
        if callable(before):
            before(sig, frame)
        elif before == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, before in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, before)
    return restore


def _as_date(value: Any) -> dt.date | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return parse_date(value)


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def _wants_html(request: Request) -> bool:
    return (not request.url.path.startswith("/api")
            and "text/html" in request.headers.get("accept", ""))


def app_from_env() -> FastAPI:
    """The app for ``uvicorn planner.web.app:app_from_env --factory`` (settings from PLANNER_*)."""
    return create_app(Settings())  # type: ignore[call-arg]


__all__ = ["ERROR_STATUS", "ROLES", "create_app", "safe_file_name", "status_for"]
