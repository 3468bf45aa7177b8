"""The one table from the core's exceptions to HTTP status codes, and how errors are answered.

The core raises :class:`planner.errors.PlannerError` subclasses carrying structured fields
(``argument``, ``problems``) and no HTTP code; this module alone decides the status
(:data:`ERROR_STATUS`), the headers, the JSON body (``error``, ``detail``, ``field``,
``problems``) and, for a browser on a page, the error page.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

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
from planner.web.templating import render_page, wants_html

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


def status_for(exc: BaseException) -> int:
    """HTTP status of an exception, from :data:`ERROR_STATUS`.

    Examples
    --------
    >>> status_for(CRSMissingError("x")), status_for(DuplicateImportError("y"))
    (422, 409)
    >>> status_for(RuntimeError("z"))
    500
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
    """HTTP headers an error's answer carries (``Retry-After`` for a busy store...).

    Examples
    --------
    >>> error_headers(StoreBusyError("x")), error_headers(AuthError("y"))
    ({'Retry-After': '5'}, {'WWW-Authenticate': 'Bearer'})
    """
    if isinstance(exc, StoreBusyError):
        return {"Retry-After": str(RETRY_AFTER_S)}
    if status_for(exc) == 401:
        return {"WWW-Authenticate": "Bearer"}
    return {}


def error_body(exc: PlannerError) -> dict[str, Any]:
    """The JSON body of an error: its class, its text, the field and every problem found.

    Examples
    --------
    >>> error_body(InputError("no date", argument="recorded_on"))
    {'error': 'InputError', 'detail': 'no date', 'field': 'recorded_on'}
    """
    body: dict[str, Any] = {"error": type(exc).__name__, "detail": str(exc)}
    field = error_field(exc)
    if field:
        body["field"] = field
    if isinstance(exc, ValidationError):
        body["problems"] = [{"feature": p.feature, "severity": p.severity,
                             "message": p.message} for p in exc.problems]
    return body


async def planner_error(request: Request, exc: PlannerError) -> Response:
    """The app's handler of :class:`PlannerError`: an error page for a browser, else JSON."""
    code = status_for(exc)
    if wants_html(request):
        page = render_page(request, "error.html", "error", None, code,
                           status_code=code, message=str(exc))
        page.headers.update(error_headers(exc))
        return page
    return JSONResponse(error_body(exc), status_code=code, headers=error_headers(exc))
