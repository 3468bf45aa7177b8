"""The extension request and Article 7 figures: known answers, reconciliation, documents."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import docx
import numpy as np
import pyproj
import pytest
from PIL import Image

from planner.accounting import Ledger, build_ledger, status_direct
from planner.documents.model import BLANK_MARK, Document, Paragraph, write_document
from planner.errors import InputError
from planner.programme import Programme
from planner.store import Store
from planner.treaty.article7 import article7_document, article7_figures
from planner.treaty.extension import (
    request_document,
    request_figures,
    work_plan,
)
from planner.treaty.forecast import CapacityLine, Scenario, forecast, release_history
from tests.conftest import ARTEFACTS, EIF, hazards_frame, releases_frame, screenshot, sq

D = dt.date
PROG = Programme("Hand-made", EIF, settings={"extensions": [{"years": 5}]})


def hand_made() -> tuple[Ledger, object, object]:
    """Two 100 m squares overlapping by half at EIF (union 15,000 m², naive 20,000), one more
    found in 2014 (10,000 m²); 2,500 m² released before EIF, then releases after it, one of
    them clearing land already cancelled."""
    h = hazards_frame([sq(0, 0), sq(50, 0), sq(500, 0)],
                      [D(2010, 1, 1), D(2010, 3, 1), D(2014, 6, 1)])
    r = releases_frame(
        [sq(0, 0, 50),                        # 2,500 m² cleared before EIF
         sq(50, 0, 50),                       # 2,500 m² cancelled 2012
         sq(50, 0, 50),                       # cleared again 2013: adds nothing
         sq(100, 0, 50),                      # 2,500 m² reduced 2013
         sq(500, 0, 50)],                     # 2,500 m² cleared 2015
        [D(2011, 3, 1), D(2012, 5, 1), D(2013, 5, 1), D(2013, 6, 1), D(2015, 7, 1)],
        ["cleared", "cancelled", "cleared", "reduced", "cleared"])
    return build_ledger(h, r, eif=EIF, crs=pyproj.CRS.from_epsg(3035)), h, r


def test_figures_on_overlapping_polygons_are_unions_and_reconcile() -> None:
    led, h, r = hand_made()
    cap = (CapacityLine("cleared", 1, 10, 200),)   # 2,000 m² a year
    f = forecast(led, PROG, Scenario(capacity=cap, discovery_m2_per_year=0),
                 as_of=D(2015, 12, 31))
    direct = status_direct(h, r, D(2015, 12, 31), crs=led.crs)
    fig = request_figures(led, PROG, f, independent_remaining_m2=direct)
    assert fig.recorded_by_eif_m2 == pytest.approx(15_000, abs=0.01)   # not 20,000
    assert fig.released_before_eif_m2 == pytest.approx(2_500, abs=0.01)
    assert fig.area_at_eif_m2 == pytest.approx(12_500, abs=0.01)        # (d)
    assert fig.discovered_after_eif_m2 == pytest.approx(10_000, abs=0.01)  # (d)
    assert fig.cancelled_m2 == pytest.approx(2_500, abs=0.01)           # (e)
    assert fig.reduced_m2 == pytest.approx(2_500, abs=0.01)
    assert fig.cleared_m2 == pytest.approx(2_500, abs=0.01)
    assert fig.remaining_m2 == pytest.approx(15_000, abs=0.01)          # (f)
    assert direct == pytest.approx(15_000, abs=0.01)
    assert fig.verified and fig.check_gap_m2 is not None and abs(fig.check_gap_m2) < 0.01
    # the naive sums a spreadsheet would give are different
    s = led.status(D(2015, 12, 31))
    assert s.naive_hazard_sum_m2 == pytest.approx(30_000, abs=0.01)
    assert s.naive_release_sum_m2 == pytest.approx(12_500, abs=0.01)
    # 15,000 m² at 2,000 m² a year: 7.5 years from 2015, within 2026-08-01
    assert f.completion_p50 == D(2023, 7, 2)
    assert fig.requested_years == 0 and fig.plan["target_m2"].sum() == pytest.approx(15_000)


def test_yearly_table_starts_at_eif_and_totals_e() -> None:
    led, _, _ = hand_made()
    f = forecast(led, PROG, as_of=D(2015, 12, 31))
    fig = request_figures(led, PROG, f)
    y = fig.yearly
    assert y["label"].iloc[0] == "2011 (from 1 Aug)" and y["period_end"].iloc[-1] == D(2015, 12, 31)
    assert y["released_m2"].sum() == pytest.approx(fig.released_since_eif_m2)
    assert y["cleared_m2"].sum() == pytest.approx(fig.cleared_m2)
    assert y["discovered_m2"].sum() == pytest.approx(fig.discovered_after_eif_m2)


@pytest.mark.parametrize("end", [D(2026, 8, 1), D(2031, 8, 1), D(2025, 1, 1)])
def test_work_plan_benchmarks_sum_to_remaining_and_reach_zero(end: dt.date) -> None:
    plan = work_plan(1_352_724.2151, D(2024, 12, 31), end,
                     {"cancelled": 0.2, "reduced": 0.3, "cleared": 0.5})
    assert plan["target_m2"].sum() == pytest.approx(1_352_724.2151, abs=1e-6)
    assert plan["remaining_m2"].iloc[-1] == 0 and plan["period_end"].iloc[-1] == end
    split = plan[["cancelled_m2", "reduced_m2", "cleared_m2"]].sum(axis=1).to_numpy()
    assert split == pytest.approx(plan["target_m2"].to_numpy())
    # a constant daily rate: each full year gets the same benchmark to one m²
    full = plan[plan["days"] >= 365]
    per_day = (full["target_m2"] / full["days"]).to_numpy()
    assert np.all(np.abs(per_day - 1_352_724.2151 / (end - D(2024, 12, 31)).days) < 0.01)
    with pytest.raises(InputError, match="later"):
        work_plan(1.0, end, end)


def test_demo_request_reconciles_and_its_docx_holds_d_e_f(demo_store: Store,
                                                          tmp_path: Path) -> None:
    p = demo_store.programme()
    h, r = demo_store.read("hazards"), demo_store.read("releases")
    led = build_ledger(h, r, eif=p.eif)
    f = forecast(led, p, today=D(2026, 11, 23))
    direct = status_direct(h, r, f.as_of, crs=led.crs)
    fig = request_figures(led, p, f, independent_remaining_m2=direct)
    # (d) - (e) = (f) to 1 m², and (f) agrees with a global union of every polygon
    d_total = fig.area_at_eif_m2 + fig.discovered_after_eif_m2
    assert d_total - fig.released_since_eif_m2 == pytest.approx(fig.remaining_m2, abs=1.0)
    assert fig.remaining_m2 == pytest.approx(direct, abs=1.0)
    assert fig.verified
    # the demo cannot finish by its extended deadline: a second request, five years at most
    assert fig.current_deadline == D(2026, 8, 1)
    assert 1 <= fig.requested_years <= 5 and fig.requested_deadline == D(
        2026 + fig.requested_years, 8, 1)
    assert fig.plan["target_m2"].sum() == pytest.approx(fig.remaining_m2, abs=1.0)
    assert fig.plan["period_end"].iloc[-1] == fig.requested_deadline

    doc = request_document(fig, f, history=release_history(led, f.as_of))
    out = write_document(doc, tmp_path / "request.docx")[0]
    text = "\n".join(par.text for par in docx.Document(str(out)).paragraphs)
    cells = "\n".join(c.text for t in docx.Document(str(out)).tables
                      for row in t.rows for c in row.cells)
    for value in (fig.area_at_eif_m2, fig.discovered_after_eif_m2, fig.cleared_m2,
                  fig.remaining_m2):
        assert f"{round(value):,} m²" in text
        assert f"{round(value):,}" in cells
    for item in ("(b)", "(g)", "(h)", "(i)"):
        assert f"{item} {BLANK_MARK}" in text
    with zipfile.ZipFile(out) as z:   # the burn-down chart is embedded
        assert any(n.startswith("word/media/") for n in z.namelist())

    md = write_document(doc, tmp_path / "request.md")
    assert [x.name for x in md] == ["request.md", "request_burndown.png"]
    assert "(f) Area remaining to be cleared" in md[0].read_text()


def test_demo_request_html_renders_in_headless_chromium(demo_store: Store, chromium: str
                                                        ) -> None:
    p = demo_store.programme()
    led = build_ledger(demo_store.read("hazards"), demo_store.read("releases"), eif=p.eif)
    f = forecast(led, p, today=D(2026, 11, 23))
    doc = request_document(request_figures(led, p, f), f, history=release_history(led, f.as_of))
    page = write_document(doc, ARTEFACTS / "extension_request.html")[0]
    shot = screenshot(chromium, page, ARTEFACTS / "extension_request.png")
    img = Image.open(shot).convert("L")
    assert img.size == (1200, 2400)
    pixels = np.asarray(img)
    # text and tables drawn: a real share of dark pixels, not a blank or error page
    assert (pixels < 100).mean() > 0.01
    assert len(np.unique(pixels)) > 50


def test_finished_programme_reports_compliance_not_an_extension() -> None:
    h = hazards_frame([sq(0, 0)], [D(2010, 1, 1)])
    r = releases_frame([sq(0, 0)], [D(2014, 1, 1)], ["cleared"])
    led = build_ledger(h, r, eif=EIF)
    f = forecast(led, PROG, as_of=D(2015, 12, 31))
    fig = request_figures(led, PROG, f)
    doc = request_document(fig, f)
    assert fig.finished and fig.requested_years == 0 and len(fig.plan) == 0
    assert "declaration of compliance" in doc.title
    text = doc.text()
    assert "(a) Duration" not in text and "4(1)(c)" in text


def test_user_text_is_escaped_in_html_and_markdown(tmp_path: Path) -> None:
    doc = Document("<script>alert(1)</script>").add(Paragraph("a | b <img src=x>"))
    html = write_document(doc, tmp_path / "x.html")[0].read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x>" not in html
    md = write_document(doc, tmp_path / "x.md")[0].read_text()
    assert "<script>" not in md and "\\<img src=x\\>" in md
    with pytest.raises(InputError, match="suffix"):
        write_document(doc, tmp_path / "x.pdf")


def test_requested_years_must_be_zero_to_five() -> None:
    led, _, _ = hand_made()
    f = forecast(led, PROG, as_of=D(2015, 12, 31))
    with pytest.raises(InputError, match="five"):
        request_figures(led, PROG, f, years=6)
    fig = request_figures(led, PROG, f, years=2)
    assert fig.requested_deadline == D(2028, 8, 1)
    assert fig.plan["period_end"].iloc[-1] == D(2028, 8, 1)


def test_article7_year_reconciles_and_lists_locations(demo_store: Store) -> None:
    p = demo_store.programme()
    h = demo_store.read("hazards")
    led = build_ledger(h, demo_store.read("releases"), eif=p.eif)
    a = article7_figures(led, 2022, h)
    # remaining at start + discovered - released in the year = remaining at end
    assert (a.start.remaining_m2 + a.discovered_in_year_m2 - a.released_in_year_m2()
            == pytest.approx(a.end.remaining_m2, abs=1e-6))
    assert a.released_by_region["released_m2"].sum() == pytest.approx(
        a.released_in_year_m2(), abs=1.0)
    assert a.hazards["remaining_m2"].sum() == pytest.approx(a.end.remaining_m2, abs=1.0)
    assert a.hazards["lat"].between(18, 21).all() and a.hazards["lon"].between(101, 105).all()
    text = article7_document(a, p).text()
    assert "calendar year 2022" in text and f"{round(a.end.remaining_m2):,} m²" in text


def test_docx_is_a_word_file(tmp_path: Path) -> None:
    out = write_document(Document("T").add(Paragraph("x")), tmp_path / "t.docx")[0]
    assert docx.Document(io.BytesIO(out.read_bytes())).paragraphs[0].text == "T"
