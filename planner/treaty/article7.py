"""Article 7(1)(h) and (i): contaminated areas and areas released in a calendar year.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from planner.accounting import Ledger, Status
from planner.accounting.known import known_records
from planner.documents.model import Blank, Document, Heading, Paragraph, Table
from planner.layers import METHODS
from planner.programme import Programme
from planner.store import Store
from planner.treaty.extension import _n, _region_table, both


# -- Article 7 -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Article7Figures:
    """Figures of an Article 7 report for one calendar year [m²]."""

    year: int
    start: Status
    end: Status
    regions_end: pd.DataFrame
    released_by_region: pd.DataFrame
    hazards: pd.DataFrame

    @property
    def discovered_in_year_m2(self) -> float:
        """Area newly recorded during the year."""
        return self.end.known_m2 - self.start.known_m2

    def released_in_year_m2(self, method: str | None = None) -> float:
        """Area released during the year, by one method or in all."""
        if method is None:
            return self.end.released_m2 - self.start.released_m2
        return float(getattr(self.end, f"{method}_m2") - getattr(self.start, f"{method}_m2"))


def article7_figures(ledger: Ledger, year: int, hazards: gpd.GeoDataFrame | None = None
                     ) -> Article7Figures:
    """Contaminated areas at the end of ``year`` and areas released during it.

    ``hazards`` (the store layer) adds each remaining hazard's location (centroid, WGS 84) and
    munition type to the list.
    """
    start, end = dt.date(year - 1, 12, 31), dt.date(year, 12, 31)
    s0, s1 = ledger.status(start), ledger.status(end)
    b0, b1 = ledger.breakdown(start), ledger.breakdown(end)
    keys = ["region", "status"]
    cols = [f"{m}_m2" for m in (*METHODS, "released")]
    merged = b1.set_index(keys)[cols].sub(b0.set_index(keys)[cols], fill_value=0.0)
    merged = merged.reset_index()
    released = merged[merged["released_m2"].abs() > 0.5].reset_index(drop=True)
    per = ledger.remaining_by_hazard(end)
    per = per[per["remaining_m2"] > 1.0].reset_index(drop=True)
    if hazards is not None and len(per):
        # each hazard where its latest version recorded by the end of the year puts it
        current = hazards[pd.to_datetime(hazards["recorded_on"]) <= pd.Timestamp(end)]
        current = current.iloc[np.argsort(pd.to_datetime(current["recorded_on"]).to_numpy(),
                                          kind="stable")]
        h = current.set_index(current["hazard_id"].astype(str))
        h = h[~h.index.duplicated(keep="last")]
        ids = per["hazard_id"].astype(str)
        found = ids.isin(h.index)
        geo = h.loc[ids[found]]
        centroids = geo.geometry.to_crs(ledger.crs).centroid.to_crs(4326)
        lat = np.full(len(per), np.nan)
        lon = np.full(len(per), np.nan)
        lat[found.to_numpy()] = centroids.y.to_numpy()
        lon[found.to_numpy()] = centroids.x.to_numpy()
        per["lat"], per["lon"] = lat, lon
        if "munition_type" in h.columns:
            per["munition_type"] = [h.at[i, "munition_type"] if f else None
                                    for i, f in zip(ids, found, strict=True)]
    return Article7Figures(year, s0, s1, b1, released, per)


MAX_HAZARD_ROWS = 1000


def article7_document(fig: Article7Figures, programme: Programme) -> Document:
    """Article 7(1)(h) and (i) for one calendar year, as a :class:`Document`."""
    y = fig.year
    doc = Document(f"{programme.name}: Article 7 report, calendar year {y}, items (h) and (i)")
    s0, s1 = fig.start, fig.end
    doc.add(Paragraph(f"Figures from the programme's records at 31 December {y - 1} and 31 "
                      f"December {y}; areas are unions of recorded polygons in square metres "
                      f"({s1.area_method})."),
            Heading("(h) Size and location of contaminated areas"),
            Paragraph(f"Contaminated area at 31 December {y}: {both(s1.remaining_m2)} in "
                      f"{int((fig.hazards['remaining_m2'] > 1.0).sum())} recorded hazardous "
                      "area(s)."),
            _region_table(fig.regions_end))
    rows = []
    shown = fig.hazards.sort_values("remaining_m2", ascending=False).head(MAX_HAZARD_ROWS)
    has_loc = "lat" in shown.columns
    for _, r in shown.iterrows():
        row = [str(r["hazard_id"]), str(r["region"] or ""), str(r["status"] or ""),
               _n(r["remaining_m2"])]
        if has_loc:
            row += ["" if math.isnan(r["lat"]) else f"{r['lat']:.5f}",
                    "" if math.isnan(r["lon"]) else f"{r['lon']:.5f}",
                    str(r.get("munition_type") or "")]
        rows.append(row)
    columns = ["hazard", "region", "status", "remaining [m²]"]
    if has_loc:
        columns += ["lat (WGS 84)", "lon (WGS 84)", "munition type"]
    doc.add(Table(columns, rows, caption="Hazardous areas remaining, largest first",
                  numeric=[False, False, False, True, True, True, False]))
    if len(fig.hazards) > MAX_HAZARD_ROWS:
        doc.add(Paragraph(f"{len(fig.hazards) - MAX_HAZARD_ROWS} smaller areas are not "
                          "listed; export them with `planner article7 --csv`.", "note"))
    doc.add(Blank("(h)", "Type and quantity of each type of cluster munition remnant, and when "
                  "they were used, as far as known."))
    doc.add(Heading("(i) Status and progress of clearance"),
            Table(["", "area [m²]", "area [km²]"], [
                [f"contaminated at 31 December {y - 1}", _n(s0.remaining_m2),
                 f"{s0.remaining_m2 / 1e6:,.3f}"],
                [f"+ discovered in {y}", _n(fig.discovered_in_year_m2),
                 f"{fig.discovered_in_year_m2 / 1e6:,.3f}"],
                *[[f"- {m} in {y}", _n(-fig.released_in_year_m2(m)),
                   f"{-fig.released_in_year_m2(m) / 1e6:,.3f}"] for m in METHODS],
                [f"= contaminated at 31 December {y}", _n(s1.remaining_m2),
                 f"{s1.remaining_m2 / 1e6:,.3f}"]],
                caption=f"Areas released in {y}, reconciled", numeric=[False, True, True],
                total_rows=1),
            Table(["region", "status", *[f"{m} [m²]" for m in METHODS], "released [m²]"],
                  [[str(r["region"]), str(r["status"]),
                    *[_n(r[f"{m}_m2"]) for m in (*METHODS, "released")]]
                   for _, r in fig.released_by_region.iterrows()],
                  caption=f"Areas released in {y} by region and status",
                  numeric=[False, False, True, True, True, True]),
            Blank("(i)", "Quantities and types of remnants destroyed, and the location of "
                  "areas cleared beyond what the tables show."))
    return doc


def article7_report(store: Store, year: int, *, ledger: Ledger | None = None
                    ) -> tuple[Article7Figures, Document]:
    """Article 7(1)(h)/(i) of a programme for a calendar year: figures and document.

    The one call every face makes for the Article 7 report.
    """
    from planner.accounting import ledger_from_store

    ledger = ledger or ledger_from_store(store)
    fig = article7_figures(ledger, year, known_records(store, ledger.known_on)[0])
    return fig, article7_document(fig, store.programme())
