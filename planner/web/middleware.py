"""ASGI middleware of the service: body size, same origin, security headers, internal errors.

Each runs before any route and parses nothing: :class:`BodyLimit` cuts an upload off at the
size limit while it streams (413); :class:`SameOrigin` refuses a browser's state-changing
request from another origin (403); :func:`security_headers` sets the headers every answer
carries; :class:`InternalErrors` answers an unexpected exception with 500 and an id, logging
the rest.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response

from planner.web.auth import COOKIE

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

#: Paths whose POST bodies are uploads, held to the size limit.
UPLOAD_PATHS = ("/api/hazards", "/api/releases", "/upload")
#: Pages whose forms change state; a POST to them must come from the service's own pages.
FORM_PATHS = ("/login", "/logout", "/upload")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Content-Security-Policy of every page.
CSP = ("default-src 'self'; img-src 'self' data: https://tile.openstreetmap.org "
       "https://*.tile.openstreetmap.org; "
       "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
       "frame-ancestors 'self'; form-action 'self'; base-uri 'none'")


def too_large(limit: int) -> dict[str, str]:
    """The JSON body of an upload over ``limit`` bytes.

    Examples
    --------
    >>> too_large(5_000_000)["detail"][:43]
    'the upload is larger than the limit of 5 MB'
    """
    return {"error": "TooLargeError",
            "detail": f"the upload is larger than the limit of {limit / 1e6:.0f} MB; split it "
                      "or zip it (ask the administrator to raise PLANNER_MAX_UPLOAD_MB)"}


class BodyLimit:
    """ASGI middleware: refuse upload bodies over ``limit`` bytes with 413, while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not str(
                scope.get("path", "")).startswith(UPLOAD_PATHS):
            await self.app(scope, receive, send)
            return
        allowance = self.limit + 256 * 1024   # the multipart envelope around the file
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > allowance:
                await _send(send, 413, json.dumps(too_large(self.limit)).encode(),
                            b"application/json", [(b"connection", b"close")], nosniff=False)
                return
        seen = 0

        async def limited() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > allowance:
                    raise HTTPException(413, too_large(self.limit)["detail"])
            return message

        await self.app(scope, limited, send)


class InternalErrors:
    """ASGI middleware: an unexpected exception is logged with an id and answered 500.

    The answer says only "internal error, id …" (JSON for the API, a short page for a
    browser): no exception text, no path, no traceback. The log has all of it under the id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
            if not started:    # else too late for an answer: the server closes the connection
                await _internal_error_answer(scope, send, error_id)


async def _internal_error_answer(scope: Scope, send: Send, error_id: str) -> None:
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
                    [(b"content-security-policy", CSP.encode())])
    else:
        await _send(send, 500, json.dumps({"error": "InternalError", "detail": text,
                                           "error_id": error_id}).encode(),
                    b"application/json")


async def _send(send: Send, status: int, data: bytes, media: bytes,
                extra: list[tuple[bytes, bytes]] | None = None, *, nosniff: bool = True
                ) -> None:
    sniff = [(b"x-content-type-options", b"nosniff")] if nosniff else []
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", media),
                            (b"content-length", str(len(data)).encode()),
                            *sniff, *(extra or [])]})
    await send({"type": "http.response.body", "body": data})


def _origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL (lower case), or ``""`` if it has none.

    Examples
    --------
    >>> _origin_of("HTTP://Example.org:8000/upload?x=1"), _origin_of("null")
    ('http://example.org:8000', '')
    """
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

    def __init__(self, app: ASGIApp, trusted: list[str]) -> None:
        self.app = app
        self.trusted = {_origin_of(o) for o in trusted if _origin_of(o)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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


async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                           ) -> Response:
    """HTTP middleware: no sniffing anywhere; CSP, framing and referrer rules on pages."""
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.headers.get("content-type", "").startswith("text/html"):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
