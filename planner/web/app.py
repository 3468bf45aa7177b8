"""The web service: uploads from the field, figures and maps for planners (FastAPI).

A thin layer over the library: every route calls the same core function as the CLI. Start it
with ``planner serve --store S``; the OpenAPI description is at ``/docs`` and
``/openapi.json``. This module only assembles the app; the parts live beside it:

* :mod:`planner.web.routes` — one ``APIRouter`` per resource (uploads, geometry, figures,
  documents, users, pages, service);
* :mod:`planner.web.auth` — who is calling, one dependency per role, the forms' anti-forgery
  value;
* :mod:`planner.web.errors` — the one table from core exceptions to HTTP status codes;
* :mod:`planner.web.middleware` — body size limit, same-origin check, security headers,
  internal errors answered with an id;
* :mod:`planner.web.state` — the store and the cached ledger, reached through a dependency.

Access (:mod:`planner.web.users`): anonymous callers get aggregate figures only (status, series,
deadlines, forecast); ``viewer`` tokens also read geometry, maps and documents; ``editor``
tokens upload; ``admin`` tokens manage users.

Hostile input: request bodies are cut off at ``max_upload_mb`` (413) before they are parsed;
uploaded names are reduced to a plain file name; archives go through
:func:`planner.ingest.safe_extract` (zip-slip, symlinks, zip bombs); files that are not geodata
get 415; files with too many vertices 413; every import is all-or-nothing in one store
transaction.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from planner.errors import PlannerError
from planner.web.errors import planner_error
from planner.web.middleware import BodyLimit, InternalErrors, SameOrigin, security_headers
from planner.web.routes import ROUTERS
from planner.web.settings import Settings
from planner.web.state import ServiceState
from planner.web.uploads import UploadWorkers


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI application for one store.

    Parameters
    ----------
    settings : Settings
        Where the store is, the engine, the limits, the trusted origins.

    Returns
    -------
    FastAPI
        The app; its state (``app.state.planner``) is a :class:`ServiceState`.
    """
    state = ServiceState(settings)

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
    app.middleware("http")(security_headers)
    app.add_middleware(SameOrigin, trusted=settings.trusted_origins)
    app.add_middleware(InternalErrors)    # outermost of ours: catches what the others raise
    app.add_exception_handler(PlannerError, planner_error)  # type: ignore[arg-type]
    for router in ROUTERS:
        app.include_router(router)
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


__all__ = ["create_app"]
