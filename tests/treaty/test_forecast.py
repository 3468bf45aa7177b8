"""Completion forecasts on programmes whose future is known on paper."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyproj
import pytest
import shapely
from shapely import box

from planner.accounting import Ledger, build_ledger
from planner.errors import InputError
from planner.programme import Programme
from planner.store import Store
from planner.treaty.forecast import CapacityLine, Scenario, default_as_of, forecast, release_history
from tests.conftest import EIF, X0, Y0, hazards_frame, releases_frame, sq

D = dt.date
PROG = Programme("Strips", EIF)


def strips(yearly_m2: Sequence[float], start: int = 2012, *, extra_hazards: int = 0,
           discovered_on: Sequence[dt.date] = ()) -> Ledger:
    """A 1 km² hazard recorded in 2010, released in strips of the given area each June.

    ``discovered_on`` adds a 100 m x 100 m hazard (10,000 m²) found on each of those dates.
    """
    geoms = [sq(0, 0, 1000)] + [sq(2000 + 200 * i, 0) for i in range(len(discovered_on))]
    dates = [D(2010, 1, 1), *discovered_on]
    rel, y = [], 0.0
    for a in yearly_m2:
        h = a / 1000
        rel.append(_strip(y, h))
        y += h
    rdates = [D(start + i, 6, 1) for i in range(len(yearly_m2))]
    return build_ledger(hazards_frame(geoms, dates),
                        releases_frame(rel, rdates, ["cleared"] * len(rel)), eif=EIF,
                        crs=pyproj.CRS.from_epsg(3035))   # measured where drawn: exact


def _strip(y: float, height: float) -> shapely.Polygon:
    return box(X0, Y0 + y, X0 + 1000, Y0 + y + height)


def test_constant_rate_finishes_in_year_ten_with_all_percentiles_equal() -> None:
    led = strips([100_000] * 3)  # 2012, 2013, 2014: 700,000 m² left
    f = forecast(led, PROG, as_of=D(2014, 12, 31))
    assert f.remaining_m2 == pytest.approx(700_000, abs=0.5)
    # ten years of releases: 2012 to 2021
    assert f.completion_p10 == f.completion_p50 == f.completion_p90 == D(2021, 12, 31)
    assert f.release_m2_per_year == pytest.approx(100_000, abs=0.5)
    assert f.probability_by_deadline == 0.0  # deadline 2021-08-01
    assert f.years_needed == 1 and f.extension_years == 1 and f.extension_suffices
    assert "2022-08-01" in f.statement
    # the constant rate that would have finished on time: 700,000 m² in 6.58 years
    assert f.required_release_m2_per_year == pytest.approx(700_000 / (2405 / 365.2425), rel=1e-9)
    assert "bootstrap" in f.method and "2012-12-31 to 2014-12-31" in f.method


def test_capacity_scenario_with_discovery_term() -> None:
    led = strips([100_000] * 3)
    one_team = (CapacityLine("cleared", teams=1, m2_per_team_day=500,
                             working_days_per_year=200),)   # 100,000 m²/year
    f = forecast(led, PROG, Scenario(capacity=one_team, discovery_m2_per_year=0),
                 as_of=D(2014, 12, 31))
    assert f.completion_p50 == D(2021, 12, 31)
    # half of the output is eaten by new contamination: twice as long
    g = forecast(led, PROG, Scenario(capacity=one_team, discovery_m2_per_year=50_000),
                 as_of=D(2014, 12, 31))
    assert g.completion_p10 == g.completion_p90 == D(2028, 12, 31)
    assert g.required_release_m2_per_year == pytest.approx(
        f.required_release_m2_per_year + 50_000)
    assert any("50,000 m²/year" in a for a in g.assumptions)
    assert "1 team(s) × 500 m²/day × 200 days" in g.method


def test_completion_is_interpolated_within_the_year() -> None:
    led = strips([100_000] * 3)
    cap = (CapacityLine("cleared", 1, 560, 250),)   # 140,000 m²/year: 5 years exactly
    f = forecast(led, PROG, Scenario(capacity=cap, discovery_m2_per_year=0),
                 as_of=D(2014, 12, 31))
    assert f.completion_p50 == D(2019, 12, 31)
    cap = (CapacityLine("cleared", 1, 800, 250),)   # 200,000 m²/year: 3.5 years
    f = forecast(led, PROG, Scenario(capacity=cap, discovery_m2_per_year=0),
                 as_of=D(2014, 12, 31))
    assert D(2018, 7, 1) <= f.completion_p50 <= D(2018, 7, 3)
    assert f.probability_by_deadline == 1.0 and f.years_needed == 0
    assert "no extension is needed" in f.statement


def test_bootstrap_spreads_and_is_reproducible_with_a_seed() -> None:
    led = strips([50_000, 150_000, 60_000, 140_000])   # mean 100,000, 600,000 left
    a = forecast(led, PROG, Scenario(seed=7), as_of=D(2015, 12, 31))
    b = forecast(led, PROG, Scenario(seed=7), as_of=D(2015, 12, 31))
    assert (a.completion_p10, a.completion_p50, a.completion_p90) == (
        b.completion_p10, b.completion_p50, b.completion_p90)
    assert a.completion_p10 is not None and a.completion_p90 is not None
    assert a.completion_p10 < a.completion_p50 < a.completion_p90
    # 600,000 m² at 50,000-150,000 a year: between 4 and 12 years
    assert D(2019, 12, 31) <= a.completion_p10 and a.completion_p90 <= D(2027, 12, 31)
    # 600,000 m² by 2021-08-01 needs 107,000 m² a year: some futures make it, most do not
    assert 0.0 < a.probability_by_deadline < 0.5
    fan = a.fan
    assert fan["low_m2"].iloc[0] == fan["high_m2"].iloc[0] == pytest.approx(600_000, abs=1)
    assert (fan["low_m2"] <= fan["median_m2"] + 1e-6).all()
    assert (fan["median_m2"] <= fan["high_m2"] + 1e-6).all()
    assert np.all(np.diff(fan["median_m2"].to_numpy()) <= 1e-6)


def test_recent_window_and_half_life_favour_recent_years() -> None:
    led = strips([20_000, 20_000, 20_000, 200_000, 200_000])   # 540,000 m² left
    flat = forecast(led, PROG, as_of=D(2016, 12, 31))
    recent = forecast(led, PROG, Scenario(window_years=2), as_of=D(2016, 12, 31))
    weighted = forecast(led, PROG, Scenario(half_life_years=1), as_of=D(2016, 12, 31))
    assert recent.window == (D(2015, 12, 31), D(2016, 12, 31))
    assert recent.release_m2_per_year == pytest.approx(200_000, abs=1)
    assert recent.completion_p50 == recent.completion_p90   # only 200,000 years drawn
    assert flat.completion_p50 is not None and weighted.completion_p50 is not None
    assert recent.completion_p50 is not None
    assert recent.completion_p50 < weighted.completion_p50 < flat.completion_p50
    assert "half-life of 1 years" in weighted.method


def test_years_needed_are_capped_at_five_with_a_clear_statement() -> None:
    led = strips([40_000] * 3)   # 880,000 m² left at 40,000 m² a year: 22 years
    f = forecast(led, PROG, as_of=D(2014, 12, 31))
    assert f.completion_p50 == D(2036, 12, 31)
    assert f.years_needed == 16   # 2021-08-01 + 16 years is the first date after it
    assert f.extension_years == 5 and not f.extension_suffices
    assert "will not suffice" in f.statement


def test_never_finishing_within_the_horizon_is_said_plainly() -> None:
    led = strips([10_000] * 3)
    f = forecast(led, PROG, Scenario(discovery_m2_per_year=10_000), as_of=D(2014, 12, 31))
    assert f.completion_p50 is None and f.years_needed is None
    assert f.extension_years == 5 and "not finish within the horizon" in f.statement
    assert f.to_dict()["completion"]["P50"] is None


def test_a_finished_programme_reports_compliance() -> None:
    led = strips([500_000, 500_000])
    f = forecast(led, PROG, as_of=D(2013, 12, 31))
    assert f.finished and f.extension_years == 0 and f.years_needed == 0
    assert f.completion_p50 == D(2013, 12, 31)
    assert "declare compliance" in f.statement


def test_historical_forecast_without_releases_asks_for_capacity() -> None:
    led = strips([])
    with pytest.raises(InputError, match="capacity scenario") as exc:
        forecast(led, PROG, as_of=D(2014, 12, 31))
    assert exc.value.argument == "capacity"


def test_history_by_year_and_month_and_discoveries() -> None:
    led = strips([100_000, 100_000], discovered_on=[D(2013, 3, 1)])
    h = release_history(led, D(2013, 12, 31))
    assert h["period_end"].tolist() == [D(2012, 12, 31), D(2013, 12, 31)]
    assert h["cleared_m2"].tolist() == pytest.approx([100_000, 100_000], abs=0.5)
    assert h["discovered_m2"].tolist() == pytest.approx([0, 10_000], abs=0.01)
    assert h["remaining_m2"].iloc[-1] == pytest.approx(810_000, abs=1)
    m = release_history(led, D(2013, 12, 31), "month")
    assert len(m) == 19 and m["released_m2"].sum() == pytest.approx(200_000, abs=0.5)
    monthly = forecast(led, PROG, Scenario(freq="month"), as_of=D(2013, 12, 31))
    assert monthly.completion_p50 is not None and monthly.completion_p50 > D(2013, 12, 31)


def test_default_as_of_is_the_last_complete_period_with_data() -> None:
    led = strips([100_000] * 3)
    assert default_as_of(led, today=D(2026, 11, 23)) == D(2014, 12, 31)
    assert default_as_of(led, today=D(2014, 7, 1)) == D(2013, 12, 31)
    assert default_as_of(led, "month", today=D(2026, 1, 5)) == D(2014, 6, 30)


def test_a_later_hostilities_group_is_forecast_on_its_own_hazards() -> None:
    led = strips([100_000] * 3, discovered_on=[D(2019, 5, 1)])
    prog = Programme("Two groups", EIF, settings={"hostilities": [
        {"name": "2018 conflict", "ended_on": "2018-12-31", "hazard_ids": ["H2"]}]})
    cap = (CapacityLine("cleared", 1, 50, 200),)   # 10,000 m²/year
    f = forecast(led, prog, Scenario(capacity=cap, discovery_m2_per_year=0),
                 group="2018 conflict", as_of=D(2019, 12, 31))
    assert f.remaining_m2 == pytest.approx(10_000, abs=0.01)
    assert f.deadline == D(2028, 12, 31) and f.completion_p50 == D(2020, 12, 31)
    main = forecast(led, prog, as_of=D(2019, 12, 31))
    assert main.remaining_m2 == pytest.approx(700_000, abs=0.5)
    with pytest.raises(InputError, match="no deadline group"):
        forecast(led, prog, group="nope", as_of=D(2019, 12, 31))


@pytest.mark.parametrize("bad", [
    {"freq": "week"}, {"window_years": 0}, {"half_life_years": 0}, {"draws": 0},
    {"capacity_cv": -1}, {"discovery_m2_per_year": -5}, {"basis": "P99"}])
def test_bad_scenarios_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InputError):
        Scenario(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["cleared:4", "dug:1:2:3", "cleared:a:2:3", "cleared:1:2:400"])
def test_bad_capacity_text_is_refused(text: str) -> None:
    with pytest.raises(InputError):
        CapacityLine.parse(text)


def test_capacity_text() -> None:
    c = CapacityLine.parse("Cleared:4:500")
    assert (c.method, c.rate_m2_per_year) == ("cleared", 400_000)


def test_demo_forecast_states_its_method_and_reconciles_with_status(demo_store: Store) -> None:
    p = demo_store.programme()
    led = build_ledger(demo_store.read("hazards"), demo_store.read("releases"), eif=p.eif)
    f = forecast(led, p, today=D(2026, 11, 23))
    assert f.as_of == D(2024, 12, 31) and f.deadline == D(2026, 8, 1)
    assert f.remaining_m2 == pytest.approx(led.status(D(2024, 12, 31)).remaining_m2)
    assert f.history["released_m2"].sum() == pytest.approx(
        led.status(D(2024, 12, 31)).released_m2, abs=1)
    d = f.to_dict()
    assert d["method"] and d["assumptions"] and d["history_window"]
