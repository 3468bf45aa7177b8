"""Concurrent writers on one GeoPackage store: all land once, or are refused as busy.

The store is written by many threads of one server process (uploads) and by several
processes (CLI imports) at once, while others read it. These tests import distinct files
from N threads and from N processes, with readers running, and check that every import
lands exactly once, the row counts add up and the R-tree index holds one entry per feature;
and that a writer that cannot get the store within its wait bound gets ``StoreBusyError``
with nothing written, never a raw ``sqlite3.OperationalError``.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyogrio
import pytest
import shapely

from planner.errors import StoreBusyError
from planner.ingest import IngestOptions, ingest
from planner.programme import Programme
from planner.store import GeoPackageStore, ImportRecord, create_store, open_store
from tests.conftest import EIF, hazards_frame, sq

N_FEATURES = 1000


def _write_file(folder: Path, k: int, n: int = N_FEATURES) -> Path:
    """A distinct GeoJSON of ``n`` squares whose ids start with ``T{k}-``."""
    frame = hazards_frame([sq(150 * (i % 40), 150 * (i // 40) + 20_000 * k, 100)
                           for i in range(n)])
    frame["hazard_id"] = [f"T{k}-{i:04d}" for i in range(n)]
    path = folder / f"team_{k:02d}.geojson"
    frame.to_crs(4326).to_file(path, driver="GeoJSON", engine="pyogrio")
    return path


def _check_store(path: Path, files: int, n: int = N_FEATURES) -> None:
    """Every import landed once, the counts add up and the R-tree matches the features."""
    store = open_store(path)
    imports = store.imports()
    assert len(imports) == files and imports["sha256"].is_unique
    assert sorted(imports["rows"]) == [n] * files
    hazards = store.read("hazards")
    assert len(hazards) == files * n and hazards["hazard_id"].is_unique
    assert hazards.groupby("import_id").size().tolist() == [n] * files
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        fids = {r[0] for r in con.execute("SELECT fid FROM hazards")}
        boxed = {r[0] for r in con.execute("SELECT id FROM rtree_hazards_geom")}
        assert boxed == fids and len(boxed) == files * n
        triggers = {r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert {"rtree_hazards_geom_insert", "rtree_releases_geom_insert"} <= triggers
    con.close()
    # GDAL (so QGIS) opens the store and uses the index
    info = pyogrio.read_info(path, layer="hazards")
    assert info["features"] == files * n and info["capabilities"]["fast_spatial_filter"]


def _new_store(tmp_path: Path) -> Path:
    path = tmp_path / "conc.gpkg"
    create_store(path, Programme("Concurrency", EIF, "EPSG:3035"))
    return path


def _busy_python(stop: threading.Event) -> None:
    """Pure-Python work until ``stop``: what a server's other requests do between writes."""
    x = 0
    while not stop.is_set():
        x = (x * 31 + 7) % 1_000_003


def _readers(path: Path, stop: threading.Event, errors: list[BaseException],
             reads: list[float], busy: int = 0) -> list[threading.Thread]:
    """Two threads that read the whole hazards layer (reprojected) until ``stop``.

    With ``busy``, that many more threads run pure-Python work meanwhile, as the rest of
    a server does: a write transaction that needs the GIL once per row (or per R-tree
    trigger call) then crawls.
    """
    def read() -> None:
        store = open_store(path)
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                store.read("hazards", crs=4326)
                store.imports()
            except BaseException as exc:  # collected, asserted on by the test
                errors.append(exc)
                return
            reads.append(time.perf_counter() - t0)
    threads = [threading.Thread(target=read, daemon=True) for _ in range(2)]
    threads += [threading.Thread(target=_busy_python, args=(stop,), daemon=True)
                for _ in range(busy)]
    for t in threads:
        t.start()
    return threads


@pytest.mark.slow
def test_threads_import_distinct_files_at_once_and_all_land(tmp_path: Path) -> None:
    path = _new_store(tmp_path)
    n_files = 8
    files = [_write_file(tmp_path, k) for k in range(n_files)]
    stop, errors, reads = threading.Event(), [], []   # type: ignore[var-annotated]
    readers = _readers(path, stop, errors, reads, busy=3)
    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(n_files) as pool:
            results = list(pool.map(
                lambda f: ingest(open_store(path), "hazards", f, IngestOptions()), files))
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=60)
    elapsed = time.perf_counter() - t0
    assert errors == []
    assert sorted(r.import_id for r in results) == list(range(1, n_files + 1))
    _check_store(path, n_files)
    assert reads, "the readers never finished a read"
    # one import alone takes well under a second here; the writes are serialised, so the
    # whole lot must not take the minutes a GIL convoy inside the write transaction took
    assert elapsed < 60, f"{n_files} imports took {elapsed:.0f} s"


def _import_in_process(args: tuple[str, str]) -> int:
    """Run in a separate process: ingest one file into the GeoPackage store."""
    store, file = args
    return ingest(open_store(store), "hazards", file, IngestOptions()).import_id


@pytest.mark.slow
def test_processes_import_distinct_files_at_once_and_all_land(tmp_path: Path) -> None:
    path = _new_store(tmp_path)
    n_files = 6
    files = [_write_file(tmp_path, k) for k in range(n_files)]
    stop, errors, reads = threading.Event(), [], []   # type: ignore[var-annotated]
    readers = _readers(path, stop, errors, reads)
    try:
        with mp.get_context("spawn").Pool(n_files) as pool:
            ids = pool.map(_import_in_process, [(str(path), str(f)) for f in files])
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=60)
    assert errors == []
    assert sorted(ids) == list(range(1, n_files + 1))
    _check_store(path, n_files)


def _frame(prefix: str, n: int = 50):  # type: ignore[no-untyped-def]
    frame = hazards_frame([sq(150 * i, 0) for i in range(n)])
    frame["hazard_id"] = [f"{prefix}{i}" for i in range(n)]
    frame["geometry"] = [shapely.MultiPolygon([g]) for g in frame.geometry]
    frame["source_file"] = f"{prefix}.geojson"
    frame["munition_type"] = None
    frame["import_id"] = 0
    return frame


def _record(sha: str, n: int = 50) -> ImportRecord:
    return ImportRecord("hazards", f"{sha}.geojson", sha, None, None, n, [],
                        dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


def test_a_writer_past_its_wait_gets_store_busy_and_writes_nothing(tmp_path: Path) -> None:
    path = _new_store(tmp_path)
    store = open_store(path)
    store.add("hazards", _frame("A"), _record("a"))
    # another program (QGIS editing, say) holds the write lock for 3 s
    foreign = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    foreign.execute("BEGIN IMMEDIATE")
    release = threading.Timer(3, lambda: foreign.execute("ROLLBACK"))
    release.start()
    try:
        assert isinstance(store, GeoPackageStore)
        store.write_wait = 0.5
        t0 = time.perf_counter()
        with pytest.raises(StoreBusyError, match=r"busy.*nothing was written.*again"):
            store.add("hazards", _frame("B"), _record("b"))
        assert time.perf_counter() - t0 < 2.5
    finally:
        release.join()
        foreign.close()
    assert len(store.read("hazards")) == 50 and len(store.imports()) == 1
    # once the other writer is gone, the same import lands
    store.add("hazards", _frame("B"), _record("b"))
    assert len(store.read("hazards")) == 100


def test_a_writer_queued_behind_planner_writers_past_its_wait_gets_store_busy(
        tmp_path: Path) -> None:
    path = _new_store(tmp_path)
    slow = GeoPackageStore(path)
    holding, go = threading.Event(), threading.Event()
    with slow._writing() as con:   # planner's own writer lock, held by this test
        con.execute("INSERT INTO programme (key, value) VALUES ('held', '1')")
        holding.set()
        impatient = GeoPackageStore(path, write_wait=0.3)
        with pytest.raises(StoreBusyError, match="busy with other imports"):
            impatient.add("hazards", _frame("C"), _record("c"))
        go.set()
    assert len(slow.read("hazards")) == 0 and len(slow.imports()) == 0
    assert holding.is_set() and go.is_set()


def test_the_write_transaction_never_calls_python_per_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The R-tree triggers' ST_* functions are Python: one GIL wait per call under load."""
    import planner.store.gpkg as store_module

    calls: list[str] = []
    register = store_module._register_st_functions

    def counting(con: sqlite3.Connection) -> None:
        register(con)
        for name in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
            con.create_function(name, 1, lambda b, n=name: calls.append(n) or (
                0 if n == "ST_IsEmpty" else {"ST_MinX": 0, "ST_MaxX": 1, "ST_MinY": 2,
                                             "ST_MaxY": 3}[n]), deterministic=True)

    monkeypatch.setattr(store_module, "_register_st_functions", counting)
    store = open_store(_new_store(tmp_path))
    store.add("hazards", _frame("P", 500), _record("p", 500))
    assert calls == []
    monkeypatch.undo()
    _check_store(Path(store.location), 1, 500)


def test_the_rtree_trigger_is_kept_for_other_writers(tmp_path: Path) -> None:
    path = _new_store(tmp_path)
    with sqlite3.connect(path) as con:
        before = con.execute("SELECT sql FROM sqlite_master WHERE name = "
                             "'rtree_hazards_geom_insert'").fetchone()
    con.close()
    store = open_store(path)
    store.add("hazards", _frame("Q", 20), _record("q", 20))
    with sqlite3.connect(path) as con:
        after = con.execute("SELECT sql FROM sqlite_master WHERE name = "
                            "'rtree_hazards_geom_insert'").fetchone()
    con.close()
    assert after == before and after is not None
    # another program appends a feature with plain SQL: the trigger indexes it
    from planner.store.gpkg import _gpkg_blob, _register_st_functions

    g = shapely.MultiPolygon([sq(90_000, 0)])
    with sqlite3.connect(path) as con:
        _register_st_functions(con)
        con.execute("INSERT INTO hazards (geom, hazard_id, status, recorded_on, "
                    "found_after_eif, source_file, import_id) VALUES (?, 'OTHER-1', 'SHA', "
                    "'2020-01-01', 1, 'qgis', 1)", (_gpkg_blob(g, shapely.to_wkb(g), 3035),))
        (n,) = con.execute("SELECT count(*) FROM rtree_hazards_geom").fetchone()
        (box,) = con.execute("SELECT minx FROM rtree_hazards_geom r JOIN hazards h ON "
                             "h.fid = r.id WHERE h.hazard_id = 'OTHER-1'").fetchone()
    con.close()
    assert n == 21 and box == pytest.approx(sq(90_000, 0).bounds[0], abs=1)


def test_the_store_is_one_file_in_its_usual_journal_mode_when_closed(tmp_path: Path) -> None:
    path = _new_store(tmp_path)
    store = open_store(path)
    store.add("hazards", _frame("W"), _record("w"))

    def single_file_and_mode() -> tuple[list[str], str]:
        names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("conc"))
        with sqlite3.connect(path) as con:
            mode = con.execute("PRAGMA journal_mode").fetchone()[0]
        con.close()
        return names, mode

    assert single_file_and_mode() == (["conc.gpkg"], "delete")
    # with a reader connected through the write, the header stays WAL, but once closed
    # the store is still one file, and the next lone write puts it back
    reader = sqlite3.connect(path)
    reader.execute("SELECT count(*) FROM hazards").fetchone()
    store.add("hazards", _frame("X"), _record("x"))
    reader.close()
    names, mode = single_file_and_mode()
    assert names == ["conc.gpkg"] and mode in {"wal", "delete"}
    store.add("hazards", _frame("Y"), _record("y"))
    assert single_file_and_mode() == (["conc.gpkg"], "delete")
    assert len(pyogrio.read_dataframe(path, layer="hazards")) == 150


def test_values_json_cannot_carry_are_still_written(tmp_path: Path) -> None:
    from tests.conftest import releases_frame

    path = _new_store(tmp_path)
    store = open_store(path)
    frame = releases_frame([sq(0, 0), sq(200, 0)], [dt.date(2020, 1, 1)] * 2,
                           ["cleared", "cleared"])
    frame["geometry"] = [shapely.MultiPolygon([g]) for g in frame.geometry]
    for c, v in {"hazard_id": None, "organisation": "Ünïcode \"quoted\" 🙂",
                 "items_destroyed": 3, "source_file": "r.gpkg", "import_id": 0}.items():
        frame[c] = v
    frame["depth_cm"] = [float("inf"), 0.1 + 0.2]
    store.add("releases", frame, ImportRecord("releases", "r.gpkg", "r", None, None, 2, [],
                                              dt.datetime(2024, 1, 1, tzinfo=dt.UTC)))
    got = store.read("releases")
    assert got["depth_cm"].tolist() == [float("inf"), 0.1 + 0.2]
    assert got["organisation"].tolist() == ["Ünïcode \"quoted\" 🙂"] * 2
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT count(*) FROM rtree_releases_geom").fetchone() == (2,)
    con.close()
