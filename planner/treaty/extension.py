"""The Article 4(6) extension request: its figures, its work plan and its document.

:func:`draft_extension_request` is the one call every face makes. :func:`request_figures`
takes the store's ledger and a :class:`~planner.treaty.forecast.Forecast` and computes what
Article 4(6) asks for in figures:

* (a) the duration requested (whole years, at most five, from the forecast unless given);
* (c) the work done: area released per year since entry into force (EIF), by method;
* (d) the area contaminated at EIF and the area discovered after EIF;
* (e) the area cleared since EIF, with the areas cancelled and reduced shown apart;
* (f) the area remaining, with the reconciliation (d) - (e) = (f) as a table;
* an annual work plan whose yearly benchmarks reach zero at the requested deadline.

:func:`request_document` lays these out with breakdowns by region and status and a burn-down
chart; items (b), (g), (h) and (i) are left as marked blanks for the author, never filled in.
A programme with nothing left gets a draft declaration of compliance (Article 4(1)(c)) instead.

The Article 7(1)(h)/(i) section lives in :mod:`planner.treaty.article7`.

All areas are unions in square metres measured in an equal-area projection
(:mod:`planner.accounting`); every table is shown in m² and the key figures also in km².
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from planner.accounting import Ledger, period_ends
from planner.documents.model import Blank, Document, Figure, Heading, Paragraph, Table
from planner.errors import InputError
from planner.layers import METHODS
from planner.programme import Programme
from planner.store import Store
from planner.treaty.charts import burndown_png
from planner.treaty.deadlines import (
    MAX_EXTENSION_MONTHS,
    add_years,
    deadline_groups,
    group_by_name,
)
from planner.treaty.forecast import FINISHED_TOLERANCE_M2, Forecast, Scenario, group_ledger

RECONCILE_TOLERANCE_M2 = 1.0


def m2(value: float) -> str:
    """Area in whole square metres with thousands separators.

    Examples
    --------
    >>> m2(1352724.4), m2(-0.3)
    ('1,352,724 m²', '0 m²')
    """
    return f"{_n(value)} m²"


def km2(value: float) -> str:
    """Area in square kilometres, three decimals.

    Examples
    --------
    >>> km2(1352724.4)
    '1.353 km²'
    """
    return f"{value / 1e6:,.3f} km²"


def both(value: float) -> str:
    """Area in m² with km² in brackets: ``1,352,724 m² (1.353 km²)``."""
    return f"{m2(value)} ({km2(value)})"


def _n(value: Any) -> str:
    v = round(float(value))
    return f"{0 if v == 0 else v:,}"


@dataclass(frozen=True)
class RequestFigures:
    """The figures of an extension request for one deadline group, all in m².

    The identity ``area_at_eif_m2 + discovered_after_eif_m2 - released_since_eif_m2 ==
    remaining_m2`` holds by construction from the ledger, so it is shown, not checked;
    :attr:`check_gap_m2` is the difference from an independent recomputation of the remaining
    area when one was made, and :attr:`verified` says whether it agrees to 1 m².
    """

    programme: str
    group: str
    eif: dt.date
    as_of: dt.date
    original_deadline: dt.date
    current_deadline: dt.date
    requested_years: int
    requested_deadline: dt.date
    recorded_by_eif_m2: float
    recorded_later_baseline_m2: float
    released_before_eif_m2: float
    area_at_eif_m2: float
    discovered_after_eif_m2: float
    cancelled_m2: float
    reduced_m2: float
    cleared_m2: float
    remaining_m2: float
    outside_m2: float
    area_method: str
    yearly: pd.DataFrame
    plan: pd.DataFrame
    regions: pd.DataFrame
    independent_remaining_m2: float | None = None

    @property
    def released_since_eif_m2(self) -> float:
        """(e) in full: cleared + reduced + cancelled since EIF."""
        return self.cancelled_m2 + self.reduced_m2 + self.cleared_m2

    @property
    def finished(self) -> bool:
        """Nothing left to clear."""
        return self.remaining_m2 <= FINISHED_TOLERANCE_M2

    @property
    def check_gap_m2(self) -> float | None:
        """Independent remaining area minus (f) [m²]; None when no check was made.

        (d) - (e) = (f) holds by construction of the ledger; only a figure computed another
        way (a global union of every polygon) can show that (f) is wrong.
        """
        if self.independent_remaining_m2 is None:
            return None
        return float(self.independent_remaining_m2 - self.remaining_m2)

    @property
    def verified(self) -> bool | None:
        """True/False: the independent check agrees to 1 m² or not; None: not verified."""
        gap = self.check_gap_m2
        return None if gap is None else abs(gap) <= RECONCILE_TOLERANCE_M2

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (areas in m², dates ISO)."""
        def rec(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [{str(k): (v.isoformat() if isinstance(v, dt.date) else v)
                     for k, v in r.items()} for r in df.to_dict(orient="records")]

        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if isinstance(v, pd.DataFrame):
                out[k] = rec(v)
            elif isinstance(v, dt.date):
                out[k] = v.isoformat()
            else:
                out[k] = v
        out["released_since_eif_m2"] = self.released_since_eif_m2
        out["check_gap_m2"] = self.check_gap_m2
        out["verified"] = self.verified
        return out


def work_plan(remaining_m2: float, start: dt.date, end: dt.date,
              shares: dict[str, float] | None = None) -> pd.DataFrame:
    """Yearly benchmarks releasing ``remaining_m2`` at a constant daily rate from ``start``
    (exclusive) to ``end`` (inclusive), reaching zero on ``end``.

    Parameters
    ----------
    remaining_m2 : float
        Area to release [m²].
    start, end : datetime.date
        The plan runs from the day after ``start`` to ``end``.
    shares : dict, optional
        Fraction of the area to release by each method (summing to 1).

    Returns
    -------
    DataFrame
        One row per calendar year: ``year``, ``period_end``, ``days``, ``target_m2`` (the
        benchmarks sum to ``remaining_m2``), one ``<method>_m2`` column per share, and
        ``remaining_m2`` at the end of the year's part of the plan.

    Examples
    --------
    >>> p = work_plan(1_000_000, dt.date(2024, 12, 31), dt.date(2026, 8, 1))
    >>> p[["year", "days", "target_m2", "remaining_m2"]]
       year  days  target_m2  remaining_m2
    0  2025   365   631487.0      368513.0
    1  2026   213   368513.0           0.0
    """
    if end <= start:
        raise InputError(f"the work plan must end after it starts ({start} to {end}); choose "
                         "a later requested deadline")
    ends = [min(d, end) for d in period_ends(start + dt.timedelta(days=1), end, "year")]
    prev = start
    rows = []
    total_days = (end - start).days
    for e in ends:
        rows.append({"year": e.year, "period_end": e, "days": (e - prev).days})
        prev = e
    plan = pd.DataFrame(rows)
    exact = remaining_m2 * plan["days"].to_numpy() / total_days
    target = np.floor(exact)
    target[-1] = 0.0
    target[-1] = remaining_m2 - target.sum()   # the last year takes the rounding: sums exactly
    plan["target_m2"] = target
    for method, share in (shares or {}).items():
        plan[f"{method}_m2"] = target * share
    plan["remaining_m2"] = np.maximum(remaining_m2 - np.cumsum(target), 0.0)
    plan.loc[plan.index[-1], "remaining_m2"] = 0.0
    return plan


def request_figures(ledger: Ledger, programme: Programme, forecast: Forecast, *,
                    years: int | None = None,
                    independent_remaining_m2: float | None = None) -> RequestFigures:
    """Figures (a), (c)-(f) and the work plan for the forecast's deadline group.

    Parameters
    ----------
    ledger : Ledger
        The whole programme's ledger.
    programme : Programme
        Its deadlines and extensions.
    forecast : Forecast
        The chosen forecast; its ``as_of`` is the date of the figures and its years needed
        the default duration.
    years : int, optional
        Years to request (1-5) instead of the forecast's.
    independent_remaining_m2 : float, optional
        Remaining area computed another way (global unions), shown in the reconciliation.
    """
    group = group_by_name(deadline_groups(programme), forecast.group)
    led = group_ledger(ledger, programme, forecast.group)
    as_of, eif = forecast.as_of, programme.eif
    if as_of < eif:
        raise InputError(f"the figures date {as_of} is before entry into force {eif}")
    if years is not None and not 0 <= years <= MAX_EXTENSION_MONTHS // 12:
        raise InputError(f"{years} years cannot be requested: Article 4(5) allows up to five "
                         "years per request")
    requested = forecast.extension_years if years is None else years
    s0, s1 = led.status(eif), led.status(as_of)
    requested_deadline = add_years(group.current, requested)
    yearly = _yearly(led, eif, as_of)
    shares = _method_shares(yearly)
    plan_end = requested_deadline if requested else group.current
    plan = (work_plan(s1.remaining_m2, as_of, plan_end, shares)
            if s1.remaining_m2 > FINISHED_TOLERANCE_M2 and plan_end > as_of
            else pd.DataFrame(columns=["year", "period_end", "days", "target_m2",
                                       "remaining_m2"]))
    return RequestFigures(
        programme=programme.name, group=group.name, eif=eif, as_of=as_of,
        original_deadline=group.original, current_deadline=group.current,
        requested_years=requested, requested_deadline=requested_deadline,
        recorded_by_eif_m2=s0.baseline_m2 + s0.discovered_m2,
        recorded_later_baseline_m2=s1.baseline_m2 - s0.baseline_m2 - s0.discovered_m2,
        released_before_eif_m2=s0.released_m2,
        area_at_eif_m2=s1.baseline_m2 - s0.released_m2,
        discovered_after_eif_m2=s1.discovered_m2,
        cancelled_m2=s1.cancelled_m2 - s0.cancelled_m2,
        reduced_m2=s1.reduced_m2 - s0.reduced_m2,
        cleared_m2=s1.cleared_m2 - s0.cleared_m2,
        remaining_m2=s1.remaining_m2, outside_m2=s1.outside_m2, area_method=s1.area_method,
        yearly=yearly, plan=plan, regions=led.breakdown(as_of),
        independent_remaining_m2=independent_remaining_m2)


def _yearly(led: Ledger, eif: dt.date, as_of: dt.date) -> pd.DataFrame:
    """Released by method and discovered per calendar year from EIF to ``as_of``."""
    ends = [d for d in period_ends(eif, as_of, "year") if d < as_of] + [as_of]
    s = led.series([eif, *ends])
    out = pd.DataFrame({"period_end": ends})
    out["label"] = [f"{e.year} (from {eif.day} {eif:%b})" if e.year == eif.year else
                    (f"{e.year} (to {e.day} {e:%b})" if e == as_of and (e.month, e.day) != (12, 31)
                     else str(e.year)) for e in ends]
    for m in (*METHODS, "released", "discovered"):
        out[f"{m}_m2"] = s[f"{m}_m2"].diff().to_numpy()[1:]
    out["remaining_m2"] = s["remaining_m2"].to_numpy()[1:]
    return out


def _method_shares(yearly: pd.DataFrame) -> dict[str, float]:
    total = float(yearly["released_m2"].sum()) if len(yearly) else 0.0
    if total <= 0:
        return {"cleared": 1.0}
    return {m: float(yearly[f"{m}_m2"].sum()) / total for m in METHODS}


# -- the document ----------------------------------------------------------------------------
def request_document(fig: RequestFigures, forecast: Forecast, *,
                     history: pd.DataFrame | None = None) -> Document:
    """The draft request (or declaration of compliance) as a :class:`Document`."""
    doc = Document(_title(fig))
    doc.add(Paragraph(
        f"Draft prepared by planner from the programme's records. Figures are at "
        f"{_long(fig.as_of)}. Entry into force: {_long(fig.eif)}. Original deadline "
        f"(Article 4(1)): {_long(fig.original_deadline)}; deadline in force: "
        f"{_long(fig.current_deadline)}."),
        Paragraph(f"Areas are the union of recorded polygons, so land recorded twice is "
                  f"counted once; square metres, {fig.area_method}.", "note"))
    _add_duration(doc, fig, forecast)
    doc.add(Blank("(b)", "A detailed explanation of the reasons for the proposed extension, "
                  "including the financial and technical means available to and required by "
                  "the State Party."))
    _add_work_done(doc, fig)
    _add_areas(doc, fig)
    _add_plan_and_forecast(doc, fig, forecast)
    if history is not None:
        doc.add(_burndown_figure(fig, forecast, history))
    doc.add(Heading("Breakdown by region and status"), _region_table(fig.regions))
    doc.add(Blank("(g)", "Circumstances that impeded the ability of the State Party to destroy "
                  "all cluster munition remnants during the initial ten-year period (and any "
                  "previous extension), and those that may impede it during the extension."),
            Blank("(h)", "The humanitarian, social, economic and environmental implications of "
                  "the extension."),
            Blank("(i)", "Any other information relevant to the request."))
    return doc


def _title(fig: RequestFigures) -> str:
    if fig.finished:
        return (f"{fig.programme}: draft declaration of compliance with Article 4(1) "
                f"({fig.group})")
    if fig.requested_years == 0:
        return (f"{fig.programme}: status against the Article 4 deadline ({fig.group}); no "
                "extension needed at this forecast")
    return (f"{fig.programme}: draft request for an extension of the Article 4 deadline "
            f"({fig.group})")


def _add_duration(doc: Document, fig: RequestFigures, forecast: Forecast) -> None:
    """(a), or the completion statement when nothing remains."""
    if fig.finished:
        doc.add(Heading("Completion"), Paragraph(
            f"All {both(fig.area_at_eif_m2 + fig.discovered_after_eif_m2)} of contaminated "
            f"area recorded has been released; no contaminated area remains at "
            f"{_long(fig.as_of)}. The State can declare compliance at the next Meeting of "
            "States Parties (Article 4(1)(c)); no extension is needed."))
        return
    doc.add(Heading("(a) Duration of the proposed extension"))
    if fig.requested_years:
        doc.add(Paragraph(
            f"{fig.requested_years} year(s), from {_long(fig.current_deadline)} to "
            f"{_long(fig.requested_deadline)}."),
            Paragraph(forecast.statement, "note"))
    else:
        doc.add(Paragraph(forecast.statement))


def _add_work_done(doc: Document, fig: RequestFigures) -> None:
    """(c): area released per year by method since entry into force."""
    doc.add(Heading("(c) Work done since entry into force"),
            Table(["year", "cancelled [m²]", "reduced [m²]", "cleared [m²]",
                   "released [m²]", "discovered [m²]", "remaining at end [m²]"],
                  [[str(r.label), _n(r.cancelled_m2), _n(r.reduced_m2), _n(r.cleared_m2),
                    _n(r.released_m2), _n(r.discovered_m2), _n(r.remaining_m2)]
                   for r in fig.yearly.itertuples()]
                  + [["total", _n(fig.yearly["cancelled_m2"].sum()),
                      _n(fig.yearly["reduced_m2"].sum()), _n(fig.yearly["cleared_m2"].sum()),
                      _n(fig.yearly["released_m2"].sum()),
                      _n(fig.yearly["discovered_m2"].sum()), _n(fig.remaining_m2)]],
                  caption="Area released per year by method, and area discovered",
                  numeric=[False] + [True] * 6, total_rows=1),
            Paragraph("Cancelled: released by non-technical survey; reduced: released by "
                      "technical survey; cleared: fully cleared to the required depth. Each "
                      "piece of land is counted once, under its earliest release.", "note"))



def _add_areas(doc: Document, fig: RequestFigures) -> None:
    """(d), (e), (f) and the reconciliation with its independent check."""
    doc.add(Heading("(d) Contaminated area at entry into force, and discovered since"),
            Paragraph(f"Area contaminated at entry into force: {both(fig.area_at_eif_m2)}."),
            Paragraph(f"Additional area discovered after entry into force: "
                      f"{both(fig.discovered_after_eif_m2)}."),
            Heading("(e) Area cleared since entry into force"),
            Paragraph(f"Area cleared: {both(fig.cleared_m2)}. Also released since entry into "
                      f"force, shown apart: {both(fig.reduced_m2)} reduced by technical survey "
                      f"and {both(fig.cancelled_m2)} cancelled by non-technical survey; "
                      f"{both(fig.released_since_eif_m2)} released in all."),
            Heading("(f) Area remaining to be cleared"),
            Paragraph(f"Area remaining: {both(fig.remaining_m2)}."))
    doc.add(_reconciliation_table(fig))
    if fig.outside_m2 > 1.0:
        doc.add(Paragraph(f"{m2(fig.outside_m2)} of recorded releases lie outside any "
                          "recorded hazard and are not counted as released.", "note"))



def _add_plan_and_forecast(doc: Document, fig: RequestFigures, forecast: Forecast) -> None:
    """The annual work plan and the forecast it is compared with."""
    if len(fig.plan):
        end = fig.plan["period_end"].iloc[-1]
        doc.add(Heading("Annual work plan"),
                Paragraph(f"Yearly benchmarks that release the remaining "
                          f"{both(fig.remaining_m2)} at a constant rate by {_long(end)}, "
                          f"split by method in the proportions released since entry into "
                          f"force. The benchmarks cover the area recorded today; contamination "
                          f"discovered later adds to them. For comparison, the forecast "
                          f"({forecast.scenario.name}) releases "
                          f"{m2(forecast.release_m2_per_year)} a year and adds "
                          f"{m2(forecast.discovery_m2_per_year)} of new contamination a year."),
                _plan_table(fig.plan))

    doc.add(Heading("Forecast used"),
            Paragraph(f"Scenario {forecast.scenario.name!r}: {forecast.method}."),
            Paragraph(f"Completion date: P10 {_d(forecast.completion_p10)}, P50 "
                      f"{_d(forecast.completion_p50)}, P90 {_d(forecast.completion_p90)}. "
                      f"Probability of finishing by {_long(forecast.deadline)}: "
                      f"{forecast.probability_by_deadline:.0%}."
                      + (f" Constant release rate needed to finish by that date: "
                         f"{m2(forecast.required_release_m2_per_year)} a year."
                         if forecast.required_release_m2_per_year is not None else "")),
            Paragraph("Assumptions: " + "; ".join(forecast.assumptions) + ".", "note"))


def _burndown_figure(fig: RequestFigures, forecast: Forecast, history: pd.DataFrame) -> Figure:
    """Remaining area recorded, forecast fan, work plan and deadlines, as a PNG."""
    marks = [("original deadline", fig.original_deadline)]
    if fig.current_deadline != fig.original_deadline:
        marks.append(("deadline in force", fig.current_deadline))
    if fig.requested_years:
        marks.append(("requested", fig.requested_deadline))
    plan_line = (pd.concat([pd.DataFrame({"period_end": [fig.as_of],
                                          "remaining_m2": [fig.remaining_m2]}),
                            fig.plan[["period_end", "remaining_m2"]]])
                 if len(fig.plan) else None)
    return Figure(burndown_png(history, forecast, deadlines=marks, plan=plan_line,
                               title=f"{fig.programme}: remaining contaminated area"),
                  "Remaining area: recorded (blue), forecast median and P10–P90 band "
                  "(orange), work plan (green), deadlines (vertical lines).", "burndown")


def _long(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def _d(day: dt.date | None) -> str:
    return _long(day) if day else "not within the forecast horizon"


def _reconciliation_table(fig: RequestFigures) -> Table:
    rows: list[tuple[str, str, float]] = [
        ("area recorded by entry into force", "", fig.recorded_by_eif_m2),
        ("+ present at entry into force, recorded later", "", fig.recorded_later_baseline_m2),
        ("- released before entry into force", "", -fig.released_before_eif_m2),
        ("= area at entry into force", "(d)", fig.area_at_eif_m2),
        ("+ discovered after entry into force", "(d)", fig.discovered_after_eif_m2),
        ("- cancelled since entry into force", "(e)", -fig.cancelled_m2),
        ("- reduced since entry into force", "(e)", -fig.reduced_m2),
        ("- cleared since entry into force", "(e)", -fig.cleared_m2),
        ("= remaining to be cleared", "(f)", fig.remaining_m2),
    ]
    cells = [[a, b, _n(v), f"{v / 1e6:,.3f}"] for a, b, v in rows]
    if fig.independent_remaining_m2 is not None and fig.check_gap_m2 is not None:
        cells.append(["check: remaining by global union of all polygons", "(f)",
                      _n(fig.independent_remaining_m2),
                      f"{fig.independent_remaining_m2 / 1e6:,.3f}"])
        cells.append([f"difference ({'within' if fig.verified else 'NOT within'} 1 m²)", "",
                      f"{fig.check_gap_m2:,.2f}", ""])
        caption = "Reconciliation: (d) - (e) = (f), checked by an independent computation"
    else:
        cells.append(["check: not verified (no independent computation was made)", "(f)",
                      "", ""])
        caption = "Reconciliation: (d) - (e) = (f), not verified"
    return Table(["", "item", "area [m²]", "area [km²]"], cells,
                 caption=caption, numeric=[False, False, True, True], total_rows=2)


def _plan_table(plan: pd.DataFrame) -> Table:
    methods = [m for m in METHODS if f"{m}_m2" in plan.columns]
    rows = [[str(r["year"]), f"{r['period_end']:%d %b %Y}",
             *[_n(r[f"{m}_m2"]) for m in methods], _n(r["target_m2"]), _n(r["remaining_m2"])]
            for _, r in plan.iterrows()]
    rows.append(["total", "", *[_n(plan[f"{m}_m2"].sum()) for m in methods],
                 _n(plan["target_m2"].sum()), ""])
    return Table(["year", "benchmark date", *[f"{m} [m²]" for m in methods],
                  "to release [m²]", "remaining after [m²]"], rows,
                 caption="Yearly benchmarks to zero",
                 numeric=[False, False, *[True] * (len(methods) + 2)], total_rows=1)


def _region_table(regions: pd.DataFrame) -> Table:
    rows = [[str(r["region"]), str(r["status"]), _n(r["known_m2"]), _n(r["cancelled_m2"]),
             _n(r["reduced_m2"]), _n(r["cleared_m2"]), _n(r["remaining_m2"])]
            for _, r in regions.iterrows()]
    rows.append(["total", "", *[_n(regions[c].sum()) for c in
                                ("known_m2", "cancelled_m2", "reduced_m2", "cleared_m2",
                                 "remaining_m2")]])
    return Table(["region", "status", "recorded [m²]", "cancelled [m²]", "reduced [m²]",
                  "cleared [m²]", "remaining [m²]"], rows,
                 caption="Area by region and status (SHA: suspected, CHA: confirmed hazardous "
                         "area), all releases to date",
                 numeric=[False, False, *[True] * 5], total_rows=1)


@dataclass(frozen=True)
class ExtensionDraft:
    """A drafted extension request: its figures, the forecast under them, the document."""

    figures: RequestFigures
    forecast: Forecast
    document: Document


def draft_extension_request(store: Store, *, scenario: Scenario | None = None,
                            as_of: dt.date | None = None, group: str | None = None,
                            years: int | None = None, verify: bool = True,
                            ledger: Ledger | None = None) -> ExtensionDraft:
    """Draft the Article 4(6) extension request of a programme: the one call every face makes.

    Forecast, figures (d)-(f), the independent check of (f), the work plan and the document,
    in that order; the CLI, the web API, the notebooks and the benches call this and nothing
    else, so they give the same document for the same inputs.

    Parameters
    ----------
    store : Store
        The programme.
    scenario : Scenario, optional
        The forecast scenario (default: the recorded history, seeded).
    as_of : datetime.date, optional
        Date of the figures (default: the end of the last year with records).
    group : str, optional
        Deadline group (default: contamination present at EIF).
    years : int, optional
        Years to request (default: from the forecast).
    verify : bool
        Recompute (f) by a global union of every polygon and show the comparison (default).
        The check covers the whole programme, so with several deadline groups the document
        says "not verified".
    ledger : Ledger, optional
        A ledger already built for this store.

    Returns
    -------
    ExtensionDraft

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from planner.demo import build_demo_store
    >>> st = build_demo_store(pathlib.Path(tempfile.mkdtemp()) / "demo.gpkg")
    >>> draft = draft_extension_request(st, as_of=dt.date(2024, 12, 31))
    >>> draft.figures.verified, round(draft.figures.remaining_m2)
    (True, 1352724)
    """
    from planner.accounting import ledger_with, status_direct
    from planner.accounting.known import known_records
    from planner.treaty.forecast import forecast, release_history

    programme = store.programme()
    ledger = ledger or ledger_with(store)
    f = forecast(ledger, programme, scenario, as_of=as_of, group=group)
    direct = (status_direct(*known_records(store, ledger.known_on), f.as_of, crs=ledger.crs)
              if verify and len(deadline_groups(programme)) == 1 else None)
    fig = request_figures(ledger, programme, f, years=years, independent_remaining_m2=direct)
    doc = request_document(fig, f, history=release_history(ledger, f.as_of))
    return ExtensionDraft(fig, f, doc)
