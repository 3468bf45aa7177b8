"""Documents people file: one simple content model, written as Markdown, HTML or DOCX.

Reports (the extension request, the Article 7 section) are built as a list of blocks —
headings, paragraphs, tables, figures and *blanks* that the human author must fill — and
:func:`write_document` writes them in the format the file name asks for. Every piece of text is
escaped for the format it goes into, so names typed by users cannot inject markup.
"""

from __future__ import annotations

import base64
import functools
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2
from markupsafe import Markup

from planner.errors import InputError
from planner.io.cells import xml_text

FORMATS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
           ".docx": "docx"}


@dataclass(frozen=True)
class Heading:
    """A section title; ``level`` 1 is the document title."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """Running text. ``style="note"`` is a smaller explanatory note."""

    text: str
    style: Literal["text", "note"] = "text"


@dataclass(frozen=True)
class Blank:
    """A part of the document the author must write; never filled in by planner."""

    item: str
    prompt: str


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells; ``numeric`` columns are right-aligned."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""
    numeric: Sequence[bool] = ()
    total_rows: int = 0   # the last ``total_rows`` rows are totals (bold)


@dataclass(frozen=True)
class Figure:
    """A PNG image with its caption."""

    png: bytes
    caption: str
    name: str = "figure"


Block = Heading | Paragraph | Blank | Table | Figure


@dataclass
class Document:
    """A titled list of blocks."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> Document:
        """Append blocks; returns the document for chaining."""
        self.blocks.extend(blocks)
        return self

    def text(self) -> str:
        """Every heading, paragraph, blank and table cell as plain text (for search/tests)."""
        parts = [self.title]
        for b in self.blocks:
            if isinstance(b, Heading | Paragraph):
                parts.append(b.text)
            elif isinstance(b, Blank):
                parts.append(f"{b.item} {b.prompt}")
            elif isinstance(b, Table):
                parts.append(b.caption)
                parts.extend(" | ".join(r) for r in [list(b.columns), *map(list, b.rows)])
        return "\n".join(parts)


BLANK_MARK = "[TO BE WRITTEN BY THE AUTHOR]"


# -- Markdown --------------------------------------------------------------------------------
_LIST_NUMBER = re.compile(r"^(\d+)([.)])")


def _md_escape(text: str) -> str:
    """``text`` as literal Markdown inline text: markup characters backslash-escaped, line
    breaks as spaces (a line break in a table cell or heading would end it)."""
    out = " ".join(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    out = out.replace("\\", "\\\\")
    for ch in "`*_[]<>|#&!~":
        out = out.replace(ch, "\\" + ch)
    # what would start a block at the start of a line: indentation (a code block), a list
    # marker, a thematic break; leading blanks become character references
    body = out.lstrip(" \t")
    lead = "".join(f"&#{ord(c)};" for c in out[:len(out) - len(body)])
    if body[:1] in ("-", "+", "="):
        body = "\\" + body
    return lead + _LIST_NUMBER.sub(r"\1\\\2", body)


def to_markdown(doc: Document, figure_dir: Path | None = None, prefix: str = "") -> str:
    """The document as Markdown; figures are written as PNG files into ``figure_dir``.

    Examples
    --------
    >>> d = Document("Report").add(Paragraph("Area <b>"), Table(["a", "b"], [["1", "2"]]))
    >>> print(to_markdown(d))
    # Report
    <BLANKLINE>
    Area \\<b\\>
    <BLANKLINE>
    | a | b |
    |---|---|
    | 1 | 2 |
    <BLANKLINE>
    """
    lines = [f"# {_md_escape(doc.title)}", ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            lines += [f"{'#' * max(b.level, 2)} {_md_escape(b.text)}", ""]
        elif isinstance(b, Paragraph):
            text = _md_escape(b.text)
            lines += [f"*{text}*" if b.style == "note" else text, ""]
        elif isinstance(b, Blank):
            lines += [f"> **{_md_escape(b.item)} {BLANK_MARK}** {_md_escape(b.prompt)}", ""]
        elif isinstance(b, Table):
            if b.caption:
                lines += [f"**{_md_escape(b.caption)}**", ""]
            num = list(b.numeric) + [False] * (len(b.columns) - len(b.numeric))
            lines.append("| " + " | ".join(_md_escape(c) for c in b.columns) + " |")
            lines.append("|" + "|".join("---:" if n else "---" for n in num) + "|")
            for i, r in enumerate(b.rows):
                bold = i >= len(b.rows) - b.total_rows
                cells = [f"**{_md_escape(c)}**" if bold and c else _md_escape(c) for c in r]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        elif isinstance(b, Figure):
            if figure_dir is None:
                lines += [f"*[figure: {_md_escape(b.caption)}]*", ""]
            else:
                figure_dir.mkdir(parents=True, exist_ok=True)
                name = f"{prefix}{b.name}.png"
                (figure_dir / name).write_bytes(b.png)
                lines += [f"![{_md_escape(b.caption)}]({name})", "",
                          f"*{_md_escape(b.caption)}*", ""]
    return "\n".join(lines)


# -- HTML ------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;max-width:60rem;
margin:2rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem;border-bottom:2px solid #444;padding-bottom:.3rem}
h2{font-size:1.25rem;margin-top:2rem}h3{font-size:1.05rem}
table{border-collapse:collapse;margin:.5rem 0 1.25rem;font-size:.92rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #bbb;padding:.25rem .5rem;vertical-align:top}
th{background:#eee}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:700;background:#f6f6f6}
.blank{border:2px dashed #b35900;background:#fff4e5;padding:.6rem .8rem;margin:1rem 0}
.note{font-size:.9rem;color:#444}figure{margin:1rem 0}img{max-width:100%}
figcaption{font-size:.9rem;color:#444}
"""


def to_html(doc: Document) -> str:
    """The document as one self-contained HTML page (figures embedded, text escaped).

    Rendered from the Jinja2 template ``planner/documents/templates/document.html`` with
    autoescaping on, so every value is escaped by construction.

    Examples
    --------
    >>> "&lt;script&gt;" in to_html(Document("<script>alert(1)</script>"))
    True
    """
    return _html_template().render(doc=doc, css=Markup(_CSS), blank_mark=BLANK_MARK,
                                   blocks=[_html_block(b) for b in doc.blocks])


@functools.cache
def _html_template() -> Any:
    env = jinja2.Environment(loader=jinja2.PackageLoader("planner.documents", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("document.html")


def _html_block(b: Any) -> dict[str, Any]:
    """What the template needs of one block: its kind, and tables and figures prepared."""
    if isinstance(b, Heading):
        return {"kind": "heading", "block": b, "level": min(max(b.level, 2), 6)}
    if isinstance(b, Paragraph):
        return {"kind": "paragraph", "block": b}
    if isinstance(b, Blank):
        return {"kind": "blank", "block": b}
    if isinstance(b, Table):
        num = list(b.numeric) + [False] * (len(b.columns) - len(b.numeric))
        rows = [(i >= len(b.rows) - b.total_rows, list(zip(r, num, strict=False)))
                for i, r in enumerate(b.rows)]
        return {"kind": "table", "block": b, "header": list(zip(b.columns, num, strict=False)),
                "rows": rows}
    return {"kind": "figure", "block": b, "data": base64.b64encode(b.png).decode("ascii")}


# -- DOCX ------------------------------------------------------------------------------------
def to_docx(doc: Document) -> bytes:
    """The document as a Word file (python-docx), figures embedded."""
    import docx
    from docx.shared import Cm, Pt, RGBColor

    safe = xml_text   # XML 1.0 cannot hold most control characters: python-docx would refuse
    d = docx.Document()
    d.core_properties.title = safe(doc.title)
    d.add_heading(safe(doc.title), level=0)
    for b in doc.blocks:
        if isinstance(b, Heading):
            d.add_heading(safe(b.text), level=min(max(b.level - 1, 1), 9))
        elif isinstance(b, Paragraph):
            p = d.add_paragraph(safe(b.text))
            if b.style == "note":
                for run in p.runs:
                    run.italic = True
                    run.font.size = Pt(9)
        elif isinstance(b, Blank):
            p = d.add_paragraph()
            run = p.add_run(f"{safe(b.item)} {BLANK_MARK} ")
            run.bold = True
            run.font.color.rgb = RGBColor(0xB3, 0x59, 0x00)
            p.add_run(safe(b.prompt)).italic = True
        elif isinstance(b, Table):
            _docx_table(d, b)
        elif isinstance(b, Figure):
            d.add_picture(io.BytesIO(b.png), width=Cm(16))
            for run in d.add_paragraph(safe(b.caption)).runs:
                run.italic = True
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def _docx_table(d: Any, b: Table) -> None:
    """One table: caption in bold, header row in bold, numbers right-aligned, totals bold."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    safe = xml_text
    if b.caption:
        for run in d.add_paragraph(safe(b.caption)).runs:
            run.bold = True
    num = list(b.numeric) + [False] * (len(b.columns) - len(b.numeric))
    t = d.add_table(rows=1, cols=len(b.columns))
    t.style = "Table Grid"
    for cell, name in zip(t.rows[0].cells, b.columns, strict=False):
        cell.text = safe(name)
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for i, r in enumerate(b.rows):
        total = i >= len(b.rows) - b.total_rows
        for j, (cell, value) in enumerate(zip(t.add_row().cells, r, strict=False)):
            cell.text = safe(value)
            para = cell.paragraphs[0]
            if num[j]:
                para.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            for run in para.runs if total else []:
                run.bold = True
    d.add_paragraph()


def write_document(doc: Document, path: str | Path) -> list[Path]:
    """Write ``doc`` in the format named by ``path``'s suffix; returns the files written.

    ``.md`` also writes its figures as PNG files beside it; ``.html`` and ``.docx`` are single
    files.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path.name}: cannot tell the format from the suffix; use one of "
                         + ", ".join(sorted(FORMATS)))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        path.write_text(to_html(doc), encoding="utf-8")
        return [path]
    if fmt == "docx":
        path.write_bytes(to_docx(doc))
        return [path]
    path.write_text(to_markdown(doc, path.parent, prefix=f"{path.stem}_"), encoding="utf-8")
    return [path, *(path.parent / f"{path.stem}_{b.name}.png" for b in doc.blocks
                    if isinstance(b, Figure))]
