"""Map a file's columns to planner's model, check every feature, reproject to the store CRS.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from planner.errors import (
    CRSMissingError,
    InputError,
    Problem,
    ValidationError,
)
from planner.ingest.attributes import (
    _MISSING,
    RowContext,
    _candidates,
    _coalesce,
    _feature_label,
    _is_blank,
    _prepare_attributes,
)
from planner.ingest.checks import _check_geometries, _duplicate_geometries, _far_from_data
from planner.ingest.options import IngestOptions, StoreFacts
from planner.layers import COLUMNS, ID_COLUMN, LayerName
from planner.programme import Programme


def prepare(raw: gpd.GeoDataFrame, kind: LayerName, programme: Programme, *, source: str,
            options: IngestOptions | None = None, existing_ids: set[str] | None = None,
            facts: StoreFacts | None = None) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """Map columns, check and repair every feature, and reproject to the store CRS.

    Parameters
    ----------
    raw : GeoDataFrame
        Features as read by :func:`read_file`.
    kind : {"hazards", "releases"}
        Which layer they are for.
    programme : Programme
        Gives the EIF date (for ``found_after_eif``) and the store CRS.
    source : str
        File name, used in messages and kept in ``source_file``.
    options : IngestOptions
        CRS, column mapping and defaults.
    existing_ids : set of str
        Ids already in the store (a clash is an error).
    facts : StoreFacts, optional
        The store's ids, first date and extent (see :func:`store_facts`).

    Returns
    -------
    (GeoDataFrame, list of Problem)
        The features ready for :meth:`Store.add`, and the repairs and warnings.

    Raises
    ------
    CRSMissingError
        The file has no CRS and none was given.
    ValidationError
        With every problem of every feature, when any feature cannot be imported.
    """
    options = options or IngestOptions()
    facts = facts or StoreFacts()
    problems: list[Problem] = []
    crs = _resolve_crs(raw, options, source, problems)
    df = raw.reset_index(drop=True)
    _check_column_map(df, kind, options, source)
    values = _column_values(df, kind, options)
    id_values = _ids(values, kind, source, len(df), problems)
    labels = [_feature_label(i, id_values[i]) for i in range(len(df))]
    for row, message, severity, argument in raw.attrs.get("read_notes", []):
        problems.append(Problem("file" if row is None else labels[row], message, severity,
                                argument))
    _required_columns(df, kind, options, values, problems)
    _ambiguous_dates(values, problems)
    ctx = RowContext(options, programme, options.today or dt.date.today(), facts.first_record_on)
    asked = [str(i) for i in id_values if i is not None]
    out = _attribute_rows(kind, values, id_values, labels, ctx,
                          (existing_ids or set()) | facts.taken(asked), problems)
    geoms, ok = _check_geometries(df.geometry.set_crs(crs, allow_override=True), crs, labels,
                                  options, problems)
    _duplicate_geometries(geoms, ok, labels, problems)
    _far_from_data(geoms, ok, crs, labels, facts.extent_lonlat, problems)
    _locate(problems, labels, df.geometry, crs)
    keep = _rows_to_keep(labels, problems, options, source)
    out["source_file"] = [source] * len(df)
    out["import_id"] = [0] * len(df)
    kept = np.flatnonzero(keep)
    geo = gpd.GeoSeries(geoms[kept], crs=crs).to_crs(programme.pyproj_crs)
    multi = [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in geo]
    features = gpd.GeoDataFrame({k: [v[i] for i in kept] for k, v in out.items()},
                                geometry=gpd.GeoSeries(multi, crs=programme.crs),
                                crs=programme.crs)
    if not keep.all():
        features.attrs["set_aside"] = _set_aside_frame(raw, ~keep, labels, problems).set_crs(
            crs, allow_override=True)
    return features, problems


def _rows_to_keep(labels: list[str], problems: list[Problem], options: IngestOptions,
                  source: str) -> np.ndarray:
    """Rows without errors; all rows, or the refusal of the whole file, when nothing is set
    aside. Errors about the file as a whole always refuse it."""
    errors = [p for p in problems if p.severity == "error"]
    keep = np.ones(len(labels), dtype=bool)
    if not errors:
        return keep
    if not options.set_aside or any(p.feature == "file" for p in errors):
        raise ValidationError(source, problems)
    row_of = {label: i for i, label in enumerate(labels)}
    for p in errors:
        keep[row_of[p.feature]] = False
    if not keep.any():
        raise ValidationError(source, problems)
    problems.append(Problem("file", f"{int((~keep).sum())} of {len(keep)} features had errors "
                            "and were set aside, with their problems; the rest was imported",
                            "warning", "set_aside"))
    return keep


def _set_aside_frame(raw: gpd.GeoDataFrame, bad: np.ndarray, labels: list[str],
                     problems: list[Problem]) -> gpd.GeoDataFrame:
    """The features set aside, as read (attributes and geometry), with their problems."""
    rows = np.flatnonzero(bad)
    frame = raw.reset_index(drop=True).iloc[rows].copy()
    frame["planner_row"] = rows + 1
    frame["planner_problems"] = ["; ".join(p.message for p in problems
                                           if p.feature == labels[i] and p.severity == "error")
                                 for i in rows]
    return frame.reset_index(drop=True)


def _resolve_crs(raw: gpd.GeoDataFrame, options: IngestOptions, source: str,
                 problems: list[Problem]) -> pyproj.CRS:
    """The CRS the file's coordinates are in: the one given, else the file's own."""
    crs_read = raw.crs
    if raw.attrs.get("crs_note") and options.crs is None:
        problems.append(Problem("file", raw.attrs["crs_note"], "warning", "crs"))
    if options.crs is not None:
        try:
            crs = pyproj.CRS.from_user_input(options.crs)
        except pyproj.exceptions.CRSError as exc:
            raise InputError(f"{source}: the coordinate system {options.crs!r} is not one PROJ "
                             "knows (use a code like EPSG:32648).", argument="crs") from exc
        if crs_read is not None and not pyproj.CRS(crs_read).equals(crs):
            problems.append(Problem("file", f"the file says its CRS is {crs_read.name}, but "
                                    f"{options.crs} was given and is used", "warning", "crs"))
        return crs
    if crs_read is not None:
        return pyproj.CRS(crs_read)
    raise CRSMissingError(
        f"{source}: no coordinate system is given (a shapefile without its .prj file, or "
        "a CSV of x/y or WKT), so planner cannot place it on Earth. Give the system the "
        "data was collected in, e.g. EPSG:32648 for UTM zone 48N or EPSG:4326 for GPS "
        "latitude/longitude. Nothing was imported.", argument="crs")


def _check_column_map(df: pd.DataFrame, kind: LayerName, options: IngestOptions,
                      source: str) -> None:
    """Refuse a column mapping that names columns the file or the layer does not have."""
    missing = [c for v in options.column_map.values() for c in v.split(",")
               if c.strip() and c.strip() not in df.columns]
    if missing:
        raise InputError(f"{source}: the column mapping names column(s) {', '.join(missing)} "
                         "that the file does not have. Its columns are: "
                         f"{', '.join(map(str, df.columns))}.", argument="column_map")
    unknown_targets = set(options.column_map) - {c.name for c in COLUMNS[kind]}
    if unknown_targets:
        raise InputError(f"{source}: the column mapping targets "
                         f"{', '.join(sorted(unknown_targets))}, which are not {kind} columns. "
                         "Use: "
                         f"{', '.join(c.name for c in COLUMNS[kind] if c.name != 'import_id')}.",
                         argument="column_map")


def _given(options: IngestOptions) -> dict[str, Any]:
    return {"status": options.status, "method": options.method,
            "recorded_on": options.recorded_on, "released_on": options.released_on}


_SLASHED = re.compile(r"^\s*(\d{1,2})[./-](\d{1,2})[./-](\d{4})\b")


def _locate(problems: list[Problem], labels: list[str], geoms: gpd.GeoSeries,
            crs: pyproj.CRS) -> None:
    """Put where each feature's problem is (in the file's CRS and in lon/lat) in its message.

    Problems that place themselves already (a repair's self-intersection) are left alone.
    """
    row_of = {label: i for i, label in enumerate(labels)}
    wanted = [k for k, pr in enumerate(problems)
              if pr.feature in row_of and " lon " not in pr.message]
    if not wanted:
        return
    rows = sorted({row_of[problems[k].feature] for k in wanted})
    where = {}
    to_ll = pyproj.Transformer.from_crs(crs, pyproj.CRS.from_epsg(4326), always_xy=True)
    for i in rows:
        g = geoms.iloc[i]
        if g is None or shapely.is_empty(g):
            continue
        pt = shapely.point_on_surface(g) if shapely.is_valid(g) else shapely.centroid(g)
        lon, lat = to_ll.transform(pt.x, pt.y)
        file_xy = "" if crs.is_geographic else f"x {pt.x:.2f}, y {pt.y:.2f} in the file's CRS; "
        where[i] = f" (at {file_xy}lon {lon:.6f}, lat {lat:.6f})"
    for k in wanted:
        pr = problems[k]
        at = where.get(row_of[pr.feature])
        if at is not None:
            problems[k] = Problem(pr.feature, pr.message + at, pr.severity, pr.argument)


def _ambiguous_dates(values: dict[str, pd.Series], problems: list[Problem]) -> None:
    """Say once per column when dates like 01/02/2024 could be read either way.

    planner reads them day first; when the column also holds a date whose first number is
    above 12, the file shows its order and nothing is said.

    Examples
    --------
    >>> found: list[Problem] = []
    >>> _ambiguous_dates({"released_on": pd.Series(["01/02/2024", "03/04/2024"])}, found)
    >>> print(found[0].message)  # doctest: +ELLIPSIS
    2 date(s) such as '01/02/2024' could be day/month or month/day; read day first (1 February...
    >>> found.clear()
    >>> _ambiguous_dates({"released_on": pd.Series(["01/02/2024", "25/04/2024"])}, found)
    >>> found
    []
    """
    for name in ("recorded_on", "released_on"):
        column = values.get(name)
        if column is None:
            continue
        parts = [m.groups() for v in column.dropna() if (m := _SLASHED.match(str(v)))]
        if not parts or any(int(a) > 12 for a, _, _ in parts):
            continue
        either = [(a, b, y) for a, b, y in parts if int(a) != int(b) and int(b) <= 12]
        if either:
            a, b, y = either[0]
            example = dt.date(int(y), int(b), int(a))
            problems.append(Problem(
                "file", f"{len(either)} date(s) such as '{a}/{b}/{y}' could be day/month or "
                f"month/day; read day first ({example.day} {example:%B %Y}). If the file "
                "writes the month first, write the dates as YYYY-MM-DD", "warning", name))


def _column_values(df: pd.DataFrame, kind: LayerName, options: IngestOptions
                   ) -> dict[str, pd.Series]:
    """Each planner column's values, from the file's column(s) mapped or found by spelling."""
    attr_cols = [c for c in df.columns if c != df.geometry.name]
    given = _given(options)
    values: dict[str, pd.Series] = {}
    for column in COLUMNS[kind]:
        if column.name in options.column_map and not options.column_map[column.name].strip():
            continue  # `hazard_id=` mapped to nothing: ids are generated
        if given.get(column.name) is not None and column.name not in options.column_map:
            continue  # a value given for all rows wins over a column found by its name
        cands = _candidates(attr_cols, column.name, options.column_map)
        if cands:
            values[column.name] = _coalesce(df, cands)
    return values


def _ids(values: dict[str, pd.Series], kind: LayerName, source: str, n: int,
         problems: list[Problem]) -> list[str | None]:
    """Each feature's id, or ids made from the file name when the file has none."""
    id_col = ID_COLUMN[kind]
    ids = values.get(id_col)
    stem = Path(source).stem
    if ids is None:
        ids = pd.Series([f"{stem}-{i + 1:05d}" for i in range(n)], dtype=object)
        problems.append(Problem("file", f"no id column found, ids made from the file name "
                                f"({ids.iloc[0] if len(ids) else stem}, …). Map a column to "
                                f"{id_col} to keep your own codes.", "warning", "column_map"))
    return [None if _is_blank(v) else str(v).strip() for v in ids]


def _required_columns(df: pd.DataFrame, kind: LayerName, options: IngestOptions,
                      values: dict[str, pd.Series], problems: list[Problem]) -> None:
    """A required field with neither a column nor a value for all rows: say so once."""
    attr_cols = [c for c in df.columns if c != df.geometry.name]
    given = _given(options)
    needed = {"hazards": (("status", "SHA or CHA"), ("recorded_on", "a date")),
              "releases": (("method", "cancelled, reduced or cleared"),
                           ("released_on", "a date"))}[kind]
    for name, what in needed:
        if name not in values and given[name] is None:
            problems.append(Problem("file", (
                f"no {name} column found among {', '.join(map(str, attr_cols)) or 'no columns'}."
                f" Map a column to {name}, or give one value for all rows ({what})"),
                "error", name))
            values[name] = pd.Series([_MISSING] * len(df), dtype=object)


def _attribute_rows(kind: LayerName, values: dict[str, pd.Series],
                    id_values: list[str | None], labels: list[str], ctx: RowContext,
                    existing_ids: set[str], problems: list[Problem]) -> dict[str, list[Any]]:
    """The attribute values of every feature, checked; ids unique in the file and store."""
    id_col = ID_COLUMN[kind]
    out: dict[str, list[Any]] = {c.name: [] for c in COLUMNS[kind]}
    seen: dict[str, int] = {}
    for i, (label, ident) in enumerate(zip(labels, id_values, strict=True)):
        if ident is None:
            problems.append(Problem(label, f"has no {id_col}", "error"))
        elif ident in seen:
            problems.append(Problem(label, f"{id_col} {ident!r} is used twice in this file "
                                    f"(also {labels[seen[ident]]}); ids must be unique", "error"))
        elif ident in existing_ids:
            problems.append(Problem(label, f"{id_col} {ident!r} is already in the store; ids "
                                    "must be unique", "error"))
        else:
            seen[ident] = i
        out[id_col].append(ident)
        _prepare_attributes(kind, i, label, values, ctx, out, problems)
    return out
