"""Attribute values of each feature: ids, dates, vocabularies, numbers, checked one by one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from planner.errors import (
    Problem,
)
from planner.ingest.options import IngestOptions
from planner.io.columns import METHOD_SPELLINGS, STATUS_SPELLINGS, SYNONYMS, norm_key
from planner.layers import METHODS, STATUSES, LayerName
from planner.programme import Programme

#: Dates before this are refused: spreadsheets export an empty date cell as 1899-12-30/31.
EARLIEST_DATE = dt.date(1900, 1, 1)


def _feature_label(i: int, ident: str | None) -> str:
    return f"row {i + 1}" + (f" (id {ident})" if ident is not None else "")


def _candidates(raw_columns: list[str], target: str,
                column_map: Mapping[str, str]) -> list[str] | None:
    if target in column_map:
        return [c.strip() for c in column_map[target].split(",")]
    keys: dict[str, str] = {}
    for c in raw_columns:
        keys.setdefault(norm_key(c), c)
    found = [keys[s] for s in SYNONYMS.get(target, ()) if s in keys]
    return found or None


def _coalesce(df: pd.DataFrame, cols: list[str]) -> pd.Series:
    out = df[cols[0]].astype(object).where(df[cols[0]].notna(), None)
    for c in cols[1:]:
        blank = out.isna() | (out.astype(str).str.strip() == "")
        out = out.where(~blank, df[c].astype(object))
    return out.where(~(out.isna() | (out.astype(str).str.strip() == "")), None)


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%d.%m.%Y", "%d/%m/%Y", "%Y-%m-%dT%H:%M:%S")


def parse_date(value: Any) -> dt.date | None:
    """Parse one date cell; ``None`` when it cannot be read unambiguously.

    ISO dates, ``YYYY/MM/DD`` and ``DD.MM.YYYY`` / ``DD/MM/YYYY`` (day first, the common order
    in programme exports) are accepted; month-first dates are not.

    Examples
    --------
    >>> parse_date("2016/12/06"), parse_date("6.12.2016"), parse_date("12/31/2016")
    (datetime.date(2016, 12, 6), datetime.date(2016, 12, 6), None)
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, dt.datetime | pd.Timestamp):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text[:19], fmt).date()
        except ValueError:
            continue
    return None


def _parse_bool(value: Any) -> bool | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = norm_key(str(value))
    if text in ("1", "true", "yes", "y", "t", "ja"):
        return True
    if text in ("0", "false", "no", "n", "f", "nee"):
        return False
    return None


def _is_blank(v: Any) -> bool:
    return v is None or (not isinstance(v, str) and pd.isna(v)) or str(v).strip() == ""


_MISSING = "\0missing"   # a required column missing from the whole file, reported once


def _date_cell(v: Any, name: str, label: str, default: dt.date | None, today: dt.date,
               first_record: dt.date | None, problems: list[Problem]) -> dt.date | None:
    """One date cell read and checked: readable, not in the future, not a spreadsheet zero."""
    if v == _MISSING:
        return None
    if _is_blank(v):
        if default is None:
            problems.append(Problem(label, f"has no {name}. Map a date column to {name} or "
                                    "give one date for all rows", "error", name))
        return default
    d = parse_date(v)
    if d is None:
        problems.append(Problem(label, f"{name} {v!r} is not a date planner can read "
                                "(write it as YYYY-MM-DD)", "error", name))
    elif d > today:
        problems.append(Problem(label, f"{name} {d.isoformat()} is in the future", "error",
                                name))
    elif d < EARLIEST_DATE:
        problems.append(Problem(label, (
            f"{name} {d.isoformat()} is before {EARLIEST_DATE:%Y}: an empty date cell "
            "exported as the spreadsheet's zero date (30/31 December 1899)? Give the real "
            "date."), "error", name))
    elif first_record is not None and d < first_record:
        problems.append(Problem(label, (
            f"{name} {d.isoformat()} is earlier than any record in the programme (the "
            f"first is {first_record.isoformat()}): check the date"), "warning", name))
    return d


def _vocabulary_cell(v: Any, name: str, label: str, default: str | None,
                     spellings: dict[str, str], allowed: tuple[str, ...],
                     problems: list[Problem]) -> str | None:
    """One cell of a closed vocabulary (status, method), read through its spellings."""
    if v == _MISSING:
        return None
    if _is_blank(v):
        v = default
    if v is None:
        problems.append(Problem(label, f"has no {name}. Map a column to {name} or give one "
                                f"for all rows ({'|'.join(allowed)})", "error", name))
        return None
    norm = spellings.get(norm_key(str(v)))
    if norm is None:
        problems.append(Problem(label, f"{name} {v!r} is not one of {', '.join(allowed)}",
                                "error", name))
    return norm


def _number_cell(v: Any, name: str, label: str, cast: Callable[[Any], Any],
                 problems: list[Problem]) -> Any:
    if _is_blank(v):
        return None
    try:
        return cast(float(str(v).replace(",", ".")))
    except ValueError:
        problems.append(Problem(label, f"{name} {v!r} is not a number", "warning", name))
        return None


@dataclass(frozen=True)
class RowContext:
    """What every row of a file is checked against: defaults, programme, today, first record."""

    options: IngestOptions
    programme: Programme
    today: dt.date
    first_record: dt.date | None = None


def _prepare_attributes(kind: LayerName, i: int, label: str, values: dict[str, pd.Series],
                        ctx: RowContext, out: dict[str, list[Any]],
                        problems: list[Problem]) -> None:
    """Append feature ``i``'s checked attribute values to ``out``."""
    options, today, first_record = ctx.options, ctx.today, ctx.first_record
    def get(name: str) -> Any:
        s = values.get(name)
        return None if s is None else s.iloc[i]

    def text(name: str) -> str | None:
        v = get(name)
        return None if _is_blank(v) else str(v).strip()

    if kind == "hazards":
        out["status"].append(_vocabulary_cell(get("status"), "status", label, options.status,
                                              STATUS_SPELLINGS, STATUSES, problems))
        recorded = _date_cell(get("recorded_on"), "recorded_on", label, options.recorded_on,
                              today, first_record, problems)
        out["recorded_on"].append(recorded)
        after = _parse_bool(get("found_after_eif"))
        if after is None:
            after = recorded is not None and recorded > ctx.programme.eif
        out["found_after_eif"].append(after)
        out["region"].append(text("region"))
        out["munition_type"].append(text("munition_type"))
        return
    out["method"].append(_vocabulary_cell(get("method"), "method", label, options.method,
                                          METHOD_SPELLINGS, METHODS, problems))
    out["released_on"].append(_date_cell(get("released_on"), "released_on", label,
                                         options.released_on, today, first_record, problems))
    out["hazard_id"].append(text("hazard_id"))
    out["organisation"].append(text("organisation"))
    out["items_destroyed"].append(_number_cell(get("items_destroyed"), "items_destroyed",
                                               label, int, problems))
    out["depth_cm"].append(_number_cell(get("depth_cm"), "depth_cm", label, float, problems))
