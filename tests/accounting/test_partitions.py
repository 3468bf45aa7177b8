"""Partitioned accounting with dask: the same figures as one process, borders counted once."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from planner.accounting import (
    build_ledger,
    ledger_from_store,
    ledger_partitioned,
    period_ends,
    plan_tiles,
)
from planner.accounting.tiles import local_client
from planner.errors import InputError
from planner.store import Store, copy_store
from tests.conftest import DATA, EIF, X0, Y0, fill_store, hazards_frame, releases_frame, sq

D = dt.date
YEARS = period_ends(D(2008, 1, 1), D(2024, 12, 31))
FIGURES = ["baseline_m2", "discovered_m2", "cancelled_m2", "reduced_m2", "cleared_m2",
           "released_m2", "remaining_m2"]


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with local_client(2) as c:
        yield c


def assert_same_series(a: pd.DataFrame, b: pd.DataFrame) -> None:
    diff = (a[FIGURES] - b[FIGURES]).abs().to_numpy().max()
    assert diff <= 1.0, f"partitioned and single-process series differ by {diff} m²"


@pytest.mark.parametrize("kind", ["gpkg", "postgis"])
def test_partitioned_series_equals_single_process(
        kind: str, demo_store: Store, client: Any) -> None:
    from tests.conftest import new_postgis_database, postgres_url

    store = demo_store
    if kind == "postgis":
        admin = postgres_url()
        if admin is None:
            pytest.skip("NO POSTGRESQL: the partitioned PostGIS test did not run; run "
                        "scripts/test.sh, which starts a throwaway cluster.")
        store = copy_store(demo_store, new_postgis_database(admin))
    single = ledger_from_store(store)
    steps: list[tuple[str, float]] = []
    parted = ledger_partitioned(store, tiles=9, client=client,
                                progress=lambda s, f: steps.append((s, f)))
    assert_same_series(single.series(YEARS), parted.series(YEARS))
    s, p = single.status(D(2024, 12, 31)), parted.status(D(2024, 12, 31))
    assert p.naive_hazard_sum_m2 == pytest.approx(s.naive_hazard_sum_m2, abs=1.0)
    assert p.outside_m2 == pytest.approx(s.outside_m2, abs=1.0)
    assert (p.hazard_count, p.release_count) == (s.hazard_count, s.release_count)
    assert single.breakdown(D(2024, 12, 31))["remaining_m2"].to_numpy() == pytest.approx(
        parted.breakdown(D(2024, 12, 31))["remaining_m2"].to_numpy(), abs=1.0)
    # nine tiles, progress told per tile, and the tile borders really cut through hazards
    assert sum(step.startswith("tile ") for step, _ in steps) == 9 and steps[-1] == ("done", 1.0)
    h = store.attributes("hazards", [])
    tiles = plan_tiles(h, store.attributes("releases", []), store.programme().pyproj_crs,
                       parted.crs, 9)
    boxes = shapely.box(h["minx"], h["miny"], h["maxx"], h["maxy"])
    to_ea = pyproj.Transformer.from_crs(store.programme().pyproj_crs, parted.crs,
                                        always_xy=True)
    boxes = shapely.transform(boxes, lambda xy: np.column_stack(to_ea.transform(*xy.T)))
    crossing = sum(int(shapely.crosses(shapely.box(*t.bounds).boundary, b))
                   for t in tiles for b in boxes)
    assert crossing > 10


def test_overlap_on_a_tile_border_is_counted_once(make_store: Callable[..., Store],
                                                  client: Any) -> None:
    # two squares overlapping by half, a third far away: the median cut of the centres
    # (x = 100) runs through the second square and the release
    hazards = hazards_frame([sq(0, 0), sq(50, 0), sq(1000, 0)])
    releases = releases_frame([shapely.box(X0 + 20, Y0, X0 + 130, Y0 + 100)],
                              [D(2015, 1, 1)], ["cleared"])
    store = fill_store(make_store(), hazards, releases)
    ledger = ledger_partitioned(store, tiles=2, client=client)
    s = ledger.status(D(2020, 1, 1))
    assert s.naive_hazard_sum_m2 == pytest.approx(30_000, abs=0.1)  # the naive sum
    assert s.known_m2 == pytest.approx(25_000, abs=0.1)              # the union
    assert s.cleared_m2 == pytest.approx(11_000, abs=0.1)
    assert s.remaining_m2 == pytest.approx(14_000, abs=0.1)
    # the second square was measured in two tiles, and its pieces add up
    assert ledger.hazard_area_m2 == pytest.approx([10_000, 5_000, 10_000], abs=0.1)


def test_antimeridian_store_in_degrees(make_store: Callable[..., Store], client: Any) -> None:
    # Fiji: squares of about 200 m on both sides of 180°, one straddling it as two parts
    def deg(lon: float, lat: float, d: float = 0.002) -> shapely.Polygon:
        return shapely.box(lon, lat, lon + d, lat + d)

    west = shapely.MultiPolygon([deg(179.999, -16.5, 0.001), deg(-180.0, -16.5, 0.001)])
    hazards = hazards_frame([deg(179.99, -16.5), west, deg(-179.995, -16.5),
                             deg(-179.994, -16.499)], crs=4326)
    releases = releases_frame([deg(179.9905, -16.5, 0.001), deg(-179.9945, -16.4995)],
                              [D(2013, 1, 1), D(2016, 1, 1)], ["cleared", "reduced"], crs=4326)
    store = fill_store(make_store(crs="EPSG:4326"), hazards, releases)
    single = build_ledger(hazards, releases, eif=EIF)
    parted = ledger_partitioned(store, tiles=4, client=client)
    assert single.crs.equals(parted.crs)
    assert_same_series(single.series(YEARS), parted.series(YEARS))
    assert parted.status(D(2020, 1, 1)).remaining_m2 > 100_000


def test_plan_tiles_cover_everything_without_overlap() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 5_000, 500), rng.normal(0, 2_000, 500)
    boxes = pd.DataFrame({"minx": x, "miny": y, "maxx": x + 50, "maxy": y + 80})
    crs = pyproj.CRS.from_epsg(3035)
    tiles = plan_tiles(boxes, boxes.iloc[:0], crs, crs, 7)
    rects = [shapely.box(*t.bounds) for t in tiles]
    assert len(rects) == 7
    assert sum(r.area for r in rects) == pytest.approx(shapely.union_all(rects).area)
    assert shapely.union_all(rects).contains(
        shapely.box(x.min(), y.min(), (x + 50).max(), (y + 80).max()))
    centres = shapely.points(x + 25, y + 40)
    counts = [int(shapely.contains(r, centres).sum()) for r in rects]
    assert max(counts) - min(counts) <= 2   # balanced on the hazards


def test_bad_requests_are_refused_before_any_work(make_store: Callable[..., Store]) -> None:
    store = fill_store(make_store(), hazards_frame([sq(0, 0)]), releases_frame(
        [sq(0, 0)], [D(2015, 1, 1)], ["cleared"]))
    with pytest.raises(InputError, match="at least 1"):
        ledger_partitioned(store, tiles=0, workers=1)
    with pytest.raises(InputError, match="at least 1"):
        ledger_partitioned(store, workers=0)


def test_own_local_cluster_when_no_client_is_given(make_store: Callable[..., Store]) -> None:
    store = fill_store(make_store(), hazards_frame([sq(0, 0), sq(50, 50)]), releases_frame(
        [sq(0, 0)], [D(2015, 1, 1)], ["cleared"]))
    s = ledger_partitioned(store, workers=1, tiles=3).status(D(2020, 1, 1))
    assert (s.known_m2, s.cleared_m2) == pytest.approx((17_500, 10_000), abs=0.1)


# -------------------------------------------------------------- accounting inside PostGIS

def _postgis_copy(store: Store) -> Store:
    from tests.conftest import new_postgis_database, postgres_url

    admin = postgres_url()
    if admin is None:
        pytest.skip("NO POSTGRESQL: the in-database accounting tests did not run; run "
                    "scripts/test.sh, which starts a throwaway cluster.")
    return copy_store(store, new_postgis_database(admin))


def test_database_ledger_equals_single_process(demo_store: Store) -> None:
    from planner.accounting.sql import ledger_in_database
    from planner.store.postgis import PostGISStore

    pg = _postgis_copy(demo_store)
    assert isinstance(pg, PostGISStore)
    steps: list[str] = []
    in_db = ledger_in_database(pg, sessions=3, progress=lambda s, f: steps.append(s))
    assert_same_series(ledger_from_store(pg).series(YEARS), in_db.series(YEARS))
    assert "cutting hazards into disjoint pieces" in steps and steps[-1] == "done"
    # the scratch tables are gone, the equal-area CRS is kept once under a user SRID
    with pg.engine.connect() as con:
        import sqlalchemy as sa

        left = con.execute(sa.text("SELECT count(*) FROM pg_tables WHERE tablename LIKE "
                                   "'planner_scratch%'")).scalar()
        srids = con.execute(sa.text("SELECT count(*) FROM spatial_ref_sys WHERE auth_name = "
                                    "'planner'")).scalar()
    assert left == 0 and srids == 1
    ledger_in_database(pg)
    with pg.engine.connect() as con:
        assert con.execute(sa.text("SELECT count(*) FROM spatial_ref_sys WHERE auth_name = "
                                   "'planner'")).scalar() == 1


def test_database_ledger_on_known_overlaps(make_store: Callable[..., Store]) -> None:
    from planner.accounting.sql import ledger_in_database

    hazards = hazards_frame([sq(0, 0), sq(50, 0), sq(1000, 0)],
                            [D(2010, 1, 1), D(2010, 1, 1), D(2014, 1, 1)])
    releases = releases_frame([shapely.box(X0 + 20, Y0, X0 + 130, Y0 + 100), sq(0, 0),
                               sq(1000, 0, 50)],
                              [D(2015, 1, 1), D(2015, 1, 1), D(2016, 1, 1)],
                              ["reduced", "cleared", "cancelled"])
    pg = _postgis_copy(fill_store(make_store(), hazards, releases))
    s = ledger_in_database(pg).status(D(2020, 1, 1))  # type: ignore[arg-type]
    assert (s.baseline_m2, s.discovered_m2) == pytest.approx((15_000, 10_000), abs=0.1)
    # same day: clearance claims the first square before the reduction
    assert (s.cleared_m2, s.reduced_m2, s.cancelled_m2) == pytest.approx(
        (10_000, 3_000, 2_500), abs=0.1)
    assert s.remaining_m2 == pytest.approx(9_500, abs=0.1)


def test_database_ledger_measures_failed_overlaps_again(
        make_store: Callable[..., Store], caplog: pytest.LogCaptureFixture) -> None:
    """A cut of the 1,000,000-hazard bench programme on which PostGIS's overlay failed."""
    import geopandas as gpd
    import sqlalchemy as sa

    from planner.accounting.sql import ledger_in_database
    from planner.store.postgis import PostGISStore

    case = json.loads((DATA / "postgis_overlay_failure.json").read_text())
    frames = [gpd.GeoDataFrame(
        [{k: D.fromisoformat(v) if k.endswith("_on") else v for k, v in f.items() if k != "wkb"}
         for f in case[layer]],
        geometry=shapely.from_wkb([f["wkb"] for f in case[layer]]), crs=case["crs"])
        for layer in ("hazards", "releases")]
    pg = _postgis_copy(fill_store(make_store(crs=case["crs"], eif=D.fromisoformat(case["eif"])),
                                  *frames))
    assert isinstance(pg, PostGISStore)
    with caplog.at_level(logging.WARNING, logger="planner.store.postgis"):
        in_db = ledger_in_database(pg)
    # the projection of the whole programme, so GEOS gets the very coordinates that failed
    assert in_db.crs.srs == case["equal_area_crs"]
    assert_same_series(ledger_from_store(pg).series(YEARS), in_db.series(YEARS))
    with pg.engine.connect() as con:
        geos = str(con.execute(sa.text("SELECT postgis_geos_version()")).scalar())
    if geos.startswith("3.11"):  # Debian 12's PostGIS 3.3, which CI installs
        assert "measured again with snap-rounding" in caplog.text


def test_engines_by_name(demo_store: Store) -> None:
    from planner.accounting import ledger_with

    with pytest.raises(InputError, match="PostGIS store"):
        ledger_with(demo_store, "postgis")
    with pytest.raises(InputError, match="use one of"):
        ledger_with(demo_store, "spark")
