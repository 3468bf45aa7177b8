"""The service's routes, one ``APIRouter`` per resource, each a few lines over one core call.

==================  ==========================================================================
module              paths
==================  ==========================================================================
``uploads``         ``POST /api/hazards``, ``POST /api/releases``, ``GET /api/imports``
``geometry``        ``GET /api/hazards``, ``GET /api/releases`` (GeoJSON pages)
``figures``         ``/api/status``, ``/api/series``, ``/api/deadlines``, ``/api/forecast``
``documents``       ``/api/extension-request``, ``/api/marking-plan``
``users``           ``/api/users``
``pages``           ``/``, ``/login``, ``/logout``, ``/upload``, ``/map``, ``/status``, maps
``service``         ``/health``
==================  ==========================================================================
"""

from __future__ import annotations

from fastapi import APIRouter

from planner.web.routes import documents, figures, geometry, pages, service, uploads, users

#: Every router, in the order the app includes them.
ROUTERS: tuple[APIRouter, ...] = (uploads.router, geometry.router, figures.router,
                                  documents.router, users.router, pages.router, service.router)

__all__ = ["ROUTERS"]
