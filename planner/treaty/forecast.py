"""When will the programme finish? Completion forecasts against the Article 4 deadline.

Two kinds of scenario share one simulation:

* **historical** (the default): each future year (or month) releases what one past year (or
  month) released and adds what it discovered, drawn at random from the history — a bootstrap
  of the recorded release series. Recent periods can be favoured with a window (only the last
  *n* years) or a half-life (a period *h* years older is half as likely to be drawn).
* **capacity**: teams × m² per team per day × working days per year, per method, with an
  optional year-to-year variability (coefficient of variation, log-normal) and a discovery
  rate of new contamination per year.

Each draw walks the remaining area down from the figure at ``as_of`` until it reaches zero; the
completion date is interpolated within the period it happens in. The draws give the completion
date at P10/P50/P90 (P10 is the optimistic one), the probability of finishing by the deadline,
the constant annual release rate that would finish on time, and the whole number of years
"strictly necessary" for an extension request (Article 4(5): at most five per request).

Every :class:`Forecast` lists its method, the history window it used, and its assumptions, so a
figure quoted from it can be traced.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from planner.accounting import Ledger, period_ends
from planner.errors import InputError
from planner.layers import METHODS
from planner.programme import Programme
from planner.treaty.deadlines import (
    MAX_EXTENSION_MONTHS,
    DeadlineGroup,
    add_months,
    add_years,
    assign_groups,
    deadline_groups,
    group_by_name,
)

Freq = Literal["year", "month"]
Percentile = Literal["P10", "P50", "P90"]
#: Remaining area below this counts as none left [m²].
FINISHED_TOLERANCE_M2 = 1.0
_DAYS_PER_YEAR = 365.2425
_NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class CapacityLine:
    """Output of the teams working by one release method.

    Examples
    --------
    >>> CapacityLine("cleared", teams=4, m2_per_team_day=500, working_days_per_year=200
    ...              ).rate_m2_per_year
    400000.0
    """

    method: str
    teams: float
    m2_per_team_day: float
    working_days_per_year: float = 200.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"capacity method {self.method!r}: use one of {', '.join(METHODS)}")
        for name in ("teams", "m2_per_team_day", "working_days_per_year"):
            if not getattr(self, name) >= 0:
                raise InputError(f"capacity {name} must be zero or more, not "
                                 f"{getattr(self, name)}")
        if self.working_days_per_year > 366:
            raise InputError("working_days_per_year cannot exceed 366")

    @property
    def rate_m2_per_year(self) -> float:
        """Area released per year by these teams [m²/year]."""
        return float(self.teams * self.m2_per_team_day * self.working_days_per_year)

    @classmethod
    def parse(cls, text: str) -> CapacityLine:
        """Read ``METHOD:TEAMS:M2_PER_TEAM_DAY[:WORKING_DAYS]``, e.g. ``cleared:4:500:200``."""
        parts = text.split(":")
        if len(parts) not in (3, 4):
            raise InputError(f"capacity {text!r}: write METHOD:TEAMS:M2_PER_TEAM_DAY[:DAYS], "
                             "e.g. cleared:4:500:200")
        try:
            nums = [float(p) for p in parts[1:]]
        except ValueError as exc:
            raise InputError(f"capacity {text!r}: teams, m² per team per day and working "
                             "days must be numbers") from exc
        return cls(parts[0].strip().lower(), *nums)


@dataclass(frozen=True)
class Scenario:
    """How to project the future. The defaults give the historical bootstrap.

    Parameters
    ----------
    name : str
        Shown on reports.
    freq : {"year", "month"}
        Resolution of the history drawn from and of the simulation.
    window_years : int, optional
        Use only the last ``window_years`` years of history.
    half_life_years : float, optional
        Weight recent history: a period this many years older is half as likely to be drawn.
    capacity : tuple of CapacityLine
        When given, project from team capacity instead of the history of releases.
    capacity_cv : float
        Year-to-year variability of capacity output (coefficient of variation, 0 = none).
    discovery_m2_per_year : float, optional
        New contamination recorded per year [m²/year]. Default: as in the history (drawn with
        the releases of the same period for the historical scenario, the weighted mean for a
        capacity scenario).
    draws : int
        Number of simulated futures.
    seed : int
        Seed of the random generator, for reproducible figures.
    horizon_years : int
        Futures that have not finished after this many years count as not finishing.
    basis : {"P10", "P50", "P90"}
        Which completion date the years needed for an extension are based on.
    """

    name: str = "historical"
    freq: Freq = "year"
    window_years: int | None = None
    half_life_years: float | None = None
    capacity: tuple[CapacityLine, ...] = ()
    capacity_cv: float = 0.0
    discovery_m2_per_year: float | None = None
    draws: int = 10_000
    seed: int = 20111
    horizon_years: int = 50
    basis: Percentile = "P50"

    def __post_init__(self) -> None:
        if self.freq not in ("year", "month"):
            raise InputError(f"frequency {self.freq!r}: use 'year' or 'month'")
        if self.window_years is not None and self.window_years < 1:
            raise InputError("window_years must be at least 1")
        if self.half_life_years is not None and not self.half_life_years > 0:
            raise InputError("half_life_years must be more than 0")
        if self.draws < 1 or self.horizon_years < 1:
            raise InputError("draws and horizon_years must be at least 1")
        if self.capacity_cv < 0:
            raise InputError("capacity_cv must be zero or more")
        if self.discovery_m2_per_year is not None and self.discovery_m2_per_year < 0:
            raise InputError("discovery_m2_per_year must be zero or more")
        if self.basis not in ("P10", "P50", "P90"):
            raise InputError(f"basis {self.basis!r}: use P10, P50 or P90")

    @property
    def kind(self) -> str:
        """``"capacity"`` or ``"historical"``."""
        return "capacity" if self.capacity else "historical"

    @property
    def capacity_m2_per_year(self) -> float:
        """Sum of the capacity lines [m²/year]."""
        return float(sum(c.rate_m2_per_year for c in self.capacity))


@dataclass(frozen=True)
class Forecast:
    """A completion forecast and everything needed to quote it honestly.

    Dates are ``None`` where the futures do not finish within the horizon.
    """

    scenario: Scenario
    method: str
    assumptions: list[str]
    as_of: dt.date
    group: str
    deadline: dt.date
    remaining_m2: float
    history: pd.DataFrame
    window: tuple[dt.date, dt.date] | None
    release_m2_per_year: float
    discovery_m2_per_year: float
    completion_p10: dt.date | None
    completion_p50: dt.date | None
    completion_p90: dt.date | None
    probability_by_deadline: float
    required_release_m2_per_year: float | None
    years_needed: int | None
    statement: str
    fan: pd.DataFrame
    completion_days: np.ndarray = field(repr=False)

    @property
    def finished(self) -> bool:
        """No contaminated area left at ``as_of``."""
        return self.remaining_m2 <= FINISHED_TOLERANCE_M2

    @property
    def extension_years(self) -> int:
        """Years to request: the years needed, capped at the five Article 4(5) allows."""
        if self.finished or self.years_needed == 0:
            return 0
        cap = MAX_EXTENSION_MONTHS // 12
        return cap if self.years_needed is None else min(self.years_needed, cap)

    @property
    def extension_suffices(self) -> bool:
        """Whether an extension of at most five years covers the forecast completion."""
        return self.years_needed is not None and self.years_needed <= MAX_EXTENSION_MONTHS // 12

    def completion(self, percentile: Percentile) -> dt.date | None:
        """Completion date at ``"P10"``, ``"P50"`` or ``"P90"``."""
        return {"P10": self.completion_p10, "P50": self.completion_p50,
                "P90": self.completion_p90}[percentile]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (dates as ISO strings, areas in m²)."""
        def iso(d: dt.date | None) -> str | None:
            return d.isoformat() if d else None

        sc = asdict(self.scenario)
        sc["kind"] = self.scenario.kind
        sc["capacity_m2_per_year"] = self.scenario.capacity_m2_per_year
        return {
            "scenario": sc, "method": self.method, "assumptions": self.assumptions,
            "as_of": iso(self.as_of), "deadline_group": self.group,
            "deadline": iso(self.deadline), "remaining_m2": self.remaining_m2,
            "finished": self.finished,
            "history_window": ([iso(self.window[0]), iso(self.window[1])]
                               if self.window else None),
            "release_m2_per_year": self.release_m2_per_year,
            "discovery_m2_per_year": self.discovery_m2_per_year,
            "completion": {"P10": iso(self.completion_p10), "P50": iso(self.completion_p50),
                           "P90": iso(self.completion_p90)},
            "probability_by_deadline": self.probability_by_deadline,
            "required_release_m2_per_year": self.required_release_m2_per_year,
            "years_needed": self.years_needed, "extension_years": self.extension_years,
            "extension_suffices": self.extension_suffices, "statement": self.statement,
            "history": _records(self.history), "fan": _records(self.fan),
        }


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in df.to_dict(orient="records"):
        out.append({str(k): (v.isoformat() if isinstance(v, dt.date) else
                        (float(v) if isinstance(v, np.floating | float) else v))
                    for k, v in row.items()})
    return out


# -- history ---------------------------------------------------------------------------------
def release_history(ledger: Ledger, as_of: dt.date, freq: Freq = "year") -> pd.DataFrame:
    """Area released by method and discovered in each period up to ``as_of`` [m²].

    One row per year (or month) from the period of the first release to the one ending on or
    before ``as_of``, with ``*_m2`` columns for what happened *in* that period and
    ``remaining_m2`` at its end.

    Examples
    --------
    >>> import datetime as dt, geopandas as gpd
    >>> from shapely import box
    >>> from planner.accounting import build_ledger
    >>> h = gpd.GeoDataFrame({"hazard_id": ["A"], "status": ["CHA"],
    ...     "recorded_on": [dt.date(2011, 1, 1)], "found_after_eif": [False]},
    ...     geometry=[box(0, 0, 100, 100)], crs=3035)
    >>> r = gpd.GeoDataFrame({"release_id": ["R1", "R2"], "method": ["cleared", "cancelled"],
    ...     "released_on": [dt.date(2012, 5, 1), dt.date(2013, 5, 1)]},
    ...     geometry=[box(0, 0, 50, 100), box(50, 0, 70, 100)], crs=3035)
    >>> led = build_ledger(h, r, eif=dt.date(2011, 8, 1))
    >>> release_history(led, dt.date(2013, 12, 31))[["period_end", "released_m2"]].round()
       period_end  released_m2
    0  2012-12-31       5000.0
    1  2013-12-31       2000.0
    """
    first = _first_release_day(ledger)
    ends = ([] if first is None or first > as_of
            else [d for d in period_ends(first, as_of, freq) if d <= as_of])
    if not ends:
        return pd.DataFrame(columns=["period_end", *[f"{m}_m2" for m in METHODS],
                                     "released_m2", "discovered_m2", "remaining_m2"])
    before = add_months(ends[0], -12 if freq == "year" else -1)
    before = _period_end(before, freq)
    s = ledger.series([before, *ends])
    out = pd.DataFrame({"period_end": ends})
    for m in (*METHODS, "released"):
        out[f"{m}_m2"] = s[f"{m}_m2"].diff().to_numpy()[1:]
    out["discovered_m2"] = s["discovered_m2"].diff().to_numpy()[1:]
    out["remaining_m2"] = s["remaining_m2"].to_numpy()[1:]
    return out


def _first_release_day(ledger: Ledger) -> dt.date | None:
    if not len(ledger.release_day):
        return None
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(ledger.release_day.min()))


def _period_end(d: dt.date, freq: Freq) -> dt.date:
    if freq == "year":
        return dt.date(d.year, 12, 31)
    return add_months(dt.date(d.year, d.month, 1), 1) - dt.timedelta(days=1)


def default_as_of(ledger: Ledger, freq: Freq = "year", today: dt.date | None = None
                  ) -> dt.date:
    """End of the period of the latest record, but no later than the last complete period.

    Examples
    --------
    >>> import datetime as dt
    >>> from planner.accounting import build_ledger
    >>> import geopandas as gpd
    >>> empty = gpd.GeoDataFrame({"hazard_id": [], "status": [], "recorded_on": [],
    ...     "found_after_eif": []}, geometry=[], crs=3035)
    >>> rel = gpd.GeoDataFrame({"release_id": [], "method": [], "released_on": []},
    ...     geometry=[], crs=3035)
    >>> default_as_of(build_ledger(empty, rel, eif=dt.date(2011, 8, 1)),
    ...               today=dt.date(2026, 11, 23))
    datetime.date(2025, 12, 31)
    """
    today = today or dt.date.today()
    last_complete = _period_end(add_months(today, -12 if freq == "year" else -1), freq)
    last = ledger.last_day
    if last is None:
        return last_complete
    return min(_period_end(last, freq), last_complete)


# -- simulation ------------------------------------------------------------------------------
def _step_ends(as_of: dt.date, steps: int, months: int) -> np.ndarray:
    """Day numbers of ``as_of`` and the end of each of the next ``steps`` periods."""
    month_end = (as_of + dt.timedelta(days=1)).day == 1
    out = np.empty(steps + 1, dtype=np.int64)
    epoch = dt.date(1970, 1, 1)
    for k in range(steps + 1):
        d = add_months(as_of, k * months)
        if month_end:
            d = _period_end(d, "month")
        out[k] = (d - epoch).days
    return out


def _simulate(remaining: float, released: np.ndarray, added: np.ndarray, ends: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Completion day per draw (``_NEVER`` if not within the horizon), and remaining per step.

    ``released`` and ``added`` are (draws, steps) arrays of area per period [m²].
    """
    net = released - added
    cum = np.cumsum(net, axis=1)
    draws, steps = net.shape
    if remaining <= FINISHED_TOLERANCE_M2:
        day = np.full(draws, ends[0], dtype=np.int64)
        return day, np.zeros((draws, steps))
    # a future is done within 1 m² (or a millionth of the area: float sums of many periods)
    done = cum >= remaining - max(FINISHED_TOLERANCE_M2, 1e-6 * remaining)
    finished = done.any(axis=1)
    k = np.where(finished, done.argmax(axis=1), 0)
    rows = np.arange(draws)
    prev = np.where(k > 0, cum[rows, np.maximum(k - 1, 0)], 0.0)
    step_net = net[rows, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip(np.where(step_net > 0, (remaining - prev) / step_net, 1.0), 0.0, 1.0)
    length = ends[k + 1] - ends[k]
    day = ends[k] + np.ceil(frac * length - 1e-6).astype(np.int64)
    day = np.where(finished, day, _NEVER)
    left = np.maximum(remaining - cum, 0.0)
    left[np.arange(steps)[None, :] >= np.where(finished, k, steps)[:, None]] = 0.0
    return day, left


def _quantile_days(days: np.ndarray, q: float) -> int:
    return int(np.quantile(days, q, method="inverted_cdf"))


def _date(day: int) -> dt.date | None:
    return None if day == _NEVER else dt.date(1970, 1, 1) + dt.timedelta(days=day)


def forecast(ledger: Ledger, programme: Programme, scenario: Scenario | None = None, *,
             as_of: dt.date | None = None, group: str | None = None,
             deadline: dt.date | None = None, today: dt.date | None = None) -> Forecast:
    """Forecast completion of one deadline group of a programme.

    Parameters
    ----------
    ledger : Ledger
        The programme's ledger (:func:`planner.accounting.build_ledger`).
    programme : Programme
        For its deadline groups (EIF, hostilities, extensions granted).
    scenario : Scenario, optional
        Historical bootstrap by default.
    as_of : datetime.date, optional
        Date the forecast starts from (default :func:`default_as_of`).
    group : str, optional
        Deadline group (default: contamination present at EIF).
    deadline, today : datetime.date, optional
        Compare with this date instead of the group's deadline; today for the default as_of.

    Returns
    -------
    Forecast

    Examples
    --------
    1,000,000 m² recorded in 2011 and exactly 100,000 m² released each year from 2012:

    >>> import datetime as dt, geopandas as gpd
    >>> from shapely import box
    >>> from planner.accounting import build_ledger
    >>> x, y = 4321000, 3210000  # the centre of EPSG:3035, an equal-area projection
    >>> h = gpd.GeoDataFrame({"hazard_id": ["A"], "status": ["CHA"],
    ...     "recorded_on": [dt.date(2011, 1, 1)], "found_after_eif": [False]},
    ...     geometry=[box(x, y, x + 1000, y + 1000)], crs=3035)
    >>> r = gpd.GeoDataFrame({"release_id": ["R1", "R2", "R3"], "method": ["cleared"] * 3,
    ...     "released_on": [dt.date(yr, 6, 1) for yr in (2012, 2013, 2014)]},
    ...     geometry=[box(x, y + 100 * i, x + 1000, y + 100 * (i + 1)) for i in range(3)],
    ...     crs=3035)
    >>> p = Programme("P", dt.date(2011, 8, 1))
    >>> f = forecast(build_ledger(h, r, eif=p.eif), p, as_of=dt.date(2014, 12, 31))
    >>> f.completion_p10, f.completion_p50, f.completion_p90
    (datetime.date(2021, 12, 31), datetime.date(2021, 12, 31), datetime.date(2021, 12, 31))
    >>> f.probability_by_deadline, f.years_needed
    (0.0, 1)
    """
    scenario = scenario or Scenario()
    chosen = group_by_name(deadline_groups(programme), group)
    ledger = group_ledger(ledger, programme, group)
    as_of = as_of or default_as_of(ledger, scenario.freq, today)
    deadline = deadline or chosen.current
    remaining = float(ledger.status(as_of).remaining_m2)
    history = release_history(ledger, as_of, scenario.freq)
    past = _Past.of(history, as_of, scenario)
    steps = scenario.horizon_years * past.per_year
    ends = _step_ends(as_of, steps, 12 // past.per_year)
    rng = np.random.default_rng(scenario.seed)
    draws = (_historical_draws(past, scenario, steps, rng, remaining, as_of)
             if scenario.kind == "historical" else _capacity_draws(past, scenario, steps, rng))
    assumptions = [*draws.assumptions,
                   f"remaining area at {as_of}: {remaining:,.0f} m², the union of recorded "
                   "hazards minus the union of releases, in an equal-area projection",
                   f"futures not finished after {scenario.horizon_years} years count as not "
                   "finishing"]
    days, left = _simulate(remaining, draws.released, draws.added, ends)
    q = {p: _date(_quantile_days(days, v)) for p, v in
         (("P10", 0.1), ("P50", 0.5), ("P90", 0.9))}
    probability = float(np.mean(days <= (deadline - dt.date(1970, 1, 1)).days))
    required = _required_rate(remaining, as_of, deadline, draws.disc_rate)
    fan = _fan(ends, remaining, left, days)
    years_needed, statement = _years_needed(q[scenario.basis], scenario.basis, deadline,
                                            remaining, chosen, as_of)
    return Forecast(
        scenario=scenario, method=draws.method, assumptions=assumptions, as_of=as_of,
        group=chosen.name, deadline=deadline, remaining_m2=remaining, history=history,
        window=past.window, release_m2_per_year=draws.rel_rate,
        discovery_m2_per_year=draws.disc_rate,
        completion_p10=q["P10"], completion_p50=q["P50"], completion_p90=q["P90"],
        probability_by_deadline=probability, required_release_m2_per_year=required,
        years_needed=years_needed, statement=statement, fan=fan, completion_days=days)


def _required_rate(remaining: float, as_of: dt.date, deadline: dt.date,
                   discovery_m2_per_year: float) -> float | None:
    """The constant release rate that finishes by the deadline [m²/year]; None if it passed."""
    if remaining <= FINISHED_TOLERANCE_M2:
        return 0.0
    years_left = (deadline - as_of).days / _DAYS_PER_YEAR
    return (remaining / years_left + discovery_m2_per_year) if years_left > 0 else None


@dataclass(frozen=True)
class _Past:
    """The recorded periods a forecast draws on, their weights and mean rates [m²/year]."""

    per_year: int
    unit: str
    window: tuple[dt.date, dt.date] | None
    window_text: str
    weights: np.ndarray
    released: np.ndarray
    discovered: np.ndarray
    mean_release_m2_per_year: float
    mean_discovery_m2_per_year: float

    @classmethod
    def of(cls, history: pd.DataFrame, as_of: dt.date, scenario: Scenario) -> _Past:
        per_year = 1 if scenario.freq == "year" else 12
        used = history
        if scenario.window_years is not None and len(history):
            used = history[history["period_end"] > add_years(as_of, -scenario.window_years)]
        window = ((used["period_end"].iloc[0], used["period_end"].iloc[-1]) if len(used)
                  else None)
        weights = np.ones(len(used))
        if scenario.half_life_years is not None and len(used):
            age_years = np.array([(as_of - d).days for d in used["period_end"]]) / _DAYS_PER_YEAR
            weights = 0.5 ** (age_years / scenario.half_life_years)
        weights = weights / weights.sum() if len(used) else weights
        rel = used["released_m2"].to_numpy(dtype=float) if len(used) else np.zeros(0)
        disc = used["discovered_m2"].to_numpy(dtype=float) if len(used) else np.zeros(0)
        unit = "year" if per_year == 1 else "month"
        text = (f"{len(used)} {unit}(s) of recorded releases, periods ending "
                f"{window[0]} to {window[1]}" if window else "no recorded releases")
        if scenario.half_life_years is not None:
            text += f", weighted with a half-life of {scenario.half_life_years:g} years"
        return cls(per_year, unit, window, text, weights, rel, disc,
                   float(np.dot(weights, rel)) * per_year if len(used) else 0.0,
                   float(np.dot(weights, disc)) * per_year if len(used) else 0.0)


@dataclass(frozen=True)
class _Draws:
    """Simulated futures: area released and discovered per step [m²], and how they were made."""

    released: np.ndarray
    added: np.ndarray
    rel_rate: float
    disc_rate: float
    method: str
    assumptions: list[str]


def _historical_draws(past: _Past, scenario: Scenario, steps: int, rng: np.random.Generator,
                      remaining: float, as_of: dt.date) -> _Draws:
    """Each future period drawn at random from the recorded ones (bootstrap)."""
    n = len(past.released)
    if not n and remaining > FINISHED_TOLERANCE_M2:
        raise InputError(
            f"no area released in the history up to {as_of}: a historical forecast needs "
            "at least one period of releases. Give a capacity scenario instead (e.g. 4 teams "
            "of deminers at 500 m² a day, 200 days a year).", argument="capacity")
    idx = (rng.choice(n, size=(scenario.draws, steps), p=past.weights)
           if n else np.zeros((scenario.draws, steps), dtype=np.int64))
    released = past.released[idx] if n else np.zeros((scenario.draws, steps))
    unit = past.unit
    if scenario.discovery_m2_per_year is None:
        added = past.discovered[idx] if n else np.zeros_like(released)
        disc_rate = past.mean_discovery_m2_per_year
        disc_text = (f"new contamination is discovered as in the same drawn {unit} "
                     f"(mean {disc_rate:,.0f} m²/year)")
    else:
        disc_rate = scenario.discovery_m2_per_year
        added = np.full_like(released, disc_rate / past.per_year)
        disc_text = f"new contamination is discovered at {disc_rate:,.0f} m²/year"
    method = (f"bootstrap of {unit}ly release rates: {scenario.draws:,} futures, each "
              f"{unit} drawn at random (with replacement) from {past.window_text}; seed "
              f"{scenario.seed}")
    return _Draws(released, added, past.mean_release_m2_per_year, disc_rate, method,
                  [f"future {unit}s release area as the recorded ones did, in random order",
                   disc_text])


def _capacity_draws(past: _Past, scenario: Scenario, steps: int,
                    rng: np.random.Generator) -> _Draws:
    """Teams × m²/team/day × working days, optionally varying year to year (log-normal)."""
    rel_rate = scenario.capacity_m2_per_year
    factors = np.ones((scenario.draws, steps))
    if scenario.capacity_cv > 0:
        sigma = math.sqrt(math.log1p(scenario.capacity_cv ** 2))
        factors = rng.lognormal(-sigma * sigma / 2, sigma, size=(scenario.draws, steps))
    released = factors * (rel_rate / past.per_year)
    disc_rate = (past.mean_discovery_m2_per_year if scenario.discovery_m2_per_year is None
                 else scenario.discovery_m2_per_year)
    added = np.full_like(released, disc_rate / past.per_year)
    lines = "; ".join(f"{c.method}: {c.teams:g} team(s) × {c.m2_per_team_day:,.0f} m²/day "
                      f"× {c.working_days_per_year:g} days = {c.rate_m2_per_year:,.0f} "
                      "m²/year" for c in scenario.capacity)
    method = (f"capacity projection: {lines}; total {rel_rate:,.0f} m²/year"
              + (f", varying year to year with a coefficient of variation of "
                 f"{scenario.capacity_cv:g} (log-normal, {scenario.draws:,} futures, seed "
                 f"{scenario.seed})" if scenario.capacity_cv > 0 else ", constant"))
    src = ("the recorded mean of " + past.window_text if scenario.discovery_m2_per_year is None
           else "given")
    return _Draws(released, added, rel_rate, disc_rate, method,
                  ["the teams keep this capacity for the whole period",
                   f"new contamination is discovered at {disc_rate:,.0f} m²/year ({src})"])


def group_ledger(ledger: Ledger, programme: Programme, group: str | None) -> Ledger:
    """The part of ``ledger`` in one deadline group (the whole ledger if there is one group)."""
    groups = deadline_groups(programme)
    chosen = group_by_name(groups, group)
    if len(groups) == 1:
        return ledger
    names = assign_groups(ledger.hazard_ids, ledger.hazard_region, groups)
    return ledger.subset(names == chosen.name)


def _fan(ends: np.ndarray, remaining: float, left: np.ndarray, days: np.ndarray
         ) -> pd.DataFrame:
    """Remaining area at P10/P50/P90 at each future period end, up to the P90 completion."""
    p90 = _quantile_days(days, 0.9)
    last = int(ends[-1]) if p90 == _NEVER else p90
    n = int(np.searchsorted(ends[1:], last, side="left")) + 1
    n = min(n, left.shape[1])
    qs = np.quantile(left[:, :n], [0.1, 0.5, 0.9], axis=0) if n else np.zeros((3, 0))
    epoch = dt.date(1970, 1, 1)
    dates = [epoch + dt.timedelta(days=int(d)) for d in ends[: n + 1]]
    # P10 of completion is the *low* remaining curve: fewer m² left is the optimistic side
    return pd.DataFrame({"period_end": dates,
                         "low_m2": np.r_[remaining, qs[0]], "median_m2": np.r_[remaining, qs[1]],
                         "high_m2": np.r_[remaining, qs[2]]})


def _years_needed(completion: dt.date | None, basis: str, deadline: dt.date, remaining: float,
                  group: DeadlineGroup, as_of: dt.date) -> tuple[int | None, str]:
    cap = MAX_EXTENSION_MONTHS // 12
    if remaining <= FINISHED_TOLERANCE_M2:
        return 0, (f"No contaminated area remains at {as_of}: the State can declare compliance "
                   "with Article 4(1) at the next Meeting of States Parties (Article 4(1)(c)); "
                   "no extension is needed.")
    if completion is None:
        return None, (f"At the forecast rate the {basis} future does not finish within the "
                      "horizon: even the five years an extension may give (Article 4(5)) will "
                      "not suffice. Raise capacity, or plan a request now and its renewals "
                      "(Article 4(8)).")
    if deadline <= as_of:
        passed = (f"The deadline {deadline} ({group.name}) passed before {as_of}; record the "
                  "extension granted with `planner grant-extension` if there is one. ")
    else:
        passed = ""
    if completion <= deadline:
        return 0, (f"The {basis} completion date {completion} is on or before the deadline "
                   f"{deadline} ({group.name}): no extension is needed at this forecast.")
    n = 1
    while add_years(deadline, n) < completion:
        n += 1
    if n <= cap:
        return n, (passed + f"The {basis} completion date {completion} is after the deadline "
                   f"{deadline}; {n} year(s) of extension, to {add_years(deadline, n)}, are "
                   "strictly necessary at this forecast (Article 4(5)).")
    return n, (passed + f"The {basis} completion date {completion} is {n} years after the "
               f"deadline "
               f"{deadline}: even the five years an extension may give (Article 4(5)), to "
               f"{add_years(deadline, cap)}, will not suffice at the forecast rate. Request "
               "five years with a plan that raises capacity, or expect to renew (4(8)).")
