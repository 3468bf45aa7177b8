"""The web map in a real headless Chromium, escaping of user text, printable sheets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from PIL import Image

from planner.field.maps import enclosure_png, map_html, marking_sheets_pdf, programme_map, save_map
from planner.field.marking import marking_plan, remaining_hazards
from planner.store import Store
from tests.conftest import ARTEFACTS

EVIL = "<script>alert(1)</script>"
# a light grey 256 x 256 tile, served for every base-map request: no network at test time
_TILE = Image.new("RGB", (256, 256), (235, 235, 230))


def _tile_png(tmp: Path) -> bytes:
    path = tmp / "tile.png"
    _TILE.save(path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def demo_layers(demo_store: Store) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    h, r = demo_store.read("hazards"), demo_store.read("releases")
    h.loc[h.index[0], "region"] = EVIL
    h.loc[h.index[1], "hazard_id"] = EVIL
    return h, r


def test_map_is_one_file_with_escaped_user_text(demo_layers: tuple[gpd.GeoDataFrame,
                                                                    gpd.GeoDataFrame]) -> None:
    h, r = demo_layers
    page = map_html(programme_map(h, r, title=EVIL))
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page          # the title
    # the hazard attributes reach the page as JSON data, "<" and ">" escaped, and are shown
    # through textContent (not HTML-escaped twice)
    assert page.count("\\u003cscript\\u003ealert(1)\\u003c/script\\u003e") >= 2
    assert "&amp;lt;" not in page and "\\u0026lt;" not in page
    # nothing is fetched from the web but the tiles: Leaflet is inlined
    assert 'src="http' not in page and 'href="https://cdn' not in page
    assert "L.map(" in page or "L.map" in page


def test_map_opens_in_chromium_without_errors_and_shows_hazards(
        demo_layers: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame], chromium: str,
        tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    h, r = demo_layers
    left = remaining_hazards(h, r, dt.date(2024, 12, 31))
    plan = marking_plan(left[left["region"] == "Khoun"])
    page = save_map(programme_map(h, r, enclosures=plan.enclosures, signs=plan.signs,
                                  fence=plan.fence, title="Demo province"),
                    ARTEFACTS / "programme_map.html")
    tile = _tile_png(tmp_path)
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            tab = browser.new_page(viewport={"width": 1200, "height": 800})
            tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: problems.append(str(e)))

            def dialog(d: Any) -> None:   # an alert() would mean escaping failed
                problems.append("dialog: " + d.message)
                d.dismiss()

            tab.on("dialog", dialog)

            def route(request_route: Any) -> None:
                url = request_route.request.url
                if "tile.openstreetmap.org" in url:
                    request_route.fulfill(status=200, content_type="image/png", body=tile)
                else:
                    problems.append("unexpected request: " + url)
                    request_route.abort()

            tab.route("http*://**/*", route)
            tab.goto(page.resolve().as_uri())
            tab.wait_for_selector(".leaflet-interactive")
            tab.wait_for_timeout(500)
            shot = ARTEFACTS / "programme_map.png"
            tab.screenshot(path=str(shot))
            paths = tab.locator("path.leaflet-interactive").count()
            arrows = tab.locator(".planner-sign").count()
            layer_names = tab.locator(".leaflet-control-layers-overlays").inner_text()
        finally:
            browser.close()
    assert problems == []
    assert paths >= len(h) // 2 and arrows == len(plan.signs)
    assert "hazards: CHA" in layer_names and "marking: signs" in layer_names
    # the hazards are drawn: plenty of their red/orange among the grey tiles
    px = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    reddish = (px[..., 0] > 180) & (px[..., 1] < 160) & (px[..., 2] < 140)
    assert reddish.mean() > 0.001


def test_enclosure_png_and_pdf_sheets(demo_layers: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame],
                                      tmp_path: Path) -> None:
    h, r = demo_layers
    plan = marking_plan(remaining_hazards(h, r, dt.date(2024, 12, 31)).head(12))
    first = plan.enclosures.sort_values("priority")["enclosure_id"].iloc[0]
    png = enclosure_png(plan, first, ARTEFACTS / "enclosure.png", h)
    assert Image.open(png).size == (1753, 1240)
    pdf, n = marking_sheets_pdf(plan, tmp_path / "sheets.pdf", h, max_enclosures=3)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and n == 3
    pages = data.count(b"/Type /Page") - data.count(b"/Type /Pages")
    assert pages >= 2 * n   # a map and at least one table page per enclosure


def test_map_refuses_an_empty_store(make_store: Callable[..., Store]) -> None:
    from planner.errors import InputError

    st = make_store()
    with pytest.raises(InputError, match="nothing to map"):
        programme_map(st.read("hazards"), st.read("releases"))

