"""The stored ledger inside a GeoPackage: three attribute tables and the reads an update needs.

``ledger_hazards`` and ``ledger_releases`` hold one row per feature (``fid`` is the feature's
``fid``): the area of its piece and of the feature itself [m²], and ``changed_by``, the import
that last recomputed the row (0 for a cold build). ``ledger_overlaps`` holds the area of each
overlap of a hazard piece with a release piece. The three are registered in
``gpkg_contents`` as attribute tables, so QGIS lists them and can join them to the layers.
Whether the ledger is live, and the CRS it is measured in, is the ``ledger`` entry of the
``programme`` table.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from planner.layers import COLUMNS, LayerName
from planner.store.base import (
    PIECE_TABLE,
    LedgerRows,
    StoredLedger,
    frame_from_rows,
    ledger_frames,
    ledger_meta,
    ledger_queries,
    ledger_state_of,
)

_READ_CHUNK = 20_000

#: rows written by one statement
_WRITE_BATCH = 50_000


DDL = (
    *(f"CREATE TABLE IF NOT EXISTS {t} (fid INTEGER PRIMARY KEY, area_m2 DOUBLE NOT NULL, "
      "raw_area_m2 DOUBLE NOT NULL, changed_by INTEGER NOT NULL)" for t in PIECE_TABLE.values()),
    "CREATE TABLE IF NOT EXISTS ledger_overlaps (fid INTEGER PRIMARY KEY, hazard_fid INTEGER "
    "NOT NULL, release_fid INTEGER NOT NULL, area_m2 DOUBLE NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ledger_overlaps_pair ON ledger_overlaps "
    "(hazard_fid, release_fid)",
    "CREATE INDEX IF NOT EXISTS ledger_overlaps_release ON ledger_overlaps (release_fid)",
    *(f"CREATE INDEX IF NOT EXISTS {t}_changed ON {t} (changed_by)"
      for t in PIECE_TABLE.values()),
    *(f"INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description) "
      f"VALUES ('{t}', 'attributes', '{t}', '{d}')" for t, d in (
          ("ledger_hazards", "planner ledger: area of each hazard piece [m2]"),
          ("ledger_releases", "planner ledger: area of each release piece [m2]"),
          ("ledger_overlaps", "planner ledger: overlap of hazard and release pieces [m2]"))),
)


def state(con: sqlite3.Connection) -> tuple[bool, pyproj.CRS | None]:
    """Whether the ledger is live, and its CRS."""
    row = con.execute("SELECT value FROM programme WHERE key = 'ledger'").fetchone()
    return ledger_state_of(None if row is None else row[0])


def set_state(con: sqlite3.Connection, crs: pyproj.CRS | None, live: bool = True) -> None:
    """Mark the ledger live (measured in ``crs``) or, with ``live=False``, out of date."""
    con.execute("INSERT INTO programme (key, value) VALUES ('ledger', ?) ON CONFLICT (key) DO "
                "UPDATE SET value = excluded.value", (ledger_meta(crs, live),))


class Neighbourhood:
    """Reads of features by bounding box, inside a write transaction (see ``Neighbourhood``)."""

    def __init__(self, con: sqlite3.Connection, store_crs: pyproj.CRS,
                 ledger_crs: pyproj.CRS | None, wkb_of: Callable[[Any], bytes],
                 pending: tuple[LayerName, gpd.GeoDataFrame] | None = None) -> None:
        self.con = con
        self.store_crs = store_crs
        self.ledger_crs = ledger_crs
        self._wkb_of = wkb_of
        # features not written yet (an update computed before the write), with ``row``
        self._pending = pending

    def near(self, layer: LayerName, boxes: np.ndarray) -> gpd.GeoDataFrame:
        stored = self._near_stored(layer, boxes)
        if self._pending is None or self._pending[0] != layer or not len(boxes):
            return stored
        pending = self._pending[1]
        hit = shapely.STRtree(shapely.box(*np.asarray(boxes, dtype=float).T)).query(
            np.asarray(pending.geometry.values), predicate="intersects")[0]
        extra = pending.iloc[np.unique(hit)]
        return pd.concat([stored, extra[stored.columns]], ignore_index=True) if len(extra) \
            else stored

    def _near_stored(self, layer: LayerName, boxes: np.ndarray) -> gpd.GeoDataFrame:
        names = [c.name for c in COLUMNS[layer]]
        cur = self.con.execute(
            f"SELECT t.geom, {', '.join('t.' + n for n in names)}, t.fid FROM {layer} t WHERE "
            # CROSS JOIN: the boxes outside, one R-tree search per box (not a scan per box)
            f"t.fid IN (SELECT r.id FROM json_each(?) AS b CROSS JOIN rtree_{layer}_geom AS r "
            "WHERE r.maxx >= b.value ->> 0 AND r.minx <= b.value ->> 2 AND r.maxy >= b.value ->> 1 "
            "AND r.miny <= b.value ->> 3) ORDER BY t.fid",
            (json.dumps(np.asarray(boxes, dtype=float).tolist()),))
        return frame_from_rows(layer, iter(lambda: cur.fetchmany(_READ_CHUNK), []),
                               self._wkb_of, self.store_crs, with_row=True)


    def by_row(self, layer: LayerName, rows: np.ndarray) -> gpd.GeoDataFrame:
        if self._pending is not None and self._pending[0] == layer:
            pending = self._pending[1]
            return pending[pending["row"].isin(rows)]
        names = [c.name for c in COLUMNS[layer]]
        cur = self.con.execute(
            f"SELECT geom, {', '.join(names)}, fid FROM {layer} WHERE fid IN (SELECT value "
            "FROM json_each(?)) ORDER BY fid", (json.dumps([int(r) for r in rows]),))
        return frame_from_rows(layer, iter(lambda: cur.fetchmany(_READ_CHUNK), []),
                               self._wkb_of, self.store_crs, with_row=True)


def landed_near(con: sqlite3.Connection, tops: dict[str, int], own: tuple[str, int, int],
                boxes: np.ndarray) -> bool:
    """Whether a feature written after ``tops`` (fid per layer) meets one of ``boxes``.

    ``own`` = (layer, first fid, last fid + 1) of the import being written, left out. One
    SQL answer, not a row per feature: inside a write transaction every row fetched costs a
    wait for the GIL.
    """
    packed = json.dumps(np.asarray(boxes, dtype=float).tolist())
    for layer, top in tops.items():
        lo, hi = (own[1], own[2]) if own[0] == layer else (0, 0)
        (hit,) = con.execute(
            f"SELECT EXISTS (SELECT 1 FROM json_each(?) AS b CROSS JOIN rtree_{layer}_geom AS r "
            "WHERE r.maxx >= b.value ->> 0 AND r.minx <= b.value ->> 2 AND r.maxy >= "
            "b.value ->> 1 AND r.miny <= b.value ->> 3 AND r.id > ? AND NOT (r.id >= ? AND "
            "r.id < ?))", (packed, top, lo, hi)).fetchone()
        if hit:
            return True
    return False


def replace_rows(con: sqlite3.Connection, rows: LedgerRows, changed_by: int,
                 gone: dict[str, np.ndarray] | None = None) -> None:
    """Replace the rows of the features in ``rows`` (their overlaps included) by ``rows``.

    ``gone``: keys of features no longer live, per layer, whose rows are deleted too.
    """
    gone = gone or {}
    for layer, fids in (("hazards", np.r_[rows.hazard_row, gone.get("hazards", [])]),
                        ("releases", np.r_[rows.release_row, gone.get("releases", [])])):
        packed = json.dumps([int(f) for f in fids])
        side = "hazard_fid" if layer == "hazards" else "release_fid"
        con.execute(f"DELETE FROM ledger_overlaps WHERE {side} IN (SELECT value FROM "
                    "json_each(?))", (packed,))
        con.execute(f"DELETE FROM {PIECE_TABLE[layer]} WHERE fid IN (SELECT value FROM "
                    "json_each(?))", (packed,))
    insert_rows(con, rows, changed_by)


def insert_rows(con: sqlite3.Connection, rows: LedgerRows, changed_by: int) -> None:
    """Insert ``rows`` (none of which may be stored yet).

    Set-based, from one JSON array of rows per statement, so that the write transaction never
    calls back into Python per row (each call would wait for the GIL while other threads of
    a server run).
    """
    for table, fid, area, raw in (
            ("ledger_hazards", rows.hazard_row, rows.hazard_area_m2, rows.hazard_raw_area_m2),
            ("ledger_releases", rows.release_row, rows.release_area_m2,
             rows.release_raw_area_m2)):
        for lo in range(0, len(fid), _WRITE_BATCH):
            part = slice(lo, lo + _WRITE_BATCH)
            con.execute(f"INSERT INTO {table} (fid, area_m2, raw_area_m2, changed_by) SELECT "
                        "value ->> 0, value ->> 1, value ->> 2, ? FROM json_each(?)",
                        (int(changed_by), _json(fid[part], area[part], raw[part])))
    pairs = (rows.pair_hazard_row, rows.pair_release_row, rows.pair_area_m2)
    for lo in range(0, len(rows.pair_area_m2), _WRITE_BATCH):
        part = slice(lo, lo + _WRITE_BATCH)
        con.execute("INSERT INTO ledger_overlaps (hazard_fid, release_fid, area_m2) SELECT "
                    "value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
                    (_json(*(c[part] for c in pairs)),))


def _json(key: np.ndarray, *values: np.ndarray) -> str:
    """Rows ``[key, value, …]`` as one JSON array (floats in shortest repr: exact)."""
    return json.dumps(list(zip(key.tolist(), *(v.tolist() for v in values), strict=True)))


def write_all(con: sqlite3.Connection, rows: LedgerRows, crs: pyproj.CRS) -> None:
    """Replace the whole ledger by ``rows`` and mark it live in ``crs``."""
    for stmt in DDL:
        con.execute(stmt)
    for table in (*PIECE_TABLE.values(), "ledger_overlaps"):
        con.execute(f"DELETE FROM {table}")
    insert_rows(con, rows, 0)
    set_state(con, crs)
    new_generation(con)


def new_generation(con: sqlite3.Connection) -> None:
    """Mark the stored rows as not patchable from an earlier read (a cold build, a retraction).
    """
    con.execute("INSERT INTO programme (key, value) VALUES ('ledger_generation', ?) ON "
                "CONFLICT (key) DO UPDATE SET value = excluded.value",
                (json.dumps(uuid.uuid4().hex),))


def read(con: sqlite3.Connection, location: str, since: int | None = None
         ) -> StoredLedger | None:
    """The stored ledger with the features' attributes, or None when it is not live.

    With ``since``, only the rows changed by later imports (see ``Store.read_ledger``).
    """
    live, crs = state(con)
    if not live:
        return None
    if crs is None:   # live but nothing measured yet
        crs = pyproj.CRS.from_epsg(6933)
    layers, pairs = ledger_queries(None if since is None else "?")
    args = () if since is None else (since,)
    frames = {layer: pd.read_sql_query(sql, con, params=args) for layer, sql in layers.items()}
    overlaps = pd.read_sql_query(pairs, con, params=args * 2)
    row = con.execute("SELECT value FROM programme WHERE key = 'ledger_generation'").fetchone()
    return ledger_frames(frames["hazards"], frames["releases"], overlaps, crs, location,
                         "" if row is None else str(row[0]), since)


def read_with_arrow(path: str, con: sqlite3.Connection, location: str) -> StoredLedger | None:
    """:func:`read` of the whole ledger through GDAL's Arrow stream: four times faster.

    Each query sees its own snapshot, so the ledger's version and generation are read
    before and after; when a write landed in between, None is returned and the caller
    reads again in one snapshot.
    """
    import pyogrio

    def stamp() -> tuple[Any, ...]:
        return (*con.execute("SELECT count(*), coalesce(max(fid), 0) FROM imports").fetchone(),
                *con.execute("SELECT value FROM programme WHERE key IN ('ledger', "
                             "'ledger_generation') ORDER BY key").fetchall())
    before = stamp()
    live, crs = state(con)
    if not live:
        return None
    layers, pairs = ledger_queries(None)
    frames = {layer: pd.DataFrame(pyogrio.read_dataframe(path, sql=sql, use_arrow=True,
                                                         read_geometry=False))
              for layer, sql in layers.items()}
    overlaps = pd.DataFrame(pyogrio.read_dataframe(path, sql=pairs, use_arrow=True,
                                                   read_geometry=False))
    if stamp() != before:
        return None
    row = con.execute("SELECT value FROM programme WHERE key = 'ledger_generation'").fetchone()
    return ledger_frames(frames["hazards"], frames["releases"], overlaps,
                         crs or pyproj.CRS.from_epsg(6933), location,
                         "" if row is None else str(row[0]))
