"""``planner ingest hazards | releases``: import survey files, all or nothing.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from planner.cli.shared import (
    MAX_PRINTED_PROBLEMS,
    JsonOpt,
    StoreOpt,
    _date,
    _errors,
    _write_report,
    app,
    err,
    ingest_app,
    out,
)
from planner.ingest import IngestOptions, ingest
from planner.layers import LayerName
from planner.store import Retraction, open_store


def _ingest(kind: LayerName, file: Path, store: str, crs: str | None, layer: str | None,
            mapping: list[str], status: str | None, method: str | None,
            recorded_on: str | None, released_on: str | None, buffer_m: float | None,
            max_edge_m: float, as_json: bool, report: Path | None,
            encoding: str | None = None, set_aside: Path | None = None,
            replaces: Retraction | None = None, skip_invalid: bool = False) -> None:
    if set_aside is not None and set_aside.suffix.lower() not in _SET_ASIDE_DRIVERS:
        err.print(f"error: --set-aside {set_aside}: name a .gpkg or .geojson file",
                  markup=False)
        raise typer.Exit(2)
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
                            buffer_m=buffer_m, max_edge_m=max_edge_m, encoding=encoding,
                            set_aside=set_aside is not None or skip_invalid)
    with _errors(report):
        st = open_store(store)
        with err.status(f"importing {file.name} …", spinner="dots") if not as_json \
                else contextlib.nullcontext():
            result = ingest(st, kind, file, options, replaces=replaces)
    if report is not None:
        _write_report(report, result.problems)
    if set_aside is not None and result.set_aside is not None:
        _write_set_aside(result.set_aside, set_aside)
    if result.set_aside is not None and len(result.set_aside):
        err.print(f"{len(result.set_aside)} feature(s) kept, with their problems, in the "
                  "store's rejected layer (import "
                  f"{result.import_id}): fix them there and import them again", markup=False)
    if as_json:
        print(json.dumps({"import_id": result.import_id, "layer": kind, "file": file.name,
                          "rows": len(result.features), "sha256": result.record.sha256,
                          "problems": [p.__dict__ for p in result.problems]}, indent=2))
        return
    out.print(f"imported {len(result.features)} {kind} from {file.name} "
              f"(import {result.import_id})" + ("" if replaces is None else
                                                f", replacing import {replaces.import_id}"),
              markup=False)
    for p in result.warnings[:MAX_PRINTED_PROBLEMS]:
        out.print(f"  {p.severity}: {p}", markup=False, highlight=False)
    if len(result.warnings) > MAX_PRINTED_PROBLEMS:
        out.print(f"  … and {len(result.warnings) - MAX_PRINTED_PROBLEMS} more (--report "
                  "FILE lists all)", markup=False)


_SET_ASIDE_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON"}


def _write_set_aside(frame: Any, path: Path) -> None:
    """The features set aside, with their problems, as a GeoPackage or GeoJSON to fix."""
    frame.to_file(path, driver=_SET_ASIDE_DRIVERS[path.suffix.lower()])
    err.print(f"{len(frame)} feature(s) set aside, with their problems, in {path}: fix them "
              "and import that file", markup=False)


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


_SET_ASIDE = Annotated[Path | None, typer.Option(
    help="Import the features without errors and write the others, with their problems, to "
         "this .gpkg or .geojson to fix, besides the store's rejected layer (default: refuse "
         "the whole file).")]
_SKIP = Annotated[bool, typer.Option(
    "--skip-invalid", help="Import the features without errors and keep the others, with "
                           "their problems, in the store's rejected layer to fix in QGIS "
                           "(default: refuse the whole file).")]
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
                   encoding: _ENCODING = None, set_aside: _SET_ASIDE = None,
                   skip_invalid: _SKIP = False) -> None:
    """Import hazard polygons (SHA/CHA). All features or none."""
    _ingest("hazards", file, store, crs, layer, mapping, status, None, recorded_on, None,
            buffer_m, max_edge_m, as_json, report, encoding, set_aside,
            skip_invalid=skip_invalid)


@ingest_app.command("releases")
def ingest_releases(file: _FILE, store: StoreOpt, crs: _CRS = None, layer: _LAYER = None,
                    mapping: _MAP = [],  # noqa: B006
                    method: Annotated[str | None, typer.Option(
                        help="cancelled, reduced or cleared for all rows.")] = None,
                    released_on: Annotated[str | None, typer.Option(
                        help="Date released, YYYY-MM-DD, for all rows.")] = None,
                    buffer_m: _BUFFER = None, max_edge_m: _EDGE = 5000.0,
                    as_json: JsonOpt = False, report: _REPORT = None,
                    encoding: _ENCODING = None, set_aside: _SET_ASIDE = None,
                    skip_invalid: _SKIP = False) -> None:
    """Import land-release polygons (cancelled / reduced / cleared). All or none."""
    _ingest("releases", file, store, crs, layer, mapping, None, method, None, released_on,
            buffer_m, max_edge_m, as_json, report, encoding, set_aside,
            skip_invalid=skip_invalid)


@ingest_app.command("resurvey")
def ingest_resurvey_cmd(
        file: _FILE, store: StoreOpt,
        surveyed_on: Annotated[str, typer.Option(help="Date of the survey, YYYY-MM-DD: the "
                                                      "new versions' date.")],
        method: Annotated[str, typer.Option(help="reduced (technical survey) or cancelled "
                                                 "(non-technical): how the land it drops is "
                                                 "released.")],
        crs: _CRS = None, layer: _LAYER = None,
        mapping: _MAP = [],  # noqa: B006
        as_json: JsonOpt = False) -> None:
    """Import a later survey of hazards in the store as new versions of them. All or none.

    Each polygon is the hazard (by its id) as surveyed on --surveyed-on, with the status
    the survey found; the land its previous version held and this one does not is released
    that day by --method.
    """
    from planner.ingest import ingest_resurvey

    column_map = dict(item.partition("=")[::2] for item in mapping)
    options = IngestOptions(layer=layer, crs=crs, column_map=column_map)
    when = _date(surveyed_on, "--surveyed-on")
    assert when is not None
    with _errors():
        result = ingest_resurvey(open_store(store), file, surveyed_on=when, method=method,
                                 options=options)
    derived = result.derived if result.derived is not None else []
    if as_json:
        print(json.dumps({"import_id": result.import_id, "versions": len(result.features),
                          "releases": len(derived), "file": file.name}, indent=2))
        return
    out.print(f"imported {len(result.features)} new hazard version(s) from {file.name} "
              f"(import {result.import_id}); {len(derived)} release(s) of the land they "
              f"dropped, {method} on {when}", markup=False)


@app.command("history")
def history(hazard_id: Annotated[str, typer.Argument(help="The hazard's id.")],
            store: StoreOpt, as_json: JsonOpt = False) -> None:
    """Every version of a hazard (first survey, re-surveys) and what each released."""
    from rich.table import Table

    from planner.accounting.known import hazard_history

    with _errors():
        df = hazard_history(open_store(store), hazard_id)
    if as_json:
        print(df.to_json(orient="records", date_format="iso", indent=2))
        return
    t = Table(title=f"hazard {hazard_id}", title_justify="left")
    for c in df.columns:
        t.add_column(c, justify="right" if c.endswith("_m2") else "left")
    for row in df.itertuples(index=False):
        t.add_row(*(f"{v:,.0f}" if isinstance(v, float) else str(v) for v in row))
    out.print(t)
