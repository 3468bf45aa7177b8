"""Alembic migrations of the PostGIS store (run by :mod:`planner.store.postgis`)."""
