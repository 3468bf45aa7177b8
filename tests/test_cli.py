from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from planner.cli import app

from .test_ingest import field_frame, write_shp_zip

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
    assert s["remaining_m2"] > 29_000 and s["reconciles"] and s["remaining_direct_m2"]
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
    assert "(f) remaining" in text and "Reconciliation gap 0.000" in text.replace("\n", " ")


