"""``planner init | status | series | imports | demo``: the store and its figures.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from planner.accounting import Status, period_ends, verified_status
from planner.cli.shared import (
    EngineOpt,
    JsonOpt,
    KnownOnOpt,
    StoreOpt,
    WorkersOpt,
    _date,
    _errors,
    _ledger,
    _progress,
    app,
    check_text,
    err,
    out,
)
from planner.errors import PlannerError
from planner.io.cells import write_csv
from planner.layers import METHODS
from planner.programme import Programme
from planner.store import create_store, open_store


@app.command()
def init(store: Annotated[str, typer.Argument(help="New .gpkg file for the programme, or the "
                                             "postgresql:// URL of an empty database.")],
         name: Annotated[str, typer.Option(help="Programme name shown on reports.")],
         eif: Annotated[str, typer.Option(help="Entry into force for the State, YYYY-MM-DD.")],
         crs: Annotated[str, typer.Option(help="CRS the store keeps geometries in "
                                          "(e.g. EPSG:32648); areas are always measured "
                                          "equal-area.")] = "EPSG:4326") -> None:
    """Create an empty programme store (a GeoPackage that opens in QGIS)."""
    eif_date = _date(eif, "--eif") or dt.date.min
    with _errors():
        try:
            programme = Programme(name, eif_date, crs)
        except Exception as exc:  # pyproj's CRSError
            raise PlannerError(f"--crs {crs!r} is not a CRS PROJ knows ({exc}); use a code "
                               "like EPSG:32648") from exc
        create_store(store, programme)
    out.print(f"created {store} for {name!r} (EIF {eif}, CRS {crs})", markup=False)


def km2(m2: float) -> str:
    """Square metres as a km² string with three decimals."""
    return f"{m2 / 1e6:,.3f}"


def status_table(programme: Programme, s: Status) -> Table:
    """The status of a programme as a rich table (m² and km²)."""
    t = Table(title=f"{programme.name}: status at {s.at.isoformat()} (EIF "
                    f"{programme.eif.isoformat()})", title_justify="left")
    t.add_column("figure")
    t.add_column(escape("area [m²]"), justify="right")
    t.add_column(escape("area [km²]"), justify="right")
    rows = [
        ("(d) contaminated at EIF (baseline)", s.baseline_m2),
        ("(d) discovered after EIF", s.discovered_m2),
        ("    recorded, total (union)", s.known_m2),
        ("(e) released: cancelled (NTS)", -s.cancelled_m2),
        ("(e) released: reduced (TS)", -s.reduced_m2),
        ("(e) released: cleared", -s.cleared_m2),
        ("(f) remaining", s.remaining_m2),
    ]
    for label, v in rows:
        t.add_row(label, f"{v:,.0f}", km2(v))
    t.caption = (f"{s.hazard_count} hazards, {s.release_count} releases; {s.area_method}. "
                 f"Summing polygons instead would give {km2(s.naive_hazard_sum_m2)} km² of "
                 f"hazards. {check_text(s.check_gap_m2)}"
                 + (f"; {km2(s.outside_m2)} km² released outside recorded hazards, not counted"
                    f" ({len(s.outside_release_ids)} releases)" if s.outside_m2 > 1 else ""))
    return t


@app.command()
def status(store: StoreOpt,
           at: Annotated[str | None, typer.Option(help="Date, YYYY-MM-DD (default today).")]
           = None,
           by_region: Annotated[bool, typer.Option("--by-region",
                                                   help="Also break down by region and "
                                                        "status.")] = False,
           verify: Annotated[bool, typer.Option(help="Recompute remaining area with global "
                                                     "unions as an independent check.")]
           = False,
           as_json: JsonOpt = False, engine: EngineOpt = "single",
           workers: WorkersOpt = 2, as_known_on: KnownOnOpt = None) -> None:
    """Baseline, discovered, released (by method) and remaining area at a date."""
    when = _date(at, "--at") or dt.date.today()
    with _errors():
        st = open_store(store)
        programme = st.programme()
        ledger = _ledger(st, not as_json, engine, workers, as_known_on)
        s = verified_status(st, when, verify=verify, ledger=ledger)
        table = ledger.breakdown(when) if by_region else None
    if as_json:
        payload = {"programme": programme.name, **s.to_dict()}
        if table is not None:
            payload["by_region"] = table.to_dict(orient="records")
        print(json.dumps(payload, indent=2))
    else:
        _print_status(programme, s, table)
    if s.verified is False:
        err.print(f"error: the ledger's remaining area differs from the global union by "
                  f"{s.check_gap_m2:,.1f} m²; do not use these figures", markup=False)
        _print_differing(st, ledger, when)
        raise typer.Exit(1)


def _print_differing(st: Any, ledger: Any, when: dt.date) -> None:
    """Which hazards the ledger gets wrong, component by component, and how to mend it."""
    from planner.accounting.direct import differing_hazards

    with _errors():
        wrong = differing_hazards(st.read("hazards"), st.read("releases"),
                                  ledger.remaining_by_hazard(when), when, ledger.crs)
    for row in wrong.head(20).itertuples():
        err.print(f"  hazards {row.hazard_ids}: ledger {row.ledger_m2:,.1f} m², unions "
                  f"{row.unions_m2:,.1f} m² (gap {row.gap_m2:,.1f} m²)", markup=False)
    if len(wrong) > 20:
        err.print(f"  … and {len(wrong) - 20} more groups of overlapping hazards", markup=False)
    err.print(f"Rebuild the stored ledger with `planner rebuild-ledger --store {st.location}` "
              "and check again; if it still differs, please report it with the store.",
              markup=False)


def _print_status(programme: Programme, s: Status, table: Any) -> None:
    out.print(status_table(programme, s))
    if table is not None:
        t = Table(title="by region and status", title_justify="left")
        for c in ("region", "status", "known_m2", "released_m2", "remaining_m2"):
            t.add_column(c, justify="left" if c in ("region", "status") else "right")
        for row in table.itertuples():
            t.add_row(str(row.region), str(row.status), f"{row.known_m2:,.0f}",
                      f"{row.released_m2:,.0f}", f"{row.remaining_m2:,.0f}")
        out.print(t)


@app.command()
def series(store: StoreOpt,
           freq: Annotated[str, typer.Option(help="year or month.")] = "year",
           start: Annotated[str | None, typer.Option(help="First date (default: first "
                                                          "record).")] = None,
           end: Annotated[str | None, typer.Option(help="Last date (default: today).")] = None,
           out_file: Annotated[Path | None, typer.Option("--out", help="Write CSV here.")]
           = None,
           as_json: JsonOpt = False, engine: EngineOpt = "single",
           workers: WorkersOpt = 2, as_known_on: KnownOnOpt = None) -> None:
    """Figures at each year (or month) end [m²], as a table, CSV or JSON."""
    with _errors():
        st = open_store(store)
        ledger = _ledger(st, not as_json, engine, workers, as_known_on)
        first = _date(start, "--start") or ledger.first_day or dt.date.today()
        last = _date(end, "--end") or dt.date.today()
        if freq not in ("year", "month"):
            raise PlannerError(f"--freq {freq!r}: use year or month")
        df = ledger.series(period_ends(first, last, "year" if freq == "year" else "month"))
    if out_file is not None:
        write_csv(df, out_file, float_format="%.1f")
        if not as_json:
            out.print(f"wrote {len(df)} rows to {out_file}", markup=False)
    if as_json:
        print(df.assign(date=df["date"].map(lambda d: d.isoformat())).to_json(
            orient="records", indent=2))
        return
    if out_file is None:
        t = Table(title=f"{st.programme().name}: recorded (cumulative), released in the "
                        "period and remaining, [m²]", title_justify="left")
        cols = ["baseline_m2", "discovered_m2", *[f"{m}_in_period_m2" for m in METHODS],
                "remaining_m2"]
        t.add_column("date")
        for c in cols:
            t.add_column(c.split("_")[0], justify="right")
        for row in df.itertuples():
            t.add_row(str(row.date), *[f"{getattr(row, c):,.0f}" for c in cols])
        out.print(t)


@app.command("rebuild-ledger")
def rebuild_ledger_cmd(
        store: StoreOpt,
        processes: Annotated[int | None, typer.Option(
            help="Processes measuring at once (default: one per core).")] = None,
        as_json: JsonOpt = False) -> None:
    """Build the store's ledger from every polygon and keep it in the store.

    Needed once for a store made before the ledger was stored, or copied; from then on
    every import keeps it up to date and figures are read from it.
    """
    from planner.accounting.live import rebuild_ledger

    with _errors(), _progress(not as_json) as tell:
        st = open_store(store)
        rows = rebuild_ledger(st, processes=processes, progress=tell)
    summary = {"hazards": len(rows.hazard_row), "releases": len(rows.release_row),
               "overlaps": len(rows.pair_area_m2)}
    if as_json:
        print(json.dumps(summary))
        return
    out.print(f"ledger stored: {summary['hazards']:,} hazard pieces, {summary['releases']:,} "
              f"release pieces, {summary['overlaps']:,} overlaps; imports keep it up to date "
              "from now on", markup=False)


@app.command()
def demo(store: Annotated[Path, typer.Option("--store", "-s", help="Where to build the demo "
                                                                   "store.")]
         = Path("demo.gpkg"),
         data: Annotated[Path | None, typer.Option(
             help="Folder with manifest.json (default: the demo files shipped with planner).")
         ] = None,
         at: Annotated[str | None, typer.Option(help="Status date (default: end of the last "
                                                     "year with records).")] = None,
         force: Annotated[bool, typer.Option("--force", help="Replace the store if it exists "
                                                             "(its data are lost).")] = False
         ) -> None:
    """Build the demo programme from the shipped files into a GeoPackage; print its status."""
    from planner.demo import build_demo_store

    with _errors():
        if store.exists() and not force:
            raise PlannerError(f"{store} exists already and planner demo would replace it; "
                               "give --force to rebuild it (what it holds is lost), or "
                               "--store OTHER.gpkg", argument="store")
        st = build_demo_store(store, data, on_file=lambda f: err.print(f"importing {f}",
                                                                       markup=False))
        ledger = _ledger(st, True)
        last = ledger.last_day or dt.date.today()
        when = _date(at, "--at") or dt.date(last.year, 12, 31)
        out.print(status_table(st.programme(), verified_status(st, when, verify=True,
                                                               ledger=ledger)))
        from planner.treaty.forecast import forecast

        f = forecast(ledger, st.programme(), as_of=when)
    out.print(f"forecast ({f.scenario.name}): completion P10 {f.completion_p10}, P50 "
              f"{f.completion_p50}, P90 {f.completion_p90}; deadline in force {f.deadline}. "
              f"{f.statement}", markup=False)
    out.print(f"store written to {store}: open it in QGIS, or try `planner forecast --store "
              f"{store}` and `planner extension-request --store {store} --out request.docx`",
              markup=False)
