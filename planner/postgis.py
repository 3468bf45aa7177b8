"""The server store: one programme in a PostgreSQL/PostGIS database.

Selected by a URL (``postgresql://user@host:port/dbname``) wherever a store is asked for.
The schema is created and upgraded by Alembic migrations (``planner/migrations``); geometries
are MULTIPOLYGONs in the programme's CRS (its EPSG code is the SRID) with GiST indexes. Like
the GeoPackage store, one import — features and its ``imports`` row — is one transaction, and
the UNIQUE sha256 and ids make racing imports land exactly once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyproj
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from planner.errors import DuplicateImportError, InputError, StoreError, StoreNotFoundError
from planner.layers import COLUMNS, ID_COLUMN, LayerName
from planner.programme import Programme
from planner.store import (
    ImportRecord,
    _columns_of,
    attribute_frame,
    frame_from_rows,
    sql_rows,
)

if TYPE_CHECKING:
    from planner.accounting import Ledger

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

_READ_CHUNK = 20_000
_IMPORT_COLUMNS = ("layer", "file_name", "sha256", "crs_read", "crs_given", "rows",
                   "warnings", "imported_at")


def is_postgis_url(location: str | Path) -> bool:
    """Whether a store location names a PostGIS database."""
    return str(location).startswith(("postgresql://", "postgresql+psycopg://", "postgres://"))


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
             import_id: int | None = None) -> gpd.GeoDataFrame:
        columns = COLUMNS[layer]
        names = [c.name for c in columns]
        source = self._crs
        where = "" if import_id is None else " WHERE import_id = :i"
        with self.engine.connect() as con:
            result = con.execution_options(stream_results=True).execute(sa.text(
                f"SELECT ST_AsBinary(geom), {', '.join(names)} FROM {layer}{where} ORDER BY "
                "fid"), {"i": import_id})
            return frame_from_rows(layer, iter(lambda: result.fetchmany(_READ_CHUNK), []),
                                   bytes, source, crs, plain=_plain)

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
            df = pd.read_sql_query(sa.text(
                "SELECT import_id, layer, file_name, sha256, crs_read, crs_given, rows, "
                "warnings, imported_at FROM imports ORDER BY import_id"), con)
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

    # -- writing -------------------------------------------------------------------------
    def add(self, layer: LayerName, features: gpd.GeoDataFrame, record: ImportRecord) -> int:
        columns = COLUMNS[layer]
        if features.crs is None or not pyproj.CRS(features.crs).equals(self._crs):
            raise StoreError(f"features must be in the store CRS {self._crs.to_string()} to "
                             "be added")
        geoms = np.asarray(shapely.force_2d(features.geometry.values))
        single = shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON
        geoms[single] = [shapely.MultiPolygon([g]) for g in geoms[single]]
        ewkbs = shapely.to_wkb(shapely.set_srid(geoms, self._srid), hex=True,
                               include_srid=True)
        names = [c.name for c in columns]
        try:
            with self.engine.begin() as con:
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
                     "imported_at": record.imported_at.isoformat(timespec="seconds")}
                ).scalar_one())
                if record.import_id is not None:   # keep the identity ahead of copied ids
                    con.execute(sa.text(
                        "SELECT setval(pg_get_serial_sequence('imports', 'import_id'), "
                        "(SELECT max(import_id) FROM imports))"))
                # COPY: one stream for the whole import instead of a statement per feature
                cursor = con.connection.driver_connection.cursor()  # type: ignore[union-attr]
                with cursor, cursor.copy(f"COPY {layer} (geom, {', '.join(names)}) FROM STDIN"
                                         ) as copy:
                    for ewkb, row in zip(ewkbs, sql_rows(columns, features, import_id),
                                         strict=True):
                        copy.write_row((ewkb, *row))
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
            n, last = con.execute(sa.text(
                "SELECT count(*), coalesce(max(import_id), 0) FROM imports")).one()
        return int(n), int(last)


def _plain(value: Any) -> Any:
    """Dates as ISO text, like the GeoPackage store returns them before typing."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# -- accounting inside the database ------------------------------------------------------------
# Each step: (what the user is told, SQL, whether it runs in slices on several sessions).
# Geometries are made valid where reprojection or cutting left them invalid: the GEOS of
# older PostGIS releases raises a TopologyException on invalid input. For the same reason
# no GEOS predicate is used: candidates are found by bounding box (&&) and the overlay
# operations (OverlayNG, robust) do the rest; an overlap of zero area is dropped.
_VALID = "CASE WHEN ST_IsValid(g) THEN g ELSE ST_CollectionExtract(ST_MakeValid(g), 3) END"
# Sliced statements take the rows with row % {n} = {k}; PostgreSQL does not parallelise a
# LATERAL aggregate by itself, so the slices are what lets the database use every core.
_PIECE_SQL = """
INSERT INTO {p}_{t}p
  SELECT v.row, ST_Area(v.geom), ST_Area(v.piece), v.piece FROM (
    SELECT t.row, t.geom, {valid} AS piece FROM (
      SELECT a.row, a.geom, CASE WHEN e.u IS NULL THEN a.geom
                                 ELSE ST_Difference(a.geom, e.u) END AS g
      FROM {p}_{t} a LEFT JOIN LATERAL (
        SELECT ST_Union(x.geom) AS u FROM {p}_{t} x
        WHERE x.geom && a.geom AND x.ord < a.ord) e ON true
      WHERE a.row % {n} = {k}) t) v
"""
_LEDGER_STEPS: tuple[tuple[str, str, bool], ...] = (
    ("reprojecting hazards", """
CREATE UNLOGGED TABLE {p}_h AS
  SELECT fid AS row, row_number() OVER (ORDER BY recorded_on, found_after_eif, fid) AS ord,
         {valid} AS geom
  FROM (SELECT *, ST_Transform(geom, {target}) AS g FROM hazards) s
""", False),
    ("reprojecting releases", """
CREATE UNLOGGED TABLE {p}_r AS
  SELECT fid AS row, row_number() OVER (ORDER BY released_on,
           CASE method WHEN 'cleared' THEN 0 WHEN 'reduced' THEN 1 ELSE 2 END, fid) AS ord,
         {valid} AS geom
  FROM (SELECT *, ST_Transform(geom, {target}) AS g FROM releases) s
""", False),
    ("indexing", "CREATE INDEX ON {p}_h USING gist (geom)", False),
    ("indexing", "CREATE INDEX ON {p}_r USING gist (geom)", False),
    ("indexing", "ANALYZE {p}_h", False),
    ("indexing", "ANALYZE {p}_r", False),
    ("indexing", "CREATE UNLOGGED TABLE {p}_hp (row bigint, raw_m2 float8, area_m2 float8, "
                 "geom geometry)", False),
    ("indexing", "CREATE UNLOGGED TABLE {p}_rp (row bigint, raw_m2 float8, area_m2 float8, "
                 "geom geometry)", False),
    ("cutting hazards into disjoint pieces", _PIECE_SQL.replace("{t}", "h"), True),
    ("cutting releases into disjoint pieces", _PIECE_SQL.replace("{t}", "r"), True),
    ("indexing", "CREATE INDEX ON {p}_rp USING gist (geom) WHERE area_m2 > {crumb}", False),
    ("indexing", "ANALYZE {p}_hp", False),
    ("indexing", "ANALYZE {p}_rp", False),
)
_LEDGER_ROWS_SQL = """
SELECT row, -1, area_m2, raw_m2 FROM {p}_hp WHERE row % {n} = {k}
UNION ALL SELECT -1, row, area_m2, raw_m2 FROM {p}_rp WHERE row % {n} = {k}
UNION ALL SELECT * FROM (
  SELECT h.row, r.row, ST_Area(ST_Intersection(h.geom, r.geom)) AS a, 0.0
  FROM {p}_hp h JOIN {p}_rp r ON h.geom && r.geom
  WHERE r.area_m2 > {crumb} AND h.row % {n} = {k}) o WHERE a > 0
"""
_REMEASURE_SQL = """
SELECT s.h, s.r, ST_Area(ST_Intersection(h.geom, r.geom, {grid}))
FROM unnest(CAST(:hs AS bigint[]), CAST(:rs AS bigint[])) AS s(h, r)
JOIN {p}_hp h ON h.row = s.h JOIN {p}_rp r ON r.row = s.r
"""
_USER_SRIDS = range(910_000, 999_000)


def _srid_for(con: Connection, crs: pyproj.CRS) -> str:
    """The SQL for ``crs`` as a target of ST_Transform: an SRID where possible.

    PostGIS caches transformations by SRID, but builds one anew for every row when given a
    PROJ string, which is many times slower. The equal-area CRS is therefore entered in
    ``spatial_ref_sys`` under a user SRID (the same definition always gets the same one);
    where that table is not writable, the PROJ string is used as it is.
    """
    proj = crs.srs
    digest = int(hashlib.sha256(proj.encode()).hexdigest(), 16)
    for k in range(20):
        srid = _USER_SRIDS[(digest + k) % len(_USER_SRIDS)]
        found = con.execute(sa.text("SELECT proj4text FROM spatial_ref_sys WHERE srid = :s"),
                            {"s": srid}).scalar()
        if found == proj:
            return str(srid)
        if found is not None:
            continue
        try:
            con.execute(sa.text(
                "INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text) "
                "VALUES (:s, 'planner', :s, :wkt, :proj) ON CONFLICT (srid) DO NOTHING"),
                {"s": srid, "wkt": crs.to_wkt(), "proj": proj})
            con.commit()
        except sa.exc.DBAPIError as exc:
            con.rollback()
            log.warning("cannot add the equal-area CRS to spatial_ref_sys (%s); reprojecting "
                        "with a PROJ string, which is slower", exc.orig)
            break
        return str(srid)
    return "CAST(:proj AS text)"



def ledger_in_database(store: PostGISStore, *, sessions: int | None = None,
                       progress: Callable[[str, float], None] | None = None) -> Ledger:
    """The ledger of a PostGIS store with the cutting and measuring done by PostGIS.

    The same method as :func:`planner.accounting.build_ledger` in SQL: features are
    reprojected to the same equal-area CRS, each is cut into its piece (minus the union of
    the earlier features it meets), and pieces and their overlaps are measured in the
    database; only areas travel to Python. The heavy statements run in ``sessions`` slices
    at once (default: one per core of this machine). Scratch tables are unlogged and
    dropped at the end, whatever happens. Overlaps that add up to more than their piece (a
    silent overlay failure, seen with GEOS 3.11) are measured again with snap-rounding on a
    1 µm grid, as in the Python path; a ledger that still fails is refused.

    Examples
    --------
    ``ledger_in_database(open_store("postgresql://…")).status(dt.date(2024, 12, 31))``
    """
    from planner.accounting import _CRUMB_M2, _GRID_M
    from planner.partitions import ROWS_META, ledger_from_rows, ledger_inputs

    def tell(step: str, frac: float) -> None:
        if progress is not None:
            progress(step, frac)
        log.info("database ledger: %s", step)

    n = sessions if sessions is not None else max(1, os.cpu_count() or 1)
    if n < 1:
        raise InputError("the number of database sessions must be at least 1")
    tell("reading attributes and bounding boxes", 0.0)
    programme, h_att, r_att, crs = ledger_inputs(store)
    prefix = f"planner_scratch_{uuid.uuid4().hex[:12]}"

    def run(sql: str, k: int = 0, fetch: bool = False,
            params: dict[str, Any] | None = None) -> list[Any]:
        with store.engine.connect() as con:
            con.execute(sa.text("SET jit = off"))
            result = con.execute(sa.text(sql.format(p=prefix, crumb=_CRUMB_M2, n=n, k=k,
                                                    target=target, valid=_VALID,
                                                    grid=_GRID_M)),
                                 {"proj": crs.srs, **(params or {})})
            rows = list(result.all()) if fetch else []
            con.commit()
            return rows

    def sliced(sql: str, fetch: bool = False) -> list[Any]:
        with ThreadPoolExecutor(n) as pool:
            parts = list(pool.map(lambda k: run(sql, k, fetch), range(n)))
        return [row for part in parts for row in part]

    try:
        with store.engine.connect() as con:
            target = _srid_for(con, crs)
        for i, (step, sql, in_slices) in enumerate(_LEDGER_STEPS):
            tell(step, 0.05 + 0.8 * i / len(_LEDGER_STEPS))
            sliced(sql) if in_slices else run(sql)
        tell("measuring overlaps", 0.85)
        found = sliced(_LEDGER_ROWS_SQL, fetch=True)
        rows = (pd.DataFrame(found, columns=list(ROWS_META.columns)).astype(ROWS_META.dtypes)
                if found else ROWS_META)

        def remeasure(hs: np.ndarray, rs: np.ndarray) -> np.ndarray:
            # as in planner.accounting.measure: an overlay that failed silently next to a
            # sliver is measured again with snap-rounding on a 1 µm grid
            log.warning("database ledger: %d overlap(s) exceed their piece (hazard, release "
                        "rows %s); measured again with snap-rounding", len(hs),
                        ", ".join(map(str, zip(hs[:5].tolist(), rs[:5].tolist(),
                                               strict=True))))
            tell(f"measuring {len(hs)} overlap(s) again with snap-rounding", 0.9)
            again = {(h, r): a for h, r, a in run(_REMEASURE_SQL, fetch=True, params={
                "hs": hs.tolist(), "rs": rs.tolist()})}
            return np.array([again[h, r] for h, r in zip(hs.tolist(), rs.tolist(),
                                                          strict=True)], dtype=float)

        ledger = ledger_from_rows(programme.eif, crs, h_att, r_att, rows, remeasure)
    finally:
        with store.engine.begin() as con:
            for t in ("h", "r", "hp", "rp"):
                con.execute(sa.text(f"DROP TABLE IF EXISTS {prefix}_{t}"))
    tell("done", 1.0)
    return ledger
