"""``planner deadlines | grant-extension | add-hostilities | forecast | extension-request |
article7``: the treaty's deadlines and documents, a few lines each over the core.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from planner.accounting import Ledger
from planner.cli.shared import (
    JsonOpt,
    KnownOnOpt,
    StoreOpt,
    _date,
    _errors,
    _ledger,
    app,
    check_text,
    err,
    out,
)
from planner.documents.model import write_document
from planner.errors import InputError
from planner.io.cells import write_csv
from planner.programme import Programme
from planner.store import open_store
from planner.treaty.article7 import article7_report
from planner.treaty.deadlines import (
    Extension,
    deadline_report,
    record_extension,
    record_hostilities,
)
from planner.treaty.extension import both, draft_extension_request, m2
from planner.treaty.forecast import CapacityLine, Forecast, Scenario, forecast
from planner.treaty.records import RequestArguments, record_request


@app.command()
def deadlines(store: StoreOpt,
              meeting: Annotated[str | None, typer.Option(
                  help="Date of the Meeting of States Parties that would decide a request, "
                       "YYYY-MM-DD: prints the latest filing date (Article 4(6)).")] = None,
              as_json: JsonOpt = False) -> None:
    """Article 4 deadlines of the programme: original, extensions granted, in force."""
    with _errors():
        programme = open_store(store).programme()
        report = deadline_report(programme, _date(meeting, "--meeting"))
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    t = Table(title=f"{programme.name}: Article 4 deadlines", title_justify="left")
    for c in ("group", "basis", "from", "original deadline", "extensions", "in force"):
        t.add_column(c)
    for g in report.groups:
        ext = ", ".join(f"{e.months} months"
                        + (f" (granted {e.granted_on})" if e.granted_on else "")
                        for e in g.extensions) or "none"
        t.add_row(g.name, g.basis, g.start.isoformat(), g.original.isoformat(), ext,
                  g.current.isoformat())
    out.print(t)
    if report.meeting is not None and report.filing_deadline is not None:
        out.print(f"a request decided at the meeting of {report.meeting} must be submitted by "
                  f"{report.filing_deadline} (nine months before, Article 4(6))", markup=False)
    for note in report.notes:
        err.print(f"note: {note}", markup=False)


@app.command("grant-extension")
def grant_extension(store: StoreOpt,
                    years: Annotated[int | None, typer.Option(help="Whole years granted.")]
                    = None,
                    months: Annotated[int | None, typer.Option(
                        help="Or the period in months (the meeting may grant less).")] = None,
                    granted_on: Annotated[str | None, typer.Option(
                        help="Date of the decision, YYYY-MM-DD.")] = None,
                    note: Annotated[str, typer.Option(help="Reference of the decision.")] = "",
                    group: Annotated[str | None, typer.Option(
                        help="Deadline group (default: contamination present at EIF).")]
                    = None) -> None:
    """Record an extension granted by a Meeting of States Parties."""
    with _errors():
        if (years is None) == (months is None):
            raise InputError("give the extension's length with either --years or --months")
        st = open_store(store)
        length = months if months is not None else 12 * (years or 0)
        ext = Extension(length, _date(granted_on, "--granted-on"), note)
        settings = record_extension(st.programme(), ext, group)
        st.set_settings(settings)
        groups = deadline_report(st.programme()).groups
    for g in groups:
        out.print(f"{g.name}: deadline in force {g.current}", markup=False)


@app.command("add-hostilities")
def add_hostilities(name: Annotated[str, typer.Argument(help="Name of the group, e.g. "
                                                        "'2019 conflict'.")],
                    store: StoreOpt,
                    ended_on: Annotated[str, typer.Option(help="End of active hostilities, "
                                                          "YYYY-MM-DD.")],
                    region: Annotated[list[str] | None, typer.Option(
                        help="Region whose hazards it covers (repeatable).")] = None,
                    hazard_id: Annotated[list[str] | None, typer.Option(
                        help="Hazard it covers (repeatable).")] = None) -> None:
    """Add contamination from hostilities after EIF, with its own deadline (Article 4(1)(b))."""
    with _errors():
        st = open_store(store)
        ended = _date(ended_on, "--ended-on") or dt.date.min
        settings = record_hostilities(st.programme(), name, ended, regions=region or [],
                                      hazard_ids=hazard_id or [])
        st.set_settings(settings)
        g = deadline_report(st.programme()).groups[-1]
    out.print(f"{g.name}: deadline {g.current} (Article 4(1)(b))", markup=False)


# -- forecast --------------------------------------------------------------------------------
AsOf = Annotated[str | None, typer.Option(
    "--as-of", help="Date of the figures the forecast starts from (default: end of the last "
                    "complete year with records).")]


Freq = Annotated[str, typer.Option(help="year or month: the history drawn from.")]


Window = Annotated[int | None, typer.Option(help="Use only the last N years of history.")]


HalfLife = Annotated[float | None, typer.Option(
    help="Weight recent years: history this many years older counts half.")]


Capacity = Annotated[list[str] | None, typer.Option(
    help="Capacity scenario instead of history: METHOD:TEAMS:M2_PER_TEAM_DAY[:DAYS_PER_YEAR]"
         ", repeatable (e.g. cleared:4:500:200).")]


CapacityCV = Annotated[float, typer.Option(help="Year-to-year variability of capacity "
                                                "(coefficient of variation).")]


Discovery = Annotated[float | None, typer.Option(
    help="New contamination per year [m²/year] (default: as in the history).")]


Draws = Annotated[int, typer.Option(help="Number of simulated futures.")]


Seed = Annotated[int, typer.Option(help="Random seed (same seed, same figures).")]


Group = Annotated[str | None, typer.Option(help="Deadline group (default: present at EIF).")]


Basis = Annotated[str, typer.Option(help="P10, P50 or P90: completion date the extension "
                                         "years are based on.")]


Name = Annotated[str | None, typer.Option(help="Scenario name shown on reports.")]


def _forecast(store: str, scenario: Scenario, as_of: str | None, group: str | None,
              quiet: bool, as_known_on: str | None = None
              ) -> tuple[Programme, Ledger, Forecast]:
    st = open_store(store)
    programme = st.programme()
    ledger = _ledger(st, not quiet, as_known_on=as_known_on)
    f = forecast(ledger, programme, scenario, as_of=_date(as_of, "--as-of"), group=group)
    return programme, ledger, f


def _scenario(freq: str, window_years: int | None, half_life_years: float | None,
              capacity: list[str] | None, capacity_cv: float,
              discovery_m2_per_year: float | None, draws: int, seed: int, basis: str,
              name: str | None) -> Scenario:
    lines = tuple(CapacityLine.parse(c) for c in capacity or ())
    return Scenario(name=name or ("capacity" if lines else "historical"),
                    freq=freq,  # type: ignore[arg-type]
                    window_years=window_years, half_life_years=half_life_years,
                    capacity=lines, capacity_cv=capacity_cv,
                    discovery_m2_per_year=discovery_m2_per_year, draws=draws, seed=seed,
                    basis=basis.upper())  # type: ignore[arg-type]


def _forecast_text(f: Forecast) -> None:
    t = Table(title=f"forecast '{f.scenario.name}' for {f.group}, from {f.as_of}",
              title_justify="left", show_header=False)
    t.add_column("")
    t.add_column("")
    t.add_row("remaining at start", both(f.remaining_m2))
    t.add_row("release rate", f"{m2(f.release_m2_per_year)} a year")
    t.add_row("discovery rate", f"{m2(f.discovery_m2_per_year)} a year")
    for p in ("P10", "P50", "P90"):
        d = f.completion(p)
        t.add_row(f"completion {p}", d.isoformat() if d else "not within the horizon")
    t.add_row("deadline", f.deadline.isoformat())
    t.add_row("probability by deadline", f"{f.probability_by_deadline:.0%}")
    if f.required_release_m2_per_year is not None:
        t.add_row("rate needed for the deadline", f"{m2(f.required_release_m2_per_year)} a year")
    t.add_row("extension years to request", str(f.extension_years))
    out.print(t)
    out.print(f.statement, markup=False)
    out.print(f"method: {f.method}", markup=False, style="dim")
    out.print("assumptions: " + "; ".join(f.assumptions), markup=False, style="dim")


@app.command("forecast")
def forecast_cmd(store: StoreOpt, as_of: AsOf = None, freq: Freq = "year",
                 window_years: Window = None, half_life_years: HalfLife = None,
                 capacity: Capacity = None, capacity_cv: CapacityCV = 0.0,
                 discovery_m2_per_year: Discovery = None, draws: Draws = 10_000,
                 seed: Seed = 20111, group: Group = None, basis: Basis = "P50",
                 name: Name = None,
                 chart: Annotated[Path | None, typer.Option(
                     help="Write the burn-down with the forecast fan as a PNG.")] = None,
                 as_json: JsonOpt = False, as_known_on: KnownOnOpt = None) -> None:
    """When will the programme finish? P10/P50/P90, probability by the deadline, years needed."""
    from planner.treaty.charts import burndown_png
    from planner.treaty.forecast import release_history

    with _errors():
        scenario = _scenario(freq, window_years, half_life_years, capacity, capacity_cv,
                             discovery_m2_per_year, draws, seed, basis, name)
        programme, ledger, f = _forecast(store, scenario, as_of, group, as_json, as_known_on)
        if chart is not None:
            chart.write_bytes(burndown_png(
                release_history(ledger, f.as_of), f, deadlines=[("deadline", f.deadline)],
                title=f"{programme.name}: {f.scenario.name} forecast"))
    if as_json:
        print(json.dumps(f.to_dict(), indent=2))
        return
    _forecast_text(f)
    if chart is not None:
        out.print(f"chart written to {chart}", markup=False)


@app.command("extension-request")
def extension_request(store: StoreOpt,
                      out_file: Annotated[Path, typer.Option(
                          "--out", help="request.docx, request.html or request.md (the "
                                        "format follows the suffix).")],
                      years: Annotated[int | None, typer.Option(
                          help="Years to request, 1-5 (default: from the forecast).")] = None,
                      verify: Annotated[bool, typer.Option(
                          help="Check (f) against a global union of all polygons.")] = True,
                      as_of: AsOf = None, freq: Freq = "year", window_years: Window = None,
                      half_life_years: HalfLife = None, capacity: Capacity = None,
                      capacity_cv: CapacityCV = 0.0, discovery_m2_per_year: Discovery = None,
                      draws: Draws = 10_000, seed: Seed = 20111, group: Group = None,
                      basis: Basis = "P50", name: Name = None,
                      as_known_on: KnownOnOpt = None) -> None:
    """Draft the Article 4(6) extension request: (a), (c)-(f), work plan, burn-down."""
    with _errors():
        st = open_store(store)
        scenario = _scenario(freq, window_years, half_life_years, capacity, capacity_cv,
                             discovery_m2_per_year, draws, seed, basis, name)
        when = _date(as_of, "--as-of")
        draft = draft_extension_request(st, scenario=scenario, as_of=when,
                                        group=group, years=years, verify=verify,
                                        ledger=_ledger(st, True, as_known_on=as_known_on))
        written = write_document(draft.document, out_file)
        asked = RequestArguments(scenario, when, group, years, verify,
                                 _date(as_known_on, "--as-known-on"))
        document_id = record_request(st, draft, asked, out_file.name)
    fig = draft.figures
    out.print(f"(d) at entry into force {both(fig.area_at_eif_m2)}; discovered after "
              f"{both(fig.discovered_after_eif_m2)}", markup=False)
    out.print(f"(e) cleared {both(fig.cleared_m2)}; reduced {both(fig.reduced_m2)}; "
              f"cancelled {both(fig.cancelled_m2)}", markup=False)
    out.print(f"(f) remaining {both(fig.remaining_m2)}; {check_text(fig.check_gap_m2)}",
              markup=False)
    out.print(draft.forecast.statement, markup=False)
    out.print("wrote " + ", ".join(str(p) for p in written), markup=False)
    out.print(f"recorded in the store as document {document_id}: `planner documents "
              f"reproduce {document_id}` draws it again with the figures it has now",
              markup=False)
    if fig.verified is False:
        err.print("error: (f) differs from the independent global-union figure by more than "
                  "1 m²; do not file these figures", markup=False)
        raise typer.Exit(1)


@app.command()
def article7(store: StoreOpt,
             year: Annotated[int, typer.Option(help="Calendar year reported on.")],
             out_file: Annotated[Path | None, typer.Option(
                 "--out", help="article7.docx, .html or .md (default: Markdown on screen).")]
             = None,
             csv: Annotated[Path | None, typer.Option(
                 help="Also write every remaining hazard with its location as CSV.")] = None,
             as_known_on: KnownOnOpt = None) -> None:
    """Article 7(1)(h)/(i) for a calendar year: contaminated areas and areas released."""
    from planner.documents.model import to_markdown

    with _errors():
        st = open_store(store)
        fig, doc = article7_report(st, year, ledger=_ledger(st, out_file is not None,
                                                             as_known_on=as_known_on))
        if csv is not None:
            write_csv(fig.hazards, csv, float_format="%.6f")
        if out_file is None:
            print(to_markdown(doc))
        else:
            written = write_document(doc, out_file)
            out.print("wrote " + ", ".join(str(p) for p in written), markup=False)




documents_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                            help="Documents drawn from a store, and drawing them again.")
app.add_typer(documents_app, name="documents")


@documents_app.command("list")
def documents_list(store: StoreOpt, as_json: JsonOpt = False) -> None:
    """The documents drawn from a store: when, from which version, their figures' hash."""
    with _errors():
        df = open_store(store).documents()
    if as_json:
        print(df.to_json(orient="records", indent=2))
        return
    for r in df.to_dict(orient="records"):
        out.print(f"{r['document_id']}: {r['kind']} drawn {r['drawn_at']} ({r['file_name']}), "
                  f"figures sha256 {str(r['figures_sha256'])[:12]}…", markup=False)


@documents_app.command("reproduce")
def documents_reproduce(
        document_id: Annotated[int, typer.Argument(help="The document to draw again.")],
        store: StoreOpt,
        out_file: Annotated[Path, typer.Option("--out", help="Where to write it (.docx, "
                                                             ".html or .md).")]) -> None:
    """Draw a recorded document again from the records as they stood when it was drawn."""
    from planner.treaty.records import reproduce_request

    with _errors():
        again = reproduce_request(open_store(store), document_id)
        written = write_document(again.draft.document, out_file)
    out.print(("the figures are those filed" if again.same_figures else
               "THE FIGURES DIFFER from those filed: " + ", ".join(again.changed)),
              markup=False)
    for line in again.changes_since or ["no import or retraction since it was drawn"]:
        out.print(f"since then: {line}", markup=False)
    out.print("wrote " + ", ".join(str(p) for p in written), markup=False)
    if not again.same_figures:
        raise typer.Exit(1)
