"""``/api/status``, ``/api/series``, ``/api/deadlines``, ``/api/forecast``: aggregate figures.

Open to anonymous callers, who get the figures without what locates land
(:func:`public_figures`); signed-in callers get the ids as well.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from planner.accounting import period_ends, verified_status
from planner.errors import InputError
from planner.web.auth import OptionalUser
from planner.web.params import DateQ
from planner.web.state import State

router = APIRouter(tags=["figures"])

#: Keys of the figures that locate land; dropped (recursively) for anonymous callers.
PRIVATE_KEYS = frozenset({"outside_release_ids", "hazard_ids", "area_method"})
#: What anonymous callers are told instead of the projection's centre.
PUBLIC_AREA_METHOD = ("union areas in a Lambert azimuthal equal-area projection centred on the "
                      "data (the centre is shown to signed-in users)")


def public_figures(value: Any) -> Any:
    """``value`` without what locates land (:data:`PRIVATE_KEYS`), for anonymous callers.

    Examples
    --------
    >>> public_figures({"remaining_m2": 5.0, "outside_release_ids": ["R1"],
    ...                 "groups": [{"name": "a", "hazard_ids": ["H1"]}]})
    {'remaining_m2': 5.0, 'groups': [{'name': 'a'}]}
    """
    if isinstance(value, dict):
        return {k: public_figures(v) for k, v in value.items() if k not in PRIVATE_KEYS}
    if isinstance(value, list):
        return [public_figures(v) for v in value]
    return value


@router.get("/api/status")
def get_status(state: State, user: OptionalUser, at: DateQ = None,
               as_known_on: DateQ = None) -> dict[str, Any]:
    """Baseline, discovered, released by method and remaining [m²] at a date.

    With ``as_known_on``, from the records as they stood at the end of that day (imports
    made by then and not retracted by then). Anonymous callers get the figures only: no ids
    of releases outside hazards and no centre of the equal-area projection (both locate
    land).
    """
    s = verified_status(state.store, at or dt.date.today(),
                        ledger=state.ledger(as_known_on))
    out = {"programme": state.store.programme().name, **s.to_dict()}
    if user is None:
        out = public_figures(out)
        out["outside_release_count"] = len(s.outside_release_ids)
        out["area_method"] = PUBLIC_AREA_METHOD
    return out


@router.get("/api/series")
def get_series(state: State, freq: Literal["year", "month"] = "year", start: DateQ = None,
               end: DateQ = None, as_known_on: DateQ = None) -> list[dict[str, Any]]:
    """Figures at each year (or month) end [m²] (``as_known_on``: as for ``/api/status``)."""
    led = state.ledger(as_known_on)
    first = start or led.first_day or dt.date.today()
    last = end or dt.date.today()
    if last < first:
        raise InputError("end must not be before start", argument="end")
    if (last.year - first.year) > 200:
        raise InputError("a series may span at most 200 years", argument="start")
    df = led.series(period_ends(first, last, freq))
    df["date"] = df["date"].map(lambda d: d.isoformat())
    return df.to_dict(orient="records")  # type: ignore[return-value]


@router.get("/api/deadlines")
def get_deadlines(state: State, user: OptionalUser, meeting: DateQ = None) -> dict[str, Any]:
    """Article 4 deadlines; with a meeting date, the latest filing date.

    Anonymous callers get no hazard ids (regions only).
    """
    from planner.treaty.deadlines import deadline_report

    out = deadline_report(state.store.programme(), meeting).to_dict()
    return out if user is not None else public_figures(out)


@router.get("/api/forecast")
def get_forecast(state: State, as_of: DateQ = None,
                 window_years: Annotated[int | None, Query(ge=1, le=100)] = None,
                 draws: Annotated[int, Query(ge=100, le=20_000)] = 10_000,
                 seed: Annotated[int, Query(ge=0, le=2**31)] = 20111,
                 user: OptionalUser = None) -> dict[str, Any]:
    """Completion forecast (historical bootstrap) with method and assumptions."""
    from planner.treaty.forecast import Scenario, forecast

    f = forecast(state.ledger(), state.store.programme(),
                 Scenario(window_years=window_years, draws=draws, seed=seed), as_of=as_of)
    return f.to_dict() if user is not None else public_figures(f.to_dict())
