"""``/health``: whether the service and its store answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from planner.web.state import State

router = APIRouter(tags=["service"])


@router.get("/health")
def health(state: State) -> dict[str, Any]:
    """Liveness: the store opens and answers."""
    return {"status": "ok", "imports": state.store.version()[0]}
