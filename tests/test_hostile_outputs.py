"""Hostile user text in every output planner writes: no script runs, no formula, same text back.

Every attribute a user can type (hazard_id, region, munition_type, organisation, release_id,
the programme name) is fed with quotes, backticks, ``</script>``, ``<img onerror>``, ``${…}``,
spreadsheet formulas, U+2028, control characters and RTL marks, into the folium map (opened
in headless Chromium), the marking-plan KML/GPX/CSV (re-read with GDAL and pandas), the
Article 7 CSV and the DOCX/HTML/Markdown documents (re-read with python-docx, html.parser and
markdown-it).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pyogrio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.documents import model as documents
from planner.field import exports
from planner.field.maps import programme_map, save_map
from planner.field.marking import marking_plan
from planner.io import cells
from tests.conftest import hazards_frame, releases_frame, sq

BACKTICK = "H-1`+alert(1)+`"


# -- the browser ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


_TOOLTIPS = """() => {
    const map = Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])
        .find(v => v && v.eachLayer);
    const texts = [];
    map.eachLayer(owner => {
        if (!owner.getTooltip || !owner.getTooltip()) return;
        const show = l => {   // what a hover shows: the owner's tooltip, for this feature
            l.fire('mouseover', {latlng: l.getLatLng ? l.getLatLng() : l.getCenter()}, true);
            const element = owner.getTooltip().getElement();
            if (element) texts.push(element.textContent);
            l.fire('mouseout', {}, true);
        };
        if (owner.eachLayer) owner.eachLayer(show); else show(owner);
    });
    return texts;
}"""


def open_map(browser: Any, page: Path) -> tuple[list[str], list[str], str]:
    """Open ``page``; the problems seen (errors, dialogs), every tooltip's text, body text."""
    problems: list[str] = []
    tab = browser.new_page(viewport={"width": 1000, "height": 700})
    try:
        tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: problems.append(str(e)))

        def dialog(d: Any) -> None:
            problems.append("dialog: " + d.message)
            d.dismiss()

        tab.on("dialog", dialog)
        tab.route("http*://**/*", lambda r: r.abort())   # tiles: not needed here
        tab.goto(page.resolve().as_uri())
        tab.wait_for_load_state("load")
        tab.wait_for_timeout(200)
        problems = [p for p in problems if "net::ERR_FAILED" not in p]   # the tiles
        tips: list[str] = [] if problems else tab.evaluate(_TOOLTIPS)
        body: str = tab.evaluate("() => document.body.textContent")
    finally:
        tab.close()
    return problems, tips, body


@pytest.mark.parametrize("other", ["H2", "H`2"])
def test_backtick_in_a_hazard_id_runs_nothing_in_the_map(browser: Any, tmp_path: Path,
                                                         other: str) -> None:
    """Issue 14 item 2: sign tooltips were JavaScript template strings.

    Before the fix ``H-1`+alert(1)+``` showed an alert per sign, and ``H`2`` broke the whole
    page ("missing ) after argument list").
    """
    h = hazards_frame([sq(0, 0), sq(500, 0)], hazard_id=[BACKTICK, other])
    plan = marking_plan(h)
    page = save_map(programme_map(h, None, enclosures=plan.enclosures, signs=plan.signs,
                                  fence=plan.fence, title="t"), tmp_path / "map.html")
    problems, tips, _ = open_map(browser, page)
    assert problems == []
    assert any(BACKTICK in t for t in tips) and any(other in t for t in tips)


# -- hostile strings ---------------------------------------------------------------------------
HOSTILE = ["'\"", "`", "${alert(1)}", "</script><script>alert(1)</script>",
           "<img src=x onerror=alert(1)>", '=HYPERLINK("http://x.example","y")',
           "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A9)", "\tx", "\rx", "\u2028",
           "\u2029", "\u202e", "\u200f", "]]>", "&amp;", "\x01\x1b\x7f", "-1.5", "H-1`+alert(1)+`"]
hostile = st.lists(
    st.sampled_from(HOSTILE)
    | st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=6),
    min_size=1, max_size=4).map("".join)
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def neutralised(value: str) -> str:
    """What a CSV cell holding ``value`` must hold (independent of planner.io.cells)."""
    try:
        float(value)
        plain = ("_" not in value and value.strip() == value
                 and (value[-1:].isdigit() or value.endswith(".")))
    except ValueError:
        plain = False
    return "'" + value if value.startswith(FORMULA) and not plain else value


def one_hazard_plan(value: str) -> Any:
    return marking_plan(hazards_frame([sq(0, 0)], hazard_id=[value]))


@settings(max_examples=60, deadline=None)
@given(text=hostile, number=st.floats(-1e6, 1e6))
def test_csv_text_cells_are_neutralised_and_numbers_kept(text: str, number: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = cells.write_csv(pd.DataFrame({"id": [text], "n": [number]}), Path(tmp) / "a.csv")
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    assert rows[1][0] == neutralised(text)
    assert float(rows[1][1]) == number


@settings(max_examples=15, deadline=None)
@given(value=hostile)
def test_marking_plan_csv_kml_gpx_carry_the_text_safely(value: str) -> None:
    plan = one_hazard_plan(value)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        with exports.write_csv(plan, out / "s.csv").open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert [r["hazard_ids"] for r in rows] == [neutralised(value)] * len(plan.signs)
        assert [r["sign_id"] for r in rows] == plan.signs["sign_id"].tolist()
        kml = exports.write_kml(plan, out / "p.kml", title=value)
        gpx = exports.write_gpx(plan, out / "p.gpx", title=value)
        safe = cells.xml_text(value)
        k = pyogrio.read_dataframe(kml, layer="Signs")
        g = pyogrio.read_dataframe(gpx, layer="waypoints")
        assert sorted(k["Name"]) == sorted(g["name"]) == sorted(plan.signs["sign_id"])
        for text in [*k["description"], *g["desc"]]:
            assert f"warns of {safe}; " in text
        e = pyogrio.read_dataframe(kml, layer="Enclosures")
        assert f"hazards {safe}; " in e["description"].iloc[0]
        ns = {"k": "http://www.opengis.net/kml/2.2", "g": "http://www.topografix.com/GPX/1/1"}
        assert ET.parse(kml).getroot().findtext("k:Document/k:name", namespaces=ns) == safe
        assert ET.parse(gpx).getroot().findtext("g:metadata/g:name", namespaces=ns) == safe


def _document(value: str) -> documents.Document:
    return documents.Document(value).add(
        documents.Heading(value), documents.Paragraph(value), documents.Blank(value, value),
        documents.Table(["hazard", "region"], [[value, value]], caption=value))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if any(name.startswith("on") for name, _ in attrs):
            self.tags.add("on-attribute")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


DOC_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "div", "strong",
            "table", "caption", "thead", "tr", "th", "tbody", "td"}


@settings(max_examples=40, deadline=None)
@given(value=hostile)
def test_documents_html_markdown_docx_show_the_literal_text(value: str) -> None:
    import docx
    from markdown_it import MarkdownIt

    doc = _document(value)
    page = _Tags()
    page.feed(documents.to_html(doc))
    assert page.tags <= DOC_TAGS
    def lf(text: str) -> str:   # what an HTML parser in a browser does with CR
        return text.replace("\r\n", "\n").replace("\r", "\n")

    assert lf("".join(page.text)).count(lf(value)) >= 6
    md = _Tags()
    md.feed(MarkdownIt("commonmark").enable("table").render(documents.to_markdown(doc)))
    assert md.tags <= {"h1", "h2", "p", "blockquote", "strong", "table", "thead", "tbody",
                       "tr", "th", "td", "em", "br"}
    word = docx.Document(io.BytesIO(documents.to_docx(doc)))
    texts = [p.text for p in word.paragraphs]
    texts += [c.text for t in word.tables for row in t.rows for c in row.cells]
    assert sum(cells.xml_text(value) in t for t in texts) >= 6


@settings(max_examples=5, deadline=None)
@given(value=st.sampled_from(HOSTILE) | hostile)
def test_map_shows_hostile_text_as_text_and_runs_nothing(browser: Any, value: str) -> None:
    """Every user attribute of hazards, releases and the plan, and the title, is ``value``."""
    h = hazards_frame([sq(0, 0)], hazard_id=[value], region=[value], munition_type=[value])
    r = releases_frame([sq(0, 0, 40)], [dt.date(2015, 1, 1)], ["cleared"])
    r["release_id"], r["organisation"] = [value], [value]
    plan = marking_plan(h)
    with tempfile.TemporaryDirectory() as tmp:
        page = save_map(programme_map(h, r, enclosures=plan.enclosures, signs=plan.signs,
                                      fence=plan.fence, title=value), Path(tmp) / "map.html")
        problems, tips, body = open_map(browser, page)
    assert problems == []
    # hazard (id, region, munition), release (id, organisation), enclosure, and every sign
    assert sum(t.count(value) for t in tips) >= 3 + 2 + 1 + len(plan.signs)
    assert value.replace("\r\n", "\n").replace("\r", "\n") in body.replace("\r", "\n")
