"""Article 4 deadlines: exact calendar arithmetic and the groups of a programme."""

from __future__ import annotations

import datetime as dt

import pytest

from planner.errors import InputError
from planner.programme import Programme
from planner.treaty.deadlines import (
    EIF_GROUP,
    Extension,
    add_months,
    add_years,
    assign_groups,
    deadline_groups,
    deadline_report,
    filing_deadline,
    record_extension,
    record_hostilities,
)

D = dt.date


def prog(**settings: object) -> Programme:
    return Programme("P", D(2011, 8, 1), settings=dict(settings))


def test_original_deadline_is_eif_plus_ten_years() -> None:
    g = deadline_groups(prog())[0]
    assert (g.basis, g.original, g.current) == ("4(1)(a)", D(2021, 8, 1), D(2021, 8, 1))


def test_one_five_year_extension_moves_the_deadline_to_2026() -> None:
    g = deadline_groups(prog(extensions=[{"years": 5}]))[0]
    assert g.current == D(2026, 8, 1)
    assert g.deadlines == [D(2021, 8, 1), D(2026, 8, 1)]


def test_renewals_chain_and_shorter_periods_are_allowed() -> None:
    g = deadline_groups(prog(extensions=[{"months": 60}, {"months": 18}]))[0]
    assert g.deadlines == [D(2021, 8, 1), D(2026, 8, 1), D(2028, 2, 1)]


@pytest.mark.parametrize("months", [0, 61, -12])
def test_an_extension_is_one_to_sixty_months(months: int) -> None:
    with pytest.raises(InputError, match="4\\(5\\)"):
        Extension(months)


@pytest.mark.parametrize(("start", "years", "expected"), [
    (D(2012, 2, 29), 10, D(2022, 2, 28)),   # no 29 February in 2022: the earlier day
    (D(2012, 2, 29), 4, D(2016, 2, 29)),
    (D(2010, 12, 31), 10, D(2020, 12, 31)),
    (D(2011, 1, 31), 0, D(2011, 1, 31)),
])
def test_add_years_is_exact(start: dt.date, years: int, expected: dt.date) -> None:
    assert add_years(start, years) == expected


def test_eif_on_29_february_gives_28_february_deadline() -> None:
    g = deadline_groups(Programme("Leap", D(2016, 2, 29)))[0]
    assert g.original == D(2026, 2, 28)
    assert g.with_extension(Extension(48)).current == D(2030, 2, 28)


@pytest.mark.parametrize(("meeting", "due"), [
    (D(2026, 9, 14), D(2025, 12, 14)),
    (D(2026, 11, 30), D(2026, 2, 28)),   # 30 February does not exist: file by the 28th
    (D(2028, 11, 29), D(2028, 2, 29)),   # leap year: 29 February exists
    (D(2027, 1, 31), D(2026, 4, 30)),
])
def test_filing_deadline_is_nine_months_before_the_meeting(meeting: dt.date,
                                                           due: dt.date) -> None:
    assert filing_deadline(meeting) == due
    # never closer to the meeting than nine months
    assert add_months(due, 9) <= meeting


def test_hostilities_after_eif_have_their_own_deadline() -> None:
    p = prog(hostilities=[{"name": "2019 conflict", "ended_on": "2019-03-31",
                           "regions": ["East"], "hazard_ids": ["H9"],
                           "extensions": [{"months": 24}]}])
    a, b = deadline_groups(p)
    assert (a.name, a.current) == (EIF_GROUP, D(2021, 8, 1))
    assert (b.basis, b.original, b.current) == ("4(1)(b)", D(2029, 3, 31), D(2031, 3, 31))
    names = assign_groups(["H1", "H2", "H9"], ["North", "East", "North"], [a, b])
    assert names.tolist() == [EIF_GROUP, "2019 conflict", "2019 conflict"]


@pytest.mark.parametrize(("group", "message"), [
    ({"name": "x", "ended_on": "2010-01-01", "regions": ["E"]}, "4\\(1\\)\\(a\\)"),
    ({"name": "x", "ended_on": "1 March", "regions": ["E"]}, "ISO date"),
    ({"name": "x", "ended_on": "2019-01-01"}, "which hazards"),
])
def test_bad_hostilities_groups_say_what_to_fix(group: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        deadline_groups(prog(hostilities=[group]))


def test_recording_extensions_and_hostilities_round_trips_through_settings() -> None:
    p = prog()
    s = record_hostilities(p, "late", D(2018, 6, 30), regions=["South"])
    p = Programme(p.name, p.eif, p.crs, s)
    s = record_extension(p, Extension(60, D(2020, 11, 16), "2MSP decision"))
    p = Programme(p.name, p.eif, p.crs, s)
    s = record_extension(p, Extension(12), "late")
    groups = deadline_groups(Programme(p.name, p.eif, p.crs, s))
    assert [g.current for g in groups] == [D(2026, 8, 1), D(2029, 6, 30)]
    with pytest.raises(InputError, match="no hostilities group"):
        record_extension(p, Extension(12), "nope")


def test_report_warns_when_the_meeting_is_after_the_deadline() -> None:
    r = deadline_report(prog(), D(2021, 11, 20))
    assert r.filing_deadline == D(2021, 2, 20)
    assert r.notes and "after the deadline" in r.notes[0]
    assert r.to_dict()["groups"][0]["current_deadline"] == "2021-08-01"
