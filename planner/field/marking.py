"""Perimeter marking and fencing plans (Article 4(2)(c)): where each sign and post goes.

A plan is computed in a metric CRS (the UTM zone of the selection) and returned in the CRS the
hazards came in, with every sign also in WGS 84 for handheld GPS:

1. **Enclosures**: hazards closer than ``merge_distance_m`` to each other are marked as one
   enclosure (the gaps between them closed), so no sign stands inside another hazard. Hazards
   whose perimeters or fences would touch are merged too, so no enclosure ever crosses into a
   hazard outside it. Holes (islands of safe land) are kept.
2. **Perimeter** at ``margin_m`` outside the hazards (default 0 m) and **fence** at
   ``fence_margin_m`` (default 10 m), with round corners (``join="round"``, the fence a
   surveyor walks) or mitred ones.
3. **Signs** on every ring of the perimeter, outer and hole edges alike: one at each vertex
   that turns by more than ``corner_angle_deg`` (default 45°), and between them at equal
   intervals of at most ``sign_spacing_m`` (default 50 m) measured along the ring, so each
   sign is visible from the next. Each sign faces the safe side: its bearing is the outward
   normal of the perimeter (the bisector at a corner), as a true (geodesic) bearing from north.
4. **Posts** along the fence at most ``post_spacing_m`` apart, and at its sharp corners.
5. **Quantities** per enclosure and in total: fence metres (geodesic length), posts, signs,
   costs from unit prices, labour days from rates; and a **priority** order by distance to
   settlements or roads when given, else by area.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from planner.areas import WGS84, equal_area_crs
from planner.errors import InputError
from planner.store import Store

_GEOD = pyproj.Geod(ellps="WGS84")
_QUAD_SEGS = 16


@dataclass(frozen=True)
class Prices:
    """Unit prices; costs are reported only when at least one is given."""

    sign: float = 0.0
    post: float = 0.0
    fence_m: float = 0.0
    currency: str = "USD"

    @property
    def given(self) -> bool:
        """Whether any price was given."""
        return any(v > 0 for v in (self.sign, self.post, self.fence_m))


@dataclass(frozen=True)
class Labour:
    """Work rates of one team: fence metres and signs per team-day."""

    fence_m_per_day: float = 150.0
    signs_per_day: float = 40.0


@dataclass(frozen=True)
class MarkingOptions:
    """Distances [m], angles [degrees], prices and rates of a plan."""

    margin_m: float = 0.0
    fence_margin_m: float = 10.0
    merge_distance_m: float = 20.0
    sign_spacing_m: float = 50.0
    corner_angle_deg: float = 45.0
    post_spacing_m: float = 2.5
    join: Literal["round", "mitre"] = "round"
    prices: Prices = field(default_factory=Prices)
    labour: Labour = field(default_factory=Labour)

    def __post_init__(self) -> None:
        problems = []
        for name in ("margin_m", "fence_margin_m", "merge_distance_m"):
            if not getattr(self, name) >= 0:
                problems.append(f"{name} must be 0 or more")
        for name in ("sign_spacing_m", "post_spacing_m"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be more than 0")
        if not 0 < self.corner_angle_deg < 180:
            problems.append("corner_angle_deg must be between 0 and 180")
        if self.join not in ("round", "mitre"):
            problems.append(f"join {self.join!r}: use 'round' or 'mitre'")
        if self.labour.fence_m_per_day <= 0 or self.labour.signs_per_day <= 0:
            problems.append("labour rates must be more than 0")
        if problems:
            raise InputError("marking options: " + "; ".join(problems))

    @property
    def group_distance_m(self) -> float:
        """Hazards closer than this share an enclosure."""
        return max(self.merge_distance_m, 2 * max(self.margin_m, self.fence_margin_m))


@dataclass(frozen=True)
class MarkingPlan:
    """A marking and fencing plan: four layers and the totals.

    ``enclosures`` (polygons of the marked perimeter, with quantities and priority),
    ``signs`` (points: ``sign_id``, ``facing_deg``, ``hazard_ids``, ``lat``/``lon`` and
    ``x_m``/``y_m`` in ``metric_crs``), ``fence`` (lines) and ``posts`` (points), all in
    ``crs``.
    """

    enclosures: gpd.GeoDataFrame
    signs: gpd.GeoDataFrame
    fence: gpd.GeoDataFrame
    posts: gpd.GeoDataFrame
    options: MarkingOptions
    metric_crs: pyproj.CRS
    totals: dict[str, Any]
    method: str

    @property
    def crs(self) -> pyproj.CRS:
        """CRS of the four layers."""
        return pyproj.CRS.from_user_input(self.enclosures.crs)


# -- selecting hazards -----------------------------------------------------------------------
def select_hazards(hazards: gpd.GeoDataFrame, *, ids: Sequence[str] = (),
                   regions: Sequence[str] = (), statuses: Sequence[str] = ()
                   ) -> gpd.GeoDataFrame:
    """Hazards with any of the ``ids``, in any of the ``regions``, of any of the ``statuses``.

    Empty criteria select everything; given criteria must all hold.
    """
    keep = np.ones(len(hazards), dtype=bool)
    if ids:
        known = set(hazards["hazard_id"].astype(str))
        missing = sorted(set(ids) - known)
        if missing:
            raise InputError("no hazard with id " + ", ".join(missing[:10])
                             + ("…" if len(missing) > 10 else "")
                             + "; list them with `planner status --by-region` or in QGIS")
        keep &= hazards["hazard_id"].astype(str).isin(ids).to_numpy()
    if regions:
        keep &= hazards["region"].astype(str).isin(regions).to_numpy()
    if statuses:
        keep &= hazards["status"].astype(str).str.upper().isin(
            [s.upper() for s in statuses]).to_numpy()
    return hazards[keep]


def remaining_hazards(hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame, at: dt.date,
                      *, min_part_m2: float = 10.0) -> gpd.GeoDataFrame:
    """Hazards recorded by ``at`` minus the land released by ``at``; fully released ones drop.

    The geometry is what is still contaminated: that is what gets marked. Parts smaller than
    ``min_part_m2`` (slivers left where release and hazard outlines almost coincide) are
    dropped, so nobody is sent to fence a 2 m² crumb.
    """
    t = pd.Timestamp(at)
    h = hazards[pd.to_datetime(hazards["recorded_on"]) <= t]
    r = releases[pd.to_datetime(releases["released_on"]) <= t]
    if r.crs is not None and h.crs is not None and not r.crs.equals(h.crs):
        r = r.to_crs(h.crs)
    geoms = np.asarray(h.geometry.values).copy()
    if len(r) and len(h):
        rg = np.asarray(r.geometry.values)
        hi, ri = shapely.STRtree(rg).query(geoms, predicate="intersects")
        for i in np.unique(hi):
            geoms[i] = shapely.difference(geoms[i], shapely.union_all(rg[ri[hi == i]]))
    out = h.copy()
    if not len(out):
        return out
    ea = equal_area_crs(out)
    to_ea = pyproj.Transformer.from_crs(out.crs, ea, always_xy=True)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    part_area = shapely.area(shapely.transform(parts, lambda xy: np.column_stack(
        to_ea.transform(xy[:, 0], xy[:, 1]))))
    big = part_area >= min_part_m2
    kept = np.full(len(geoms), None, dtype=object)
    for i in np.unique(owner[big]):
        kept[i] = shapely.union_all(parts[big & (owner == i)])
    out.geometry = gpd.GeoSeries(kept, index=h.index, crs=h.crs)
    return out[~out.geometry.isna()]


# -- geometry helpers ------------------------------------------------------------------------
def _right_normals(coords: np.ndarray) -> np.ndarray:
    """Unit right-hand normals of the edges of a closed ring (``coords`` without repeat)."""
    edges = np.roll(coords, -1, axis=0) - coords
    length = np.hypot(edges[:, 0], edges[:, 1])
    return np.column_stack([edges[:, 1], -edges[:, 0]]) / length[:, None]


def stations(ring: shapely.LinearRing, spacing_m: float, corner_angle_deg: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points along a ring: at sharp corners, and between them at most ``spacing_m`` apart.

    The ring must run with the marked area on its left (a counter-clockwise exterior or a
    clockwise hole, :func:`shapely.orient_polygons`). Returns the points (n, 2), the outward
    unit normals (n, 2) pointing to the right of the ring (the safe side), and whether each
    point is a corner.

    Examples
    --------
    >>> ring = shapely.box(0, 0, 100, 100).exterior   # counter-clockwise
    >>> pts, normals, corner = stations(ring, 50, 45)
    >>> len(pts), int(corner.sum())
    (8, 4)
    """
    coords = np.asarray(ring.coords)[:-1, :2]
    keep = np.r_[True, np.any(np.diff(coords, axis=0) != 0, axis=1)]
    coords = coords[keep]
    if len(coords) > 1 and np.all(coords[0] == coords[-1]):
        coords = coords[:-1]
    n = len(coords)
    if n < 3:
        return np.empty((0, 2)), np.empty((0, 2)), np.empty(0, dtype=bool)
    normals = _right_normals(coords)
    edges = np.roll(coords, -1, axis=0) - coords
    seg = np.hypot(edges[:, 0], edges[:, 1])
    at_vertex = np.r_[0.0, np.cumsum(seg)[:-1]]
    total = float(seg.sum())
    prev = np.roll(edges, 1, axis=0)
    turn = np.degrees(np.abs(np.arctan2(prev[:, 0] * edges[:, 1] - prev[:, 1] * edges[:, 0],
                                        (prev * edges).sum(axis=1))))
    corners = np.flatnonzero(turn > corner_angle_deg)
    if len(corners) == 0:
        k = max(3, math.ceil(total / spacing_m - 1e-9))
        s = np.arange(k) * (total / k)
    else:
        starts = at_vertex[corners]
        gaps = np.diff(np.r_[starts, starts[0] + total])
        parts = np.maximum(1, np.ceil(gaps / spacing_m - 1e-9)).astype(int)
        s = np.concatenate([a + np.arange(m) * (g / m)
                            for a, g, m in zip(starts, gaps, parts, strict=True)]) % total
    # which vertex or edge each station is on
    edge = np.clip(np.searchsorted(at_vertex, s, side="right") - 1, 0, n - 1)
    on_vertex = np.isclose(s, at_vertex[edge], atol=1e-6)
    pts = coords[edge] + (edges[edge] / seg[edge, None]) * (s - at_vertex[edge])[:, None]
    out_normals = normals[edge].copy()
    v = edge[on_vertex]
    bis = normals[v] + normals[(v - 1) % n]
    norm = np.hypot(bis[:, 0], bis[:, 1])
    ok = norm > 1e-9
    bis[ok] /= norm[ok, None]
    bis[~ok] = normals[v[~ok]]
    out_normals[on_vertex] = bis
    is_corner = np.zeros(len(s), dtype=bool)
    is_corner[on_vertex] = np.isin(edge[on_vertex], corners)
    return pts, out_normals, is_corner


def _polygons(geom: Any) -> list[shapely.Polygon]:
    """The polygons in any geometry (collections flattened, lines and points dropped)."""
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, shapely.Polygon):
        return [geom]
    if hasattr(geom, "geoms"):
        return [p for part in geom.geoms for p in _polygons(part)]
    return []


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Valid polygonal geometries (what make_valid turns into lines is dropped)."""
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(shapely.make_valid(geoms)):
        polys = _polygons(g)
        out[i] = polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
    return out


def _rings(geom: Any) -> list[tuple[str, shapely.LinearRing]]:
    """The rings of an oriented (multi)polygon, labelled outer or hole."""
    out: list[tuple[str, shapely.LinearRing]] = []
    for poly in _polygons(geom):
        out.append(("outer", poly.exterior))
        out.extend(("hole", r) for r in poly.interiors)
    return out


def _bearings(points: np.ndarray, normals: np.ndarray, to_ll: pyproj.Transformer
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True bearing [deg from north] of each normal, and the points' lon, lat."""
    if len(points) == 0:
        return np.empty(0), np.empty(0), np.empty(0)
    lon1, lat1 = to_ll.transform(points[:, 0], points[:, 1])
    ahead = points + normals
    lon2, lat2 = to_ll.transform(ahead[:, 0], ahead[:, 1])
    az, _, _ = _GEOD.inv(lon1, lat1, lon2, lat2)
    return np.mod(np.asarray(az), 360.0), np.asarray(lon1), np.asarray(lat1)


def _geodesic_lengths(geoms: np.ndarray, crs: pyproj.CRS) -> np.ndarray:
    """Geodesic length on WGS 84 of each (multi)line [m], vectorised over all segments."""
    geoms = np.asarray(geoms, dtype=object)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    xy, part = shapely.get_coordinates(parts, return_index=True)
    if len(xy) < 2:
        return np.zeros(len(geoms))
    lon, lat = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True).transform(
        xy[:, 0], xy[:, 1])
    same = part[1:] == part[:-1]   # segments within one part only
    _, _, dist = _GEOD.inv(lon[:-1][same], lat[:-1][same], lon[1:][same], lat[1:][same])
    return np.bincount(owner[part[1:][same]], weights=dist, minlength=len(geoms))


# -- the plan --------------------------------------------------------------------------------
def marking_plan(hazards: gpd.GeoDataFrame, options: MarkingOptions | None = None, *,
                 settlements: gpd.GeoDataFrame | None = None,
                 roads: gpd.GeoDataFrame | None = None) -> MarkingPlan:
    """Enclosures, signs, fence and posts for ``hazards``.

    Parameters
    ----------
    hazards : GeoDataFrame
        Polygons with ``hazard_id`` (and optionally ``region``, ``status``); any CRS.
    options : MarkingOptions, optional
        Distances, angles, prices and rates.
    settlements, roads : GeoDataFrame, optional
        Points / lines; enclosures nearest to them come first in the priority order.

    Returns
    -------
    MarkingPlan

    Examples
    --------
    A 100 m square with signs every 50 m gets a sign at each corner and mid-side:

    >>> from shapely import box
    >>> h = gpd.GeoDataFrame({"hazard_id": ["H1"]}, geometry=[box(500000, 2000000,
    ...     500100, 2000100)], crs=32648)
    >>> plan = marking_plan(h)
    >>> len(plan.signs), sorted(plan.signs["facing_deg"].round().astype(int).tolist())[:3]
    (8, [0, 45, 90])
    """
    options = options or MarkingOptions()
    _check_hazards(hazards)
    out_crs = pyproj.CRS.from_user_input(hazards.crs)
    metric = hazards.estimate_utm_crs()
    to_ll = pyproj.Transformer.from_crs(metric, WGS84, always_xy=True)
    hm = hazards.to_crs(metric)
    geoms = shapely.make_valid(np.asarray(hm.geometry.values))
    ids = hm["hazard_id"].astype(str).to_numpy()

    # 1. enclosures: connected components of hazards within the grouping distance
    groups = _enclosures(geoms, options)

    # 2. signs and posts, and the hazards each sign warns of
    sign_rows = _place(groups.marking, options.sign_spacing_m, options.corner_angle_deg, to_ll)
    post_rows = _place(groups.fence, options.post_spacing_m, options.corner_angle_deg, to_ll)
    enc_ids = np.array([f"E{g + 1:04d}" for g in range(groups.count)], dtype=object)
    warns = _warned_hazards(sign_rows, groups, geoms, ids, options)

    # 3. quantities, and the four layers
    enc, basis = _quantities(groups, ids, enc_ids, (sign_rows, post_rows), metric, options,
                             settlements, roads)
    enclosures = gpd.GeoDataFrame(enc, geometry=list(groups.marking), crs=metric)
    enclosures = enclosures.sort_values("priority").reset_index(drop=True)
    signs = _points_frame(sign_rows, enc_ids, metric, "S")
    signs["facing_deg"] = np.round(sign_rows["bearing"], 1)
    signs["hazard_ids"] = [",".join(sorted(set(w))) for w in warns]
    posts = _points_frame(post_rows, enc_ids, metric, "P")
    fence_gdf = _fence_frame(groups.fence, enc_ids, metric)
    totals = _totals(enc, groups.count, len(geoms), (len(signs), len(posts)), options.prices,
                     basis[0])
    return MarkingPlan(enclosures.to_crs(out_crs), signs.to_crs(out_crs),
                       fence_gdf.to_crs(out_crs), posts.to_crs(out_crs), options, metric,
                       totals, _method(metric, options))


def _check_hazards(hazards: gpd.GeoDataFrame) -> None:
    """Raise :class:`InputError` unless the hazards have a CRS and at least one row."""
    if hazards.crs is None:
        raise InputError("the hazards have no CRS; set one before planning marking")
    if len(hazards) == 0:
        raise InputError("no hazards selected: nothing to mark. Check the selection (ids, "
                         "region, status, --at).")


@dataclass(frozen=True)
class _Enclosures:
    """Hazards grouped into enclosures, and each enclosure's outlines, in the metric CRS."""

    count: int                 # number of enclosures
    label: np.ndarray          # enclosure of each hazard
    members: list[np.ndarray]  # hazards (indices) of each enclosure
    base: np.ndarray           # each enclosure's hazards, the gaps between them closed
    marking: np.ndarray        # perimeter polygons (oriented)
    fence: np.ndarray          # fence polygons (oriented)
    tree: shapely.STRtree      # of the hazards


def _enclosures(geoms: np.ndarray, options: MarkingOptions) -> _Enclosures:
    """Connected components of hazards within the grouping distance, with perimeter and fence."""
    d = options.group_distance_m
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="dwithin", distance=d)
    n = len(geoms)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    n_groups, label = connected_components(graph, directed=False)
    join = options.join
    mitre: dict[str, Any] = {"join_style": "mitre", "mitre_limit": 2.0}
    style: dict[str, Any] = ({"quad_segs": _QUAD_SEGS} if join == "round" else mitre)
    order = np.argsort(label, kind="stable")
    bounds = np.r_[0, np.flatnonzero(np.diff(label[order])) + 1, n]
    base = np.empty(n_groups, dtype=object)
    members: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * n_groups
    for g in range(n_groups):
        idx = order[bounds[g]:bounds[g + 1]]
        members[g] = idx
        if len(idx) == 1:
            base[g] = geoms[idx[0]]
        else:
            u = shapely.union_all(geoms[idx])
            base[g] = shapely.buffer(shapely.buffer(u, d / 2, **mitre), -d / 2, **mitre)
    marking = (shapely.buffer(base, options.margin_m, **style) if options.margin_m > 0
               else base)
    fence = (shapely.buffer(base, options.fence_margin_m, **style)
             if options.fence_margin_m > 0 else base)
    marking = shapely.orient_polygons(_polygonal(marking))
    fence = shapely.orient_polygons(_polygonal(fence))
    return _Enclosures(n_groups, label, members, base, marking, fence, tree)


def _warned_hazards(sign_rows: dict[str, np.ndarray], groups: _Enclosures, geoms: np.ndarray,
                    ids: np.ndarray, options: MarkingOptions) -> list[list[str]]:
    """Hazards each sign warns of: those of its enclosure within reach of it."""
    sign_pts = np.asarray(shapely.points(sign_rows["x"], sign_rows["y"]), dtype=object)
    reach = options.margin_m + options.merge_distance_m + 1.0
    si, hi = groups.tree.query(sign_pts, predicate="dwithin", distance=reach)
    same = groups.label[hi] == sign_rows["group"][si]
    warns: list[list[str]] = [[] for _ in range(len(sign_pts))]
    for s_, h_ in zip(si[same], hi[same], strict=True):
        warns[s_].append(ids[h_])
    for s_, w in enumerate(warns):
        if not w:   # far from every hazard (a long side): the nearest of its enclosure
            idx = groups.members[sign_rows["group"][s_]]
            w.append(ids[idx[np.argmin(shapely.distance(geoms[idx], sign_pts[s_]))]])
    return warns


def _quantities(groups: _Enclosures, ids: np.ndarray, enc_ids: np.ndarray,
                rows: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], metric: pyproj.CRS,
                options: MarkingOptions, settlements: gpd.GeoDataFrame | None,
                roads: gpd.GeoDataFrame | None
                ) -> tuple[pd.DataFrame, tuple[str, np.ndarray | None]]:
    """Per enclosure: areas, lengths, signs, posts, cost, labour days and priority."""
    sign_rows, post_rows = rows
    marking, fence, n_groups = groups.marking, groups.fence, groups.count
    fence_len = _geodesic_lengths(shapely.boundary(fence), metric)
    perim_len = _geodesic_lengths(shapely.boundary(marking), metric)
    ea = equal_area_crs(gpd.GeoSeries(marking, crs=metric))
    enclosed = shapely.area(np.asarray(gpd.GeoSeries(marking, crs=metric).to_crs(ea).values))
    hazard_area = shapely.area(np.asarray(gpd.GeoSeries(groups.base, crs=metric).to_crs(ea)
                                          .values))
    signs_per = np.bincount(sign_rows["group"], minlength=n_groups)
    posts_per = np.bincount(post_rows["group"], minlength=n_groups)
    enc = pd.DataFrame({
        "enclosure_id": enc_ids,
        "hazard_ids": [",".join(ids[m]) for m in groups.members],
        "hazard_count": [len(m) for m in groups.members],
        "hazard_area_m2": hazard_area, "enclosed_area_m2": enclosed,
        "perimeter_m": perim_len, "fence_m": fence_len,
        "signs": signs_per, "posts": posts_per})
    pr = options.prices
    enc["cost"] = (enc["signs"] * pr.sign + enc["posts"] * pr.post + enc["fence_m"] * pr.fence_m)
    enc["labour_days"] = (enc["fence_m"] / options.labour.fence_m_per_day
                          + enc["signs"] / options.labour.signs_per_day)
    enc["priority"], basis = _priority(marking, enclosed, metric, settlements, roads)
    enc["distance_m"] = basis[1] if basis[1] is not None else np.nan
    return enc, basis


def _fence_frame(fence: np.ndarray, enc_ids: np.ndarray, metric: pyproj.CRS
                 ) -> gpd.GeoDataFrame:
    """The fence as lines, one per ring of each enclosure, with ids and geodesic lengths."""
    fence_lines = []
    for g in range(len(enc_ids)):
        for kind, ring in _rings(fence[g]):
            fence_lines.append({"enclosure_id": enc_ids[g], "ring": kind,
                                "geometry": shapely.LineString(ring.coords)})
    fence_gdf = gpd.GeoDataFrame(fence_lines, geometry="geometry", crs=metric)
    fence_gdf.insert(0, "fence_id", [f"{r}-F{i + 1:02d}" for i, r in
                                     enumerate(fence_gdf["enclosure_id"])])
    fence_gdf["length_m"] = _geodesic_lengths(np.asarray(fence_gdf.geometry.values), metric)
    return fence_gdf


def _totals(enc: pd.DataFrame, n_groups: int, n_hazards: int, counts: tuple[int, int],
            prices: Prices, basis: str) -> dict[str, Any]:
    """Totals of the plan: counts, lengths, area, labour days and (when priced) cost."""
    return {"enclosures": int(n_groups), "hazards": int(n_hazards),
            "signs": counts[0], "posts": counts[1],
            "fence_m": float(enc["fence_m"].sum()),
            "perimeter_m": float(enc["perimeter_m"].sum()),
            "enclosed_area_m2": float(enc["enclosed_area_m2"].sum()),
            "labour_days": float(enc["labour_days"].sum()),
            "cost": float(enc["cost"].sum()) if prices.given else None,
            "currency": prices.currency if prices.given else None,
            "priority_basis": basis}


def _method(metric: pyproj.CRS, options: MarkingOptions) -> str:
    """One sentence on how the plan was computed, for the report."""
    return (f"computed in {metric.name}; hazards within {options.group_distance_m:g} m share an "
            f"enclosure; perimeter {options.margin_m:g} m and fence {options.fence_margin_m:g} m "
            f"outside the hazards with {options.join} corners; a sign at every turn over "
            f"{options.corner_angle_deg:g}° and at most {options.sign_spacing_m:g} m apart "
            f"along the perimeter, facing outward (true bearing); posts at most "
            f"{options.post_spacing_m:g} m apart; lengths geodesic, areas equal-area")


def _place(polys: np.ndarray, spacing: float, corner_deg: float, to_ll: pyproj.Transformer
           ) -> dict[str, np.ndarray]:
    xs, ys, nxs, nys, groups, kinds, corners = [], [], [], [], [], [], []
    for g, poly in enumerate(polys):
        for kind, ring in _rings(poly):
            pts, normals, corner = stations(ring, spacing, corner_deg)
            xs.append(pts[:, 0])
            ys.append(pts[:, 1])
            nxs.append(normals[:, 0])
            nys.append(normals[:, 1])
            groups.append(np.full(len(pts), g))
            kinds.append(np.full(len(pts), kind, dtype=object))
            corners.append(corner)

    def cat(parts: list[np.ndarray], dtype: Any = float) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

    rows = {"x": cat(xs), "y": cat(ys), "group": cat(groups, np.int64).astype(np.int64),
            "ring": cat(kinds, object), "corner": cat(corners, bool)}
    pts = np.column_stack([rows["x"], rows["y"]])
    bearing, lon, lat = _bearings(pts, np.column_stack([cat(nxs), cat(nys)]), to_ll)
    rows.update(bearing=bearing, lon=lon, lat=lat)
    return rows


def _points_frame(rows: dict[str, np.ndarray], enc_ids: np.ndarray, metric: pyproj.CRS,
                  prefix: str) -> gpd.GeoDataFrame:
    enc = enc_ids[rows["group"]] if len(rows["group"]) else np.empty(0, dtype=object)
    number = pd.Series(enc).groupby(enc, sort=False).cumcount().to_numpy() + 1
    epsg = metric.to_epsg()
    df = pd.DataFrame({
        f"{'sign' if prefix == 'S' else 'post'}_id": [f"{e}-{prefix}{k:03d}"
                                                      for e, k in zip(enc, number, strict=True)],
        "enclosure_id": enc, "ring": rows["ring"], "corner": rows["corner"],
        "lat": np.round(rows["lat"], 7), "lon": np.round(rows["lon"], 7),
        "x_m": np.round(rows["x"], 2), "y_m": np.round(rows["y"], 2),
        "epsg": epsg if epsg is not None else -1})
    return gpd.GeoDataFrame(df, geometry=shapely.points(rows["x"], rows["y"]), crs=metric)


def _priority(marking: np.ndarray, area: np.ndarray, metric: pyproj.CRS,
              settlements: gpd.GeoDataFrame | None, roads: gpd.GeoDataFrame | None
              ) -> tuple[np.ndarray, tuple[str, np.ndarray | None]]:
    layers = [f for f in (settlements, roads) if f is not None and len(f)]
    if not layers:
        rank = np.argsort(-area, kind="stable")
        prio = np.empty(len(area), dtype=np.int64)
        prio[rank] = np.arange(1, len(area) + 1)
        return prio, ("enclosed area, largest first", None)
    for f in layers:
        if f.crs is None:
            raise InputError("settlement/road layer has no CRS; give one (--crs or a .prj)")
    targets = np.concatenate([np.asarray(f.to_crs(metric).geometry.values) for f in layers])
    tree = shapely.STRtree(targets)
    (_, _), dist = tree.query_nearest(marking, return_distance=True, all_matches=False)
    rank = np.lexsort((-area, dist))
    prio = np.empty(len(area), dtype=np.int64)
    prio[rank] = np.arange(1, len(area) + 1)
    what = " and ".join(n for n, f in (("settlements", settlements), ("roads", roads))
                        if f is not None and len(f))
    return prio, (f"distance to the nearest of the {what}, nearest first", np.asarray(dist))



# -- the one call every face makes -----------------------------------------------------------
@dataclass(frozen=True)
class Selection:
    """Which remaining hazards to mark: any of the ids, regions and statuses (all if empty)."""

    ids: Sequence[str] = ()
    regions: Sequence[str] = ()
    statuses: Sequence[str] = ()


def plan_remaining(store: Store, at: dt.date, selection: Selection | None = None,
                   options: MarkingOptions | None = None, *,
                   settlements: gpd.GeoDataFrame | None = None,
                   roads: gpd.GeoDataFrame | None = None) -> MarkingPlan:
    """Plan the marking and fencing of what remains contaminated at ``at``.

    The one call the CLI (``planner marking-plan``), the web (``/api/marking-plan``) and the
    notebooks make: each hazard minus the land released by ``at``
    (:func:`remaining_hazards`), the selection (:func:`select_hazards`), then
    :func:`marking_plan`.

    Parameters
    ----------
    store : Store
        The programme.
    at : datetime.date
        What remains at the end of this day is marked.
    selection : Selection, optional
        Which hazards (default: every remaining one).
    options : MarkingOptions, optional
        Distances, angles, prices and rates.
    settlements, roads : GeoDataFrame, optional
        Points and lines that set the priority (nearest enclosures first).

    Returns
    -------
    MarkingPlan

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from planner.demo import build_demo_store
    >>> st = build_demo_store(pathlib.Path(tempfile.mkdtemp()) / "demo.gpkg")
    >>> plan = plan_remaining(st, dt.date(2024, 12, 31), Selection(statuses=["CHA"]))
    >>> plan.totals["signs"] > 0, plan.crs.to_epsg()
    (True, 32648)
    """
    selection = selection or Selection()
    left = remaining_hazards(store.read("hazards"), store.read("releases"), at)
    chosen = select_hazards(left, ids=selection.ids, regions=selection.regions,
                            statuses=selection.statuses)
    return marking_plan(chosen, options, settlements=settlements, roads=roads)
