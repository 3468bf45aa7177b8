"""The HTML pages: start, sign-in and sign-out, upload form, maps, status.

Forms that change state (:data:`planner.web.middleware.FORM_PATHS`) carry the anti-forgery
value of :func:`planner.web.auth.csrf_token` when the browser is signed in by cookie.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from planner.accounting import Status, verified_status
from planner.errors import InputError, NotFoundError, PlannerError, ValidationError
from planner.web.auth import COOKIE, Editor, OptionalUser, Viewer, check_form_token
from planner.web.errors import FIELD_LABELS, error_field, error_headers, status_for
from planner.web.params import Crs, CsrfForm, DateQ
from planner.web.routes.uploads import import_out, ingest_upload
from planner.web.state import ServiceState, State
from planner.web.templating import render_page
from planner.web.users import authenticate

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, state: State, user: OptionalUser) -> HTMLResponse:
    """The start page: sign-in, links to the figures, the upload form and the map."""
    return render_page(request, "index.html", "home", user,
                       eif=state.store.programme().eif.isoformat())


@router.post("/login")
def login(request: Request, state: State, token: Annotated[str, Form(max_length=200)]
          ) -> Response:
    """Sign in: a valid token becomes the HttpOnly, SameSite=Strict cookie (12 hours)."""
    user = authenticate(state.store, token)
    response = RedirectResponse("/", status_code=303)
    if user is not None:
        response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", max_age=12 * 3600)
    return response


@router.post("/logout")
def logout(request: Request, csrf: CsrfForm = None) -> Response:
    """Sign out: the cookie is removed."""
    check_form_token(request, csrf)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, state: State, user: OptionalUser) -> HTMLResponse:
    """The upload form."""
    return render_page(request, "upload.html", "upload", user,
                       max_mb=f"{state.settings.max_upload_mb:g}")


@router.post("/upload", response_class=HTMLResponse)
async def upload_form(request: Request, state: State, user: Editor,
                      file: Annotated[UploadFile, File()],
                      layer: Annotated[Literal["hazards", "releases"], Form()] = "hazards",
                      crs: Crs = None, csrf: CsrfForm = None) -> HTMLResponse:
    """The upload form's answer: the report of the import, or every problem found."""
    check_form_token(request, csrf)
    max_mb = f"{state.settings.max_upload_mb:g}"
    try:
        result, name = await ingest_upload(state, layer, file, crs, {})
    except ValidationError as exc:
        return render_page(request, "upload.html", "upload", user, 422, max_mb=max_mb,
                           error=f"{exc.source}: every problem is listed below; fix them and "
                                 "upload again.", problems=exc.problems)
    except PlannerError as exc:
        field = error_field(exc)
        page = render_page(request, "upload.html", "upload", user, status_for(exc),
                           max_mb=max_mb, error=str(exc), problems=[], field=field,
                           field_label=FIELD_LABELS.get(field or "", field))
        page.headers.update(error_headers(exc))
        return page
    return render_page(request, "upload.html", "upload", user, 201, max_mb=max_mb,
                       result=import_out(result, name), problems=result.problems)


@router.get("/imports/{import_id}/map", response_class=HTMLResponse)
def import_map(state: State, import_id: int, user: Viewer) -> HTMLResponse:
    """A map of what one import brought."""
    from planner.field.maps import map_html, programme_map

    title = f"import {import_id}"
    for layer in ("hazards", "releases"):
        part = state.store.read(layer, import_id=import_id)
        if len(part):
            m = (programme_map(part, title=title) if layer == "hazards"
                 else programme_map(part.iloc[0:0].assign(status=[]), part, title=title))
            return HTMLResponse(map_html(m))
    raise NotFoundError(f"no features from import {import_id}")


@router.get("/map", response_class=HTMLResponse)
def map_page(state: State, user: Viewer) -> HTMLResponse:
    """A map of the whole programme."""
    from planner.field.maps import map_html, programme_map

    m = programme_map(state.store.read("hazards"), state.store.read("releases"),
                      title=state.store.programme().name)
    return HTMLResponse(map_html(m))


def status_rows(s: Status) -> list[tuple[str, float]]:
    """The figures of the status page, labelled as in Article 7 [m²]."""
    return [("(d) contaminated at entry into force", s.baseline_m2),
            ("(d) discovered after entry into force", s.discovered_m2),
            ("(e) released: cancelled", s.cancelled_m2),
            ("(e) released: reduced", s.reduced_m2),
            ("(e) released: cleared", s.cleared_m2), ("(f) remaining", s.remaining_m2)]


def forecast_view(state: ServiceState) -> tuple[str, str | None, str]:
    """The forecast's statement, its burn-down chart (base64 PNG) and method, for a page.

    Without enough history the statement says why and there is no chart.
    """
    from planner.treaty.charts import burndown_png
    from planner.treaty.forecast import forecast, release_history

    led = state.ledger()
    try:
        f = forecast(led, state.store.programme())
        png = burndown_png(release_history(led, f.as_of), f,
                           deadlines=[("deadline", f.deadline)])
    except InputError as exc:
        return f"No forecast: {exc}", None, ""
    return f.statement, base64.b64encode(png).decode("ascii"), f.method


@router.get("/status", response_class=HTMLResponse)
def status_page(request: Request, state: State, user: OptionalUser, at: DateQ = None
                ) -> HTMLResponse:
    """The figures at a date (default: the last day with records) and the forecast."""
    led = state.ledger()
    s = verified_status(state.store, at or (led.last_day or dt.date.today()), ledger=led)
    statement, chart, method = forecast_view(state)
    return render_page(request, "status.html", "status", user, at=s.at.isoformat(),
                       rows=status_rows(s), statement=statement, chart=chart, method=method)


#: A red warning triangle with an exclamation mark: the page icon browsers ask for.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<path d="M16 2 31 29H1z" fill="#c8102e"/>'
    '<path d="M14.5 11h3l-.6 10h-1.8zM16 23.2a1.7 1.7 0 1 1 0 3.4 1.7 1.7 0 0 1 0-3.4z" '
    'fill="#fff"/></svg>')


@router.get("/favicon.ico")
def favicon() -> Response:
    """The page icon (an SVG; browsers accept it under this name)."""
    return Response(FAVICON_SVG, media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400"})
