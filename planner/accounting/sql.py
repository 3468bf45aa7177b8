"""The SQL engine: the ledger built inside a PostGIS store, in SQL.

The data are reprojected to the same equal-area CRS as the other engines, entered once in
``spatial_ref_sys`` under a user SRID. Each feature becomes its piece with a LATERAL
``ST_Union`` of the earlier features it meets and ``ST_Difference``; overlaps are measured with
``ST_Intersection``. Only areas travel to Python. The heavy statements run in several sessions
at once, each on a slice of the rows (PostgreSQL does not parallelise the LATERAL aggregate).
Overlaps that add up to more than their piece are measured again with
``ST_Intersection(a, b, 1e-6)`` before the ledger is checked; a ledger that still fails is
refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from planner.accounting.ledger import Ledger
from planner.accounting.pieces import _CRUMB_M2, _GRID_M
from planner.accounting.rows import ROWS_META, ledger_from_rows, ledger_inputs
from planner.errors import InputError
from planner.store.postgis import PostGISStore

# -- accounting inside the database ------------------------------------------------------------
# Each step: (what the user is told, SQL, whether it runs in slices on several sessions).
# Geometries are made valid where reprojection or cutting left them invalid: the GEOS of
# older PostGIS releases raises a TopologyException on invalid input. For the same reason
log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

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
