"""Re-surveys: later versions of a hazard, the land they drop released, statuses that move.

The known answer, on both stores: an SHA of 1,000,000 m² recorded in 2010, re-surveyed on
2016-06-01 (technical survey) into a CHA of 400,000 m² inside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pytest
from shapely import box

from planner.accounting import ledger_with
from planner.accounting.known import hazard_history
from planner.errors import InputError, ValidationError
from planner.ingest import ingest, ingest_resurvey
from planner.store import Store
from planner.treaty.article7 import article7_figures
from tests.accounting.test_live import assert_same_rows

D = dt.date
X, Y = 4_100_000.0, 3_100_000.0   # EPSG:3035, well away from its false origin


def _file(folder: Path, name: str, status: str, geom: object, recorded_on: str = "2010-01-01",
          hazard_id: str = "H1") -> Path:
    path = folder / name
    gpd.GeoDataFrame({"hazard_id": [hazard_id], "status": [status],
                      "recorded_on": [recorded_on], "region": ["North"]},
                     geometry=[geom], crs=3035).to_file(path, driver="GeoJSON")
    return path


def _by_status(ledger: object, at: dt.date) -> dict[str, float]:
    table = ledger.breakdown(at)   # type: ignore[attr-defined]
    return {str(r.status): float(r.remaining_m2) for r in table.itertuples()}


def test_an_sha_resurveyed_into_a_cha_moves_land_and_releases_the_rest(
        any_store: Callable[..., Store], tmp_path: Path) -> None:
    store = any_store()
    ingest(store, "hazards", _file(tmp_path, "sha.geojson", "SHA", box(X, Y, X + 1000, Y + 1000)))
    result = ingest_resurvey(store, _file(tmp_path, "ts.geojson", "CHA",
                                          box(X, Y, X + 400, Y + 1000)),
                             surveyed_on=D(2016, 6, 1), method="reduced")
    assert result.derived is not None and len(result.derived) == 1
    led = ledger_with(store)
    before, after = D(2016, 5, 31), D(2016, 12, 31)
    assert _by_status(led, before) == pytest.approx({"SHA": 1_000_000}, abs=1.0)
    assert _by_status(led, after) == pytest.approx({"CHA": 400_000}, abs=1.0)
    s0, s1 = led.status(before), led.status(after)
    assert s0.reduced_m2 == 0 and s1.reduced_m2 == pytest.approx(600_000, abs=1.0)
    assert s1.remaining_m2 == pytest.approx(400_000, abs=1.0)
    # nothing new: a reduction (the CHA's edges on the SHA's are a hair off after the file's
    # round trip through WGS 84 and reprojection: slivers of a few cm² at most)
    assert s1.discovered_m2 == pytest.approx(0, abs=1.0)
    assert led.status(D(2016, 6, 1)).reduced_m2 == pytest.approx(600_000, abs=1.0)
    assert s1.hazard_count == 1
    # Article 7 (h) for 2016: the CHA, with its size and where it is
    fig = article7_figures(led, 2016, store.read("hazards"))
    rows = fig.hazards.to_dict(orient="records")
    assert [(r["hazard_id"], r["status"]) for r in rows] == [("H1", "CHA")]
    assert rows[0]["remaining_m2"] == pytest.approx(400_000, abs=1.0)
    assert 0 < rows[0]["lon"] < 40 and 40 < rows[0]["lat"] < 60
    history = hazard_history(store, "H1")
    assert list(history["version"]) == [1, 2] and list(history["status"]) == ["SHA", "CHA"]
    assert history["released_m2"].tolist() == pytest.approx([0, 600_000], abs=1.0)
    assert_same_rows(store)


def test_a_resurvey_is_refused_whole_with_every_reason(
        any_store: Callable[..., Store], tmp_path: Path) -> None:
    store = any_store()
    ingest(store, "hazards", _file(tmp_path, "sha.geojson", "SHA", box(X, Y, X + 1000, Y + 1000)))
    unknown = _file(tmp_path, "x.geojson", "CHA", box(X, Y, X + 10, Y + 10), hazard_id="NOPE")
    with pytest.raises(ValidationError, match="no hazard NOPE in the store to re-survey"):
        ingest_resurvey(store, unknown, surveyed_on=D(2016, 6, 1), method="reduced")
    early = _file(tmp_path, "e.geojson", "CHA", box(X, Y, X + 10, Y + 10))
    with pytest.raises(ValidationError, match="not later than"):
        ingest_resurvey(store, early, surveyed_on=D(2009, 6, 1), method="reduced")
    with pytest.raises(InputError, match="reduced or cancelled"):
        ingest_resurvey(store, early, surveyed_on=D(2016, 6, 1), method="cleared")
    assert len(store.imports()) == 1
    # the same id as a new hazard is refused, and the message says how to re-survey
    again = _file(tmp_path, "again.geojson", "SHA", box(X, Y, X + 5, Y + 5))
    with pytest.raises(ValidationError, match="already in the store"):
        ingest(store, "hazards", again)


def test_qgis_sees_every_version_numbered_in_a_layer(
        any_store: Callable[..., Store], tmp_path: Path) -> None:
    store = any_store()
    ingest(store, "hazards", _file(tmp_path, "sha.geojson", "SHA", box(X, Y, X + 1000, Y + 1000)))
    ingest_resurvey(store, _file(tmp_path, "ts.geojson", "CHA", box(X, Y, X + 400, Y + 1000)),
                    surveyed_on=D(2016, 6, 1), method="reduced")
    if str(store.location).endswith(".gpkg"):
        view = gpd.read_file(store.location, layer="hazard_versions", engine="pyogrio")
    else:
        import sqlalchemy as sa

        view = gpd.read_postgis(sa.text("SELECT * FROM hazard_versions"),
                                sa.create_engine(store.location.replace(
                                    "postgresql://", "postgresql+psycopg://")), geom_col="geom")
    # (a view's computed columns reach GDAL as text: compared as numbers)
    view = view.assign(version=view["version"].astype(int),
                       versions=view["versions"].astype(int)).sort_values("version")
    assert list(view["version"]) == [1, 2] and list(view["versions"]) == [2, 2]
    assert list(view["status"]) == ["SHA", "CHA"]
    assert view.geometry.area.tolist() == pytest.approx([1_000_000, 400_000], rel=1e-3)


def test_skip_invalid_keeps_exactly_the_slivers_in_the_rejected_layer(
        any_store: Callable[..., Store], tmp_path: Path) -> None:
    """2,000 squares, 4 zero-area slivers, 3 bow-ties: the slivers are set aside in the
    store's rejected layer, the bow-ties repaired, and the figures are those of the file
    with the slivers removed by hand."""
    from shapely import Polygon

    from planner.ingest import IngestOptions

    squares = [box(X + 60 * (i % 50), Y + 60 * (i // 50), X + 60 * (i % 50) + 50,
                   Y + 60 * (i // 50) + 50) for i in range(2000)]
    slivers = [Polygon([(X - 500 - 10 * k, Y), (X - 400 - 10 * k, Y), (X - 450 - 10 * k, Y)])
               for k in range(4)]
    bowties = [Polygon([(X - 300, Y + 100 * k), (X - 200, Y + 100 * k + 50),
                        (X - 200, Y + 100 * k), (X - 300, Y + 100 * k + 50)]) for k in range(3)]
    geoms = squares[:1000] + slivers + squares[1000:] + bowties
    frame = gpd.GeoDataFrame({"hazard_id": [f"N{i:05d}" for i in range(len(geoms))],
                              "status": ["SHA"] * len(geoms),
                              "recorded_on": ["2010-01-01"] * len(geoms)},
                             geometry=geoms, crs=3035)
    national = tmp_path / "national.gpkg"
    frame.to_file(national, engine="pyogrio")
    store = any_store()
    with pytest.raises(ValidationError, match="degenerate"):
        ingest(store, "hazards", national)     # the default stays all or nothing
    result = ingest(store, "hazards", national, IngestOptions(set_aside=True))
    assert result.set_aside is not None
    assert sorted(result.set_aside["hazard_id"]) == [f"N{i:05d}" for i in range(1000, 1004)]
    repaired = {p.feature for p in result.problems if p.severity == "repaired"}
    assert len(repaired) == 3 and all("N0200" in f for f in repaired)
    if str(store.location).endswith(".gpkg"):
        kept = gpd.read_file(store.location, layer="rejected", engine="pyogrio")
    else:
        import sqlalchemy as sa

        kept = gpd.read_postgis(sa.text("SELECT * FROM rejected"), sa.create_engine(
            store.location.replace("postgresql://", "postgresql+psycopg://")), geom_col="geom")
    assert len(kept) == 4 and set(kept["import_id"]) == {result.import_id}
    assert all("degenerate" in p for p in kept["problems"])
    assert all('"hazard_id": "N0100' in a for a in kept["attributes"])
    # the same figures as the file with the slivers removed by hand
    by_hand = tmp_path / "by_hand.gpkg"
    frame.drop(index=range(1000, 1004)).to_file(by_hand, engine="pyogrio")
    other = any_store(name="other.gpkg")
    ingest(other, "hazards", by_hand)
    at = D(2012, 1, 1)
    a, b = ledger_with(store).status(at), ledger_with(other).status(at)
    assert a.hazard_count == b.hazard_count == 2003
    assert abs(a.remaining_m2 - b.remaining_m2) <= 1e-3


def test_retracting_a_resurvey_takes_back_what_it_released(
        any_store: Callable[..., Store], tmp_path: Path) -> None:
    from planner.ingest import retract_import

    store = any_store()
    ingest(store, "hazards", _file(tmp_path, "sha.geojson", "SHA", box(X, Y, X + 1000, Y + 1000)))
    r = ingest_resurvey(store, _file(tmp_path, "ts.geojson", "CHA",
                                     box(X, Y, X + 400, Y + 1000)),
                        surveyed_on=D(2016, 6, 1), method="reduced")
    retract_import(store, r.import_id, reason="wrong survey", by="ana")
    s = ledger_with(store).status(D(2024, 12, 31))
    assert s.reduced_m2 == 0 and s.remaining_m2 == pytest.approx(1_000_000, abs=1.0)
    assert list(store.read("releases", retracted=True)["release_id"]) == [
        "H1 re-survey 2016-06-01"]
    assert_same_rows(store)
    # the corrected survey of the same day lands
    ingest_resurvey(store, _file(tmp_path, "ts2.geojson", "CHA", box(X, Y, X + 500, Y + 1000)),
                    surveyed_on=D(2016, 6, 1), method="reduced")
    assert ledger_with(store).status(D(2024, 12, 31)).remaining_m2 == pytest.approx(
        500_000, abs=1.0)
