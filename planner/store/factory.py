"""Create or open a store from its location: a ``.gpkg`` path or a ``postgresql://`` URL.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from planner.errors import (
    StoreError,
)
from planner.programme import Programme
from planner.store import gpkg_history
from planner.store.base import Store, ledger_meta
from planner.store.gpkg import (
    _GPKG_APPLICATION_ID,
    _GPKG_USER_VERSION,
    GeoPackageStore,
    _register_st_functions,
    _schema_sql,
)


def is_postgis_url(location: str | Path) -> bool:
    """Whether a store location names a PostGIS database.

    Examples
    --------
    >>> is_postgis_url("postgresql://planner@db/prog"), is_postgis_url("prog.gpkg")
    (True, False)
    """
    return str(location).startswith(("postgresql://", "postgresql+psycopg://", "postgres://"))


def create_store(location: str | Path, programme: Programme) -> Store:
    """Create a new, empty store for a programme.

    Parameters
    ----------
    location : str or Path
        Path of a ``.gpkg`` file that does not exist yet, or the ``postgresql://`` URL of an
        empty PostGIS database.
    programme : Programme
        The settings to keep in it.

    Raises
    ------
    StoreError
        If the file exists already.
    """
    if is_postgis_url(location):
        from planner.store.postgis import create_postgis_store

        return create_postgis_store(str(location), programme)
    path = Path(location)
    if path.exists():
        raise StoreError(f"{path}: already exists. Choose another name, or delete the file "
                         "if you really mean to start again.")
    if path.suffix.lower() != ".gpkg":
        raise StoreError(f"{path}: a GeoPackage store must end in .gpkg")
    path.parent.mkdir(parents=True, exist_ok=True)
    ddl, rows, srs_id = _schema_sql(programme.pyproj_crs)
    con = sqlite3.connect(path, isolation_level=None)
    try:
        _register_st_functions(con)
        con.execute(f"PRAGMA application_id = {_GPKG_APPLICATION_ID}")
        con.execute(f"PRAGMA user_version = {_GPKG_USER_VERSION}")
        con.execute("BEGIN")
        for stmt in ddl:
            con.execute(stmt)
        for stmt, params in rows:
            con.execute(stmt, params)
        settings = {"name": programme.name, "eif": programme.eif.isoformat(),
                    "crs": programme.pyproj_crs.to_string(), "settings": programme.settings}
        con.executemany("INSERT INTO programme (key, value) VALUES (?, ?)",
                        [(k, json.dumps(v)) for k, v in settings.items()])
        gpkg_history.ensure_schema(con, srs_id)   # the archive layers of retractions
        gpkg_history.ensure_versions_view(con, srs_id)
        # a new store's ledger is live from the start: every import keeps it up to date
        con.execute("INSERT INTO programme (key, value) VALUES ('ledger', ?)",
                    (ledger_meta(None),))
        con.execute("COMMIT")
    except BaseException:
        con.close()
        path.unlink(missing_ok=True)
        raise
    con.close()
    return GeoPackageStore(path)


def open_store(location: str | Path) -> Store:
    """Open an existing store: a ``.gpkg`` path or a ``postgresql://`` URL (PostGIS)."""
    if is_postgis_url(location):
        # SQLAlchemy and psycopg only when asked for: they cost every command 0.2 s
        from planner.store.postgis import PostGISStore

        return PostGISStore(str(location))
    return GeoPackageStore(location)
