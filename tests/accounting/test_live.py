"""The ledger that lives in the store: incremental updates equal a cold build, on both stores.

Every import updates only the components it touches; these tests check that any sequence of
imports gives, row for row, the ledger a cold build of the final store gives (to 1e-6 m²),
on GeoPackage and PostGIS, with concurrent imports, and that figures read from the stored
rows are those of the geometry.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.accounting import ledger_from_store, ledger_with, period_ends
from planner.accounting import live as live_module
from planner.accounting.live import rebuild_ledger, stored_ledger
from planner.errors import InputError, NotFoundError
from planner.ingest import retract_import
from planner.programme import Programme
from planner.store import ImportRecord, Retraction, Store, copy_store, create_store
from tests.conftest import EIF, X0, Y0, fill_store, hazards_frame, releases_frame, sq

D = dt.date
FIGURES = ["baseline_m2", "discovered_m2", "cancelled_m2", "reduced_m2", "cleared_m2",
           "remaining_m2"]


def rows_of(store: Store) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The stored rows, keyed and sorted, without the ``changed_by`` bookkeeping."""
    stored = store.read_ledger()
    assert stored is not None, "the store has no live ledger"
    h = stored.hazards.set_index("row")[["area_m2", "raw_area_m2"]]
    r = stored.releases.set_index("row")[["area_m2", "raw_area_m2"]]
    o = stored.overlaps.set_index(["hazard_row", "release_row"]).sort_index()
    return h, r, o


def assert_same_rows(a: Store, b: Store | None = None) -> None:
    """The incremental rows of ``a`` equal those of a cold build (of ``b``, else of ``a``)."""
    before = rows_of(a)
    target = b if b is not None else a
    rebuild_ledger(target, processes=1)
    after = rows_of(target)
    for x, y, what in zip(before, after, ("hazard pieces", "release pieces", "overlaps"),
                          strict=True):
        assert list(x.index) == list(y.index), f"{what}: not the same features"
        gap = np.abs(x.to_numpy() - y.to_numpy()).max(initial=0.0)
        assert gap <= 1e-6, f"{what}: incremental and cold build differ by {gap} m²"


# -- any sequence of imports -------------------------------------------------------------------
_cell = st.integers(0, 6)
_box = st.tuples(_cell, _cell, st.integers(1, 3), st.integers(1, 3))
_day = st.integers(0, 4).map(lambda k: D(2010, 1, 1) + dt.timedelta(days=400 * k))
_import = st.tuples(st.sampled_from(["hazards", "releases"]),
                    st.lists(st.tuples(_box, _day, st.sampled_from(["cleared", "reduced",
                                                                    "cancelled"])),
                             min_size=1, max_size=4))


def _geom(box: tuple[int, int, int, int]) -> shapely.Geometry:
    """Boxes on a 50 m grid: they overlap, touch along edges, nest and repeat.

    1 km off (X0, Y0), the false origin of EPSG:3035, where PROJ's inverse projection
    places a vertex 1e-4 m off (a box with a corner there measures 0.02 m² short).
    """
    x, y, w, h = box
    x0, y0 = X0 + 1000, Y0 + 1000
    return shapely.box(x0 + 50 * x, y0 + 50 * y, x0 + 50 * (x + w), y0 + 50 * (y + h))


def _apply(store: Store, imports: list[tuple[str, list]]) -> None:  # type: ignore[type-arg]
    empty_h, empty_r = hazards_frame([]), releases_frame([], [], [])
    for k, (layer, feats) in enumerate(imports):
        geoms = [_geom(b) for b, _, _ in feats]
        days = [d for _, d, _ in feats]
        if layer == "hazards":
            frame = hazards_frame(geoms, days)
            frame["hazard_id"] = [f"H{k}-{i}" for i in range(len(feats))]
            fill_store(store, frame, empty_r, tag=str(k))
        else:
            frame = releases_frame(geoms, days, [m for _, _, m in feats])
            frame["release_id"] = [f"R{k}-{i}" for i in range(len(feats))]
            fill_store(store, empty_h, frame, tag=str(k))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(imports=st.lists(_import, min_size=1, max_size=6),
       retracted=st.lists(st.integers(1, 6), max_size=3, unique=True))
def test_any_sequence_of_imports_and_retractions_gives_the_cold_build(
        tmp_path_factory: pytest.TempPathFactory,
        imports: list[tuple[str, list]], retracted: list[int]) -> None:  # type: ignore[type-arg]
    folder = tmp_path_factory.mktemp("seq")
    store = create_store(folder / "s.gpkg", Programme("P", EIF, "EPSG:3035"))
    _apply(store, imports)
    for import_id in retracted:
        if import_id <= len(imports):
            retract_import(store, import_id, reason="test", by="hypothesis")
    assert_same_rows(store)


def test_a_process_pool_and_a_dask_cluster_give_the_rows_of_one_process(
        make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store()
    hz = [sq(60 * (i % 7), 60 * (i // 7), 100) for i in range(35)]
    rl = [sq(45 * (i % 9), 45 * (i // 9), 60) for i in range(40)]
    fill_store(store, hazards_frame(hz), releases_frame(
        rl, [D(2012, 1, 1) + dt.timedelta(days=30 * i) for i in range(40)],
        ["cleared", "reduced", "cancelled", "cleared"] * 10))
    one = rows_of(store)
    monkeypatch.setattr(live_module, "_POOL_MIN_FEATURES", 0)
    rebuild_ledger(store, processes=2)
    two = rows_of(store)
    from planner.accounting.tiles import local_client

    with local_client(2) as client:
        rebuild_ledger(store, client=client)
    on_dask = rows_of(store)
    for x, y, z in zip(one, two, on_dask, strict=True):
        assert list(x.index) == list(y.index) == list(z.index)
        assert np.abs(x.to_numpy() - y.to_numpy()).max(initial=0.0) <= 1e-6
        assert np.abs(x.to_numpy() - z.to_numpy()).max(initial=0.0) <= 1e-6


# -- both stores, concurrency, stores without a ledger -------------------------------------------
def _scenario(store: Store) -> None:
    _apply(store, [
        ("hazards", [((0, 0, 3, 3), D(2010, 1, 1), "cleared"),
                     ((2, 2, 3, 3), D(2012, 1, 1), "cleared"),
                     ((5, 0, 1, 1), D(2010, 1, 1), "cleared")]),
        ("releases", [((1, 1, 2, 2), D(2013, 1, 1), "cleared"),
                      ((1, 1, 1, 1), D(2013, 1, 1), "cancelled"),
                      ((3, 0, 2, 1), D(2013, 1, 1), "reduced")]),
        ("hazards", [((1, 0, 4, 1), D(2014, 1, 1), "cleared")]),
        ("releases", [((0, 0, 6, 6), D(2015, 1, 1), "cancelled")]),
    ])


def test_postgis_keeps_the_same_rows_as_a_geopackage(any_store: Callable[..., Store]) -> None:
    store = any_store()
    _scenario(store)
    h, _, o = rows_of(store)
    # known on paper: hazards 9 + (9 - 1) + 1 cells of 2,500 m², then 2 more cells (to the
    # 2e-7 by which the GRS80 of EPSG:3035 and the WGS 84 of the ledger's CRS differ)
    assert h["area_m2"].sum() == pytest.approx(20 * 2500, rel=1e-6)
    assert len(o) > 0
    assert_same_rows(store)
    led = stored_ledger(store)
    assert led is not None
    s = led.status(D(2016, 1, 1))
    assert s.remaining_m2 == pytest.approx(0.0, abs=1e-3)   # everything cancelled by 2015
    assert s.cleared_m2 == pytest.approx(4 * 2500, rel=1e-6)


def test_concurrent_overlapping_imports_keep_the_ledger_true(tmp_path: Path) -> None:
    store = create_store(tmp_path / "c.gpkg", Programme("P", EIF, "EPSG:3035"))
    _apply(store, [("hazards", [((0, 0, 7, 7), D(2010, 1, 1), "cleared")])])
    batches = [[("releases", [((k % 5, k // 5, 2, 2), D(2012, 1, 1) + dt.timedelta(days=k),
                               "cleared")])] for k in range(12)]

    def run(k: int) -> None:
        # each thread writes its own import; all of them overlap the hazard and each other
        _, feats = batches[k][0]
        frame = releases_frame([_geom(b) for b, _, _ in feats], [d for _, d, _ in feats],
                               [m for _, _, m in feats])
        frame["release_id"] = [f"C{k}"]
        fill_store(store, hazards_frame([]), frame, tag=f"c{k}")
    threads = [threading.Thread(target=run, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.imports()) == 13
    assert_same_rows(store)


def test_a_copy_keeps_the_ledger_and_a_store_without_one_rebuilds_it(
        demo_store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    at = D(2024, 12, 31)
    copy = copy_store(demo_store, tmp_path / "copy.gpkg")
    assert copy.ledger_state() == (True, demo_store.ledger_state()[1])
    assert abs(ledger_with(copy).status(at).remaining_m2
               - ledger_with(demo_store).status(at).remaining_m2) <= 1e-6
    # features added without an update (as by an older planner) drop the stored ledger
    extra = hazards_frame([_geom((0, 0, 2, 2))], [D(2023, 1, 1)])
    extra = extra.assign(geometry=[shapely.MultiPolygon([g]) for g in extra.geometry],
                         source_file="x", import_id=0, munition_type=None)
    copy.add("hazards", extra.to_crs(copy.programme().crs),
             ImportRecord("hazards", "x.gpkg", "sha-x", None, None, 1, [],
                          dt.datetime(2024, 1, 1)))
    assert copy.ledger_state()[0] is False and copy.read_ledger() is None
    with caplog.at_level("WARNING"):
        built = ledger_with(copy).status(at)
    assert "rebuild-ledger" in caplog.text
    steps: list[str] = []
    rebuild_ledger(copy, progress=lambda step, frac: steps.append(step))
    assert steps[0].startswith("reading") and steps[-1] == "done"
    stored = ledger_with(copy).status(at)
    assert abs(stored.remaining_m2 - built.remaining_m2) <= 1.0
    assert stored.hazard_count == built.hazard_count == 201
    assert copy.ledger_state()[0] is True


def test_demo_figures_from_stored_rows_equal_the_geometry(demo_store: Store) -> None:
    stored = stored_ledger(demo_store)
    assert stored is not None
    built = ledger_from_store(demo_store)
    dates = period_ends(D(2008, 1, 1), D(2026, 12, 31))
    a, b = stored.series(dates), built.series(dates)
    assert (a[FIGURES] - b[FIGURES]).abs().to_numpy().max() <= 1.0
    assert round(stored.status(D(2024, 12, 31)).remaining_m2) == 1352724


def test_a_rebuild_that_raced_an_import_starts_again(
        make_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store()
    _scenario(store)
    real = store.write_ledger
    calls: list[int] = []

    def racing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:   # an import lands between the reading and the writing
            frame = hazards_frame([_geom((6, 6, 1, 1))], [D(2016, 1, 1)])
            frame["hazard_id"] = ["LATE"]
            fill_store(store, frame, releases_frame([], [], []), tag="race")
        return real(*args, **kwargs)
    monkeypatch.setattr(store, "write_ledger", racing)
    rebuild_ledger(store, processes=1)
    assert len(calls) == 2
    h, _, _ = rows_of(store)
    assert len(h) == 5


def test_reading_only_the_changes_gives_the_whole_ledger(make_store: Callable[..., Store]
                                                         ) -> None:
    from planner.accounting.live import ledger_of, refreshed

    store = make_store()
    _scenario(store)
    first = refreshed(store, None)
    assert first is not None and first.since is None
    _apply(store, [("releases", [((2, 2, 2, 2), D(2016, 6, 1), "cleared")])])
    patched = refreshed(store, first)
    whole = store.read_ledger()
    assert patched is not None and whole is not None
    for a, b in ((patched.hazards, whole.hazards), (patched.releases, whole.releases)):
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    key = ["hazard_row", "release_row"]
    pd.testing.assert_frame_equal(patched.overlaps.sort_values(key, ignore_index=True),
                                  whole.overlaps.sort_values(key, ignore_index=True))
    assert refreshed(store, patched) is patched          # nothing new: nothing read again
    rebuild_ledger(store, processes=1)                     # another generation: read whole
    again = refreshed(store, patched)
    assert again is not None and again.generation != patched.generation
    at = D(2017, 1, 1)
    assert abs(ledger_of(again, EIF).status(at).remaining_m2
               - ledger_of(patched, EIF).status(at).remaining_m2) <= 1e-6



# -- corrections -------------------------------------------------------------------------------
def test_retracting_the_last_import_restores_the_figures_and_keeps_a_trail(
        any_store: Callable[..., Store]) -> None:
    from planner.accounting.known import ledger_as_known_on

    store = any_store()
    _scenario(store)
    at = D(2016, 1, 1)
    before = stored_ledger(store).status(at)   # type: ignore[union-attr]
    _apply(store, [("releases", [((0, 0, 3, 3), D(2014, 6, 1), "cleared")])])
    with_it = stored_ledger(store).status(at)   # type: ignore[union-attr]
    assert with_it.cleared_m2 > before.cleared_m2
    last = int(store.imports()["import_id"].max())
    done = retract_import(store, last, reason="the wrong team's file", by="ana")
    assert done["features"] == 1 and done["retracted_by"] == "ana"
    after = stored_ledger(store).status(at)   # type: ignore[union-attr]
    for f in ("baseline_m2", "discovered_m2", "cancelled_m2", "reduced_m2", "cleared_m2",
              "remaining_m2"):
        assert abs(getattr(after, f) - getattr(before, f)) <= 1e-6, f
    assert_same_rows(store)
    # the trail: the record says who, when and why; the feature is kept in the archive
    row = store.imports().set_index("import_id").loc[last]
    assert row["retracted_by"] == "ana" and row["retraction_reason"] == "the wrong team's file"
    kept = store.read("releases", retracted=True)
    assert list(kept["release_id"]) == ["R0-0"] and len(store.read("releases")) == 4
    # as known at an instant between the import and the retraction: with it; tomorrow:
    # without it (times are kept to the microsecond, stamped as each lands)
    imported = dt.datetime.fromisoformat(str(row["imported_at"]))
    assert imported < dt.datetime.fromisoformat(str(row["retracted_at"]))
    then = ledger_as_known_on(store, imported).status(at)
    assert abs(then.cleared_m2 - with_it.cleared_m2) <= 1e-6
    now = ledger_as_known_on(store, dt.date.today() + dt.timedelta(days=1)).status(at)
    assert abs(now.remaining_m2 - after.remaining_m2) <= 1e-6
    with pytest.raises(InputError, match="retracted already"):
        retract_import(store, last, reason="again", by="ana")
    with pytest.raises(NotFoundError, match="no import 99"):
        retract_import(store, 99, reason="x", by="ana")
    with pytest.raises(InputError, match="say why"):
        retract_import(store, 1, reason=" ", by="ana")


def test_a_corrected_file_replaces_an_import_in_one_transaction(
        any_store: Callable[..., Store]) -> None:
    store = any_store()
    _scenario(store)
    wrong = releases_frame([_geom((0, 0, 6, 6))], [D(2013, 1, 1)], ["cleared"])
    wrong["release_id"] = ["TEAM-1"]
    fill_store(store, hazards_frame([]), wrong, tag="wrong")
    bad_id = int(store.imports()["import_id"].max())
    fixed = releases_frame([_geom((0, 0, 1, 1))], [D(2013, 1, 1)], ["cleared"])
    fixed["release_id"] = ["TEAM-1"]            # the same id, now free
    fill_store(store, hazards_frame([]), fixed, tag="fixed",
               replaces=Retraction(bad_id, "drawn on the wrong sheet", "ana"))
    imports = store.imports().set_index("import_id")
    assert imports.loc[bad_id, "retracted_by"] == "ana"
    assert list(store.read("releases")["release_id"]).count("TEAM-1") == 1
    assert_same_rows(store)
    # a file of hazards cannot replace an import of releases; nothing changes
    with pytest.raises(InputError, match="cannot replace"):
        fill_store(store, hazards_frame([_geom((6, 6, 1, 1))]), releases_frame([], [], []),
                   tag="mixed", replaces=Retraction(int(imports.index.max()), "x", "ana"))
    assert len(store.imports()) == len(imports)


def test_a_retraction_between_an_imports_snapshot_and_its_write_is_seen(
        make_store: Callable[..., Store]) -> None:
    """The update computed before the write lock is not used when an import was retracted
    meanwhile (its features left: no window would show it)."""
    store = make_store()
    fill_store(store, hazards_frame([sq(1000, 1000, 100)], [D(2012, 1, 1)]).assign(
        hazard_id=["H1"]), releases_frame([], [], []), tag="1")
    fill_store(store, hazards_frame([sq(1050, 1000, 100)], [D(2013, 1, 1)]).assign(
        hazard_id=["H2"]), releases_frame([], [], []), tag="2")
    real = store._precompute  # type: ignore[attr-defined]

    def racing(*args, **kwargs):  # type: ignore[no-untyped-def]
        pre = real(*args, **kwargs)
        retract_import(store, 1, reason="wrong file", by="another writer")
        return pre
    store._precompute = racing  # type: ignore[attr-defined]
    fill_store(store, hazards_frame([]), releases_frame([sq(1025, 1000, 100)], [D(2014, 1, 1)],
                                                        ["cleared"]), tag="3")
    s = stored_ledger(store).status(D(2024, 12, 31))   # type: ignore[union-attr]
    assert s.remaining_m2 == pytest.approx(2_500, abs=1e-3)   # H2 alone, half cleared
    assert_same_rows(store)
