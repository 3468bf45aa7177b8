"""Files for the field: a marking plan as GeoPackage, KML, GPX and CSV.

* GeoPackage (QGIS): layers ``enclosures``, ``signs``, ``fence``, ``posts``;
* KML (Google Earth, many GPS apps): folders *Signs* (arrow icons turned to face the safe
  side: the ``IconStyle`` heading), *Fence*, *Enclosures*; placemarks written by GDAL's KML
  driver, the document and styles around them built as an element tree (see
  :func:`write_kml` for why not GDAL alone);
* GPX (handheld GPS), written by GDAL's GPX driver: a waypoint per sign named by its id, a
  track per fence line;
* CSV: one row per sign with WGS 84 lat/lon and the projected x/y with its EPSG code, written
  by :func:`planner.io.cells.write_csv` (text cells that a spreadsheet would take for a formula
  get a leading ``'``).

Names are the plan's ids (``E0003-S012`` is sign 12 of enclosure 3), so a team can find each
sign on the ground, on the sheet and on the GPS. No XML is written as strings: GDAL or
``xml.etree`` escapes every value; text goes through :func:`planner.io.cells.xml_text` first,
because XML 1.0 cannot carry most control characters at all (they become U+FFFD, a carriage
return a line feed).
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import shapely

from planner.areas import WGS84
from planner.field.marking import MarkingPlan
from planner.io import cells

ARROW_ICON = "http://maps.google.com/mapfiles/kml/shapes/arrow.png"
KML_NS = "http://www.opengis.net/kml/2.2"
GPX_NS = "http://www.topografix.com/GPX/1/1"

_POINTS = ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W",
           "WNW", "NW", "NNW")


def compass(bearing_deg: float) -> str:
    """The 16-point compass name of a bearing.

    Examples
    --------
    >>> compass(0), compass(134), compass(350)
    ('N', 'SE', 'N')
    """
    return _POINTS[int(((bearing_deg % 360) + 11.25) // 22.5) % 16]


def _describe_sign(row: Any) -> str:
    facing = float(row.facing_deg)
    where = "a hole" if row.ring == "hole" else "the perimeter"
    return cells.xml_text(
        f"faces {facing:.0f}° ({compass(facing)}), the safe side; warns of {row.hazard_ids}; "
        f"{'corner' if row.corner else 'side'} of {where}")


def write_gpkg(plan: MarkingPlan, path: Path) -> Path:
    """Write the four layers of ``plan`` into a GeoPackage (replaced if it exists)."""
    path.unlink(missing_ok=True)
    for name, frame in (("enclosures", plan.enclosures), ("signs", plan.signs),
                        ("fence", plan.fence), ("posts", plan.posts)):
        frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio")
    return path


def write_csv(plan: MarkingPlan, path: Path) -> Path:
    """Sign coordinates: lat/lon (WGS 84) and x/y in the plan's metric CRS with its EPSG.

    Written by :func:`planner.io.cells.write_csv`: a hazard id such as ``=HYPERLINK(...)`` is
    written as ``'=HYPERLINK(...)``; numbers stay numbers.
    """
    df = plan.signs.drop(columns="geometry").copy()
    df.insert(df.columns.get_loc("facing_deg") + 1, "facing",
              [compass(b) for b in df["facing_deg"]])
    return cells.write_csv(df, path)


def _ll(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.to_crs(WGS84)


def _features(names: Any, descriptions: list[str], geometry: Any) -> gpd.GeoDataFrame:
    """A WGS 84 frame of ``name`` and ``description`` (XML-safe text)."""
    return gpd.GeoDataFrame({"name": [cells.xml_text(n) for n in names],
                             "description": descriptions}, geometry=list(geometry), crs=WGS84)


def _kml(tag: str) -> str:
    return f"{{{KML_NS}}}{tag}"


def _styled(placemark: ET.Element, style: ET.Element) -> ET.Element:
    """``placemark`` with ``style`` (a ``Style`` or ``styleUrl``) where KML puts it."""
    children = [c.tag for c in placemark]
    at = max((i + 1 for i, t in enumerate(children)
              if t in (_kml("name"), _kml("description"))), default=0)
    placemark.insert(at, style)
    return placemark


def _arrow(facing_deg: float) -> ET.Element:
    """An inline style: the arrow icon turned clockwise from north to ``facing_deg``."""
    style = ET.Element(_kml("Style"))
    icon_style = ET.SubElement(style, _kml("IconStyle"))
    ET.SubElement(icon_style, _kml("heading")).text = f"{float(facing_deg):.1f}"
    ET.SubElement(ET.SubElement(icon_style, _kml("Icon")), _kml("href")).text = ARROW_ICON
    return style


def _line_style(style_id: str, colour: str, width: int, fill: str | None = None) -> ET.Element:
    style = ET.Element(_kml("Style"), id=style_id)
    line = ET.SubElement(style, _kml("LineStyle"))
    ET.SubElement(line, _kml("color")).text = colour
    ET.SubElement(line, _kml("width")).text = str(width)
    if fill is not None:
        ET.SubElement(ET.SubElement(style, _kml("PolyStyle")), _kml("color")).text = fill
    return style


def _style_url(style_id: str) -> ET.Element:
    url = ET.Element(_kml("styleUrl"))
    url.text = f"#{style_id}"
    return url


def write_kml(plan: MarkingPlan, path: Path, title: str = "Marking plan") -> Path:
    """Signs (turned to face the safe side), fence lines and enclosures as KML.

    GDAL's KML driver writes each folder's placemarks (names, descriptions, geometries, every
    value escaped by GDAL). The document around them — the title, the shared fence and
    enclosure styles and each sign's arrow icon with its ``heading`` (the sign's facing,
    degrees clockwise from true north) — is built as an element tree (``xml.etree``), never
    as strings. Why not GDAL alone: the KML driver writes no per-feature style (no heading) and
    cannot add a layer to a file it wrote; LIBKML can write the heading but puts text holding
    ``<`` or ``&`` in a CDATA section without splitting ``]]>``, so a hazard id containing
    ``]]>`` made an unreadable file (and a silently dropped folder).
    """
    signs, fence, enc = _ll(plan.signs), _ll(plan.fence), _ll(plan.enclosures)
    layers = [
        ("Signs", _features(signs["sign_id"], [_describe_sign(r) for r in signs.itertuples()],
                            signs.geometry),
         [_arrow(f) for f in signs["facing_deg"]]),
        ("Fence", _features(fence["fence_id"], [f"{m:,.0f} m of fence" for m in fence["length_m"]],
                            fence.geometry),
         [_style_url("fence") for _ in range(len(fence))]),
        ("Enclosures", _features(
            enc["enclosure_id"],
            [cells.xml_text(f"priority {r.priority}; hazards {r.hazard_ids}; {r.signs} signs, "
                            f"{r.fence_m:,.0f} m of fence, {r.posts} posts")
             for r in enc.itertuples()], enc.geometry),
         [_style_url("enclosure") for _ in range(len(enc))])]
    ET.register_namespace("", KML_NS)
    root = ET.Element(_kml("kml"))
    document = ET.SubElement(root, _kml("Document"))
    ET.SubElement(document, _kml("name")).text = cells.xml_text(title)
    document.append(_line_style("fence", "ff0000cc", 3))
    document.append(_line_style("enclosure", "ff0000ff", 2, fill="400000ff"))
    with tempfile.TemporaryDirectory(prefix="planner-kml-") as tmp:
        for name, frame, styles in layers:
            folder = ET.SubElement(document, _kml("Folder"))
            ET.SubElement(folder, _kml("name")).text = name
            if not len(frame):
                continue
            part = Path(tmp) / f"{name}.kml"
            pyogrio.write_dataframe(frame, part, layer=name, driver="KML", dataset_options={
                "NameField": "name", "DescriptionField": "description"})
            placemarks = list(ET.parse(part).getroot().iter(_kml("Placemark")))
            if len(placemarks) != len(styles):
                raise RuntimeError(f"GDAL wrote {len(placemarks)} {name} placemarks of "
                                   f"{len(styles)}")
            for placemark, style in zip(placemarks, styles, strict=True):
                folder.append(_styled(placemark, style))
    ET.indent(root, space=" ")
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
    return path


def write_gpx(plan: MarkingPlan, path: Path, title: str = "Marking plan") -> Path:
    """A waypoint per sign and a track per fence line, for handheld GPS (GDAL GPX driver).

    GDAL's GPX driver writes one layer per file (it cannot reopen a GPX to add one), so the
    waypoints and the tracks are written by GDAL into two files and the track elements are
    moved, as parsed XML elements, into the waypoint file; the bounds are widened to both.
    """
    signs, fence = _ll(plan.signs), _ll(plan.fence)
    waypoints = gpd.GeoDataFrame(
        {"name": [cells.xml_text(v) for v in signs["sign_id"]],
         "desc": [_describe_sign(r) for r in signs.itertuples()],
         "sym": ["Danger Area"] * len(signs)}, geometry=list(signs.geometry), crs=WGS84)
    tracks = gpd.GeoDataFrame(
        {"name": [cells.xml_text(v) for v in fence["fence_id"]],
         "desc": [f"fence, {m:,.0f} m" for m in fence["length_m"]]},
        geometry=[shapely.MultiLineString([g]) if g.geom_type == "LineString" else g
                  for g in fence.geometry], crs=WGS84)
    options = {"METADATA_NAME": cells.xml_text(title), "CREATOR": "planner"}
    with tempfile.TemporaryDirectory(prefix="planner-gpx-") as tmp:
        parts = []
        for name, frame in (("waypoints", waypoints), ("tracks", tracks)):
            part = Path(tmp) / f"{name}.gpx"
            if len(frame):
                pyogrio.write_dataframe(frame, part, layer=name, driver="GPX",
                                        dataset_options=options)
                parts.append(part)
        if not parts:   # an empty plan: GDAL writes no file for no features
            pyogrio.write_dataframe(waypoints, Path(tmp) / "empty.gpx", layer="waypoints",
                                    driver="GPX", dataset_options=options)
            parts.append(Path(tmp) / "empty.gpx")
        _merge_gpx(parts, path)
    return path


def _merge_gpx(parts: list[Path], path: Path) -> None:
    """Write the first GPX with the ``wpt``/``trk`` elements of the others appended."""
    ET.register_namespace("", GPX_NS)
    ET.register_namespace("xsi", "http://www.w3.org/2001/XMLSchema-instance")
    tree = ET.parse(parts[0])
    root = tree.getroot()
    bounds = root.find(f"{{{GPX_NS}}}metadata/{{{GPX_NS}}}bounds")
    for part in parts[1:]:
        other = ET.parse(part).getroot()
        for element in other:
            if element.tag in (f"{{{GPX_NS}}}wpt", f"{{{GPX_NS}}}trk"):
                root.append(element)
        more = other.find(f"{{{GPX_NS}}}metadata/{{{GPX_NS}}}bounds")
        if bounds is not None and more is not None:
            for key, pick in (("minlat", min), ("minlon", min), ("maxlat", max),
                              ("maxlon", max)):
                bounds.set(key, repr(pick(float(bounds.get(key, "nan")),
                                          float(more.get(key, "nan")))))
    tree.write(path, encoding="UTF-8", xml_declaration=True)
