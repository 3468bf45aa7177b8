"""Geometry checks and repairs, feature by feature, every problem recorded.

Missing geometry, coordinates outside the CRS's area of use (or swapped), the antimeridian,
points and lines where areas are expected, wild vertices, invalid rings (repaired with
``make_valid``), degenerate polygons, duplicate geometries, data far from the programme.
"""

from __future__ import annotations

import re
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from planner.areas import WGS84, equal_area_crs, lonlat_bounds
from planner.errors import (
    Problem,
)
from planner.ingest.options import IngestOptions

#: Features farther than this from the programme's other data are reported [km].
FAR_FROM_DATA_KM = 100.0



def _check_area_of_use(geoms: np.ndarray, crs: pyproj.CRS, labels: list[str],
                       problems: list[Problem]) -> np.ndarray:
    """Flag features outside the CRS's area of use; returns a mask of features that are in."""
    ok = np.ones(len(geoms), dtype=bool)
    raw = shapely.bounds(geoms)
    ll = lonlat_bounds(geoms, crs)
    aou = crs.area_of_use
    margin = 2.0  # degrees: UTM zones are routinely used a little outside their 6 deg band
    for i in range(len(geoms)):
        if np.isnan(raw[i]).any():
            continue
        if crs.is_geographic:
            lon0, lat0, lon1, lat1 = raw[i]
            if min(lat0, lat1) < -90 or max(lat0, lat1) > 90:
                swapped = -90 <= lon0 <= 90 and -90 <= lon1 <= 90
                problems.append(Problem(labels[i], (
                    f"latitude {lat1 if lat1 > 90 else lat0:.6g} is outside -90..90"
                    + (": latitude and longitude look swapped. Swap the columns, or check "
                       "the coordinate order of your export." if swapped else
                       f". These are not {crs.name} degrees: if they are metres, give the "
                       "right projected coordinate system (e.g. the UTM zone).")), "error",
                    "crs"))
                ok[i] = False
                continue
            if min(lon0, lon1) < -180 or max(lon0, lon1) > 360:
                problems.append(Problem(labels[i], f"longitude {lon0:.6g} is outside -180..180"
                                        " (check the coordinate order or the coordinate "
                                        "system)", "error", "crs"))
                ok[i] = False
            continue
        if not np.isfinite(ll[i]).all():
            problems.append(Problem(labels[i], f"coordinates ({raw[i][0]:.6g}, {raw[i][1]:.6g})"
                                    f" cannot be placed on Earth in {crs.name}. Check the "
                                    "coordinate system.", "error", "crs"))
            ok[i] = False
            continue
        if aou is not None:
            w, s, e, n = aou.bounds
            inside_lat = s - margin <= ll[i][1] and ll[i][3] <= n + margin
            # an area of use crossing the antimeridian (e < w) is not checked in longitude
            inside_lon = e < w or (w - margin <= ll[i][0] and ll[i][2] <= e + margin)
            if not (inside_lat and inside_lon):
                problems.append(Problem(labels[i], (
                    f"lies at lon {ll[i][0]:.4f}, lat {ll[i][1]:.4f}, outside the area where "
                    f"{crs.name} is used ({aou.name[:60]}). The CRS is probably wrong, or x/y "
                    "are swapped: give the right coordinate system."), "error", "crs"))
                ok[i] = False
    return ok


def _fix_antimeridian(geoms: np.ndarray, labels: list[str],
                      problems: list[Problem]) -> np.ndarray:
    """Shift the western part of features that wrap across 180 deg so they stay contiguous."""
    b = shapely.bounds(geoms)
    wraps = (b[:, 2] - b[:, 0]) > 180
    out = geoms.copy()
    for i in np.flatnonzero(wraps):
        out[i] = shapely.transform(
            geoms[i], lambda xy: np.column_stack([np.where(xy[:, 0] < 0, xy[:, 0] + 360,
                                                           xy[:, 0]), xy[:, 1]]))
        problems.append(Problem(labels[i], "crosses the antimeridian (180°): western longitudes "
                                "shifted by +360° so the polygon stays whole", "repaired"))
    return out


def _polygonal(g: Any) -> Any:
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    if g.geom_type == "GeometryCollection":
        polys = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
        if polys:
            return shapely.union_all(polys)
    return None


def _check_geometries(raw: gpd.GeoSeries, crs: pyproj.CRS, labels: list[str],
                      options: IngestOptions, problems: list[Problem]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Check and repair each geometry. Returns (geometries in ``crs``, ok mask)."""
    geoms = np.asarray(shapely.force_2d(raw.values), dtype=object)
    ok = np.ones(len(geoms), dtype=bool)
    present = np.array([g is not None and not shapely.is_empty(g) for g in geoms], dtype=bool)
    for i in np.flatnonzero(~present):
        problems.append(Problem(labels[i], "has no geometry (empty or missing)", "error"))
    ok &= present
    if crs.is_geographic and ok.any():
        idx = np.flatnonzero(ok)
        geoms[idx] = _fix_antimeridian(geoms[idx], [labels[i] for i in idx], problems)
    if ok.any():
        idx = np.flatnonzero(ok)
        ok[idx] &= _check_area_of_use(geoms[idx], crs, [labels[i] for i in idx], problems)
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return geoms, ok
    ea = equal_area_crs(gpd.GeoSeries(geoms[idx], crs=crs))
    to_ea = pyproj.Transformer.from_crs(crs, ea, always_xy=True)
    from_ea = pyproj.Transformer.from_crs(ea, crs, always_xy=True)
    metric = shapely.transform(geoms[idx], lambda xy: np.column_stack(
        to_ea.transform(xy[:, 0], xy[:, 1])))
    _check_kinds(metric, idx, labels, options, ok, problems)
    _check_edges(metric, idx, labels, options, ok, problems)
    to_ll = pyproj.Transformer.from_crs(ea, WGS84, always_xy=True)
    _repair(metric, idx, labels, ok, problems, to_ll)
    keep = [k for k, i in enumerate(idx) if ok[i]]
    if keep:
        back = shapely.transform(metric[keep], lambda xy: np.column_stack(
            from_ea.transform(xy[:, 0], xy[:, 1])))
        geoms[idx[keep]] = back
    return geoms, ok


def _check_kinds(metric: np.ndarray, idx: np.ndarray, labels: list[str],
                 options: IngestOptions, ok: np.ndarray, problems: list[Problem]) -> None:
    """Points become circles when a buffer is given; points and lines are refused otherwise."""
    for k, i in enumerate(idx):
        g = metric[k]
        kind = g.geom_type
        if kind in ("Point", "MultiPoint"):
            if options.buffer_m:
                metric[k] = shapely.buffer(g, options.buffer_m, quad_segs=16)
                continue
            problems.append(Problem(labels[i], "is a point, but hazards and releases are areas."
                                    " Give a buffer radius in metres to turn evidence points "
                                    "into circles, or import polygons.", "error", "buffer_m"))
            ok[i] = False
        elif kind in ("LineString", "MultiLineString", "LinearRing"):
            problems.append(Problem(labels[i], f"is a line ({kind}), but an area is expected. "
                                    "If it traces a boundary, turn it into a polygon first "
                                    "(QGIS: Lines to polygons).", "error"))
            ok[i] = False


def _check_edges(metric: np.ndarray, idx: np.ndarray, labels: list[str],
                 options: IngestOptions, ok: np.ndarray, problems: list[Problem]) -> None:
    """Wild vertices: consecutive vertices too far apart (a GPS jump or a typo)."""
    for k, i in enumerate(idx):
        if not ok[i]:
            continue
        rings: Any = shapely.get_rings(shapely.get_parts(metric[k])) if metric[k].geom_type in (
            "Polygon", "MultiPolygon") else []
        for ring in rings:
            xy = shapely.get_coordinates(ring)
            if len(xy) < 2:
                continue
            seg = np.hypot(*np.diff(xy, axis=0).T)
            j = int(np.argmax(seg))
            if seg[j] > options.max_edge_m:
                problems.append(Problem(labels[i], (
                    f"vertices {j + 1} and {j + 2} are {seg[j] / 1000:.1f} km apart (limit "
                    f"{options.max_edge_m / 1000:g} km): a GPS jump or a typo in a coordinate? "
                    "Fix the vertex, or raise the longest-edge limit."), "error", "max_edge_m"))
                ok[i] = False
                break


_WHERE = re.compile(r"\[\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)\s*\]")


def _reason_in_lonlat(reason: str, to_ll: pyproj.Transformer) -> str:
    """GEOS's reason with its location in WGS 84 degrees, which a GIS can find.

    Examples
    --------
    >>> t = pyproj.Transformer.from_crs(32648, 4326, always_xy=True)
    >>> _reason_in_lonlat("Self-intersection[500000 2150000]", t)
    'Self-intersection at lon 105.000000, lat 19.444395'
    """
    m = _WHERE.search(reason)
    if m is None:
        return reason
    lon, lat = to_ll.transform(float(m.group(1)), float(m.group(2)))
    return f"{reason[:m.start()]} at lon {lon:.6f}, lat {lat:.6f}{reason[m.end():]}"


def _repair(metric: np.ndarray, idx: np.ndarray, labels: list[str], ok: np.ndarray,
            problems: list[Problem], to_ll: pyproj.Transformer) -> None:
    """Invalid geometries repaired with make_valid (and said so); polygons kept; slivers out."""
    for k, i in enumerate(idx):
        if not ok[i]:
            continue
        g = metric[k]
        if not shapely.is_valid(g):
            reason = _reason_in_lonlat(shapely.is_valid_reason(g), to_ll)
            fixed = _polygonal(shapely.make_valid(g))
            if fixed is None or shapely.is_empty(fixed):
                problems.append(Problem(labels[i], f"invalid geometry ({reason}) that leaves no "
                                        "area when repaired", "error"))
                ok[i] = False
                continue
            problems.append(Problem(labels[i], f"invalid geometry ({reason}), repaired with "
                                    "make_valid", "repaired"))
            metric[k] = fixed
        else:
            poly = _polygonal(g)
            _note_dropped_parts(g, poly, labels[i], problems)
            if poly is None:
                problems.append(Problem(labels[i], f"is a {g.geom_type} with no polygon in it",
                                        "error"))
                ok[i] = False
                continue
            metric[k] = poly
        area = shapely.area(metric[k])
        if area < 0.01:
            problems.append(Problem(labels[i], f"is degenerate: its area is {area:.3g} m² "
                                    "(collapsed or repeated vertices)", "error"))
            ok[i] = False


def _note_dropped_parts(g: Any, poly: Any, label: str, problems: list[Problem]) -> None:
    """Say which point and line parts of a GeometryCollection were dropped."""
    if g.geom_type != "GeometryCollection" or poly is None:
        return
    other = [p.geom_type for p in shapely.get_parts(g)
             if p.geom_type not in ("Polygon", "MultiPolygon")]
    if other:
        problems.append(Problem(label, (
            f"a GeometryCollection: its {len(other)} non-polygon part(s) "
            f"({', '.join(sorted(set(other)))}) were dropped, its polygons kept"),
            "repaired"))


def _duplicate_geometries(geoms: np.ndarray, ok: np.ndarray, labels: list[str],
                          problems: list[Problem]) -> None:
    idx = np.flatnonzero(ok)
    if len(idx) < 2:
        return
    wkb = shapely.to_wkb(shapely.normalize(geoms[idx]), output_dimension=2)
    first: dict[bytes, int] = {}
    for k, w in zip(idx.tolist(), wkb, strict=True):
        if w in first:
            problems.append(Problem(labels[k], f"has the same geometry as {labels[first[w]]}; "
                                    "both are kept and the land is counted once", "warning"))
        else:
            first[w] = k


def _far_from_data(geoms: np.ndarray, ok: np.ndarray, crs: pyproj.CRS, labels: list[str],
                   extent: tuple[float, float, float, float] | None,
                   problems: list[Problem]) -> None:
    """Warn when features lie far from the programme's data: the wrong UTM zone, say."""
    idx = np.flatnonzero(ok)
    if extent is None or len(idx) == 0:
        return
    ll = lonlat_bounds(geoms[idx], crs)
    lon = (ll[:, 0] + ll[:, 2]) / 2
    lat = (ll[:, 1] + ll[:, 3]) / 2
    w, s, e, n = extent
    if e < w:   # an extent across the antimeridian: not checked
        return
    near_lon = np.clip(lon, w, e)
    near_lat = np.clip(lat, s, n)
    _, _, dist_m = pyproj.Geod(ellps="WGS84").inv(lon, lat, near_lon, near_lat)
    far = np.flatnonzero(np.asarray(dist_m) > FAR_FROM_DATA_KM * 1000)
    if len(far) == 0:
        return
    km = np.asarray(dist_m)[far] / 1000
    examples = ", ".join(labels[idx[k]] for k in far[:3])
    problems.append(Problem("file", (
        f"{len(far)} of {len(idx)} features lie {km.min():,.0f} to {km.max():,.0f} km from the "
        f"programme's other data ({examples}{', …' if len(far) > 3 else ''}). Is the "
        f"coordinate system right? The file is read as {crs.name}; a wrong UTM zone moves "
        "data by hundreds of kilometres."), "warning", "crs"))
