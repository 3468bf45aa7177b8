"""``planner imports [retract | replace]``: the files a store holds, and corrections to them.

Nothing is ever deleted: a retracted import's features move to the store's archive layers and
its record says when, by whom and why; figures "as known on" an earlier date still count it.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from planner.cli.ingest import _ingest
from planner.cli.shared import JsonOpt, StoreOpt, _errors, app, out
from planner.ingest import retract_import
from planner.layers import LayerName
from planner.store import Retraction, open_store

imports_app = typer.Typer(no_args_is_help=False, rich_markup_mode=None,
                          help="The files imported into a store; retract or replace one.")
app.add_typer(imports_app, name="imports")

_REASON = Annotated[str, typer.Option("--reason", help="Why (kept with the record).")]
_BY = Annotated[str | None, typer.Option("--by", help="Who (default: your login name).")]


@imports_app.callback(invoke_without_command=True)
def imports(ctx: typer.Context,
            store: Annotated[str | None, typer.Option(
                "--store", "-s", help="The programme store: a .gpkg file or a postgresql:// "
                "URL (PostGIS).")] = None,
            as_json: JsonOpt = False) -> None:
    """List the files imported into a store (retracted ones say when, by whom, why)."""
    if ctx.invoked_subcommand is not None:
        return
    if store is None:
        raise typer.BadParameter("give the store to list: --store FILE.gpkg",
                                 param_hint="--store")
    with _errors():
        df = open_store(store).imports()
    if as_json:
        print(df.to_json(orient="records", indent=2))
        return
    t = Table(title="imports", title_justify="left")
    columns = ["import_id", "layer", "file_name", "rows", "imported_at"]
    retractions = "retracted_at" in df.columns and df["retracted_at"].notna().any()
    for c in columns + (["retracted"] if retractions else []):
        t.add_column(c)
    for row in df.to_dict(orient="records"):
        cells = [str(row[c]) for c in columns]
        if retractions:
            cells.append("" if row.get("retracted_at") is None or row["retracted_at"] != row[
                "retracted_at"] else f"{row['retracted_at']} by {row['retracted_by']}: "
                f"{row['retraction_reason']}")
        t.add_row(*cells)
    out.print(t)


@imports_app.command("retract")
def retract(import_id: Annotated[int, typer.Argument(help="The import to take out.")],
            store: StoreOpt, reason: _REASON, by: _BY = None, as_json: JsonOpt = False
            ) -> None:
    """Take an import out of every figure from now on; its features and record are kept."""
    with _errors():
        done = retract_import(open_store(store), import_id, reason=reason,
                              by=by or getpass.getuser())
    if as_json:
        print(json.dumps(done, indent=2))
        return
    out.print(f"import {done['import_id']} ({done['file_name']}, {done['features']} "
              f"{done['layer']}) retracted by {done['retracted_by']} at "
              f"{done['retracted_at']}: {done['retraction_reason']}. Its features are kept in "
              f"{done['layer']}_retracted; figures as known on an earlier date still count "
              "them.", markup=False)


@imports_app.command("replace")
def replace(import_id: Annotated[int, typer.Argument(help="The import to correct.")],
            file: Annotated[Path, typer.Argument(help="The corrected file.", exists=False)],
            store: StoreOpt, reason: _REASON, by: _BY = None,
            crs: Annotated[str | None, typer.Option(help="CRS when the file has none.")]
            = None,
            layer: Annotated[str | None, typer.Option(help="Layer to read.")] = None,
            as_json: JsonOpt = False) -> None:
    """Retract an import and import its corrected file, in one transaction: both or neither."""
    with _errors():
        kind = _layer_of(store, import_id)
    _ingest(kind, file, store, crs, layer, [], None, None, None, None, None, 5000.0, as_json,
            None, replaces=Retraction(import_id, reason, by or getpass.getuser()))


def _layer_of(store: str, import_id: int) -> LayerName:
    from planner.errors import NotFoundError

    found = open_store(store).imports()
    match = found[found["import_id"] == import_id]
    if not len(match):
        raise NotFoundError(f"there is no import {import_id} in this store; `planner imports` "
                            "lists them", argument="import_id")
    return "hazards" if match["layer"].iloc[0] == "hazards" else "releases"


@app.command("upgrade")
def upgrade(store: Annotated[str, typer.Argument(help="The store: a .gpkg file or a "
                                                    "postgresql:// URL.")]) -> None:
    """Bring a store made by an older planner to today's schema, losing nothing."""
    with _errors():
        done = open_store(store).upgrade()
    for line in done or ["the store is up to date; nothing to do"]:
        out.print(line, markup=False)
