from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner.cli import app
from tests.ingest.test_ingest import field_frame, write_shp_zip

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_init_ingest_status_series(tmp_path: Path) -> None:
    store = str(tmp_path / "prog.gpkg")
    code, text = run("init", store, "--name", "Demo", "--eif", "2011-08-01",
                     "--crs", "EPSG:32648")
    assert code == 0, text
    z = write_shp_zip(field_frame(), tmp_path / "survey_2012.zip")
    code, text = run("ingest", "hazards", str(z), "--store", store)
    assert code == 0 and "imported 3 hazards" in text, text
    code, text = run("status", "--store", store, "--at", "2020-12-31", "--json", "--verify")
    assert code == 0, text
    s = json.loads(text)
    assert s["remaining_m2"] > 29_000 and s["verified"] is True and s["remaining_direct_m2"]
    code, text = run("series", "--store", store, "--end", "2012-12-31", "--out",
                     str(tmp_path / "s.csv"))
    assert code == 0, text
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert [r["date"] for r in rows] == ["2010-12-31", "2011-12-31", "2012-12-31"]
    code, text = run("imports", "--store", store, "--json")
    assert json.loads(text)[0]["file_name"] == "survey_2012.zip"


def test_bad_input_exits_non_zero_with_the_fix(tmp_path: Path) -> None:
    store = str(tmp_path / "prog.gpkg")
    run("init", store, "--name", "Demo", "--eif", "2011-08-01", "--crs", "EPSG:32648")
    z = write_shp_zip(field_frame(), tmp_path / "noprj.zip", drop_prj=True)
    code, text = run("ingest", "hazards", str(z), "--store", store)
    assert code == 1 and "--crs" in text
    code, text = run("ingest", "releases", str(z), "--store", store, "--crs", "EPSG:32648",
                     "--report", str(tmp_path / "problems.csv"))
    assert code == 1 and "no method column" in text
    assert "no method column" in (tmp_path / "problems.csv").read_text()
    code, text = run("status", "--store", str(tmp_path / "missing.gpkg"))
    assert code == 1 and "planner init" in text
    code, text = run("init", store, "--name", "x", "--eif", "2011-13-01")
    assert code == 2 and "YYYY-MM-DD" in text


def test_demo_command(tmp_path: Path) -> None:
    code, text = run("demo", "--store", str(tmp_path / "demo.gpkg"))
    assert code == 0, text
    assert "(f) remaining" in text and "global union agrees" in text.replace("\n", " ")
    # a second run does not replace a store without --force
    code, text = run("demo", "--store", str(tmp_path / "demo.gpkg"))
    assert code == 1 and "--force" in text
    assert run("demo", "--store", str(tmp_path / "demo.gpkg"), "--force")[0] == 0




def _demo(tmp_path: Path) -> str:
    from planner.demo import build_demo_store

    store = tmp_path / "demo.gpkg"
    build_demo_store(store)
    return str(store)


def test_deadlines_extensions_and_hostilities(tmp_path: Path) -> None:
    store = str(tmp_path / "p.gpkg")
    assert run("init", store, "--name", "P", "--eif", "2011-08-01")[0] == 0
    code, text = run("deadlines", "--store", store, "--json", "--meeting", "2021-05-20")
    assert code == 0, text
    d = json.loads(text)
    assert d["groups"][0]["current_deadline"] == "2021-08-01"
    assert d["filing_deadline"] == "2020-08-20"
    code, text = run("grant-extension", "--store", store, "--years", "5", "--granted-on",
                     "2020-11-16")
    assert code == 0 and "2026-08-01" in text, text
    code, text = run("add-hostilities", "2019 conflict", "--store", store, "--ended-on",
                     "2019-03-31", "--region", "East")
    assert code == 0 and "2029-03-31" in text, text
    groups = json.loads(run("deadlines", "--store", store, "--json")[1])["groups"]
    assert [g["current_deadline"] for g in groups] == ["2026-08-01", "2029-03-31"]
    code, text = run("grant-extension", "--store", store, "--years", "6")
    assert code == 1 and "4(5)" in text
    code, text = run("grant-extension", "--store", store)
    assert code == 1 and "--years or --months" in text


def test_forecast_extension_request_and_article7_on_the_demo(tmp_path: Path) -> None:
    store = _demo(tmp_path)
    code, text = run("forecast", "--store", store, "--json", "--as-of", "2024-12-31")
    assert code == 0, text
    f = json.loads(text)
    assert f["deadline"] == "2026-08-01" and f["method"].startswith("bootstrap")
    assert f["completion"]["P10"] <= f["completion"]["P50"] <= f["completion"]["P90"]
    doubled = 2 * f["release_m2_per_year"]
    code, text = run("forecast", "--store", store, "--json", "--as-of", "2024-12-31",
                     "--capacity", f"cleared:1:{doubled / 200:.0f}:200")
    g = json.loads(text)
    assert code == 0 and g["scenario"]["kind"] == "capacity"
    assert g["completion"]["P50"] < f["completion"]["P50"]
    code, text = run("forecast", "--store", store, "--capacity", "cleared:4")
    assert code == 1 and "METHOD:TEAMS" in text

    for suffix in ("docx", "html", "md"):
        target = tmp_path / f"request.{suffix}"
        code, text = run("extension-request", "--store", store, "--out", str(target),
                         "--as-of", "2024-12-31")
        assert code == 0 and target.exists(), text
        assert "(f) remaining 1,352,724 m²" in text.replace("\n", " ")
    code, text = run("extension-request", "--store", store, "--out", str(tmp_path / "r.pdf"))
    assert code == 1 and "suffix" in text

    code, text = run("article7", "--store", store, "--year", "2024", "--csv",
                     str(tmp_path / "h.csv"))
    assert code == 0 and "(h) Size and location" in text, text
    with (tmp_path / "h.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {"hazard_id", "remaining_m2", "lat", "lon"} <= set(rows[0])


def test_marking_plan_and_map_commands(tmp_path: Path) -> None:
    import pyogrio

    store = _demo(tmp_path)
    out = tmp_path / "plan.gpkg"
    code, text = run("marking-plan", "--store", store, "--out", str(out), "--at", "2024-12-31",
                     "--region", "Khoun", "--kml", "--gpx", "--csv", "--price-sign", "25",
                     "--json")
    assert code == 0, text
    d = json.loads(text)
    assert d["totals"]["signs"] > 0 and d["totals"]["cost"] > 0
    signs = pyogrio.read_dataframe(out, layer="signs")
    assert len(signs) == d["totals"]["signs"]
    for name in ("plan.kml", "plan.gpx", "plan_signs.csv"):
        assert (tmp_path / name).exists()
    code, text = run("map", "--store", store, "--out", str(tmp_path / "map.html"), "--plan",
                     str(out))
    assert code == 0 and (tmp_path / "map.html").stat().st_size > 100_000, text
    code, text = run("marking-plan", "--store", store, "--out", str(out), "--id", "NOPE")
    assert code == 1 and "no hazard with id NOPE" in text
    code, text = run("marking-plan", "--store", store, "--out", str(out), "--sign-spacing-m",
                     "0", "--join", "bevel")
    assert code == 1 and "sign_spacing_m" in text and "join" in text


def test_the_same_commands_run_on_a_postgis_store(tmp_path: Path) -> None:
    from tests.conftest import new_postgis_database, postgres_url

    admin = postgres_url()
    if admin is None:
        import pytest

        pytest.skip("NO POSTGRESQL: PostGIS CLI test did not run. Set "
                    "PLANNER_TEST_POSTGRES_URL or run scripts/test.sh.")
    url = new_postgis_database(admin)
    gpkg = _demo(tmp_path)
    code, text = run("copy", "--from", gpkg, "--to", url)
    assert code == 0 and "copied 4 imports" in text, text
    a = json.loads(run("status", "--store", gpkg, "--at", "2024-12-31", "--json")[1])
    b = json.loads(run("status", "--store", url, "--at", "2024-12-31", "--json")[1])
    assert abs(a["remaining_m2"] - b["remaining_m2"]) < 1e-6
    # the three engines give the same figures; the database one only on a database
    for store, engine in ((url, "postgis"), (url, "dask"), (gpkg, "dask")):
        c = json.loads(run("status", "--store", store, "--at", "2024-12-31", "--json",
                           "--engine", engine, "--workers", "1")[1])
        assert abs(a["remaining_m2"] - c["remaining_m2"]) < 1.0, engine
    code, text = run("status", "--store", gpkg, "--engine", "postgis")
    assert code == 1 and "postgresql://" in text, text
    code, text = run("forecast", "--store", url, "--json", "--as-of", "2024-12-31")
    assert code == 0 and json.loads(text)["deadline"] == "2026-08-01"
    fresh = new_postgis_database(admin)
    code, text = run("init", fresh, "--name", "Server", "--eif", "2011-08-01", "--crs",
                     "EPSG:32648")
    assert code == 0, text
    z = write_shp_zip(field_frame(), tmp_path / "survey_2012.zip")
    code, text = run("ingest", "hazards", str(z), "--store", fresh)
    assert code == 0 and "imported 3 hazards" in text, text
    code, text = run("ingest", "hazards", str(z), "--store", fresh)
    assert code == 1 and "already imported" in text


def test_units_survive_rich_markup(tmp_path: Path) -> None:
    """`[m²]` and `[m]` are markup to rich: the headers and help texts must still show them."""
    store = str(tmp_path / "prog.gpkg")
    run("init", store, "--name", "Units", "--eif", "2011-08-01", "--crs", "EPSG:32648")
    code, text = run("status", "--store", store, "--at", "2012-12-31")
    assert code == 0 and "area [m²]" in text and "area [km²]" in text
    code, text = run("ingest", "hazards", "--help")
    assert code == 0 and "radius [m]" in text


def test_the_independent_check_can_fail_and_the_command_exits_non_zero(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger with one piece's area wrong by 500 m²: --verify sees it, and so does the
    extension request (which verifies by default); both exit 1 and say not to file."""
    import planner.cli.shared as cli

    store = str(tmp_path / "demo.gpkg")
    assert run("demo", "--store", store)[0] == 0
    real = cli.ledger_with

    def doctored(*args: Any, **kwargs: Any) -> Any:
        ledger = real(*args, **kwargs)
        ledger.hazard_area_m2[0] += 500.0
        return ledger

    code, text = run("status", "--store", store, "--at", "2024-12-31", "--verify")
    assert code == 0 and "global union agrees" in text
    monkeypatch.setattr(cli, "ledger_with", doctored)
    code, text = run("status", "--store", store, "--at", "2024-12-31", "--verify")
    assert code == 1 and "DOES NOT AGREE" in text and "differs from the global union" in text
    code, text = run("status", "--store", store, "--at", "2024-12-31")
    assert code == 0 and "Not verified" in text
    code, text = run("extension-request", "--store", store, "--as-of", "2024-12-31",
                     "--out", str(tmp_path / "r.md"), "--draws", "200")
    assert code == 1 and "do not file" in text
    assert "NOT within 1 m²" in (tmp_path / "r.md").read_text()


def test_a_doctored_stored_ledger_is_caught_and_its_hazards_named(tmp_path: Path) -> None:
    """One stored piece 500 m² too large: --verify fails, names the hazards whose group
    differs, and says how to mend it; rebuild-ledger mends it."""
    import sqlite3

    store = str(tmp_path / "demo.gpkg")
    assert run("demo", "--store", store)[0] == 0
    with sqlite3.connect(store) as con:
        fid, hazard_id = con.execute("SELECT fid, hazard_id FROM hazards ORDER BY fid LIMIT 1"
                                     ).fetchone()
        con.execute("UPDATE ledger_hazards SET area_m2 = area_m2 + 500 WHERE fid = ?", (fid,))
    con.close()
    code, text = run("status", "--store", store, "--at", "2024-12-31", "--verify")
    assert code == 1 and "DOES NOT AGREE" in text
    assert hazard_id in text and "gap -500.0 m²" in text and "rebuild-ledger" in text
    code, text = run("rebuild-ledger", "--store", store)
    assert code == 0 and "ledger stored: 200 hazard pieces" in text
    code, text = run("status", "--store", store, "--at", "2024-12-31", "--verify")
    assert code == 0 and "global union agrees" in text


def test_imports_retract_and_replace_leave_a_trail(tmp_path: Path) -> None:
    store = str(tmp_path / "demo.gpkg")
    assert run("demo", "--store", store)[0] == 0
    before = json.loads(run("status", "--store", store, "--at", "2024-12-31", "--json")[1])
    code, text = run("imports", "retract", "4", "--store", store, "--reason", "duplicated",
                     "--by", "ana")
    assert code == 0 and "retracted by ana" in text and "releases_retracted" in text
    after = json.loads(run("status", "--store", store, "--at", "2024-12-31", "--json")[1])
    assert after["release_count"] == before["release_count"] - 219
    code, text = run("imports", "--store", store, "--json")
    listed = {i["import_id"]: i for i in json.loads(text)}
    assert listed[4]["retracted_by"] == "ana" and listed[4]["retraction_reason"] == "duplicated"
    assert listed[3]["retracted_at"] is None
    code, text = run("imports", "retract", "4", "--store", store, "--reason", "again")
    assert code == 1 and "retracted already" in text
    code, text = run("imports", "retract", "3", "--store", store)
    assert code == 2 and "--reason" in text
    # a corrected file of the baseline survey: same ids, one hazard fewer, in one step
    import geopandas as gpd

    from planner.store import open_store

    baseline = open_store(store).read("hazards", import_id=1)
    fixed = tmp_path / "baseline_fixed.geojson"
    baseline.iloc[1:][["hazard_id", "status", "recorded_on", "region", "geometry"]].assign(
        recorded_on=lambda d: d["recorded_on"].dt.strftime("%Y-%m-%d")).to_crs(4326).to_file(
        fixed, driver="GeoJSON")
    code, text = run("imports", "replace", "1", str(fixed), "--store", store, "--reason",
                     "one area was surveyed twice")
    assert code == 0 and "replacing import 1" in text, text
    now = json.loads(run("status", "--store", store, "--at", "2024-12-31", "--json")[1])
    assert now["hazard_count"] == after["hazard_count"] - 1
    assert isinstance(gpd.read_file(store, layer="hazards_retracted"), gpd.GeoDataFrame)
    old = json.loads(run("status", "--store", store, "--at", "2024-12-31", "--json",
                         "--as-known-on", "2000-01-01")[1])
    assert old["hazard_count"] == 0


def test_resurvey_history_and_upgrade_from_the_command_line(tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely import box

    store = str(tmp_path / "p.gpkg")
    assert run("init", store, "--name", "P", "--eif", "2011-08-01", "--crs", "EPSG:3035")[0] == 0
    x, y = 4_100_000.0, 3_100_000.0
    for name, status, geom in (("sha.gpkg", "SHA", box(x, y, x + 1000, y + 1000)),
                               ("ts.gpkg", "CHA", box(x, y, x + 400, y + 1000))):
        gpd.GeoDataFrame({"hazard_id": ["H1"], "status": [status],
                          "recorded_on": ["2010-01-01"]}, geometry=[geom], crs=3035).to_file(
            tmp_path / name)
    assert run("ingest", "hazards", str(tmp_path / "sha.gpkg"), "--store", store)[0] == 0
    code, text = run("ingest", "resurvey", str(tmp_path / "ts.gpkg"), "--store", store,
                     "--surveyed-on", "2016-06-01", "--method", "reduced")
    assert code == 0 and "1 new hazard version" in text and "reduced on 2016-06-01" in text
    code, text = run("history", "H1", "--store", store, "--json")
    versions = json.loads(text)
    assert [v["status"] for v in versions] == ["SHA", "CHA"]
    assert round(versions[1]["released_m2"]) == 600_000
    code, text = run("history", "NOPE", "--store", store)
    assert code == 1 and "no hazard 'NOPE'" in text
    code, text = run("upgrade", store)
    assert code == 0 and "up to date" in text      # a new store has today's schema


def test_a_filed_request_is_drawn_again_with_its_figures_after_a_correction(
        tmp_path: Path) -> None:
    store = str(tmp_path / "demo.gpkg")
    assert run("demo", "--store", store)[0] == 0
    code, text = run("extension-request", "--store", store, "--as-of", "2024-12-31", "--out",
                     str(tmp_path / "filed.md"), "--draws", "300")
    assert code == 0 and "recorded in the store as document 1" in text
    filed = (tmp_path / "filed.md").read_text()
    # a later correction changes today's figures ...
    assert run("imports", "retract", "4", "--store", store, "--reason", "duplicated")[0] == 0
    code, text = run("extension-request", "--store", store, "--as-of", "2024-12-31", "--out",
                     str(tmp_path / "now.md"), "--draws", "300")
    assert code == 0 and (tmp_path / "now.md").read_text() != filed
    # ... and the filed request is drawn again exactly, with the change listed
    code, text = run("documents", "reproduce", "1", "--store", store, "--out",
                     str(tmp_path / "again.md"))
    assert code == 0 and "the figures are those filed" in text, text
    assert "retracted" in text and "duplicated" in text
    def body(text: str) -> list[str]:   # without the drawing date and the chart's file name
        return [ln for ln in text.splitlines() if "2026" not in ln and "_burndown.png" not in ln]
    assert body((tmp_path / "again.md").read_text()) == body(filed)
    code, text = run("documents", "list", "--store", store, "--json")
    assert [d["document_id"] for d in json.loads(text)] == [1, 2]
    # a request drawn as known on a date, without the check, comes back the same
    code, text = run("extension-request", "--store", store, "--as-of", "2024-12-31", "--out",
                     str(tmp_path / "old.md"), "--draws", "300", "--as-known-on",
                     "2000-01-01", "--no-verify")
    assert "recorded in the store as document 3" in text
    code, text = run("documents", "reproduce", "3", "--store", store, "--out",
                     str(tmp_path / "old_again.md"))
    assert code == 0 and "the figures are those filed" in text, text
    code, text = run("documents", "reproduce", "9", "--store", store, "--out",
                     str(tmp_path / "x.md"))
    assert code == 1 and "no document 9" in text


def test_treaty_commands_draw_from_the_records_as_known_on_a_date(tmp_path: Path) -> None:
    store = str(tmp_path / "demo.gpkg")
    assert run("demo", "--store", store)[0] == 0
    code, text = run("article7", "--store", store, "--year", "2024", "--as-known-on",
                     "2000-01-01")
    assert code == 0 and "H-" not in text
    code, text = run("forecast", "--store", store, "--json", "--as-known-on", "2000-01-01",
                     "--draws", "200")
    assert code == 0 and json.loads(text)["remaining_m2"] == 0
    today = __import__("datetime").date.today().isoformat()
    code, text = run("forecast", "--store", store, "--json", "--as-known-on", today,
                     "--draws", "200", "--as-of", "2024-12-31")
    assert code == 0 and round(json.loads(text)["remaining_m2"]) == 1352724
