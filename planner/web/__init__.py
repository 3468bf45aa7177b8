"""The web face: a FastAPI app (:func:`planner.web.app.create_app`) over the core, its settings,
users and tokens, uploads in killable workers, and the pages' templates."""

from planner.web.app import create_app

__all__ = ["create_app"]
