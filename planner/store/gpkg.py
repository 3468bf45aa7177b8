"""Where a programme's layers live: one interface, a GeoPackage back end by default.

A store holds the programme settings and three layers: ``hazards``, ``releases`` and
``imports``. :class:`GeoPackageStore` is one ``.gpkg`` file that opens in QGIS as ordinary
layers (with a spatial index). It is written through SQLite directly so that one import, the
features *and* its ``imports`` record, is a single transaction: all features land or none.
A second import of the same file (same sha256) is refused by a UNIQUE constraint inside that
transaction, so even racing uploads of one file land exactly once. How concurrent writers
and readers share one GeoPackage is told in :class:`GeoPackageStore`.

Callers use :func:`open_store` / :func:`create_store` and the :class:`Store` protocol only, so
a server back end (PostGIS) can be added without touching them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import sqlite3
import struct
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from planner.areas import equal_area_crs
from planner.errors import (
    DuplicateImportError,
    InputError,
    StoreBusyError,
    StoreError,
    StoreNotFoundError,
)
from planner.layers import COLUMNS, ID_COLUMN, LayerName
from planner.programme import Programme
from planner.store import gpkg_history, gpkg_ledger
from planner.store.base import (
    DOCUMENT_COLUMNS,
    ImportRecord,
    LedgerChange,
    LedgerRows,
    LedgerUpdate,
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


_GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"


_GPKG_USER_VERSION = 10200


_SQL_TYPES = {"text": "TEXT", "date": "DATE", "bool": "BOOLEAN", "int": "INTEGER",
              "float": "DOUBLE"}


_IMPORT_COLUMNS = ("layer", "file_name", "sha256", "crs_read", "crs_given", "rows",
                   "warnings", "imported_at")


_READ_CHUNK = 20_000


_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


#: How long a writer waits for the others before :class:`StoreBusyError` (seconds).
DEFAULT_WRITE_WAIT = 120.0


#: Rows written by one SQL statement in :meth:`GeoPackageStore.add` (see there).
_WRITE_BATCH = 5_000


class _FairLock:
    """A first-come, first-served lock with a timeout, for the threads of one process.

    ``threading.Lock`` and SQLite's busy handler both let a late arrival overtake writers
    that have waited long; with 100 uploads queued, some then wait past any bound. Here
    each waiter takes a ticket and is served in ticket order; a waiter that gives up leaves
    its ticket to be skipped.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0
        self._abandoned: set[int] = set()

    def acquire(self, timeout: float) -> bool:
        """Wait for our turn at most ``timeout`` seconds; True if the lock is ours."""
        deadline = time.monotonic() + timeout
        with self._cond:
            ticket = self._next
            self._next += 1
            while self._serving != ticket:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._abandoned.add(ticket)
                    return False
                self._cond.wait(remaining)
            return True

    def release(self) -> None:
        """Hand the lock to the next waiter still waiting."""
        with self._cond:
            self._serving += 1
            while self._serving in self._abandoned:
                self._abandoned.discard(self._serving)
                self._serving += 1
            self._cond.notify_all()

    def waiting(self) -> int:
        """How many threads hold or wait for the lock (abandoned tickets not counted)."""
        with self._cond:
            return self._next - self._serving - len(self._abandoned)


_GATES: dict[str, _FairLock] = {}


_GATES_LOCK = threading.Lock()


def _gate(path: Path) -> _FairLock:
    """The one :class:`_FairLock` of this process for the store file at ``path``."""
    key = os.path.realpath(path)
    with _GATES_LOCK:
        return _GATES.setdefault(key, _FairLock())


def _lock_file(path: Path) -> Path | None:
    """Where processes of this machine take turns to write the store at ``path``.

    A file in a private folder of the temporary directory named after the store's device
    and inode (so two paths to one store share it), not beside the store: the store stays
    one file. None when it cannot be made; SQLite's own lock then still keeps writers
    apart, only less fairly.
    """
    try:
        st = os.stat(path)
        folder = Path(tempfile.gettempdir()) / f"planner-{os.getuid()}-locks"
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder / f"{st.st_dev}-{st.st_ino}.lock"
    except OSError:
        return None


def _flock(lock_path: Path | None, deadline: float) -> int | None:
    """Take the cross-process write lock before ``deadline``: its file descriptor.

    Returns -1 when there is no lock file (see :func:`_lock_file`) and None when another
    process still held it at the deadline.
    """
    if lock_path is None:
        return -1
    import fcntl

    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:
        return -1
    pause = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.close(fd)
                return None
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.05)


def _unflock(fd: int) -> None:
    if fd >= 0:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _gpkg_blob(geom: Any, wkb: bytes, srs_id: int) -> bytes:
    """GeoPackage binary: 'GP', version 0, flags (little endian, xy envelope), srs, envelope."""
    minx, miny, maxx, maxy = geom.bounds
    return b"GP\x00\x03" + struct.pack("<i4d", srs_id, minx, maxx, miny, maxy) + wkb


def _wkb_from_blob(blob: bytes) -> bytes:
    flags = blob[3]
    return blob[8 + _ENVELOPE_BYTES.get((flags >> 1) & 0x07, 0):]


def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    if blob is None or len(blob) < 8 or blob[3] & 0x10:
        return None
    flags = blob[3]
    env = (flags >> 1) & 0x07
    if env >= 1:
        order = "<" if flags & 1 else ">"
        minx, maxx, miny, maxy = struct.unpack(order + "4d", blob[8:40])
        return minx, maxx, miny, maxy
    geom = shapely.from_wkb(_wkb_from_blob(blob))
    if geom.is_empty:
        return None
    a, b, c, d = geom.bounds
    return a, c, b, d


def _register_st_functions(con: sqlite3.Connection) -> None:
    """The SQL functions GeoPackage's R-tree triggers call (GDAL and QGIS bring their own)."""

    def pick(i: int) -> Any:
        def f(blob: bytes | None) -> float | None:
            env = _envelope(blob)
            return None if env is None else env[i]
        return f

    con.create_function("ST_IsEmpty", 1, lambda b: 1 if _envelope(b) is None else 0,
                        deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        con.create_function(name, 1, pick(i), deterministic=True)


def _rtree_sql(t: str, c: str = "geom", i: str = "fid") -> list[str]:
    r = f"rtree_{t}_{c}"
    vals = f"(NEW.{i}, ST_MinX(NEW.{c}), ST_MaxX(NEW.{c}), ST_MinY(NEW.{c}), ST_MaxY(NEW.{c}))"
    return [
        f"CREATE VIRTUAL TABLE {r} USING rtree(id, minx, maxx, miny, maxy)",
        f"CREATE TRIGGER {r}_insert AFTER INSERT ON {t} WHEN (new.{c} NOT NULL AND NOT "
        f"ST_IsEmpty(NEW.{c})) BEGIN INSERT OR REPLACE INTO {r} VALUES {vals}; END",
        f"CREATE TRIGGER {r}_update1 AFTER UPDATE OF {c} ON {t} WHEN OLD.{i} = NEW.{i} AND "
        f"(NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c})) BEGIN INSERT OR REPLACE INTO {r} "
        f"VALUES {vals}; END",
        f"CREATE TRIGGER {r}_update2 AFTER UPDATE OF {c} ON {t} WHEN OLD.{i} = NEW.{i} AND "
        f"(NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c})) BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END",
        f"CREATE TRIGGER {r}_update3 AFTER UPDATE ON {t} WHEN OLD.{i} != NEW.{i} AND "
        f"(NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c})) BEGIN DELETE FROM {r} WHERE id = "
        f"OLD.{i}; INSERT OR REPLACE INTO {r} VALUES {vals}; END",
        f"CREATE TRIGGER {r}_update4 AFTER UPDATE ON {t} WHEN OLD.{i} != NEW.{i} AND "
        f"(NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c})) BEGIN DELETE FROM {r} WHERE id IN "
        f"(OLD.{i}, NEW.{i}); END",
        f"CREATE TRIGGER {r}_delete AFTER DELETE ON {t} WHEN old.{c} NOT NULL BEGIN "
        f"DELETE FROM {r} WHERE id = OLD.{i}; END",
        "INSERT INTO gpkg_extensions VALUES "
        f"('{t}', '{c}', 'gpkg_rtree_index', "
        "'http://www.geopackage.org/spec120/#extension_rtree', 'write-only')",
    ]


def _srs_row(crs: pyproj.CRS) -> tuple[str, int, str, int, str, str]:
    auth = crs.to_authority()
    if auth is not None and auth[0] == "EPSG":
        org, code = "EPSG", int(auth[1])
        srs_id = code
    else:
        org, code, srs_id = "NONE", 100000, 100000
    wkt = crs.to_wkt(version="WKT1_GDAL") or crs.to_wkt()
    return (crs.name, srs_id, org, code, wkt, "")


def _layer_table_sql(layer: str, table: str) -> str:
    """CREATE TABLE of a layer; ``hazards`` repeat their id, one row per version."""
    id_col = ID_COLUMN[layer]
    cols = ", ".join(
        f"{c.name} {_SQL_TYPES[c.kind]}{' NOT NULL' if c.required else ''}"
        f"{' UNIQUE' if c.name == id_col and layer != 'hazards' else ''}"
        for c in COLUMNS[layer])
    return (f"CREATE TABLE {table} (fid INTEGER PRIMARY KEY AUTOINCREMENT, "
            f"geom MULTIPOLYGON NOT NULL, {cols})")


def _schema_sql(crs: pyproj.CRS) -> tuple[list[str], list[tuple[str, tuple[Any, ...]]], int]:
    srs = _srs_row(crs)
    srs_id = srs[1]
    ddl = [
        "CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY,"
        " organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL,"
        " definition TEXT NOT NULL, description TEXT)",
        "CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT"
        " NULL, identifier TEXT UNIQUE, description TEXT DEFAULT '', last_change DATETIME NOT"
        " NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')), min_x DOUBLE, min_y DOUBLE,"
        " max_x DOUBLE, max_y DOUBLE, srs_id INTEGER, CONSTRAINT fk_gc_r_srs_id FOREIGN KEY"
        " (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id))",
        "CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT"
        " NULL, geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT NOT NULL,"
        " m TINYINT NOT NULL, CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),"
        " CONSTRAINT uk_gc_table_name UNIQUE (table_name), CONSTRAINT fk_gc_tn FOREIGN KEY"
        " (table_name) REFERENCES gpkg_contents(table_name), CONSTRAINT fk_gc_srs FOREIGN KEY"
        " (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id))",
        "CREATE TABLE gpkg_extensions (table_name TEXT, column_name TEXT, extension_name TEXT"
        " NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE"
        " (table_name, column_name, extension_name))",
    ]
    wgs84 = pyproj.CRS.from_epsg(4326)
    rows: list[tuple[str, tuple[Any, ...]]] = [
        ("INSERT INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)",
         ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian")),
        ("INSERT INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)",
         ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic")),
        ("INSERT INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)", _srs_row(wgs84)),
    ]
    if srs_id != 4326:
        rows.append(("INSERT INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)", srs))
    for layer in COLUMNS:
        id_col = ID_COLUMN[layer]
        ddl.append(_layer_table_sql(layer, layer))
        if layer == "hazards":   # one row per version of a hazard: ids repeat
            ddl.append(f"CREATE INDEX {layer}_{id_col} ON {layer} ({id_col})")
        ddl.append(f"CREATE INDEX {layer}_date ON {layer} "
                   f"({'recorded_on' if layer == 'hazards' else 'released_on'})")
        rows.append(("INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
                     "VALUES (?, 'features', ?, ?)", (layer, layer, srs_id)))
        rows.append(("INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', 'MULTIPOLYGON', ?,"
                     " 0, 0)", (layer, srs_id)))
        ddl.extend(_rtree_sql(layer))
    ddl.append(
        "CREATE TABLE imports (fid INTEGER PRIMARY KEY AUTOINCREMENT, layer TEXT NOT NULL,"
        " file_name TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE, crs_read TEXT,"
        " crs_given TEXT, rows INTEGER NOT NULL, warnings TEXT, imported_at DATETIME NOT NULL)"
    )
    ddl.append("CREATE TABLE programme (fid INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT"
               " NULL UNIQUE, value TEXT NOT NULL)")
    for table in ("imports", "programme"):
        rows.append(("INSERT INTO gpkg_contents (table_name, data_type, identifier) "
                     "VALUES (?, 'attributes', ?)", (table, table)))
    ddl.extend(gpkg_ledger.DDL)
    return ddl, rows, srs_id


@dataclass(frozen=True)
class _Rows:
    """An import's rows of one layer, as SQL values."""

    names: list[str]
    blobs: list[bytes]
    boxes: list[list[float]]
    rows: list[tuple[Any, ...]]
    geoms: np.ndarray


def _refuse_taken_ids(con: sqlite3.Connection, ids: pd.Series, file_name: str) -> None:
    """New hazards may not take the id of a hazard in the store (a re-survey may)."""
    taken = [r[0] for r in con.execute(
        "SELECT DISTINCT hazard_id FROM hazards WHERE hazard_id IN (SELECT value FROM "
        "json_each(?)) LIMIT 5", (json.dumps([str(i) for i in ids]),))]
    if taken:
        raise InputError(
            f"{file_name}: hazard id(s) {', '.join(taken)} are already in the store (another "
            "import may have landed first); nothing was added. Give the features new ids, or "
            "--map hazard_id= to generate them; a later survey of the same hazard is imported "
            "with `planner ingest resurvey`.", argument="file")


@dataclass(frozen=True)
class _Precomputed:
    """A ledger change computed on a snapshot, with what it assumed of the store."""

    crs: pyproj.CRS | None  # the ledger's CRS then
    first: int              # the fid the import's first feature was to get
    tops: dict[str, int]    # the largest fid of each layer then
    change: LedgerChange


def _stamp(record: ImportRecord) -> str:
    """When an import lands: now, inside its transaction (a copy keeps the original time)."""
    when = record.imported_at if record.import_id is not None else dt.datetime.now(dt.UTC)
    return when.isoformat(timespec="microseconds")


def _retractions(con: sqlite3.Connection) -> int:
    """How many imports have been retracted (their features left the live layers)."""
    last = int(con.execute("SELECT coalesce(max(fid), 0) FROM imports").fetchone()[0])
    return _version(con)[1] - last


def _retracted_since(con: sqlite3.Connection, pre: _Precomputed) -> bool:
    """Whether an import was retracted since ``pre``'s snapshot: features left, which
    ``landed_near`` cannot see, so the update is computed again inside the lock."""
    return _retractions(con) != pre.tops["retractions"]


def _unique_hazard_ids(con: sqlite3.Connection) -> bool:
    """Whether ``hazards.hazard_id`` is still UNIQUE (a store made before versions)."""
    for _, name, unique, *_ in con.execute("PRAGMA index_list(hazards)"):
        if unique and [r[2] for r in con.execute(f"PRAGMA index_info('{name}')")] == [
                "hazard_id"]:
            return True
    return False


def _rebuild_hazards_table(con: sqlite3.Connection) -> None:
    """``hazards`` again without UNIQUE ids: same rows and fids, R-tree and triggers kept."""
    names = ", ".join(["fid", "geom", *(c.name for c in COLUMNS["hazards"])])
    triggers = [sql for (sql,) in con.execute(
        "SELECT sql FROM sqlite_master WHERE type IN ('trigger', 'index') AND tbl_name = "
        "'hazards' AND sql IS NOT NULL")]
    seq = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'hazards'").fetchone()
    con.execute(_layer_table_sql("hazards", "hazards_upgrade"))
    con.execute(f"INSERT INTO hazards_upgrade ({names}) SELECT {names} FROM hazards ORDER BY fid")
    con.execute("DROP TABLE hazards")
    con.execute("ALTER TABLE hazards_upgrade RENAME TO hazards")
    if seq is not None:
        con.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'hazards'", (seq[0],))
    for sql in triggers:
        con.execute(sql)
    con.execute("CREATE INDEX IF NOT EXISTS hazards_hazard_id ON hazards (hazard_id)")


def _version(con: sqlite3.Connection) -> tuple[int, int]:
    """(number of imports, a count that grows with every import and every retraction)."""
    retracted = ("(SELECT count(*) FROM imports WHERE retracted_at IS NOT NULL)"
                 if "retracted_at" in {r[1] for r in con.execute("PRAGMA table_info(imports)")}
                 else "0")
    n, last = con.execute(f"SELECT count(*), coalesce(max(fid), 0) + {retracted} FROM imports"
                          ).fetchone()
    return int(n), int(last)


class GeoPackageStore:
    """A programme kept in one GeoPackage file.

    Parameters
    ----------
    path : str or Path
        The ``.gpkg`` file; it must exist (see :func:`create_store`).
    write_wait : float
        How long, in seconds, a write waits for other writers before it gives up with
        :class:`~planner.errors.StoreBusyError` (nothing written); also settable later as
        the attribute of that name.

    Notes
    -----
    **One writer at a time, in arrival order, for a bounded time.** Every write (an import,
    settings, users) goes through :meth:`_writing`: first a first-come-first-served lock
    shared by the threads of this process (a server's uploads), then an exclusive
    ``flock`` shared by the processes of this machine (CLI imports next to a server), then
    ``BEGIN IMMEDIATE``, which takes SQLite's write lock *before* anything is read, so a
    transaction never has to upgrade a read lock (the upgrade SQLite refuses at once with
    ``SQLITE_BUSY``, whatever the busy timeout) and any other program (QGIS editing the
    file) is waited for by SQLite's busy handler. All three waits share one deadline
    (``write_wait``); past it the write raises ``StoreBusyError`` and nothing is written,
    never a raw ``sqlite3.OperationalError``. SQLite's lock alone is what keeps the data
    safe; the two locks in front of it only make writers take turns fairly.

    **Short write transactions.** The GeoPackage R-tree triggers call ``ST_MinX`` and
    friends, which planner must provide as Python functions: five calls per row, each of
    which needs the GIL. In a server whose other threads are busy, each call waited for the
    GIL and a 2,000-feature import held the write lock for seconds to tens of seconds
    instead of 0.06 s, so queued uploads ran past the busy timeout ("database is locked"
    after 120 s). :meth:`add` therefore prepares every value before the transaction, drops
    the layer's insert trigger inside it, writes features and their R-tree entries with a
    few set-based statements, and creates the trigger again (same SQL) before ``COMMIT``:
    other programs never see the store without its trigger, and they keep their own.

    **Readers and the journal.** While writing, the store is switched to SQLite's WAL
    journal, so readers neither wait for a writer nor make one wait for them (with the
    default rollback journal a commit waits until every reader has finished, and a writer
    about to commit holds new readers off). After a write, when no other planner writer of
    this process is queued and no other connection has the file open, the store goes back
    to the rollback journal (``DELETE``), as QGIS does after editing: the GeoPackage
    specification asks for a plain single file for exchange (WAL needs ``-wal`` and
    ``-shm`` files beside it, shared memory that network file systems do not give, and a
    writable folder even to read). When a reader was still connected, the header keeps
    saying WAL until the next write; the store is still a single file whenever closed,
    since SQLite folds the ``-wal`` file back and removes both files when the last
    connection closes, and GDAL, QGIS and any SQLite since 3.7 (2010) open it either way.

    Examples
    --------
    >>> import tempfile, datetime as dt
    >>> from planner.store import create_store
    >>> path = Path(tempfile.mkdtemp()) / "demo.gpkg"
    >>> store = create_store(path, Programme("Demo", dt.date(2011, 8, 1), "EPSG:32648"))
    >>> store.programme().eif, len(store.read("hazards"))
    (datetime.date(2011, 8, 1), 0)
    """

    def __init__(self, path: str | Path, *, write_wait: float = DEFAULT_WRITE_WAIT) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.write_wait = float(write_wait)
        if not self.path.exists():
            raise StoreNotFoundError(
                f"{self.path}: no such store. Create it first with "
                f"`planner init {self.path} --name NAME --eif YYYY-MM-DD`."
            )
        with self._connect() as con:
            try:
                row = con.execute("SELECT srs_id FROM gpkg_geometry_columns WHERE "
                                  "table_name = 'hazards'").fetchone()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                    raise
                raise StoreError(f"{self.path}: not a planner GeoPackage ({exc}).") from exc
            if row is None:
                raise StoreError(f"{self.path}: a GeoPackage, but without planner's layers. "
                                 "Create a store with `planner init`.")
            self._srs_id = int(row[0])
        # the store CRS is fixed at `planner init`: read it once, not on every read and write
        self._crs = self.programme().pyproj_crs

    def _busy(self, waited: float) -> StoreBusyError:
        return StoreBusyError(
            f"{self.path.name}: the store is busy with other imports (waited {waited:.0f} s "
            "for them); nothing was written. Try again in a moment.", argument="store")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for reading; a reader kept waiting past ``write_wait`` is told so."""
        con = sqlite3.connect(self.path, timeout=self.write_wait, isolation_level=None)
        try:
            _register_st_functions(con)
            yield con
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise StoreBusyError(
                    f"{self.path.name}: the store is busy with other imports (waited "
                    f"{self.write_wait:.0f} s); nothing was read or written. Try again in a "
                    "moment.", argument="store") from exc
            raise
        finally:
            con.close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE``, this process's and machine's only writer.

        Commits when the block ends, rolls back if it raises. Waits at most ``write_wait``
        seconds in all for other writers, then raises ``StoreBusyError`` having written
        nothing (see the class notes).
        """
        start = time.monotonic()
        deadline = start + self.write_wait
        gate = _gate(self.path)
        if not gate.acquire(self.write_wait):
            raise self._busy(time.monotonic() - start)
        try:
            fd = _flock(_lock_file(self.path), deadline)
            if fd is None:
                raise self._busy(time.monotonic() - start)
            try:
                con = sqlite3.connect(self.path, isolation_level=None,
                                      timeout=max(deadline - time.monotonic(), 0.0))
                try:
                    _register_st_functions(con)
                    self._to_wal(con)
                    try:
                        con.execute("BEGIN IMMEDIATE")
                    except sqlite3.OperationalError as exc:
                        if _is_busy(exc):
                            raise self._busy(time.monotonic() - start) from exc
                        raise
                    try:
                        yield con
                        con.execute("COMMIT")
                    except sqlite3.OperationalError as exc:
                        if con.in_transaction:
                            con.execute("ROLLBACK")
                        if _is_busy(exc):
                            raise self._busy(time.monotonic() - start) from exc
                        raise
                    except BaseException:
                        if con.in_transaction:
                            con.execute("ROLLBACK")
                        raise
                    if gate.waiting() <= 1:
                        self._from_wal(con)
                finally:
                    con.close()
            finally:
                _unflock(fd)
        finally:
            gate.release()

    @staticmethod
    def _to_wal(con: sqlite3.Connection) -> None:
        """Switch to the WAL journal for writing, if that can be done within a second."""
        busy_ms = con.execute("PRAGMA busy_timeout").fetchone()[0]
        try:
            con.execute(f"PRAGMA busy_timeout = {min(busy_ms, 1000)}")
            con.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as exc:   # readers in the way: write in rollback mode
            log.debug("store stays in its journal mode for this write: %s", exc)
        finally:
            con.execute(f"PRAGMA busy_timeout = {busy_ms}")

    @staticmethod
    def _from_wal(con: sqlite3.Connection) -> None:
        """Back to the rollback journal, only if no other connection has the store open."""
        try:
            con.execute("PRAGMA busy_timeout = 0")
            con.execute("PRAGMA journal_mode = DELETE").fetchone()
        except sqlite3.OperationalError as exc:   # someone is reading: WAL until next time
            log.debug("store stays in WAL mode: %s", exc)

    # -- programme ---------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        with self._connect() as con:
            return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM programme")}

    def programme(self) -> Programme:
        s = self._settings()
        return Programme(name=s["name"], eif=dt.date.fromisoformat(s["eif"]), crs=s["crs"],
                         settings=s.get("settings", {}))

    def set_settings(self, settings: dict[str, Any]) -> None:
        with self._writing() as con:
            con.execute("INSERT INTO programme (key, value) VALUES ('settings', ?) ON CONFLICT"
                        "(key) DO UPDATE SET value = excluded.value", (json.dumps(settings),))

    # -- reading -------------------------------------------------------------------------
    def read(self, layer: LayerName, crs: pyproj.CRS | None = None,
             import_id: int | None = None, retracted: bool = False,
             with_row: bool = False) -> gpd.GeoDataFrame:
        columns = COLUMNS[layer]
        names = [c.name for c in columns]
        source = self._crs
        where, args = ("", ()) if import_id is None else (" WHERE import_id = ?", (import_id,))
        with self._connect() as con:
            if retracted:   # the archive, each feature with the key it had when live
                if not gpkg_history.has_archive(con):
                    return frame_from_rows(layer, [], _wkb_from_blob, source, crs,
                                           with_row=True)
                cur = con.execute(f"SELECT geom, {', '.join(names)}, fid_was FROM "
                                  f"{gpkg_history.archive(layer)}{where} ORDER BY fid_was", args)
            else:
                key = ", fid" if with_row else ""
                cur = con.execute(f"SELECT geom, {', '.join(names)}{key} FROM {layer}{where} "
                                  "ORDER BY fid", args)
            return frame_from_rows(layer, iter(lambda: cur.fetchmany(_READ_CHUNK), []),
                                   _wkb_from_blob, source, crs, with_row=retracted or with_row)

    def attributes(self, layer: LayerName, columns: Sequence[str]) -> pd.DataFrame:
        cols = _columns_of(layer, columns)
        with self._connect() as con:
            rows = con.execute(f"SELECT fid, substr(geom, 1, 40), "
                               f"{', '.join(c.name for c in cols) or 'NULL'} FROM {layer} "
                               "ORDER BY fid").fetchall()
        boxes = np.array([_envelope(r[1]) or (np.nan,) * 4 for r in rows],
                         dtype=float).reshape(-1, 4)
        return attribute_frame(cols, [r[0] for r in rows], boxes[:, [0, 2, 1, 3]],
                               [[r[i + 2] for r in rows] for i in range(len(cols))])

    def read_window(self, layer: LayerName, bounds: tuple[float, float, float, float],
                    crs: pyproj.CRS | None = None) -> gpd.GeoDataFrame:
        names = [c.name for c in COLUMNS[layer]]
        minx, miny, maxx, maxy = (float(b) for b in bounds)
        with self._connect() as con:
            cur = con.execute(
                f"SELECT t.geom, {', '.join('t.' + n for n in names)}, t.fid FROM {layer} t "
                f"JOIN rtree_{layer}_geom r ON r.id = t.fid WHERE r.maxx >= ? AND r.minx <= ? "
                "AND r.maxy >= ? AND r.miny <= ? ORDER BY t.fid", (minx, maxx, miny, maxy))
            return frame_from_rows(layer, iter(lambda: cur.fetchmany(_READ_CHUNK), []),
                                   _wkb_from_blob, self._crs, crs, with_row=True)

    def imports(self) -> pd.DataFrame:
        with self._connect() as con:
            df = pd.read_sql_query("SELECT fid AS import_id, * FROM imports ORDER BY fid", con)
        return df.drop(columns=["fid"])

    def find_import(self, sha256: str) -> dict[str, Any] | None:
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            row = con.execute("SELECT fid AS import_id, * FROM imports WHERE sha256 = ?",
                              (sha256,)).fetchone()
        return None if row is None else dict(row)

    def ids(self, layer: LayerName) -> set[str]:
        with self._connect() as con:
            return {r[0] for r in con.execute(f"SELECT {ID_COLUMN[layer]} FROM {layer}")}

    def ids_in(self, layer: LayerName, ids: Sequence[str]) -> set[str]:
        col = ID_COLUMN[layer]
        with self._connect() as con:
            return {r[0] for r in con.execute(
                f"SELECT {col} FROM {layer} WHERE {col} IN (SELECT value FROM json_each(?))",
                (json.dumps([str(i) for i in ids]),))}

    def summary(self, layer: LayerName
                ) -> tuple[dt.date | None, tuple[float, float, float, float] | None]:
        date = "recorded_on" if layer == "hazards" else "released_on"
        with self._connect() as con:
            (first,) = con.execute(f"SELECT min({date}) FROM {layer}").fetchone()
            box = con.execute(f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM "
                              f"rtree_{layer}_geom").fetchone()
        return (None if first is None else pd.Timestamp(first).date(),
                None if box[0] is None else (float(box[0]), float(box[1]), float(box[2]),
                                             float(box[3])))

    # -- writing -------------------------------------------------------------------------
    def add(self, layer: LayerName, features: gpd.GeoDataFrame, record: ImportRecord,
            update: LedgerUpdate | None = None, replaces: Retraction | None = None,
            derived: gpd.GeoDataFrame | None = None,
            rejected: gpd.GeoDataFrame | None = None) -> int:
        """Add one file's features and its import record in one short transaction.

        Every value (GeoPackage blobs, boxes, attribute rows) is prepared before the write
        lock is taken; inside, the rows go in with one statement per :data:`_WRITE_BATCH`
        features (a blob of all geometries cut by ``substr`` and a JSON array of the other
        values), and the R-tree entries likewise, with the layer's R-tree insert trigger
        dropped meanwhile and created again, unchanged, before ``COMMIT``. So the
        transaction never calls back into Python per row, and never waits for the GIL
        while other threads hold the write lock up (see the class notes).

        Raises
        ------
        DuplicateImportError
            The sha256 is in ``imports`` already; nothing was added.
        InputError
            An id is used in the layer already; nothing was added.
        StoreBusyError
            Other writers held the store for longer than ``write_wait``; nothing was added.
        """
        main = self._prepared(layer, features)
        extra = None if derived is None or not len(derived) else \
            self._prepared("releases", derived)
        # the ledger update is computed before the write lock, and only redone inside it
        # when an import that landed meanwhile touched the same land
        pre = None if replaces is not None or derived is not None else self._precompute(
            layer, features, main.geoms, update)
        try:
            with self._writing() as con:
                if replaces is not None:
                    gpkg_history.ensure_schema(con, self._srs_id)
                    self._retract_in(con, replaces.import_id, replaces.reason, replaces.by,
                                     update, layer)
                cur = con.execute(
                    f"INSERT INTO imports (fid, {', '.join(_IMPORT_COLUMNS)}) VALUES "
                    f"(?, {', '.join('?' * len(_IMPORT_COLUMNS))})",
                    (record.import_id, record.layer, record.file_name, record.sha256,
                     record.crs_read, record.crs_given, record.rows,
                     json.dumps(record.warnings), _stamp(record)))
                import_id = int(cur.lastrowid or 0)
                if layer == "hazards" and derived is None:
                    _refuse_taken_ids(con, features["hazard_id"], record.file_name)
                if derived is not None and _unique_hazard_ids(con):
                    raise StoreError(f"{self.path.name} was made by an older planner, whose "
                                     "hazards cannot have versions; run `planner upgrade "
                                     f"{self.path}` once (nothing is lost), then import the "
                                     "re-survey again", argument="store")
                self._write_layer(con, layer, main, import_id, update, pre)
                if extra is not None:
                    self._write_layer(con, "releases", extra, import_id, update, None)
                if rejected is not None and len(rejected):
                    gpkg_history.ensure_rejected(con, self._srs_id)
                    con.executemany(
                        "INSERT INTO rejected (geom, layer, import_id, row_in_file, problems, "
                        "attributes) VALUES (?, ?, ?, ?, ?, ?)",
                        [(None if w is None else _gpkg_blob(shapely.from_wkb(w), w,
                                                            self._srs_id), *rest)
                         for w, *rest in rejected_rows(layer, rejected, self._crs, import_id)])
        except sqlite3.IntegrityError as exc:
            if "imports.sha256" in str(exc):
                raise DuplicateImportError(
                    f"{record.file_name}: this file (sha256 {record.sha256[:12]}…) was "
                    "already imported into this store; nothing was added.") from exc
            if f"{layer}.{ID_COLUMN[layer]}" in str(exc):
                raise InputError(
                    f"{record.file_name}: an id in this file is already used in {layer} "
                    f"(another import may have landed first); nothing was added. Give "
                    f"the features new ids, or --map {ID_COLUMN[layer]}= to generate "
                    "them.") from exc
            raise StoreError(f"{record.file_name}: the store refused the import ({exc}); "
                             "nothing was added.") from exc
        log.info("import %s: %d %s from %s", import_id, len(features), layer, record.file_name)
        return import_id

    def _prepared(self, layer: LayerName, features: gpd.GeoDataFrame) -> _Rows:
        """Every value of an import's rows, made before the write lock is taken."""
        crs = self._crs
        if features.crs is None or not pyproj.CRS(features.crs).equals(crs):
            raise StoreError(f"features must be in the store CRS {crs.to_string()} to be added")
        geoms = np.asarray(shapely.force_2d(features.geometry.values))
        wkbs = shapely.to_wkb(geoms, byte_order=1, flavor="iso")
        columns = COLUMNS[layer]
        names = [c.name for c in columns]
        # the attribute rows are made with a placeholder import id, set in the transaction
        return _Rows(names, [_gpkg_blob(g, w, self._srs_id) for g, w in zip(geoms, wkbs,
                                                                             strict=True)],
                     shapely.bounds(geoms).tolist() if len(geoms) else [],
                     sql_rows(columns, features, -1), geoms)

    def _write_layer(self, con: sqlite3.Connection, layer: LayerName, rows: _Rows,
                     import_id: int, update: LedgerUpdate | None, pre: _Precomputed | None
                     ) -> None:
        """One layer's rows of an import, and the ledger's update, in the transaction."""
        values = rows.rows
        if "import_id" in rows.names:
            at = rows.names.index("import_id")
            values = [(*r[:at], import_id, *r[at + 1:]) for r in values]
        first = self._insert_features(con, layer, rows.names, rows.blobs, rows.boxes, values)
        if len(rows.geoms):
            self._extend_contents_bounds(con, layer, shapely.total_bounds(rows.geoms))
        self._update_ledger(con, layer, np.arange(first, first + len(rows.geoms)), import_id,
                            update, pre)

    def retract(self, import_id: int, *, reason: str, by: str,
                update: LedgerUpdate | None = None) -> dict[str, Any]:
        """Take an import out of the records from now on (see :meth:`Store.retract`)."""
        with self._writing() as con:
            gpkg_history.ensure_schema(con, self._srs_id)
            found = self._retract_in(con, import_id, reason, by, update)
        log.info("import %s retracted by %s: %s", import_id, by, reason)
        return found

    def _retract_in(self, con: sqlite3.Connection, import_id: int, reason: str, by: str,
                    update: LedgerUpdate | None, same_layer: str | None = None
                    ) -> dict[str, Any]:
        """The retraction, inside the caller's write transaction."""
        row = con.execute("SELECT layer, file_name, retracted_at FROM imports WHERE fid = ?",
                          (import_id,)).fetchone()
        layer, name = check_retractable(import_id, row, same_layer)
        at = gpkg_history.mark(con, import_id, by, reason)
        moved = 0
        # both layers: a re-survey's import holds hazard versions and the releases they made
        for each in (layer, "releases" if layer == "hazards" else "hazards"):
            removed = gpkg_history.move_out(con, each, import_id, self._crs, _wkb_from_blob)
            moved += len(removed) if each == layer else 0
            if len(removed):
                self._update_ledger(con, each, np.empty(0, np.int64), import_id, update,
                                    removed=(each, removed))
        gpkg_ledger.new_generation(con)   # cached ledgers must be read again, not patched
        return {"import_id": import_id, "layer": layer, "file_name": name,
                "features": moved, "retracted_at": at, "retracted_by": by,
                "retraction_reason": reason}

    @staticmethod
    def _insert_features(con: sqlite3.Connection, layer: str, names: Sequence[str],
                         blobs: Sequence[bytes], boxes: Sequence[Sequence[float]],
                         rows: Sequence[Sequence[Any]]) -> int:
        """Rows and R-tree entries with a few statements, inside the caller's transaction.

        Feature ids are given explicitly, as ``AUTOINCREMENT`` would have given them (one
        past the largest ever used), so that the R-tree entries can be written alongside.
        Returns the first fid given (the others follow it).
        """
        rtree, trigger = f"rtree_{layer}_geom", f"rtree_{layer}_geom_insert"
        schema = dict(con.execute(
            "SELECT name, sql FROM sqlite_master WHERE name IN (?, ?)", (rtree, trigger)))
        first = GeoPackageStore._next_fid(con, layer)
        if trigger in schema:
            con.execute(f"DROP TRIGGER {trigger}")
        values = ", ".join(f"value ->> {i + 3}" for i in range(len(names)))
        insert = (f"INSERT INTO {layer} (fid, geom, {', '.join(names)}) SELECT value ->> 0, "
                  f"substr(?1, value ->> 1, value ->> 2), {values} FROM json_each(?2) "
                  "ORDER BY key")
        for lo in range(0, len(blobs), _WRITE_BATCH):
            part = blobs[lo:lo + _WRITE_BATCH]
            fids = range(first + lo, first + lo + len(part))
            offset, cells = 1, []
            for fid, blob, row in zip(fids, part, rows[lo:lo + _WRITE_BATCH], strict=True):
                cells.append([fid, offset, len(blob), *row])
                offset += len(blob)
            entries = [[fid, *b] for fid, b in zip(fids, boxes[lo:lo + _WRITE_BATCH],
                                                   strict=True)
                       if not any(np.isnan(b))]   # empty geometries have no entry
            try:
                packed = json.dumps(cells, allow_nan=False)
            except ValueError:   # an infinite float, which JSON cannot carry: row by row
                con.executemany(
                    f"INSERT INTO {layer} (fid, geom, {', '.join(names)}) VALUES "
                    f"({', '.join('?' * (len(names) + 2))})",
                    [(fid, blob, *row) for fid, _, _, *row in cells
                     for blob in [blobs[fid - first]]])
            else:
                con.execute(insert, (b"".join(part), packed))
            if rtree in schema and entries:
                con.execute(
                    f"INSERT INTO {rtree} SELECT value ->> 0, value ->> 1, value ->> 3, "
                    "value ->> 2, value ->> 4 FROM json_each(?)", (json.dumps(entries),))
        if trigger in schema:
            con.execute(schema[trigger])
        return int(first)

    @staticmethod
    def _next_fid(con: sqlite3.Connection, layer: str) -> int:
        """The fid ``AUTOINCREMENT`` gives next: one past the largest ever used."""
        (first,) = con.execute(
            f"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), "
            f"coalesce((SELECT max(fid) FROM {layer}), 0)) + 1", (layer,)).fetchone()
        return int(first)

    def _precompute(self, layer: LayerName, features: gpd.GeoDataFrame, geoms: np.ndarray,
                    update: LedgerUpdate | None) -> _Precomputed | None:
        """The ledger change of an import, computed on a snapshot before the write lock.

        Python-heavy work inside the write transaction would hold every other writer up
        (and crawl when other threads want the GIL); here it runs beside them.
        """
        if update is None or not len(geoms):
            return None
        with self._connect() as con:
            con.execute("BEGIN")
            try:
                live, crs = gpkg_ledger.state(con)
                if not live:
                    return None
                if crs is None:   # the first features: agree on a CRS with concurrent imports
                    con.execute("ROLLBACK")
                    crs = self._claim_ledger_crs(equal_area_crs(gpd.GeoSeries(geoms,
                                                                              crs=self._crs)))
                    con.execute("BEGIN")
                first = self._next_fid(con, layer)
                tops = {t: int(con.execute(f"SELECT coalesce(max(fid), 0) FROM {t}").fetchone()[0])
                        for t in COLUMNS}
                tops["retractions"] = _retractions(con)
                pending = gpd.GeoDataFrame(features.drop(columns="geometry"), geometry=geoms,
                                           crs=self._crs)
                pending["import_id"] = -1
                pending["row"] = np.arange(first, first + len(geoms), dtype=np.int64)
                near = gpkg_ledger.Neighbourhood(con, self._crs, crs, _wkb_from_blob,
                                                 pending=(layer, pending))
                change = update(near, layer, pending["row"].to_numpy(), None)
                return _Precomputed(crs, first, tops, change)
            finally:
                con.execute("ROLLBACK")

    def _claim_ledger_crs(self, crs: pyproj.CRS) -> pyproj.CRS | None:
        """Set the ledger's CRS to ``crs`` unless one is set already: the CRS now stored."""
        with self._writing() as con:
            live, stored = gpkg_ledger.state(con)
            if live and stored is None:
                gpkg_ledger.set_state(con, crs)
                return crs
            return stored

    def _update_ledger(self, con: sqlite3.Connection, layer: LayerName, fids: np.ndarray,
                       import_id: int, update: LedgerUpdate | None,
                       pre: _Precomputed | None = None,
                       removed: tuple[LayerName, gpd.GeoDataFrame] | None = None) -> None:
        """Keep a live ledger true to the features just written (see :meth:`Store.add`)."""
        live, crs = gpkg_ledger.state(con)
        if not live:
            return
        if update is None:
            log.info("%s: features added without a ledger update; the stored ledger is "
                     "dropped until `planner rebuild-ledger`", self.path.name)
            gpkg_ledger.set_state(con, crs, live=False)
            return
        if not len(fids) and removed is None:
            return
        first = int(fids[0]) if len(fids) else 0
        if removed is None and pre is not None and pre.crs is not None and crs is not None and \
                pre.crs.equals(crs) and not _retracted_since(con, pre) and \
                not gpkg_ledger.landed_near(con, {t: pre.tops[t] for t in COLUMNS},
                                            (layer, first, first + len(fids)), pre.change.boxes):
            change = pre.change.shifted(layer, pre.first, first - pre.first)
        else:
            near = gpkg_ledger.Neighbourhood(con, self._crs, crs, _wkb_from_blob)
            change = update(near, layer, fids, removed)
        gpkg_ledger.replace_rows(con, change.rows, import_id, change.gone)
        if crs is None and (len(change.rows.hazard_row) or len(change.rows.release_row)):
            gpkg_ledger.set_state(con, change.crs)   # the first features measured fix the CRS

    # -- documents drawn from the store ---------------------------------------------------
    _DOCUMENTS_DDL = ("CREATE TABLE IF NOT EXISTS documents (fid INTEGER PRIMARY KEY "
                      "AUTOINCREMENT, kind TEXT NOT NULL, drawn_at TEXT NOT NULL, "
                      "store_version TEXT NOT NULL, arguments TEXT NOT NULL, figures TEXT NOT "
                      "NULL, figures_sha256 TEXT NOT NULL, file_name TEXT)")

    def record_document(self, entry: dict[str, Any]) -> int:
        with self._writing() as con:
            con.execute(self._DOCUMENTS_DDL)
            con.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, "
                        "identifier, description) VALUES ('documents', 'attributes', "
                        "'documents', 'what each document was drawn from')")
            cur = con.execute(
                f"INSERT INTO documents ({', '.join(DOCUMENT_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(DOCUMENT_COLUMNS))})",
                [entry[c] for c in DOCUMENT_COLUMNS])
            return int(cur.lastrowid or 0)

    def documents(self) -> pd.DataFrame:
        with self._connect() as con:
            if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'documents'").fetchone():
                df = pd.read_sql_query("SELECT fid AS document_id, "
                                       f"{', '.join(DOCUMENT_COLUMNS)} FROM documents "
                                       "ORDER BY fid", con)
                return df
        return pd.DataFrame(columns=["document_id", *DOCUMENT_COLUMNS])

    # -- upgrades ------------------------------------------------------------------------
    def upgrade(self) -> list[str]:
        """Bring a store made by an older planner to today's schema, losing nothing.

        Adds the columns and layers of retractions, and lets ``hazards`` hold several
        versions of one hazard (its ``hazard_id`` was UNIQUE: the table is rebuilt with the
        same rows, keys and spatial index). Returns what was done (empty: nothing to do).
        """
        done: list[str] = []
        with self._writing() as con:
            if not gpkg_history.has_archive(con):
                gpkg_history.ensure_schema(con, self._srs_id)
                done.append("retractions: imports record who retracted what and why; "
                            "hazards_retracted and releases_retracted keep their features")
            if _unique_hazard_ids(con):
                _rebuild_hazards_table(con)
                done.append("hazards: a hazard can now have several versions (re-surveys)")
            if gpkg_history.ensure_versions_view(con, self._srs_id):
                done.append("hazard_versions: a layer of every version of every hazard")
        return done

    # -- the stored ledger ---------------------------------------------------------------
    def ledger_state(self) -> tuple[bool, pyproj.CRS | None]:
        with self._connect() as con:
            return gpkg_ledger.state(con)

    def read_ledger(self, since: int | None = None) -> StoredLedger | None:
        if since is None and self.ledger_state()[0]:
            with self._connect() as con:
                fast = gpkg_ledger.read_with_arrow(str(self.path), con, self.location)
            if fast is not None:
                return fast
        with self._connect() as con:
            con.execute("BEGIN")   # one snapshot for the three tables and the layers
            try:
                return gpkg_ledger.read(con, self.location, since)
            finally:
                con.execute("ROLLBACK")

    def write_ledger(self, rows: LedgerRows, crs: pyproj.CRS, version: tuple[int, int]
                     ) -> bool:
        with self._writing() as con:
            if _version(con) != tuple(version):
                return False
            gpkg_ledger.write_all(con, rows, crs)
        return True

    # -- users of the web service --------------------------------------------------------
    _USERS_DDL = ("CREATE TABLE IF NOT EXISTS users (fid INTEGER PRIMARY KEY AUTOINCREMENT, "
                  "name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, token_sha256 TEXT NOT NULL "
                  "UNIQUE, created_at TEXT NOT NULL)")

    def add_user(self, name: str, role: str, token_sha256: str) -> None:
        try:
            with self._writing() as con:
                con.execute(self._USERS_DDL)
                con.execute("INSERT INTO users (name, role, token_sha256, created_at) VALUES "
                            "(?, ?, ?, ?)", (name, role, token_sha256,
                                             dt.datetime.now(dt.UTC).isoformat(
                                                 timespec="seconds")))
        except sqlite3.IntegrityError as exc:
            raise InputError(f"a user called {name!r} exists already; remove it first "
                             "(`planner users remove`) or choose another name") from exc

    @staticmethod
    def _has_users(con: sqlite3.Connection) -> bool:
        """Whether the users table exists (it is made by the first ``add_user``)."""
        return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                           "name = 'users'").fetchone() is not None

    def users(self) -> list[dict[str, Any]]:
        with self._connect() as con:
            if not self._has_users(con):
                return []
            return [{"name": n, "role": r, "created_at": c} for n, r, c in con.execute(
                "SELECT name, role, created_at FROM users ORDER BY name")]

    def user_by_token(self, token_sha256: str) -> dict[str, Any] | None:
        with self._connect() as con:
            if not self._has_users(con):
                return None
            row = con.execute("SELECT name, role FROM users WHERE token_sha256 = ?",
                              (token_sha256,)).fetchone()
        return None if row is None else {"name": row[0], "role": row[1]}

    def remove_user(self, name: str) -> bool:
        with self._writing() as con:
            con.execute(self._USERS_DDL)
            return con.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def version(self) -> tuple[int, int]:
        with self._connect() as con:
            return _version(con)

    @staticmethod
    def _extend_contents_bounds(con: sqlite3.Connection, layer: str, b: np.ndarray) -> None:
        con.execute(
            "UPDATE gpkg_contents SET min_x = min(coalesce(min_x, :a), :a), min_y = "
            "min(coalesce(min_y, :b), :b), max_x = max(coalesce(max_x, :c), :c), max_y = "
            "max(coalesce(max_y, :d), :d), last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now') "
            "WHERE table_name = :t",
            {"a": float(b[0]), "b": float(b[1]), "c": float(b[2]), "d": float(b[3]), "t": layer})
