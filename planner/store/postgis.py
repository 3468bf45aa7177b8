"""The server store: one programme in a PostgreSQL/PostGIS database.

Selected by a URL (``postgresql://user@host:port/dbname``) wherever a store is asked for.
The schema is created and upgraded by Alembic migrations (``planner/store/migrations``); geometries
are MULTIPOLYGONs in the programme's CRS (its EPSG code is the SRID) with GiST indexes. Like
the GeoPackage store, one import — features and its ``imports`` row — is one transaction, and
the UNIQUE sha256 and ids make racing imports land exactly once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyproj
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from planner.errors import (
    DuplicateImportError,
    InputError,
    StoreError,
    StoreNotFoundError,
)
from planner.layers import COLUMNS, ID_COLUMN, LayerName
from planner.programme import Programme
from planner.store import postgis_ledger
from planner.store.base import (
    DOCUMENT_COLUMNS,
    ImportRecord,
    LedgerRows,
    LedgerUpdate,
    Removed,
    Retraction,
    StoredLedger,
    _columns_of,
    attribute_frame,
    check_retractable,
    frame_from_rows,
    rejected_rows,
    sql_rows,
)

log = logging.getLogger(__name__)


log.addHandler(logging.NullHandler())


_READ_CHUNK = 20_000


_IMPORT_COLUMNS = ("layer", "file_name", "sha256", "crs_read", "crs_given", "rows",
                   "warnings", "imported_at")



def _engine(url: str) -> Engine:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=20)


def _migrate(con: Connection, srid: int) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["connection"] = con
    cfg.attributes["srid"] = srid
    command.upgrade(cfg, "head")


def create_postgis_store(url: str, programme: Programme) -> PostGISStore:
    """Create the schema in an empty database and record the programme."""
    srid = programme.pyproj_crs.to_epsg()
    if srid is None:
        raise StoreError(f"the programme CRS {programme.crs} has no EPSG code; a PostGIS store "
                         "needs one (e.g. EPSG:32648)")
    engine = _engine(url)
    try:
        with engine.begin() as con:
            exists = con.execute(sa.text("SELECT to_regclass('programme') IS NOT NULL")).scalar()
            if exists:
                raise StoreError(f"{_safe(url)}: a planner store exists in this database "
                                 "already; use another database or schema")
            _migrate(con, srid)
            rows = {"name": programme.name, "eif": programme.eif.isoformat(),
                    "crs": f"EPSG:{srid}", "settings": programme.settings}
            con.execute(sa.text("INSERT INTO programme (key, value) VALUES (:k, :v)"),
                        [{"k": k, "v": json.dumps(v)} for k, v in rows.items()])
            # a new store's ledger is live from the start: every import keeps it up to date
            postgis_ledger.set_state(con, None)
    except sa.exc.OperationalError as exc:
        raise StoreError(f"{_safe(url)}: cannot connect ({exc.orig}); check the URL and that "
                         "the server runs") from exc
    return PostGISStore(url, engine)


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:   # a malformed URL is shown as given
        return url


class PostGISStore:
    """A programme store in PostGIS (see the module docstring)."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.location = url
        self.engine = engine or _engine(url)
        try:
            with self.engine.connect() as con:
                found = con.execute(sa.text("SELECT to_regclass('programme') IS NOT NULL")
                                    ).scalar()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"{_safe(url)}: cannot connect ({exc.orig}); check the URL and "
                             "that the server runs") from exc
        if not found:
            raise StoreNotFoundError(
                f"{_safe(url)}: no planner store in this database. Create it first with "
                f"`planner init {_safe(url)} --name NAME --eif YYYY-MM-DD --crs EPSG:…`.")
        self._crs = self.programme().pyproj_crs
        epsg = self._crs.to_epsg()
        if epsg is None:
            raise StoreError(f"{_safe(url)}: the store CRS has no EPSG code")
        self._srid = epsg

    # -- programme ---------------------------------------------------------------------
    def programme(self) -> Programme:
        with self.engine.connect() as con:
            s = {k: json.loads(v) for k, v in con.execute(
                sa.text("SELECT key, value FROM programme"))}
        return Programme(name=s["name"], eif=dt.date.fromisoformat(s["eif"]), crs=s["crs"],
                         settings=s.get("settings", {}))

    def set_settings(self, settings: dict[str, Any]) -> None:
        with self.engine.begin() as con:
            con.execute(sa.text("INSERT INTO programme (key, value) VALUES ('settings', :v) "
                                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
                        {"v": json.dumps(settings)})

    # -- reading -------------------------------------------------------------------------
    def read(self, layer: LayerName, crs: pyproj.CRS | None = None,
             import_id: int | None = None, retracted: bool = False,
             with_row: bool = False) -> gpd.GeoDataFrame:
        columns = COLUMNS[layer]
        names = [c.name for c in columns]
        source = self._crs
        where = "" if import_id is None else " WHERE import_id = :i"
        table, key = ((f"{layer}_retracted", ", fid_was") if retracted
                      else (layer, ", fid" if with_row else ""))
        with self.engine.connect() as con:
            if retracted and not self._has_archive(con):
                return frame_from_rows(layer, [], bytes, source, crs, with_row=True)
            result = con.execution_options(stream_results=True).execute(sa.text(
                f"SELECT ST_AsBinary(geom), {', '.join(names)}{key} FROM {table}{where} ORDER "
                f"BY {'fid_was' if retracted else 'fid'}"), {"i": import_id})
            return frame_from_rows(layer, iter(lambda: result.fetchmany(_READ_CHUNK), []),
                                   bytes, source, crs, plain=_plain,
                                   with_row=retracted or with_row)

    @staticmethod
    def _has_archive(con: Connection) -> bool:
        return bool(con.execute(sa.text("SELECT to_regclass('hazards_retracted') IS NOT NULL")
                                ).scalar())

    def attributes(self, layer: LayerName, columns: Sequence[str]) -> pd.DataFrame:
        cols = _columns_of(layer, columns)
        with self.engine.connect() as con:
            rows = con.execute(sa.text(
                f"SELECT fid, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)"
                f"{''.join(', ' + c.name for c in cols)} FROM {layer} ORDER BY fid")).all()
        boxes = np.array([r[1:5] for r in rows], dtype=float).reshape(-1, 4)
        return attribute_frame(cols, [r[0] for r in rows], boxes,
                               [[_plain(r[i + 5]) for r in rows] for i in range(len(cols))])

    def read_window(self, layer: LayerName, bounds: tuple[float, float, float, float],
                    crs: pyproj.CRS | None = None) -> gpd.GeoDataFrame:
        names = [c.name for c in COLUMNS[layer]]
        minx, miny, maxx, maxy = (float(b) for b in bounds)
        with self.engine.connect() as con:
            result = con.execution_options(stream_results=True).execute(sa.text(
                f"SELECT ST_AsBinary(geom), {', '.join(names)}, fid FROM {layer} WHERE geom "
                f"&& ST_MakeEnvelope(:a, :b, :c, :d, {self._srid}) ORDER BY fid"),
                {"a": minx, "b": miny, "c": maxx, "d": maxy})
            return frame_from_rows(layer, iter(lambda: result.fetchmany(_READ_CHUNK), []),
                                   bytes, self._crs, crs, plain=_plain, with_row=True)

    def imports(self) -> pd.DataFrame:
        with self.engine.connect() as con:
            df = pd.read_sql_query(sa.text("SELECT * FROM imports ORDER BY import_id"), con)
        return df

    def find_import(self, sha256: str) -> dict[str, Any] | None:
        with self.engine.connect() as con:
            row = con.execute(sa.text("SELECT * FROM imports WHERE sha256 = :s"),
                              {"s": sha256}).mappings().first()
        return None if row is None else dict(row)

    def ids(self, layer: LayerName) -> set[str]:
        with self.engine.connect() as con:
            return {r[0] for r in con.execute(sa.text(f"SELECT {ID_COLUMN[layer]} FROM "
                                                      f"{layer}"))}

    def ids_in(self, layer: LayerName, ids: Sequence[str]) -> set[str]:
        col = ID_COLUMN[layer]
        with self.engine.connect() as con:
            return {r[0] for r in con.execute(sa.text(
                f"SELECT {col} FROM {layer} WHERE {col} = ANY(:ids)"),
                {"ids": [str(i) for i in ids]})}

    def summary(self, layer: LayerName
                ) -> tuple[dt.date | None, tuple[float, float, float, float] | None]:
        date = "recorded_on" if layer == "hazards" else "released_on"
        with self.engine.connect() as con:
            first, *box = con.execute(sa.text(
                f"SELECT (SELECT min({date}) FROM {layer}), ST_XMin(e), ST_YMin(e), "
                f"ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM {layer}) x")
            ).one()
        return (first, None if box[0] is None else (float(box[0]), float(box[1]),
                                                    float(box[2]), float(box[3])))

    # -- writing -------------------------------------------------------------------------
    def add(self, layer: LayerName, features: gpd.GeoDataFrame, record: ImportRecord,
            update: LedgerUpdate | None = None, replaces: Retraction | None = None,
            derived: gpd.GeoDataFrame | None = None,
            rejected: gpd.GeoDataFrame | None = None) -> int:
        for frame in (features, derived):
            if frame is not None and (frame.crs is None
                                      or not pyproj.CRS(frame.crs).equals(self._crs)):
                raise StoreError(f"features must be in the store CRS {self._crs.to_string()}"
                                 " to be added")
        try:
            with self.engine.begin() as con:
                if update is not None:
                    postgis_ledger.lock(con)
                if replaces is not None:
                    _migrate(con, self._srid)
                    self._retract_in(con, replaces, update, layer)
                given = "import_id, " if record.import_id is not None else ""
                import_id = int(con.execute(sa.text(
                    f"INSERT INTO imports ({given}{', '.join(_IMPORT_COLUMNS)}) VALUES "
                    f"({':import_id, ' if given else ''}"
                    f"{', '.join(':' + c for c in _IMPORT_COLUMNS)}) RETURNING import_id"),
                    {"import_id": record.import_id,
                     "layer": record.layer, "file_name": record.file_name,
                     "sha256": record.sha256, "crs_read": record.crs_read,
                     "crs_given": record.crs_given, "rows": record.rows,
                     "warnings": json.dumps(record.warnings),
                     # now, inside the transaction (a copy keeps the original time)
                     "imported_at": (record.imported_at if record.import_id is not None
                                     else dt.datetime.now(dt.UTC)).isoformat(
                                         timespec="microseconds")}
                ).scalar_one())
                if record.import_id is not None:   # keep the identity ahead of copied ids
                    con.execute(sa.text(
                        "SELECT setval(pg_get_serial_sequence('imports', 'import_id'), "
                        "(SELECT max(import_id) FROM imports))"))
                if layer == "hazards" and derived is None:
                    taken = con.execute(sa.text(
                        "SELECT DISTINCT hazard_id FROM hazards WHERE hazard_id = ANY(:ids) "
                        "LIMIT 5"), {"ids": [str(i) for i in features["hazard_id"]]}
                    ).scalars().all()
                    if taken:
                        raise InputError(
                            f"{record.file_name}: hazard id(s) {', '.join(taken)} are already "
                            "in the store; nothing was added. Give the features new ids, or "
                            "--map hazard_id= to generate them; a later survey of the same "
                            "hazard is imported with `planner ingest resurvey`.",
                            argument="file")
                self._copy_layer(con, layer, features, import_id)
                self._update_ledger(con, layer, import_id, update)
                if derived is not None and len(derived):
                    self._copy_layer(con, "releases", derived, import_id)
                    self._update_ledger(con, "releases", import_id, update)
                if rejected is not None and len(rejected):
                    _migrate(con, self._srid)
                    con.execute(sa.text(
                        "INSERT INTO rejected (geom, layer, import_id, row_in_file, problems, "
                        "attributes) VALUES (ST_SetSRID(ST_GeomFromWKB(:g), :srid), :l, :i, "
                        ":r, :p, :a)"),
                        [{"g": w, "srid": self._srid, "l": lay, "i": i, "r": r, "p": pr,
                          "a": a} for w, lay, i, r, pr, a in rejected_rows(
                            layer, rejected, self._crs, import_id)])
        except (sa.exc.IntegrityError, psycopg.errors.IntegrityError) as exc:
            # the COPY runs on the driver's cursor, whose errors SQLAlchemy does not wrap
            orig = getattr(exc, "orig", exc)
            text = str(orig)
            if "sha256" in text:
                raise DuplicateImportError(
                    f"{record.file_name}: this file (sha256 {record.sha256[:12]}…) was already "
                    "imported into this store; nothing was added.") from exc
            if ID_COLUMN[layer] in text:
                raise InputError(
                    f"{record.file_name}: an id in this file is already used in {layer} "
                    f"(another import may have landed first); nothing was added. Give the "
                    f"features new ids, or --map {ID_COLUMN[layer]}= to generate them.") from exc
            raise StoreError(f"{record.file_name}: the store refused the import ({orig}); "
                             "nothing was added.") from exc
        log.info("import %s: %d %s from %s", import_id, len(features), layer, record.file_name)
        return import_id

    def _update_ledger(self, con: Connection, layer: LayerName, import_id: int,
                       update: LedgerUpdate | None, removed: Removed | None = None) -> None:
        """Keep a live ledger true to the features just written (see :meth:`Store.add`)."""
        live, crs = postgis_ledger.state(con)
        if not live:
            return
        if update is None:
            log.info("features added without a ledger update; the stored ledger is dropped "
                     "until `planner rebuild-ledger`")
            postgis_ledger.set_state(con, crs, live=False)
            return
        fids = np.array(con.execute(sa.text(f"SELECT fid FROM {layer} WHERE import_id = :i "
                                            "ORDER BY fid"), {"i": import_id}).scalars().all(),
                        dtype=np.int64)
        near = postgis_ledger.Neighbourhood(con, self._crs, self._srid, crs, _plain)
        change = update(near, layer, fids, removed)
        postgis_ledger.replace_rows(con, change.rows, import_id)
        if crs is None and (len(change.rows.hazard_row) or len(change.rows.release_row)):
            postgis_ledger.set_state(con, change.crs)   # the first features measured fix the CRS

    def _copy_layer(self, con: Connection, layer: LayerName, features: gpd.GeoDataFrame,
                    import_id: int) -> None:
        """One layer's features of an import, with COPY (one stream, not a statement each)."""
        columns = COLUMNS[layer]
        geoms = np.asarray(shapely.force_2d(features.geometry.values))
        single = shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON
        geoms[single] = [shapely.MultiPolygon([g]) for g in geoms[single]]
        ewkbs = shapely.to_wkb(shapely.set_srid(geoms, self._srid), hex=True,
                               include_srid=True)
        names = [c.name for c in columns]
        cursor = con.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f"COPY {layer} (geom, {', '.join(names)}) FROM STDIN") as copy:
            for ewkb, row in zip(ewkbs, sql_rows(columns, features, import_id), strict=True):
                copy.write_row((ewkb, *row))

    def retract(self, import_id: int, *, reason: str, by: str,
                update: LedgerUpdate | None = None) -> dict[str, Any]:
        with self.engine.begin() as con:
            _migrate(con, self._srid)   # a store made before retractions gets their columns
            if update is not None:
                postgis_ledger.lock(con)
            return self._retract_in(con, Retraction(import_id, reason, by), update)

    def _retract_in(self, con: Connection, what: Retraction, update: LedgerUpdate | None,
                    same_layer: str | None = None) -> dict[str, Any]:
        """The retraction, inside the caller's transaction."""
        row = con.execute(sa.text("SELECT layer, file_name, retracted_at FROM imports WHERE "
                                  "import_id = :i FOR UPDATE"), {"i": what.import_id}).first()
        layer, name = check_retractable(what.import_id, row, same_layer)
        at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        con.execute(sa.text("UPDATE imports SET retracted_at = :a, retracted_by = :b, "
                            "retraction_reason = :r WHERE import_id = :i"),
                    {"a": at, "b": what.by, "r": what.reason, "i": what.import_id})
        moved = 0
        # both layers: a re-survey's import holds hazard versions and the releases they made
        other: LayerName = "releases" if layer == "hazards" else "hazards"
        for each in (layer, other):
            removed = self._move_out(con, each, what.import_id)
            moved += len(removed) if each == layer else 0
            if len(removed):
                self._update_ledger(con, each, what.import_id, update, removed=(each, removed))
        postgis_ledger.new_generation(con)
        return {"import_id": what.import_id, "layer": layer, "file_name": name,
                "features": moved, "retracted_at": at, "retracted_by": what.by,
                "retraction_reason": what.reason}

    def _move_out(self, con: Connection, layer: LayerName, import_id: int
                  ) -> gpd.GeoDataFrame:
        names = ", ".join(c.name for c in COLUMNS[layer])
        result = con.execute(sa.text(f"SELECT ST_AsBinary(geom), {names}, fid FROM {layer} "
                                     "WHERE import_id = :i ORDER BY fid"), {"i": import_id})
        removed = frame_from_rows(layer, iter(lambda: result.fetchmany(_READ_CHUNK), []),
                                  bytes, self._crs, plain=_plain, with_row=True)
        con.execute(sa.text(f"DELETE FROM ledger_overlaps WHERE "
                            f"{'hazard_fid' if layer == 'hazards' else 'release_fid'} IN "
                            f"(SELECT fid FROM {layer} WHERE import_id = :i)"), {"i": import_id})
        con.execute(sa.text(f"DELETE FROM ledger_{layer} WHERE fid IN (SELECT fid FROM {layer} "
                            "WHERE import_id = :i)"), {"i": import_id})
        con.execute(sa.text(f"INSERT INTO {layer}_retracted (geom, {names}, fid_was) SELECT "
                            f"geom, {names}, fid FROM {layer} WHERE import_id = :i ORDER BY fid"),
                    {"i": import_id})
        con.execute(sa.text(f"DELETE FROM {layer} WHERE import_id = :i"), {"i": import_id})
        return removed

    # -- documents drawn from the store ---------------------------------------------------
    def record_document(self, entry: dict[str, Any]) -> int:
        with self.engine.begin() as con:
            _migrate(con, self._srid)   # a store made before documents were kept
            return int(con.execute(sa.text(
                f"INSERT INTO documents ({', '.join(DOCUMENT_COLUMNS)}) VALUES "
                f"({', '.join(':' + c for c in DOCUMENT_COLUMNS)}) RETURNING document_id"),
                {c: entry[c] for c in DOCUMENT_COLUMNS}).scalar_one())

    def documents(self) -> pd.DataFrame:
        with self.engine.connect() as con:
            if not con.execute(sa.text("SELECT to_regclass('documents') IS NOT NULL")).scalar():
                return pd.DataFrame(columns=["document_id", *DOCUMENT_COLUMNS])
            return pd.read_sql_query(sa.text(
                f"SELECT document_id, {', '.join(DOCUMENT_COLUMNS)} FROM documents ORDER BY "
                "document_id"), con)

    # -- upgrades ------------------------------------------------------------------------
    def upgrade(self) -> list[str]:
        """Bring a store made by an older planner to today's schema (Alembic), losing nothing.
        """
        with self.engine.begin() as con:
            before = con.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            _migrate(con, self._srid)
            after = con.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        return [] if before == after else [f"schema migrated from revision {before} to {after}"]

    # -- the stored ledger ---------------------------------------------------------------
    def ledger_state(self) -> tuple[bool, pyproj.CRS | None]:
        with self.engine.connect() as con:
            return postgis_ledger.state(con)

    def read_ledger(self, since: int | None = None) -> StoredLedger | None:
        with self.engine.connect() as con:
            # one snapshot for the three tables and the layers
            con.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            return postgis_ledger.read(con, _safe(self.location), _plain, since)

    def write_ledger(self, rows: LedgerRows, crs: pyproj.CRS, version: tuple[int, int]
                     ) -> bool:
        with self.engine.begin() as con:
            _migrate(con, self._srid)   # a store made before the stored ledger gets its tables
            postgis_ledger.lock(con)
            con.execute(sa.text("LOCK TABLE imports IN SHARE MODE"))
            if _version(con) != tuple(version):
                return False
            postgis_ledger.write_all(con, rows, crs)
        return True

    # -- users ---------------------------------------------------------------------------
    def add_user(self, name: str, role: str, token_sha256: str) -> None:
        try:
            with self.engine.begin() as con:
                con.execute(sa.text("INSERT INTO users (name, role, token_sha256, created_at) "
                                    "VALUES (:n, :r, :t, :c)"),
                            {"n": name, "r": role, "t": token_sha256,
                             "c": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
        except sa.exc.IntegrityError as exc:
            raise InputError(f"a user called {name!r} exists already; remove it first "
                             "(`planner users remove`) or choose another name") from exc

    def users(self) -> list[dict[str, Any]]:
        with self.engine.connect() as con:
            return [dict(r) for r in con.execute(sa.text(
                "SELECT name, role, created_at FROM users ORDER BY name")).mappings()]

    def user_by_token(self, token_sha256: str) -> dict[str, Any] | None:
        with self.engine.connect() as con:
            row = con.execute(sa.text("SELECT name, role FROM users WHERE token_sha256 = :t"),
                              {"t": token_sha256}).mappings().first()
        return None if row is None else dict(row)

    def remove_user(self, name: str) -> bool:
        with self.engine.begin() as con:
            return con.execute(sa.text("DELETE FROM users WHERE name = :n"),
                               {"n": name}).rowcount > 0

    def version(self) -> tuple[int, int]:
        with self.engine.connect() as con:
            return _version(con)


def _version(con: Connection) -> tuple[int, int]:
    """(number of imports, a count that grows with every import and every retraction)."""
    has = con.execute(sa.text("SELECT count(*) FROM information_schema.columns WHERE "
                              "table_name = 'imports' AND column_name = 'retracted_at'")).scalar()
    retracted = ("(SELECT count(*) FROM imports WHERE retracted_at IS NOT NULL)" if has
                 else "0")
    n, last = con.execute(sa.text(
        f"SELECT count(*), coalesce(max(import_id), 0) + {retracted} FROM imports")).one()
    return int(n), int(last)


def _plain(value: Any) -> Any:
    """Dates as ISO text, like the GeoPackage store returns them before typing."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
