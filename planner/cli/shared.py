"""The ``planner`` Typer app, its shared options and how every command reports errors.

Every command prints a table for people and, with ``--json``, JSON for scripts. Errors print
their message (what went wrong and how to fix it), name the flag concerned, and exit with
status 1 (2 for usage).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from planner.accounting import RECONCILE_TOLERANCE_M2, Ledger, ledger_with
from planner.errors import PlannerError, ValidationError
from planner.io.cells import write_csv
from planner.store import Store

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
         "encoding": "--encoding", "store": "--store", "file": "FILE", "capacity": "--capacity",
         "engine": "--engine", "set_aside": "--set-aside"}


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
        if errors and all(p.feature != "file" for p in errors):
            err.print("the other features are fine: --skip-invalid imports them and keeps "
                      "these, with their problems, in the store's rejected layer to fix in "
                      "QGIS (--set-aside FILE.gpkg also writes them to a file)", markup=False)
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


def _ledger(st: Store, show_progress: bool, engine: str = "single", workers: int = 2,
            as_known_on: str | None = None) -> Ledger:
    known = _date(as_known_on, "--as-known-on")
    with _progress(show_progress) as tell:
        return ledger_with(st, engine, workers=workers, progress=tell, as_known_on=known)


KnownOnOpt = Annotated[str | None, typer.Option(
    "--as-known-on", help="Figures from the records as they stood at the end of this day "
    "(YYYY-MM-DD): imports made by then and not retracted by then.")]


EngineOpt = Annotated[str, typer.Option(help="How to build the accounting: single (this "
                                             "process), dask (tiles on a local cluster) or "
                                             "postgis (inside a PostGIS store). Same figures.")]


WorkersOpt = Annotated[int, typer.Option(help="Worker processes (--engine dask) or database "
                                              "sessions (--engine postgis).")]


def check_text(gap_m2: float | None) -> str:
    """The independent check of a remaining area, in words."""
    if gap_m2 is None:
        return "Not verified (--verify recomputes remaining area by global union)"
    ok = "agrees" if abs(gap_m2) <= RECONCILE_TOLERANCE_M2 else "DOES NOT AGREE"
    return f"Independent check: global union {ok}, difference {gap_m2:,.3f} m²"


