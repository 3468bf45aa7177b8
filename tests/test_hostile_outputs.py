"""Hostile user text in every output planner writes: no script runs, no formula, same text back.

Every attribute a user can type (hazard_id, region, munition_type, organisation, release_id,
the programme name) is fed with quotes, backticks, ``</script>``, ``<img onerror>``, ``${…}``,
spreadsheet formulas, U+2028, control characters and RTL marks, into the folium map (opened
in headless Chromium), the marking-plan KML/GPX/CSV (re-read with GDAL and pandas), the
Article 7 CSV and the DOCX/HTML/Markdown documents (re-read with python-docx, html.parser and
markdown-it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from planner.maps import programme_map, save_map
from planner.marking import marking_plan
from tests.conftest import hazards_frame, sq

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
