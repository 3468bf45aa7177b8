"""Retracted imports in a GeoPackage: their features kept in archive layers, never deleted.

Retracting an import moves its features from ``hazards``/``releases`` to
``hazards_retracted``/``releases_retracted`` (same columns, plus ``fid_was``, the feature's
key when it was live), feature layers that QGIS shows; its ``imports`` row records when, by
whom and why. So the live layers hold the records as they stand, ids can be used again by a
corrected file, and the records as they stood on any date can be read back.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import pyproj

from planner.layers import COLUMNS, LayerName
from planner.store.base import frame_from_rows

#: the columns of ``imports`` that record a retraction
RETRACTION_COLUMNS = (("retracted_at", "DATETIME"), ("retracted_by", "TEXT"),
                      ("retraction_reason", "TEXT"))

_SQL_TYPES = {"text": "TEXT", "date": "DATE", "bool": "BOOLEAN", "int": "INTEGER",
              "float": "DOUBLE"}


def archive(layer: str) -> str:
    """The archive layer of a layer's retracted features."""
    return f"{layer}_retracted"


def ensure_schema(con: sqlite3.Connection, srs_id: int) -> None:
    """Add what retractions need to a store made before them (idempotent, in a transaction)."""
    have = {r[1] for r in con.execute("PRAGMA table_info(imports)")}
    for name, kind in RETRACTION_COLUMNS:
        if name not in have:
            con.execute(f"ALTER TABLE imports ADD COLUMN {name} {kind}")
    for layer, columns in COLUMNS.items():
        table = archive(layer)
        cols = ", ".join(f"{c.name} {_SQL_TYPES[c.kind]}" for c in columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} (fid INTEGER PRIMARY KEY AUTOINCREMENT,"
                    f" geom MULTIPOLYGON, {cols}, fid_was INTEGER NOT NULL)")
        con.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
                    "description, srs_id) VALUES (?, 'features', ?, ?, ?)",
                    (table, table, f"{layer} of retracted imports, kept as they were", srs_id))
        con.execute("INSERT OR IGNORE INTO gpkg_geometry_columns VALUES (?, 'geom', "
                    "'MULTIPOLYGON', ?, 0, 0)", (table, srs_id))


def has_archive(con: sqlite3.Connection) -> bool:
    """Whether the store has had a retraction (its archive layers exist)."""
    return con.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                       (archive("hazards"),)).fetchone() is not None


def move_out(con: sqlite3.Connection, layer: LayerName, import_id: int, crs: pyproj.CRS,
             wkb_of: Callable[[Any], bytes]) -> gpd.GeoDataFrame:
    """Move an import's features to the archive layer; returns them as they were (``row``)."""
    names = [c.name for c in COLUMNS[layer]]
    cur = con.execute(f"SELECT geom, {', '.join(names)}, fid FROM {layer} WHERE import_id = ? "
                      "ORDER BY fid", (import_id,))
    removed = frame_from_rows(layer, iter(lambda: cur.fetchmany(20_000), []), wkb_of, crs,
                              with_row=True)
    con.execute(f"INSERT INTO {archive(layer)} (geom, {', '.join(names)}, fid_was) SELECT geom, "
                f"{', '.join(names)}, fid FROM {layer} WHERE import_id = ? ORDER BY fid",
                (import_id,))
    con.execute(f"DELETE FROM {layer} WHERE import_id = ?", (import_id,))
    return removed


def mark(con: sqlite3.Connection, import_id: int, by: str, reason: str) -> str:
    """Record the retraction in the import's row; returns its time (ISO, UTC)."""
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    con.execute("UPDATE imports SET retracted_at = ?, retracted_by = ?, retraction_reason = ? "
                "WHERE fid = ?", (at, by, reason, import_id))
    return at


#: Every version of every hazard, numbered: a layer QGIS shows (a view on ``hazards``).
VERSIONS_VIEW = (
    "CREATE VIEW IF NOT EXISTS hazard_versions AS SELECT fid, geom, hazard_id, "
    "row_number() OVER (PARTITION BY hazard_id ORDER BY recorded_on, fid) AS version, "
    "count(*) OVER (PARTITION BY hazard_id) AS versions, status, recorded_on, "
    "found_after_eif, region, munition_type, source_file, import_id FROM hazards")


def ensure_versions_view(con: sqlite3.Connection, srs_id: int) -> bool:
    """Create the ``hazard_versions`` view and register it as a layer; False if it existed."""
    if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'hazard_versions'").fetchone():
        return False
    con.execute(VERSIONS_VIEW)
    con.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
                "description, srs_id) VALUES ('hazard_versions', 'features', "
                "'hazard_versions', 'every version of every hazard (re-surveys), numbered', ?)",
                (srs_id,))
    con.execute("INSERT OR IGNORE INTO gpkg_geometry_columns VALUES ('hazard_versions', 'geom',"
                " 'MULTIPOLYGON', ?, 0, 0)", (srs_id,))
    return True


def ensure_rejected(con: sqlite3.Connection, srs_id: int) -> None:
    """The ``rejected`` layer: features an import set aside, as read, to fix in QGIS."""
    con.execute("CREATE TABLE IF NOT EXISTS rejected (fid INTEGER PRIMARY KEY AUTOINCREMENT, "
                "geom GEOMETRY, layer TEXT NOT NULL, import_id INTEGER NOT NULL, "
                "row_in_file INTEGER NOT NULL, problems TEXT NOT NULL, attributes TEXT NOT NULL)")
    con.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
                "description, srs_id) VALUES ('rejected', 'features', 'rejected', "
                "'features set aside on import, with their problems, to fix', ?)", (srs_id,))
    con.execute("INSERT OR IGNORE INTO gpkg_geometry_columns VALUES ('rejected', 'geom', "
                "'GEOMETRY', ?, 0, 0)", (srs_id,))
