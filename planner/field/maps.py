"""Maps: an interactive web map of a programme, and printable maps of each enclosure.

* :func:`programme_map` builds a folium map: hazards by status, releases by method (year in
  the tooltip), and a marking plan (enclosures, fence, signs drawn as arrows turned to the way
  they face), with a layer control, a scale and a legend. :func:`save_map` writes it as **one
  HTML file** with Leaflet inlined (``planner/field/leaflet``), so it opens without network
  except for the base-map tiles.
* :func:`enclosure_figure` draws one enclosure for print (matplotlib): hazards, perimeter,
  fence, numbered signs with their facing, a north arrow (true north), a scale bar and a
  coordinate grid; :func:`marking_sheets_pdf` writes a multi-page PDF with, per enclosure, the
  map and the table of its signs.

User text (ids, regions, names) reaches the page only as data: in the map's script as JSON
(:func:`planner.io.cells.js_data`, or folium's HTML-safe ``tojson``), never spliced into
JavaScript code or template strings, and shown by setting ``textContent`` (tooltips are built
as DOM nodes, never from HTML strings); text in the page's HTML (the title, layer names) is
HTML-escaped. A hazard called ``<script>alert(1)</script>`` or ``H-1`+alert(1)+``` shows as
that text and runs nothing.
"""

from __future__ import annotations

import html
import math
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from planner.areas import WGS84
from planner.errors import InputError
from planner.io.cells import js_data

if TYPE_CHECKING:
    import folium
    from matplotlib.figure import Figure

    from planner.field.marking import MarkingPlan

STATUS_COLOURS = {"CHA": "#d7301f", "SHA": "#fc8d59"}
METHOD_COLOURS = {"cleared": "#1a9850", "reduced": "#66bd63", "cancelled": "#a6d96a"}
MAX_SIGN_MARKERS = 5000


def _text(frame: gpd.GeoDataFrame, columns: list[str]) -> gpd.GeoDataFrame:
    """Only ``columns`` (and geometry), every value as plain text ("" if missing), in WGS 84.

    The text is *not* HTML-escaped: it reaches the page as JSON data and is shown through
    ``textContent`` (:class:`_TextTooltip`).
    """
    out = gpd.GeoDataFrame(
        {c: ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
             for v in frame[c]] if c in frame else [""] * len(frame)
         for c in columns}, geometry=np.asarray(frame.geometry.values), crs=frame.crs)
    return out.to_crs(WGS84)


def _macro(template: str) -> type[Any]:
    """A branca ``MacroElement`` class whose ``script`` macro is ``template``."""
    from branca.element import MacroElement
    from jinja2 import Template

    return type("PlannerMacro", (MacroElement,), {"_template": Template(
        "{% macro script(this, kwargs) %}" + template + "{% endmacro %}")})


# Builds the tooltip of a GeoJSON feature as a table of DOM nodes whose text is set through
# textContent: no property value is ever parsed as HTML or evaluated as code.
_TOOLTIP_JS = """
{{ this._parent.get_name() }}.bindTooltip(function (layer) {
    var fields = {{ this.fields_json }}, aliases = {{ this.aliases_json }};
    var props = (layer.feature && layer.feature.properties) || {};
    var table = document.createElement("table");
    fields.forEach(function (field, i) {
        var row = table.insertRow();
        var head = document.createElement("th");
        head.textContent = aliases[i];
        row.appendChild(head);
        var value = props[field];
        row.insertCell().textContent = value === null || value === undefined ? "" : String(value);
    });
    return table;
}, {"sticky": true, "className": "planner-tooltip"});
"""

# One marker per sign, from a JSON array of [lat, lon, facing_deg, tooltip text].
_SIGNS_JS = """
(function (group, signs) {
    signs.forEach(function (s) {
        var arrow = document.createElement("div");
        arrow.className = "planner-sign";
        arrow.style.transform = "rotate(" + Number(s[2]) + "deg)";
        arrow.textContent = "\u25B2";
        var tip = document.createElement("div");
        tip.textContent = s[3];
        L.marker([s[0], s[1]], {icon: L.divIcon({html: arrow, className: "planner-sign-icon",
                                                  iconSize: [16, 16], iconAnchor: [8, 8]})})
            .bindTooltip(tip).addTo(group);
    });
})({{ this._parent.get_name() }}, {{ this.signs_json }});
"""


def _tooltip(fields: list[str], aliases: list[str]) -> Any:
    """A tooltip for a ``folium.GeoJson`` showing ``fields`` as text, labelled ``aliases``."""
    tip = _macro(_TOOLTIP_JS)()
    tip.fields_json, tip.aliases_json = js_data(fields), js_data(aliases)
    return tip


def _sign_markers(signs: gpd.GeoDataFrame) -> Any:
    """Sign arrows turned to their facing, with a text tooltip, for a ``FeatureGroup``."""
    rows = [[round(float(g.y), 7), round(float(g.x), 7), round(float(f), 1),
             f"{sid}: faces {float(f):.0f}°, warns of {ids}"]
            for g, f, sid, ids in zip(signs.geometry, signs["facing_deg"], signs["sign_id"],
                                      signs["hazard_ids"], strict=True)]
    markers = _macro(_SIGNS_JS)()
    markers.signs_json = js_data(rows)
    return markers


def programme_map(hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame | None = None, *,
                  enclosures: gpd.GeoDataFrame | None = None,
                  signs: gpd.GeoDataFrame | None = None,
                  fence: gpd.GeoDataFrame | None = None,
                  title: str = "") -> folium.Map:
    """An interactive map of hazards, releases and a marking plan.

    Parameters
    ----------
    hazards, releases : GeoDataFrame
        Store layers (any CRS).
    enclosures, signs, fence : GeoDataFrame, optional
        Layers of a :class:`~planner.field.marking.MarkingPlan`.
    title : str
        Shown at the top of the map (escaped).

    Returns
    -------
    folium.Map
        Save it with :func:`save_map`.
    """
    import folium

    if len(hazards) == 0 and (releases is None or len(releases) == 0):
        raise InputError("nothing to map: the store has no hazards or releases yet")
    basis = hazards if len(hazards) else releases
    assert basis is not None
    minx, miny, maxx, maxy = basis.to_crs(WGS84).total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=12,
                   control_scale=True, tiles="OpenStreetMap")
    m.fit_bounds([[miny, minx], [maxy, maxx]])

    # Leaflet's layer control shows layer names as HTML: they are escaped
    _add_hazards(m, hazards)
    if releases is not None and len(releases):
        _add_releases(m, releases)
    _add_plan(m, enclosures, fence, signs)
    folium.LayerControl(collapsed=False).add_to(m)
    _add_legend(m, title)
    return m


def _add_hazards(m: folium.Map, hazards: gpd.GeoDataFrame) -> None:
    """One layer of hazards per status, coloured by status, with a text tooltip."""
    import folium

    h = _text(hazards, ["hazard_id", "status", "region", "recorded_on", "munition_type"])
    for status in sorted(set(h["status"])):
        colour = STATUS_COLOURS.get(status, "#7f2704")
        group = folium.FeatureGroup(name=html.escape(f"hazards: {status or 'no status'}"))
        layer = folium.GeoJson(
            h[h["status"] == status],
            style_function=lambda _f, c=colour: {"color": c, "weight": 1.5, "fillColor": c,
                                                 "fillOpacity": 0.45})
        layer.add_child(_tooltip(["hazard_id", "status", "region", "recorded_on",
                                  "munition_type"],
                                 ["hazard", "status", "region", "recorded", "munition"]))
        layer.add_to(group)
        group.add_to(m)


def _add_releases(m: folium.Map, releases: gpd.GeoDataFrame) -> None:
    """One layer of releases per method (only clearance shown at first), with the year."""
    import folium

    r = _text(releases, ["release_id", "method", "released_on", "organisation"])
    r["year"] = [v[:4] for v in r["released_on"]]
    for method in sorted(set(r["method"])):
        colour = METHOD_COLOURS.get(method, "#4575b4")
        group = folium.FeatureGroup(name=html.escape(f"released: {method}"),
                                    show=method == "cleared")
        layer = folium.GeoJson(
            r[r["method"] == method],
            style_function=lambda _f, c=colour: {"color": c, "weight": 1, "fillColor": c,
                                                 "fillOpacity": 0.35})
        layer.add_child(_tooltip(["release_id", "method", "year", "organisation"],
                                 ["release", "method", "year", "by"]))
        layer.add_to(group)
        group.add_to(m)


def _add_plan(m: folium.Map, enclosures: gpd.GeoDataFrame | None,
              fence: gpd.GeoDataFrame | None, signs: gpd.GeoDataFrame | None) -> None:
    """The layers of a marking plan that are given: enclosures, fence, sign arrows."""
    import folium

    if enclosures is not None and len(enclosures):
        e = _text(enclosures, ["enclosure_id", "priority", "hazard_ids", "signs", "fence_m"])
        group = folium.FeatureGroup(name="marking: enclosures")
        layer = folium.GeoJson(e, style_function=lambda _f: {"color": "#000000", "weight": 2,
                                                              "fill": False})
        layer.add_child(_tooltip(["enclosure_id", "priority", "hazard_ids", "signs"],
                                 ["enclosure", "priority", "hazards", "signs"]))
        layer.add_to(group)
        group.add_to(m)
    if fence is not None and len(fence):
        f = _text(fence, ["fence_id", "length_m"])
        group = folium.FeatureGroup(name="marking: fence")
        layer = folium.GeoJson(f, style_function=lambda _f: {"color": "#6a3d9a", "weight": 2,
                                                              "dashArray": "6 4"})
        layer.add_child(_tooltip(["fence_id", "length_m"], ["fence", "metres"]))
        layer.add_to(group)
        group.add_to(m)
    if signs is not None and len(signs):
        s = _text(signs.head(MAX_SIGN_MARKERS), ["sign_id", "facing_deg", "hazard_ids"])
        group = folium.FeatureGroup(name="marking: signs (arrow = facing)")
        group.add_child(_sign_markers(s))
        group.add_to(m)


def _add_legend(m: folium.Map, title: str) -> None:
    """The legend (status and method colours, enclosure, sign) and the escaped title."""
    from branca.element import Element

    legend = "".join(f'<div><span style="background:{c}"></span>{html.escape(k)}</div>'
                     for k, c in [*STATUS_COLOURS.items(), *METHOD_COLOURS.items()])
    root: Any = m.get_root()
    root.html.add_child(Element(
        "<style>.planner-legend{position:absolute;bottom:28px;right:10px;z-index:1000;"
        "background:#fff;padding:6px 8px;border-radius:4px;font:12px/1.4 sans-serif;"
        "box-shadow:0 1px 4px rgba(0,0,0,.3)}.planner-legend span{display:inline-block;"
        "width:12px;height:12px;margin-right:5px;vertical-align:middle}"
        ".planner-title{position:absolute;top:10px;left:60px;z-index:1000;background:#fff;"
        "padding:4px 8px;border-radius:4px;font:bold 14px sans-serif}"
        ".planner-sign{color:#b10026;font-size:14px;line-height:16px;text-align:center;"
        "text-shadow:0 0 2px #fff}</style>"
        f'<div class="planner-legend" role="note"><strong>Legend</strong>{legend}'
        '<div><span style="background:none;border:2px solid #000"></span>enclosure</div>'
        '<div><span style="background:none;color:#b10026">&#9650;</span>sign, pointing '
        "the way it faces</div></div>"
        + (f'<div class="planner-title">{html.escape(title)}</div>' if title else "")))


_REMOTE = re.compile(r'\s*<(script|link)\b[^>]*(src|href)="https?://[^"]+"[^>]*>(</script>)?')


def map_html(m: folium.Map) -> str:
    """The map as one HTML page: Leaflet inlined, no other script or style from the web."""
    page = m.get_root().render()
    page = _REMOTE.sub("", page)
    static = resources.files("planner") / "field" / "leaflet"
    css = (static / "leaflet.css").read_text(encoding="utf-8")
    js = (static / "leaflet.js").read_text(encoding="utf-8")
    inline = f"<style>{css}</style>\n<script>{js}</script>\n"
    return page.replace("<head>", "<head>\n" + inline, 1)


def save_map(m: folium.Map, path: Path) -> Path:
    """Write :func:`map_html` to ``path``."""
    path.write_text(map_html(m), encoding="utf-8")
    return path


# -- print -----------------------------------------------------------------------------------
def _nice(length: float) -> float:
    exp = 10 ** math.floor(math.log10(length))
    for f in (5, 2, 1):
        if f * exp <= length:
            return f * exp
    return exp


def enclosure_figure(plan: MarkingPlan, enclosure_id: str,
                     hazards: gpd.GeoDataFrame | None = None) -> Figure:
    """A printable map of one enclosure (A4 landscape), in the plan's metric CRS."""
    from matplotlib.figure import Figure

    crs = plan.metric_crs
    enc = plan.enclosures[plan.enclosures["enclosure_id"] == enclosure_id]
    if len(enc) == 0:
        raise InputError(f"no enclosure {enclosure_id!r} in the plan")
    enc = enc.to_crs(crs)
    signs = plan.signs[plan.signs["enclosure_id"] == enclosure_id].to_crs(crs)
    fence = plan.fence[plan.fence["enclosure_id"] == enclosure_id].to_crs(crs)
    fig = Figure(figsize=(11.69, 8.27), dpi=100)
    ax = fig.add_axes((0.07, 0.08, 0.62, 0.84))
    ids = set(str(enc["hazard_ids"].iloc[0]).split(","))
    if hazards is not None and len(hazards):
        hz = hazards[hazards["hazard_id"].astype(str).isin(ids)].to_crs(crs)
        hz.plot(ax=ax, color="#fc8d59", edgecolor="#d7301f", alpha=0.6, linewidth=0.8)
    enc.boundary.plot(ax=ax, color="black", linewidth=1.5)
    fence.plot(ax=ax, color="#6a3d9a", linewidth=1.2, linestyle="--")
    if len(signs):
        rad = np.radians(signs["facing_deg"].to_numpy())
        ax.quiver(signs["x_m"], signs["y_m"], np.sin(rad), np.cos(rad), color="#b10026",
                  scale=25, width=0.004, zorder=5)
        for row in signs.itertuples():
            ax.annotate(str(row.sign_id).split("-S")[-1].lstrip("0") or "0",
                        (row.x_m, row.y_m), fontsize=6, xytext=(3, 3),
                        textcoords="offset points", zorder=6)
    minx, miny, maxx, maxy = fence.total_bounds if len(fence) else enc.total_bounds
    pad = max(maxx - minx, maxy - miny) * 0.12 + 5
    ax.set_xlim(minx - pad, maxx + pad)
    ax.set_ylim(miny - pad, maxy + pad)
    ax.set_aspect("equal")
    ax.grid(True, color="#999999", linewidth=0.4)
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=7)
    ax.set_xlabel(f"easting [m], {crs.name}", fontsize=7)
    ax.set_ylabel("northing [m]", fontsize=7)
    # scale bar
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    bar = _nice((x1 - x0) / 4)
    bx, by = x0 + (x1 - x0) * 0.05, y0 + (y1 - y0) * 0.05
    ax.plot([bx, bx + bar], [by, by], color="black", linewidth=3, solid_capstyle="butt")
    ax.text(bx + bar / 2, by + (y1 - y0) * 0.015, f"{bar:g} m", ha="center", fontsize=8)
    # north arrow: true north at the enclosure's centre
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    to_ll = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
    to_xy = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True)
    lon, lat = to_ll.transform(cx, cy)
    nx, ny = to_xy.transform(lon, lat + 0.001)
    angle = math.atan2(nx - cx, ny - cy)
    ax.annotate("N", xy=(0.93 + 0.04 * math.sin(angle), 0.86 + 0.08 * math.cos(angle)),
                xytext=(0.93, 0.86), xycoords="axes fraction", ha="center", va="center",
                fontsize=11, fontweight="bold",
                arrowprops={"arrowstyle": "-|>", "color": "black", "linewidth": 1.5})
    row = enc.iloc[0]
    ax.set_title(f"Enclosure {row['enclosure_id']} (priority {row['priority']})", fontsize=11)
    info = fig.add_axes((0.72, 0.08, 0.26, 0.84))
    info.axis("off")
    lines = [f"hazards: {row['hazard_ids']}", f"hazard area: {row['hazard_area_m2']:,.0f} m²",
             f"perimeter: {row['perimeter_m']:,.0f} m", f"signs: {row['signs']}",
             f"fence: {row['fence_m']:,.0f} m", f"posts: {row['posts']}",
             f"labour: {row['labour_days']:.1f} team-days"]
    if plan.options.prices.given:
        lines.append(f"cost: {row['cost']:,.0f} {plan.options.prices.currency}")
    lines += ["", "black line: marked perimeter", "purple dashes: fence",
              "red arrows: signs, pointing the way", "they face (the safe side)",
              "", "method:", *_wrap(plan.method, 42)]
    info.text(0, 1, "\n".join(lines), va="top", fontsize=8, family="sans-serif")
    return fig


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)


def enclosure_png(plan: MarkingPlan, enclosure_id: str, path: Path,
                  hazards: gpd.GeoDataFrame | None = None) -> Path:
    """Save :func:`enclosure_figure` as a PNG."""
    enclosure_figure(plan, enclosure_id, hazards).savefig(path, dpi=150)
    return path


def marking_sheets_pdf(plan: MarkingPlan, path: Path, hazards: gpd.GeoDataFrame | None = None,
                       *, max_enclosures: int = 200) -> tuple[Path, int]:
    """One map page and sign-table page(s) per enclosure, in priority order, as one PDF.

    Returns the path and the number of enclosures written (at most ``max_enclosures``).
    """
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    from planner.field.exports import compass

    order = plan.enclosures.sort_values("priority")["enclosure_id"].tolist()[:max_enclosures]
    rows_per_page = 38
    with PdfPages(path) as pdf:
        for eid in order:
            pdf.savefig(enclosure_figure(plan, eid, hazards))
            s = plan.signs[plan.signs["enclosure_id"] == eid]
            table = pd.DataFrame({
                "sign": s["sign_id"], "lat": s["lat"].map(lambda v: f"{v:.6f}"),
                "lon": s["lon"].map(lambda v: f"{v:.6f}"),
                "facing": [f"{b:.0f}° {compass(b)}" for b in s["facing_deg"]],
                "where": np.where(s["corner"], "corner", "side"),
                "warns of": s["hazard_ids"].map(lambda v: v if len(v) < 40 else v[:37] + "…")})
            for start in range(0, max(len(table), 1), rows_per_page):
                chunk = table.iloc[start:start + rows_per_page]
                fig = Figure(figsize=(8.27, 11.69), dpi=100)
                ax = fig.add_axes((0.05, 0.05, 0.9, 0.88))
                ax.axis("off")
                ax.set_title(f"Enclosure {eid}: signs {start + 1}–{start + len(chunk)} of "
                             f"{len(table)}", fontsize=11)
                if len(chunk):
                    t = ax.table(cellText=chunk.astype(str).values.tolist(),
                                 colLabels=list(chunk.columns),
                                 loc="upper center", cellLoc="left")
                    t.auto_set_font_size(False)
                    t.set_fontsize(7)
                    t.scale(1, 1.3)
                pdf.savefig(fig)
    return path, len(order)
