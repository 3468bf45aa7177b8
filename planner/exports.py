"""Files for the field: a marking plan as GeoPackage, KML, GPX and CSV.

* GeoPackage (QGIS): layers ``enclosures``, ``signs``, ``fence``, ``posts``;
* KML (Google Earth, many GPS apps): folders *Signs* (icons turned to face the safe side),
  *Fence*, *Enclosures*;
* GPX (handheld GPS): a waypoint per sign named by its id, a track per fence line;
* CSV: one row per sign with WGS 84 lat/lon and the projected x/y with its EPSG code.

Names are the plan's ids (``E0003-S012`` is sign 12 of enclosure 3), so a team can find each
sign on the ground, on the sheet and on the GPS. All text is XML-escaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import geopandas as gpd
import numpy as np

from planner.areas import WGS84
from planner.marking import MarkingPlan

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
    return (f"faces {facing:.0f}° ({compass(facing)}), the safe side; warns of "
            f"{row.hazard_ids}; {'corner' if row.corner else 'side'} of {where}")


def write_gpkg(plan: MarkingPlan, path: Path) -> Path:
    """Write the four layers of ``plan`` into a GeoPackage (replaced if it exists)."""
    path.unlink(missing_ok=True)
    for name, frame in (("enclosures", plan.enclosures), ("signs", plan.signs),
                        ("fence", plan.fence), ("posts", plan.posts)):
        frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio")
    return path


def write_csv(plan: MarkingPlan, path: Path) -> Path:
    """Sign coordinates: lat/lon (WGS 84) and x/y in the plan's metric CRS with its EPSG."""
    df = plan.signs.drop(columns="geometry").copy()
    df.insert(df.columns.get_loc("facing_deg") + 1, "facing",
              [compass(b) for b in df["facing_deg"]])
    df.to_csv(path, index=False)
    return path


def _ll(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.to_crs(WGS84)


def _coords(xy: np.ndarray) -> str:
    return " ".join(f"{x:.7f},{y:.7f}" for x, y in xy[:, :2])


def write_kml(plan: MarkingPlan, path: Path, title: str = "Marking plan") -> Path:
    """Signs (turned to face the safe side), fence lines and enclosures as KML."""
    signs, fence, enc = _ll(plan.signs), _ll(plan.fence), _ll(plan.enclosures)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>',
           f"<name>{escape(title)}</name>",
           '<Style id="fence"><LineStyle><color>ff0000cc</color><width>3</width></LineStyle>'
           "</Style>",
           '<Style id="enclosure"><LineStyle><color>ff0000ff</color><width>2</width>'
           "</LineStyle><PolyStyle><color>400000ff</color></PolyStyle></Style>",
           "<Folder><name>Signs</name>"]
    for row in signs.itertuples():
        out.append(
            f"<Placemark><name>{escape(str(row.sign_id))}</name>"
            f"<description>{escape(_describe_sign(row))}</description>"
            f"<Style><IconStyle><heading>{float(row.facing_deg):.1f}</heading><Icon><href>"
            "http://maps.google.com/mapfiles/kml/shapes/arrow.png</href></Icon></IconStyle>"
            f"</Style><Point><coordinates>{row.geometry.x:.7f},{row.geometry.y:.7f}"
            "</coordinates></Point></Placemark>")
    out.append("</Folder><Folder><name>Fence</name>")
    for row in fence.itertuples():
        out.append(f"<Placemark><name>{escape(str(row.fence_id))}</name>"
                   f"<description>{escape(f'{row.length_m:,.0f} m of fence')}</description>"
                   "<styleUrl>#fence</styleUrl><LineString><coordinates>"
                   f"{_coords(np.asarray(row.geometry.coords))}</coordinates></LineString>"
                   "</Placemark>")
    out.append("</Folder><Folder><name>Enclosures</name>")
    for row in enc.itertuples():
        polys = getattr(row.geometry, "geoms", [row.geometry])
        parts = []
        for p in polys:
            rings = [f"<outerBoundaryIs><LinearRing><coordinates>"
                     f"{_coords(np.asarray(p.exterior.coords))}</coordinates></LinearRing>"
                     "</outerBoundaryIs>"]
            rings += [f"<innerBoundaryIs><LinearRing><coordinates>"
                      f"{_coords(np.asarray(r.coords))}</coordinates></LinearRing>"
                      "</innerBoundaryIs>" for r in p.interiors]
            parts.append("<Polygon>" + "".join(rings) + "</Polygon>")
        geom = parts[0] if len(parts) == 1 else "<MultiGeometry>" + "".join(parts) + (
            "</MultiGeometry>")
        desc = (f"priority {row.priority}; hazards {row.hazard_ids}; {row.signs} signs, "
                f"{row.fence_m:,.0f} m of fence, {row.posts} posts")
        out.append(f"<Placemark><name>{escape(str(row.enclosure_id))}</name>"
                   f"<description>{escape(desc)}</description><styleUrl>#enclosure</styleUrl>"
                   f"{geom}</Placemark>")
    out.append("</Folder></Document></kml>")
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def write_gpx(plan: MarkingPlan, path: Path, title: str = "Marking plan") -> Path:
    """A waypoint per sign and a track per fence line, for handheld GPS."""
    signs, fence = _ll(plan.signs), _ll(plan.fence)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<gpx version="1.1" creator="planner" xmlns="http://www.topografix.com/GPX/1/1">',
           f"<metadata><name>{escape(title)}</name></metadata>"]
    for row in signs.itertuples():
        out.append(f"<wpt lat={quoteattr(f'{row.geometry.y:.7f}')} "
                   f"lon={quoteattr(f'{row.geometry.x:.7f}')}>"
                   f"<name>{escape(str(row.sign_id))}</name>"
                   f"<desc>{escape(_describe_sign(row))}</desc><sym>Danger Area</sym></wpt>")
    for row in fence.itertuples():
        pts = "".join(f'<trkpt lat="{y:.7f}" lon="{x:.7f}"/>'
                      for x, y in np.asarray(row.geometry.coords)[:, :2])
        out.append(f"<trk><name>{escape(str(row.fence_id))}</name>"
                   f"<desc>{escape(f'fence, {row.length_m:,.0f} m')}</desc>"
                   f"<trkseg>{pts}</trkseg></trk>")
    out.append("</gpx>")
    path.write_text("\n".join(out), encoding="utf-8")
    return path
