"""Who is calling, as one dependency per role; the anti-forgery value of the pages' forms.

A caller proves who they are with ``Authorization: Bearer TOKEN`` or, for the pages, with the
cookie the sign-in form sets (:data:`COOKIE`, HttpOnly, SameSite=Strict). Routes state what
they need in their signature (:data:`Viewer`, :data:`Editor`, :data:`Admin`, or
:data:`OptionalUser` for open figures); the check is never repeated in a route.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from planner.errors import ForbiddenError
from planner.web.state import get_state
from planner.web.users import Role, User, authenticate, require

#: Name of the sign-in cookie.
COOKIE = "planner_token"


def current_user(request: Request) -> User | None:
    """The caller, from ``Authorization: Bearer TOKEN`` or the sign-in cookie (None if none)."""
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    return authenticate(get_state(request).store, token)


def _needs(role: Role) -> Callable[[User | None], User]:
    def check(user: Annotated[User | None, Depends(current_user)]) -> User:
        return require(user, role)
    return check


#: The caller if signed in, else None (open figures).
OptionalUser = Annotated[User | None, Depends(current_user)]
#: A caller who may read geometry, maps and documents.
Viewer = Annotated[User, Depends(_needs("viewer"))]
#: A caller who may upload.
Editor = Annotated[User, Depends(_needs("editor"))]
#: A caller who may manage users.
Admin = Annotated[User, Depends(_needs("admin"))]


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


def check_form_token(request: Request, csrf: str | None) -> None:
    """Refuse a cookie-signed form post whose anti-forgery value is missing or wrong.

    Raises
    ------
    ForbiddenError
        The request carries the sign-in cookie, no bearer token, and not the cookie's
        :func:`csrf_token`.
    """
    if request.headers.get("authorization"):
        return   # a bearer token is its own proof; no browser sends one for another site
    cookie = request.cookies.get(COOKIE)
    if cookie and not hmac.compare_digest(csrf or "", csrf_token(cookie)):
        raise ForbiddenError("the form is out of date or was sent from another page; "
                             "reload this page and submit it again (nothing was changed)")
