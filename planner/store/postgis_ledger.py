"""The stored ledger inside PostGIS: the tables of migration 0002 and the reads an update needs.

The same rows as the GeoPackage's (:mod:`planner.store.gpkg_ledger`); whether the ledger is
live, and its CRS, is the ``ledger`` entry of the ``programme`` table. Imports that update the
ledger take one transaction-scoped advisory lock, so two imports never compute their
neighbourhoods without seeing each other's features.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import sqlalchemy as sa
from sqlalchemy.engine import Connection

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

#: the key of the advisory lock that serialises ledger updates ("ledger" in ASCII)
LOCK_KEY = 0x6C6564676572



def state(con: Connection) -> tuple[bool, pyproj.CRS | None]:
    """Whether the ledger is live, and its CRS."""
    value = con.execute(sa.text("SELECT value FROM programme WHERE key = 'ledger'")).scalar()
    return ledger_state_of(value)


def set_state(con: Connection, crs: pyproj.CRS | None, live: bool = True) -> None:
    """Mark the ledger live (measured in ``crs``) or, with ``live=False``, out of date."""
    con.execute(sa.text("INSERT INTO programme (key, value) VALUES ('ledger', :v) ON CONFLICT "
                        "(key) DO UPDATE SET value = excluded.value"),
                {"v": ledger_meta(crs, live)})


def lock(con: Connection) -> None:
    """Wait for, and hold until the transaction ends, the one ledger-update lock."""
    con.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})


class Neighbourhood:
    """Reads of features by bounding box, inside a write transaction (see ``Neighbourhood``)."""

    def __init__(self, con: Connection, store_crs: pyproj.CRS, srid: int,
                 ledger_crs: pyproj.CRS | None, plain: Any) -> None:
        self.con = con
        self.store_crs = store_crs
        self.ledger_crs = ledger_crs
        self._srid = srid
        self._plain = plain

    def near(self, layer: LayerName, boxes: np.ndarray) -> gpd.GeoDataFrame:
        names = [c.name for c in COLUMNS[layer]]
        b = np.asarray(boxes, dtype=float).reshape(-1, 4)
        result = self.con.execute(sa.text(
            f"SELECT ST_AsBinary(t.geom), {', '.join('t.' + n for n in names)}, t.fid FROM "
            f"{layer} t WHERE t.fid IN (SELECT t2.fid FROM {layer} t2, unnest(CAST(:a AS "
            "float8[]), CAST(:b AS float8[]), CAST(:c AS float8[]), CAST(:d AS float8[])) AS "
            f"w(a, b, c, d) WHERE t2.geom && ST_MakeEnvelope(w.a, w.b, w.c, w.d, {self._srid}))"
            " ORDER BY t.fid"),
            {"a": b[:, 0].tolist(), "b": b[:, 1].tolist(), "c": b[:, 2].tolist(),
             "d": b[:, 3].tolist()})
        return frame_from_rows(layer, iter(lambda: result.fetchmany(_READ_CHUNK), []), bytes,
                               self.store_crs, plain=self._plain, with_row=True)


    def by_row(self, layer: LayerName, rows: np.ndarray) -> gpd.GeoDataFrame:
        names = [c.name for c in COLUMNS[layer]]
        result = self.con.execute(sa.text(
            f"SELECT ST_AsBinary(geom), {', '.join(names)}, fid FROM {layer} WHERE fid = "
            "ANY(:ids) ORDER BY fid"), {"ids": [int(r) for r in rows]})
        return frame_from_rows(layer, iter(lambda: result.fetchmany(_READ_CHUNK), []), bytes,
                               self.store_crs, plain=self._plain, with_row=True)


def replace_rows(con: Connection, rows: LedgerRows, changed_by: int) -> None:
    """Replace the rows of the features in ``rows`` (their overlaps included) by ``rows``."""
    for layer, fids in (("hazards", rows.hazard_row), ("releases", rows.release_row)):
        side = "hazard_fid" if layer == "hazards" else "release_fid"
        ids = [int(f) for f in fids]
        con.execute(sa.text(f"DELETE FROM ledger_overlaps WHERE {side} = ANY(:ids)"),
                    {"ids": ids})
        con.execute(sa.text(f"DELETE FROM {PIECE_TABLE[layer]} WHERE fid = ANY(:ids)"),
                    {"ids": ids})
    insert_rows(con, rows, changed_by)


def insert_rows(con: Connection, rows: LedgerRows, changed_by: int) -> None:
    """Insert ``rows`` (none of which may be stored yet) with COPY."""
    cursor = con.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor:
        for table, fid, area, raw in (
                ("ledger_hazards", rows.hazard_row, rows.hazard_area_m2,
                 rows.hazard_raw_area_m2),
                ("ledger_releases", rows.release_row, rows.release_area_m2,
                 rows.release_raw_area_m2)):
            with cursor.copy(f"COPY {table} (fid, area_m2, raw_area_m2, changed_by) FROM "
                             "STDIN") as copy:
                for row in zip(fid.tolist(), area.tolist(), raw.tolist(), strict=True):
                    copy.write_row((*row, changed_by))
        with cursor.copy("COPY ledger_overlaps (hazard_fid, release_fid, area_m2) FROM STDIN"
                         ) as copy:
            for row in zip(rows.pair_hazard_row.tolist(), rows.pair_release_row.tolist(),
                           rows.pair_area_m2.tolist(), strict=True):
                copy.write_row(row)


def write_all(con: Connection, rows: LedgerRows, crs: pyproj.CRS) -> None:
    """Replace the whole ledger by ``rows`` and mark it live in ``crs``."""
    con.execute(sa.text("TRUNCATE ledger_overlaps, ledger_hazards, ledger_releases"))
    insert_rows(con, rows, 0)
    set_state(con, crs)
    new_generation(con)


def new_generation(con: Connection) -> None:
    """Mark the stored rows as not patchable from an earlier read (a cold build, a retraction).
    """
    con.execute(sa.text("INSERT INTO programme (key, value) VALUES ('ledger_generation', :v) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
                {"v": json.dumps(uuid.uuid4().hex)})


def read(con: Connection, location: str, plain: Any, since: int | None = None
         ) -> StoredLedger | None:
    """The stored ledger with the features' attributes, or None when it is not live.

    With ``since``, only the rows changed by later imports (see ``Store.read_ledger``).
    """
    live, crs = state(con)
    if not live:
        return None
    if crs is None:
        crs = pyproj.CRS.from_epsg(6933)
    layers, pairs = ledger_queries(None if since is None else ":since")
    frames = {layer: pd.read_sql_query(sa.text(sql), con, params={"since": since})
              for layer, sql in layers.items()}
    overlaps = pd.read_sql_query(sa.text(pairs), con, params={"since": since})
    for frame, date in ((frames["hazards"], "recorded_on"), (frames["releases"], "released_on")):
        frame[date] = frame[date].map(plain)
    generation = con.execute(sa.text("SELECT value FROM programme WHERE key = "
                                     "'ledger_generation'")).scalar()
    return ledger_frames(frames["hazards"], frames["releases"], overlaps, crs, location,
                         str(generation or ""), since)
