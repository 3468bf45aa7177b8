"""``/api/users``: users and their tokens (admins only)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from planner.errors import NotFoundError
from planner.web.auth import Admin
from planner.web.state import State
from planner.web.users import add_user

router = APIRouter(tags=["users"])


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


@router.get("/api/users", response_model=list[UserOut])
def list_users(state: State, user: Admin) -> list[UserOut]:
    """Users and their roles (never their tokens)."""
    return [UserOut(**u) for u in state.store.users()]


@router.post("/api/users", status_code=201, response_model=UserOut)
def create_user(state: State, user: Admin, new: UserIn) -> UserOut:
    """Create a user; the answer holds their token, shown this once."""
    token = add_user(state.store, new.name, new.role)
    return UserOut(name=new.name, role=new.role, token=token)


@router.delete("/api/users/{name}", status_code=204, response_class=Response)
def delete_user(state: State, user: Admin, name: str) -> Response:
    """Remove a user; their token stops working at once."""
    if not state.store.remove_user(name):
        raise NotFoundError(f"no user called {name!r}")
    return Response(status_code=204)
