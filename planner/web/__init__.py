"""The web face: a FastAPI app over the core.

:func:`planner.web.app.create_app` assembles it from :mod:`~planner.web.routes` (one
``APIRouter`` per resource), :mod:`~planner.web.auth` (roles as dependencies, the forms'
anti-forgery value), :mod:`~planner.web.errors` (the exception→HTTP status table),
:mod:`~planner.web.middleware`, :mod:`~planner.web.state` (store and cached ledger),
:mod:`~planner.web.settings`, :mod:`~planner.web.users` and :mod:`~planner.web.uploads`
(imports in killable workers), and the pages' templates.
"""

from planner.web.app import create_app

__all__ = ["create_app"]
