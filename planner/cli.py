"""The ``planner`` command: a few lines per command over the library.

Every command prints a table for people and, with ``--json``, JSON for scripts. Errors print
their message (what went wrong and how to fix it) and exit with status 1 (2 for usage).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from planner.accounting import Ledger, Status, ledger_with, period_ends, verified_status
from planner.errors import PlannerError, ValidationError
from planner.ingest import IngestOptions, ingest
from planner.io.cells import write_csv
from planner.layers import METHODS, LayerName
from planner.programme import Programme
from planner.store import Store, create_store, open_store

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Plan and account for the clearance of cluster-munition-contaminated "
                       "land (CCM Article 4).")
ingest_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         help="Import survey files into a store.")
app.add_typer(ingest_app, name="ingest")

out = Console(width=120) if not sys.stdout.isatty() else Console()
err = Console(stderr=True)
MAX_PRINTED_PROBLEMS = 50

StoreOpt = Annotated[str, typer.Option("--store", "-s", help="The programme store: a .gpkg "
                                        "file or a postgresql:// URL (PostGIS).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.callback()
def _main(verbose: Annotated[int, typer.Option("-v", "--verbose", count=True)] = 0,
          quiet: Annotated[bool, typer.Option("-q", "--quiet")] = False) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[
        min(verbose, 2)]
    # force: each run binds to the current stderr (tests run many commands in one process)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)


#: How the CLI names each core argument an error can point to.
FLAGS = {"crs": "--crs", "layer": "--layer", "column_map": "--map", "buffer_m": "--buffer-m",
         "max_edge_m": "--max-edge-m", "status": "--status", "method": "--method",
         "recorded_on": "--recorded-on", "released_on": "--released-on",
         "encoding": "--encoding", "store": "--store", "file": "FILE"}


def _hint(argument: str | None) -> str:
    flag = FLAGS.get(argument or "")
    return f" [{flag}]" if flag else ""


def _fail(exc: PlannerError, report: Path | None = None) -> None:
    if isinstance(exc, ValidationError):
        errors = [p for p in exc.problems if p.severity == "error"]
        others = [p for p in exc.problems if p.severity != "error"]
        err.print(f"[bold red]{exc.source}[/]: {len(errors)} problem(s), nothing was imported:",
                  highlight=False)
        for p in errors[:MAX_PRINTED_PROBLEMS]:
            err.print(f"  - {p}{_hint(p.argument)}", markup=False, highlight=False)
        if others:
            err.print(f"also noticed ({len(others)} repairs and warnings, which would not stop "
                      "the import):", markup=False, highlight=False)
            for p in others[:10]:
                err.print(f"  {p.severity}: {p}{_hint(p.argument)}", markup=False,
                          highlight=False)
        if report is not None:
            _write_report(report, exc.problems)
            err.print(f"all problems written to {report}", markup=False)
        elif len(errors) > MAX_PRINTED_PROBLEMS:
            err.print(f"  … and {len(errors) - MAX_PRINTED_PROBLEMS} more: pass --report "
                      "problems.csv to get every one.", markup=False)
    else:
        err.print(f"error: {exc}{_hint(exc.argument)}", markup=False, highlight=False)
    raise typer.Exit(1)


def _write_report(path: Path, problems: list[Any]) -> None:
    import pandas as pd

    from planner.io.cells import write_csv

    write_csv(pd.DataFrame({"feature": [p.feature for p in problems],
                            "severity": [p.severity for p in problems],
                            "message": [p.message for p in problems],
                            "argument": [FLAGS.get(p.argument or "", "") for p in problems]},
                           columns=["feature", "severity", "message", "argument"]), path)


@contextmanager
def _errors(report: Path | None = None) -> Iterator[None]:
    try:
        yield
    except PlannerError as exc:
        _fail(exc, report)


def _date(text: str | None, flag: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        err.print(f"error: {flag} {text!r} is not a date; write it as YYYY-MM-DD.",
                  markup=False)
        raise typer.Exit(2) from None


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, float], None]]:
    if not enabled:
        yield lambda step, frac: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("working", total=1.0)

        def update(step: str, frac: float) -> None:
            bar.update(task, description=step, completed=frac)

        yield update


# ---------------------------------------------------------------------------------- init


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


# -------------------------------------------------------------------------------- ingest


def _ingest(kind: LayerName, file: Path, store: str, crs: str | None, layer: str | None,
            mapping: list[str], status: str | None, method: str | None,
            recorded_on: str | None, released_on: str | None, buffer_m: float | None,
            max_edge_m: float, as_json: bool, report: Path | None,
            encoding: str | None = None) -> None:
    column_map: dict[str, str] = {}
    for item in mapping:
        key, sep, value = item.partition("=")
        if not sep:
            err.print(f"error: --map {item!r}: write it as planner_column=file_column",
                      markup=False)
            raise typer.Exit(2)
        column_map[key.strip()] = value.strip()
    options = IngestOptions(layer=layer, crs=crs, column_map=column_map, status=status,
                            method=method, recorded_on=_date(recorded_on, "--recorded-on"),
                            released_on=_date(released_on, "--released-on"),
                            buffer_m=buffer_m, max_edge_m=max_edge_m, encoding=encoding)
    with _errors(report):
        st = open_store(store)
        with err.status(f"importing {file.name} …", spinner="dots") if not as_json \
                else contextlib.nullcontext():
            result = ingest(st, kind, file, options)
    if report is not None:
        _write_report(report, result.problems)
    if as_json:
        print(json.dumps({"import_id": result.import_id, "layer": kind, "file": file.name,
                          "rows": len(result.features), "sha256": result.record.sha256,
                          "problems": [p.__dict__ for p in result.problems]}, indent=2))
        return
    out.print(f"imported {len(result.features)} {kind} from {file.name} "
              f"(import {result.import_id})", markup=False)
    for p in result.warnings[:MAX_PRINTED_PROBLEMS]:
        out.print(f"  {p.severity}: {p}", markup=False, highlight=False)
    if len(result.warnings) > MAX_PRINTED_PROBLEMS:
        out.print(f"  … and {len(result.warnings) - MAX_PRINTED_PROBLEMS} more (--report "
                  "FILE lists all)", markup=False)


_FILE = Annotated[Path, typer.Argument(help="Survey file: .zip (shapefile), .shp, .gpkg, "
                                            ".geojson, .kml/.kmz or .csv.")]
_CRS = Annotated[str | None, typer.Option(help="CRS of the file when it does not say "
                                               "(no .prj, CSV), e.g. EPSG:32648.")]
_LAYER = Annotated[str | None, typer.Option(help="Layer or shapefile to read when the file "
                                                 "holds several.")]
_MAP = Annotated[list[str], typer.Option("--map", help="planner_column=file_column (repeat; "
                                                       "col1,col2 takes the first non-empty; "
                                                       "hazard_id= generates ids).")]
_BUFFER = Annotated[float | None, typer.Option(help="Turn points into circles of this radius "
                                                    "[m].")]
_EDGE = Annotated[float, typer.Option(help="Longest allowed edge between vertices [m].")]
_REPORT = Annotated[Path | None, typer.Option(help="Write every problem found to this CSV.")]
_ENCODING = Annotated[str | None, typer.Option(
    help="Text encoding of a shapefile's attributes without .cpg, or of a CSV (e.g. cp1252, "
         "cp1251, UTF-8); detected and reported when not given.")]


@ingest_app.command("hazards")
def ingest_hazards(file: _FILE, store: StoreOpt, crs: _CRS = None, layer: _LAYER = None,
                   mapping: _MAP = [],  # noqa: B006 - typer needs a literal default
                   status: Annotated[str | None, typer.Option(
                       help="SHA or CHA for all rows (wins over a column found by name).")
                   ] = None,
                   recorded_on: Annotated[str | None, typer.Option(
                       help="Date recorded, YYYY-MM-DD, for all rows.")] = None,
                   buffer_m: _BUFFER = None, max_edge_m: _EDGE = 5000.0,
                   as_json: JsonOpt = False, report: _REPORT = None,
                   encoding: _ENCODING = None) -> None:
    """Import hazard polygons (SHA/CHA). All features or none."""
    _ingest("hazards", file, store, crs, layer, mapping, status, None, recorded_on, None,
            buffer_m, max_edge_m, as_json, report, encoding)


@ingest_app.command("releases")
def ingest_releases(file: _FILE, store: StoreOpt, crs: _CRS = None, layer: _LAYER = None,
                    mapping: _MAP = [],  # noqa: B006
                    method: Annotated[str | None, typer.Option(
                        help="cancelled, reduced or cleared for all rows.")] = None,
                    released_on: Annotated[str | None, typer.Option(
                        help="Date released, YYYY-MM-DD, for all rows.")] = None,
                    buffer_m: _BUFFER = None, max_edge_m: _EDGE = 5000.0,
                    as_json: JsonOpt = False, report: _REPORT = None,
                    encoding: _ENCODING = None) -> None:
    """Import land-release polygons (cancelled / reduced / cleared). All or none."""
    _ingest("releases", file, store, crs, layer, mapping, None, method, None, released_on,
            buffer_m, max_edge_m, as_json, report, encoding)


# ------------------------------------------------------------------------------- figures


def _ledger(st: Store, show_progress: bool, engine: str = "single", workers: int = 2
            ) -> Ledger:
    with _progress(show_progress) as tell:
        return ledger_with(st, engine, workers=workers, progress=tell)


EngineOpt = Annotated[str, typer.Option(help="How to build the accounting: single (this "
                                             "process), dask (tiles on a local cluster) or "
                                             "postgis (inside a PostGIS store). Same figures.")]
WorkersOpt = Annotated[int, typer.Option(help="Worker processes (--engine dask) or database "
                                              "sessions (--engine postgis).")]


def km2(m2: float) -> str:
    """Square metres as a km² string with three decimals."""
    return f"{m2 / 1e6:,.3f}"


def check_text(gap_m2: float | None) -> str:
    """The independent check of a remaining area, in words."""
    if gap_m2 is None:
        return "Not verified (--verify recomputes remaining area by global union)"
    ok = "agrees" if abs(gap_m2) <= 1.0 else "DOES NOT AGREE"
    return f"Independent check: global union {ok}, difference {gap_m2:,.3f} m²"


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
           workers: WorkersOpt = 2) -> None:
    """Baseline, discovered, released (by method) and remaining area at a date."""
    when = _date(at, "--at") or dt.date.today()
    with _errors():
        st = open_store(store)
        programme = st.programme()
        ledger = _ledger(st, not as_json, engine, workers)
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
        raise typer.Exit(1)


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
           workers: WorkersOpt = 2) -> None:
    """Figures at each year (or month) end [m²], as a table, CSV or JSON."""
    with _errors():
        st = open_store(store)
        ledger = _ledger(st, not as_json, engine, workers)
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


@app.command()
def imports(store: StoreOpt, as_json: JsonOpt = False) -> None:
    """List the files imported into a store."""
    with _errors():
        df = open_store(store).imports()
    if as_json:
        print(df.to_json(orient="records", indent=2))
        return
    t = Table(title="imports", title_justify="left")
    for c in ("import_id", "layer", "file_name", "rows", "imported_at"):
        t.add_column(c)
    for row in df.itertuples():
        t.add_row(str(row.import_id), str(row.layer), str(row.file_name), str(row.rows),
                  str(row.imported_at))
    out.print(t)


@app.command()
def demo(store: Annotated[Path, typer.Option("--store", "-s", help="Where to build the demo "
                                                                   "store.")]
         = Path("demo.gpkg"),
         data: Annotated[Path | None, typer.Option(
             help="Folder with manifest.json (default: the demo files shipped with planner).")
         ] = None,
         at: Annotated[str | None, typer.Option(help="Status date (default: end of the last "
                                                     "year with records).")] = None) -> None:
    """Build the demo programme from the shipped files into a GeoPackage; print its status."""
    from planner.demo import build_demo_store

    with _errors():
        st = build_demo_store(store, data, on_file=lambda f: err.print(f"importing {f}",
                                                                       markup=False))
        ledger = _ledger(st, True)
        last = ledger.last_day or dt.date.today()
        when = _date(at, "--at") or dt.date(last.year, 12, 31)
        out.print(status_table(st.programme(), verified_status(st, when, verify=True,
                                                               ledger=ledger)))
        from planner.forecast import forecast

        f = forecast(ledger, st.programme(), as_of=when)
    out.print(f"forecast ({f.scenario.name}): completion P10 {f.completion_p10}, P50 "
              f"{f.completion_p50}, P90 {f.completion_p90}; deadline in force {f.deadline}. "
              f"{f.statement}", markup=False)
    out.print(f"store written to {store}: open it in QGIS, or try `planner forecast --store "
              f"{store}` and `planner extension-request --store {store} --out request.docx`",
              markup=False)


# the deadline, forecast and report commands live in their own module
from planner import cli_reports  # noqa: E402, F401


def main() -> None:
    """Run the CLI: errors planner did not foresee print an id and a line, not a traceback.

    The traceback goes to the log (shown with ``-v``), under the same id.
    """
    try:
        app()
    except Exception as exc:  # a bug or an environment failure, not the user's input
        incident = uuid.uuid4().hex[:8]
        logging.getLogger("planner").info("internal error %s", incident, exc_info=True)
        err.print(f"internal error (id {incident}): {type(exc).__name__}. Nothing was written "
                  "unless the output above says so. Run again with -v for details, and report "
                  "it with the id.", markup=False, highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":  # pragma: no cover
    main()
