"""Values that are safe in the files people open in a spreadsheet, a browser or an XML reader.

* :func:`spreadsheet_cell` and :func:`write_csv`: a text cell that begins with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return is a formula to Excel, LibreOffice and Google Sheets
  (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``). As OWASP advises, such a cell is written with
  a single quote in front, so the spreadsheet shows it as text. Numbers (numeric columns, and
  text that is just a plain decimal number such as ``-12.5``) are left as they are. Every CSV
  planner writes goes through :func:`write_csv`.
* :func:`js_data`: a value as JSON that may sit inside an HTML ``<script>`` element: ``<``,
  ``>``, ``&``, U+2028 and U+2029 are written as ``\\uXXXX`` escapes, so ``</script>`` cannot
  close the element and no user text is ever JavaScript code.
* :func:`xml_text`: text that XML 1.0 can hold: characters XML forbids (control characters
  other than tab and line feed, lone surrogates, U+FFFE/U+FFFF) become U+FFFD, and a carriage
  return becomes a line feed (what every XML parser would make of it anyway).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a text cell as a formula (OWASP)."""

_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_XML_BAD = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                  "\u2029": "\\u2029"}


def spreadsheet_cell(value: Any) -> Any:
    """``value`` as a spreadsheet shows it as text: a leading ``'`` before a formula.

    Only text is touched; numbers, dates and missing values come back unchanged, and so does
    text that is just a plain decimal number (``"-12.5"`` evaluates to itself).

    Examples
    --------
    >>> spreadsheet_cell("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> spreadsheet_cell("@SUM(A1)"), spreadsheet_cell("H-1"), spreadsheet_cell(-3.5)
    ("'@SUM(A1)", 'H-1', -3.5)
    >>> spreadsheet_cell("-12.5"), spreadsheet_cell("+1+1")
    ('-12.5', "'+1+1")
    """
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(
            value):
        return "'" + value
    return value


def spreadsheet_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells went through :func:`spreadsheet_cell`.

    Numeric, boolean and date columns are not touched; in object and string columns only the
    ``str`` cells are. Column names are neutralised too (they are the header row).
    """
    out = pd.DataFrame(frame).copy()
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
            out[name] = column.map(spreadsheet_cell).astype(object)
    out.columns = [spreadsheet_cell(c) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: Path, **to_csv: Any) -> Path:
    """Write ``frame`` as UTF-8 CSV, every text cell safe to open in a spreadsheet.

    Parameters
    ----------
    frame : DataFrame
        Rows to write; a ``geometry`` column, if any, is written as WKT like any other text.
    path : Path
        File to write (replaced).
    **to_csv
        Passed to :meth:`pandas.DataFrame.to_csv` (``index`` defaults to False). Lines end
        with CRLF as RFC 4180 says; that also makes Python's csv writer quote a cell holding
        a lone carriage return, which would otherwise split the row.

    Returns
    -------
    Path
        ``path``.
    """
    to_csv.setdefault("index", False)
    to_csv.setdefault("lineterminator", "\r\n")
    spreadsheet_frame(frame).to_csv(path, **to_csv)
    return path


def js_data(value: Any) -> str:
    """``value`` as JSON that is safe inside an HTML ``<script>`` element.

    Examples
    --------
    >>> js_data({"id": "</script><script>alert(1)</script>"})
    '{"id": "\\\\u003c/script\\\\u003e\\\\u003cscript\\\\u003ealert(1)\\\\u003c/script\\\\u003e"}'
    >>> js_data(["`${x}`", "\\u2028"])
    '["`${x}`", "\\\\u2028"]'
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    return "".join(_SCRIPT_UNSAFE.get(ch, ch) for ch in text)


def xml_text(value: Any) -> str:
    """``value`` as text that XML 1.0 can carry unchanged (see the module docstring).

    Examples
    --------
    >>> xml_text("a\\x01b\\r\\nc\\rd"), xml_text(None), xml_text(float("nan"))
    ('a\\ufffdb\\nc\\nd', '', '')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return _XML_BAD.sub("\ufffd", text)
