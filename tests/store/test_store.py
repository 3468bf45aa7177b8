from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely

from planner.errors import DuplicateImportError, InputError, StoreError, StoreNotFoundError
from planner.store import ImportRecord, Store, open_store
from tests.conftest import hazards_frame, sq


def record(sha: str = "abc", rows: int = 2) -> ImportRecord:
    return ImportRecord("hazards", "f.gpkg", sha, None, None, rows, [],
                        dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


def multi(frame):  # type: ignore[no-untyped-def]
    frame = frame.copy()
    frame["geometry"] = [shapely.MultiPolygon([g]) for g in frame.geometry]
    frame["source_file"] = "f.gpkg"
    frame["munition_type"] = None
    frame["import_id"] = 0
    return frame


def test_store_opens_in_gdal_as_ordinary_layers_with_spatial_index(
        make_store: Callable[..., Store]) -> None:
    store = make_store()
    store.add("hazards", multi(hazards_frame([sq(0, 0), sq(500, 0)])), record())
    path = Path(store.location)
    layers = dict(pyogrio.list_layers(path))
    assert layers["hazards"] == "MultiPolygon" and layers["releases"] == "MultiPolygon"
    assert "imports" in layers and "programme" in layers
    info = pyogrio.read_info(path, layer="hazards")
    assert info["crs"] == "EPSG:3035" and info["features"] == 2
    assert info["capabilities"]["fast_spatial_filter"]  # the R-tree is there and used
    b = sq(500, 0).bounds
    hit = pyogrio.read_dataframe(path, layer="hazards", bbox=(b[0] + 1, b[1] + 1, b[2], b[3]))
    assert list(hit["hazard_id"]) == ["H2"]
    assert str(info["dtypes"][list(info["fields"]).index("recorded_on")]).startswith(
        "datetime64")


def test_round_trip_keeps_ids_dates_and_geometry(any_store: Callable[..., Store]) -> None:
    store = any_store()
    frame = multi(hazards_frame([sq(0, 0)], [dt.date(2012, 2, 29)]))
    store.add("hazards", frame, record())
    got = store.read("hazards")
    assert got["recorded_on"].iloc[0].date() == dt.date(2012, 2, 29)
    assert got.geometry.iloc[0].equals(frame.geometry.iloc[0])
    assert bool(got["found_after_eif"].iloc[0]) is True


def test_a_failing_import_leaves_nothing(any_store: Callable[..., Store]) -> None:
    store = any_store()
    store.add("hazards", multi(hazards_frame([sq(0, 0)])), record("one", 1))
    clash = multi(hazards_frame([sq(0, 0), sq(200, 0)]))  # H1 exists already
    with pytest.raises(InputError, match=r"already in the store.*nothing was added"):
        store.add("hazards", clash, record("two"))
    assert len(store.read("hazards")) == 1 and len(store.imports()) == 1
    with pytest.raises(DuplicateImportError):
        store.add("hazards", multi(hazards_frame([sq(900, 0)])).assign(hazard_id=["Z"]),
                  record("one", 1))
    assert len(store.read("hazards")) == 1


def test_missing_and_foreign_stores(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="planner init"):
        open_store(tmp_path / "nope.gpkg")
    other = tmp_path / "other.gpkg"
    hazards_frame([sq(0, 0)]).to_file(other, engine="pyogrio")
    with pytest.raises(StoreError, match="planner init"):
        open_store(other)


def test_settings_round_trip(any_store: Callable[..., Store]) -> None:
    store = any_store()
    store.set_settings({"extensions": [{"years": 5}]})
    assert store.programme().settings == {"extensions": [{"years": 5}]}


def test_read_can_reproject_as_it_reads(demo_store: Store) -> None:
    from planner.areas import equal_area_crs

    stored = demo_store.read("releases")
    crs = equal_area_crs(stored)
    read = demo_store.read("releases", crs=crs)
    assert read.crs.is_exact_same(crs)
    expected = stored.to_crs(crs)
    assert len(read) == len(stored)
    assert shapely.equals_exact(np.asarray(read.geometry.values),
                                np.asarray(expected.geometry.values), tolerance=1e-6).all()
    assert (read["release_id"] == stored["release_id"]).all()


def _postgis_url() -> str:
    from tests.conftest import new_postgis_database, postgres_url

    admin = postgres_url()
    if admin is None:
        pytest.skip("NO POSTGRESQL: PostGIS store tests did not run. Set "
                    "PLANNER_TEST_POSTGRES_URL or run scripts/test.sh.")
    return new_postgis_database(admin)


def test_copy_gpkg_to_postgis_and_back_is_lossless(demo_store: Store, tmp_path: Path) -> None:
    from planner.accounting import ledger_from_store
    from planner.store import copy_store

    demo_store.set_settings(demo_store.programme().settings)
    url = _postgis_url()
    pg = copy_store(demo_store, url)
    back = copy_store(open_store(url), tmp_path / "back.gpkg")
    for store in (pg, back):
        assert store.programme() == demo_store.programme()
        a, b = demo_store.imports(), store.imports()
        cols = ["import_id", "layer", "file_name", "sha256", "rows", "imported_at"]
        assert a[cols].astype(str).equals(b[cols].astype(str))
        for layer in ("hazards", "releases"):
            x, y = demo_store.read(layer), store.read(layer)
            assert x.drop(columns="geometry").astype(str).equals(
                y.drop(columns="geometry").astype(str))
            assert shapely.equals_exact(np.asarray(x.geometry.values),
                                        np.asarray(y.geometry.values), tolerance=1e-9).all()
    at = dt.date(2024, 12, 31)
    want = ledger_from_store(demo_store).status(at).remaining_m2
    assert ledger_from_store(pg).status(at).remaining_m2 == pytest.approx(want, abs=1e-6)
    # a later import on the copy continues after the copied ids
    new_id = pg.add("hazards", multi(hazards_frame([sq(0, 0)])).to_crs(pg.programme().crs)
                    .assign(hazard_id=["NEW-1"]), record("new-sha"))
    assert new_id == int(demo_store.imports()["import_id"].max()) + 1


def test_postgis_users_version_and_missing_store() -> None:
    from planner.programme import Programme
    from planner.store import create_store
    from planner.store.postgis import PostGISStore
    from planner.web.users import add_user, authenticate

    url = _postgis_url()
    with pytest.raises(StoreNotFoundError, match="planner init"):
        PostGISStore(url)
    store = create_store(url, Programme("P", dt.date(2011, 8, 1), "EPSG:32648"))
    with pytest.raises(StoreError, match="exists in this database"):
        create_store(url, Programme("P", dt.date(2011, 8, 1), "EPSG:32648"))
    token = add_user(store, "ana", "editor")
    assert authenticate(open_store(url), token).role == "editor"  # type: ignore[union-attr]
    with pytest.raises(InputError, match="exists already"):
        add_user(store, "ana", "viewer")
    assert store.version() == (0, 0) and store.remove_user("ana")
    with pytest.raises(StoreError, match="cannot connect"):
        open_store("postgresql://nobody@127.0.0.1:1/none")


def _import_one(args: tuple[str, int]) -> int:
    """Run in a separate process: import one GeoJSON into the PostGIS store."""
    from planner.ingest import IngestOptions, ingest

    url, k = args
    frame = hazards_frame([sq(300 * i, 5000 * k) for i in range(25)])
    frame["hazard_id"] = [f"P{k}-{i:02d}" for i in range(25)]
    path = Path(f"/tmp/planner-conc-{k}-{abs(hash(url)) % 10**8}.geojson")
    frame.to_crs(4326).to_file(path, driver="GeoJSON", engine="pyogrio")
    try:
        return ingest(open_store(url), "hazards", path, IngestOptions()).import_id
    finally:
        path.unlink(missing_ok=True)


def test_8_processes_import_into_one_postgis_store() -> None:
    import multiprocessing as mp

    from planner.accounting import ledger_from_store
    from planner.programme import Programme
    from planner.store import create_store

    url = _postgis_url()
    store = create_store(url, Programme("P", dt.date(2011, 8, 1), "EPSG:3035"))
    with mp.get_context("spawn").Pool(8) as pool:
        ids = pool.map(_import_one, [(url, k) for k in range(8)])
    assert sorted(ids) == list(range(1, 9))
    assert len(store.read("hazards")) == 200 and store.version() == (8, 8)
    s = ledger_from_store(store).status(dt.date(2024, 12, 31))
    assert s.known_m2 == pytest.approx(200 * 10_000, rel=1e-6)


def test_attributes_and_window_reads(any_store: Callable[..., Store]) -> None:
    store = any_store()
    frame = multi(hazards_frame([sq(0, 0), sq(1000, 0), sq(5000, 5000, 10)]))
    store.add("hazards", frame, record(rows=3))
    att = store.attributes("hazards", ["hazard_id", "recorded_on"])
    assert list(att["hazard_id"]) == ["H1", "H2", "H3"]
    assert att["row"].is_monotonic_increasing and att["row"].is_unique
    assert att.loc[2, ["minx", "miny", "maxx", "maxy"]].tolist() == pytest.approx(
        list(sq(5000, 5000, 10).bounds))
    assert str(att.loc[0, "recorded_on"].date()) == "2010-01-01"
    with pytest.raises(InputError, match="no column"):
        store.attributes("hazards", ["depth_cm"])
    # the window meets the first two squares' boxes only
    x0, y0 = sq(0, 0).bounds[:2]
    got = store.read_window("hazards", (x0 + 50, y0 + 50, x0 + 1050, y0 + 60))
    assert list(got["hazard_id"]) == ["H1", "H2"]
    assert list(got["row"]) == list(att["row"][:2])
    assert shapely.equals_exact(got.geometry.values[0], frame.geometry.values[0], 1e-6)
    assert len(store.read_window("hazards", (x0 - 500, y0 - 500, x0 - 400, y0 - 400))) == 0
    # one import's features only
    second = store.add("hazards", multi(hazards_frame([sq(9000, 0)])).assign(
        hazard_id=["H9"]), record("other-sha", rows=1))
    assert list(store.read("hazards", import_id=second)["hazard_id"]) == ["H9"]
    assert len(store.read("hazards")) == 4


def _as_made_by_an_older_planner(path: Path) -> None:
    """Turn a store into the schema of the previous release: UNIQUE hazard ids, no
    retraction columns, archive layers, rejected layer or versions view."""
    import sqlite3

    from planner.layers import COLUMNS
    from planner.store.gpkg import _layer_table_sql, _register_st_functions

    con = sqlite3.connect(path, isolation_level=None)
    _register_st_functions(con)
    con.execute("BEGIN")
    for table in ("hazards_retracted", "releases_retracted", "hazard_versions", "rejected"):
        con.execute("DELETE FROM gpkg_geometry_columns WHERE table_name = ?", (table,))
        con.execute("DELETE FROM gpkg_contents WHERE table_name = ?", (table,))
    con.execute("DROP VIEW IF EXISTS hazard_versions")
    for table in ("hazards_retracted", "releases_retracted"):
        con.execute(f"DROP TABLE {table}")
    for column in ("retracted_at", "retracted_by", "retraction_reason"):
        con.execute(f"ALTER TABLE imports DROP COLUMN {column}")
    names = ", ".join(["fid", "geom", *(c.name for c in COLUMNS["hazards"])])
    keep = [sql for (sql,) in con.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'hazards' AND type IN ('trigger', "
        "'index') AND sql IS NOT NULL AND name != 'hazards_hazard_id'")]
    con.execute(_layer_table_sql("hazards", "old").replace("hazard_id TEXT NOT NULL",
                                                           "hazard_id TEXT NOT NULL UNIQUE"))
    con.execute(f"INSERT INTO old ({names}) SELECT {names} FROM hazards")
    con.execute("DROP TABLE hazards")
    con.execute("ALTER TABLE old RENAME TO hazards")
    for sql in keep:
        con.execute(sql)
    con.execute("COMMIT")
    con.close()


def test_an_older_store_upgrades_in_place_losing_nothing(demo_store: Store,
                                                         tmp_path: Path) -> None:
    import shutil

    import geopandas as gpd

    from planner.accounting import ledger_from_store
    from planner.ingest import ingest_resurvey

    path = tmp_path / "old.gpkg"
    shutil.copy(demo_store.location, path)  # type: ignore[attr-defined]
    _as_made_by_an_older_planner(path)
    old = open_store(path)
    at = dt.date(2024, 12, 31)
    before = ledger_from_store(old).status(at)
    rows_before = (len(old.read("hazards")), len(old.read("releases")), old.version())
    first = old.read("hazards").iloc[0]
    survey = tmp_path / "ts.geojson"
    gpd.GeoDataFrame({"hazard_id": [first["hazard_id"]], "status": ["CHA"]},
                     geometry=[first.geometry.buffer(-5)], crs=old.programme().crs).to_file(
        survey, driver="GeoJSON")
    with pytest.raises(StoreError, match="planner upgrade"):
        ingest_resurvey(old, survey, surveyed_on=dt.date(2025, 1, 1), method="reduced")
    done = old.upgrade()
    assert len(done) == 3 and old.upgrade() == []
    new = open_store(path)
    assert (len(new.read("hazards")), len(new.read("releases")), new.version()) == rows_before
    after = ledger_from_store(new).status(at)
    assert after.remaining_m2 == before.remaining_m2 and after.cleared_m2 == before.cleared_m2
    ingest_resurvey(new, survey, surveyed_on=dt.date(2025, 1, 1), method="reduced")
    assert len(new.read("hazards")) == rows_before[0] + 1
    assert pyogrio.read_info(path, layer="hazards")["features"] == rows_before[0] + 1
