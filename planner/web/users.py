"""Users of the web service: API tokens with a role, stored hashed in the programme's store.

Roles, each including the ones before it:

* ``viewer``: reads figures, hazard and release geometry, maps, documents;
* ``editor``: also uploads survey files;
* ``admin``: also manages users and their tokens.

Anonymous callers get aggregate figures only, never where hazards are (uncleared hazard
locations are sensitive). A token is 256 random bits shown once when the user is created; the
store keeps only its SHA-256 (a fast hash is enough for a random secret of that length, unlike
for passwords).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from planner.errors import AuthError, ForbiddenError, InputError
from planner.store import Store

Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")


@dataclass(frozen=True)
class User:
    """A caller of the web service."""

    name: str
    role: Role

    def can(self, role: Role) -> bool:
        """Whether this user has ``role`` or a higher one.

        Examples
        --------
        >>> User("ana", "editor").can("viewer"), User("ana", "editor").can("admin")
        (True, False)
        """
        return ROLES.index(self.role) >= ROLES.index(role)


def token_hash(token: str) -> str:
    """SHA-256 of a token, as stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(store: Store, name: str, role: str) -> str:
    """Create a user and return their new token (shown once, stored hashed).

    Examples
    --------
    >>> import tempfile, pathlib, datetime as dt
    >>> from planner.programme import Programme
    >>> from planner.store import create_store
    >>> st = create_store(pathlib.Path(tempfile.mkdtemp()) / "p.gpkg",
    ...                   Programme("P", dt.date(2011, 8, 1)))
    >>> token = add_user(st, "ana", "editor")
    >>> authenticate(st, token)
    User(name='ana', role='editor')
    """
    if role not in ROLES:
        raise InputError(f"role {role!r}: use one of {', '.join(ROLES)}")
    if not _NAME.match(name):
        raise InputError(f"user name {name!r}: use 1-64 letters, digits, spaces or ._@- "
                         "(starting with a letter or digit)")
    token = secrets.token_urlsafe(32)
    store.add_user(name, role, token_hash(token))
    return token


def authenticate(store: Store, token: str | None) -> User | None:
    """The user a token belongs to; None for no token. A wrong token raises AuthError."""
    if not token:
        return None
    row = store.user_by_token(token_hash(token.strip()))
    if row is None:
        raise AuthError("the API token is not valid: check it, or ask an admin for a new one "
                        "(`planner users add NAME --role viewer`)")
    return User(row["name"], row["role"])


def require(user: User | None, role: Role) -> User:
    """``user`` if it has ``role``; AuthError when anonymous, ForbiddenError when too low."""
    if user is None:
        raise AuthError(f"this needs a {role} token: send it as 'Authorization: Bearer "
                        "TOKEN', or sign in on the web page")
    if not user.can(role):
        raise ForbiddenError(f"{user.name} has the {user.role} role; this needs {role}")
    return user
