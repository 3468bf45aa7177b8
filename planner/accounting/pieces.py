"""Cutting polygons into disjoint pieces and measuring their overlaps, on every core.

Hazards are cut once into disjoint pieces (each hazard minus those recorded before it), and
releases likewise (each release minus earlier releases; on the same day clearance before
reduction before cancellation). The overlap of each hazard piece with each release piece is
measured in an equal-area CRS; overlaps that add up to more than their piece (a GEOS overlay
failure next to sliver parts) are measured again with snap-rounding.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import shapely

from planner.errors import InputError, PlannerError
from planner.layers import METHODS

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

#: A callback told the current step and the fraction done, for progress bars.
Progress = Callable[[str, float], None]

_PAIR_CHUNK = 50_000


_CRUMB_M2 = 1e-6


_GRID_M = 1e-6


_OVERLAP_TOLERANCE_M2 = 1e-3


# priority on a tie of dates: the strongest evidence first
_METHOD_RANK = {"cleared": 0, "reduced": 1, "cancelled": 2}


def _days(values: Any) -> np.ndarray:
    """Dates (date objects, strings or datetime64) as int64 days since 1970-01-01."""
    arr = pd.to_datetime(pd.Series(values), format="ISO8601").to_numpy(dtype="datetime64[D]")
    return arr.astype(np.int64)


def _date_of(day: int) -> dt.date:
    """Inverse of :func:`_day`."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=day)


def _day(d: dt.date) -> int:
    return int((np.datetime64(d, "D") - np.datetime64("1970-01-01", "D")).astype(np.int64))


def components(*layers: np.ndarray) -> list[np.ndarray]:
    """Label the connected components of geometries whose interiors meet, over all ``layers``.

    Two geometries are linked when they intersect other than by touching; a component is
    what "linked" closes over, hazards and releases together. The pieces and overlaps of a
    component's features depend on that component alone, so a ledger can be measured
    component by component (on any core) or updated for just the components an import
    touches, with the very same figures. Returns one label array per layer (labels shared).

    Examples
    --------
    >>> from shapely import box
    >>> h = np.array([box(0, 0, 2, 2), box(2, 0, 4, 2), box(10, 0, 12, 2)])  # 2nd only touches
    >>> r = np.array([box(1, 1, 3, 3)])                                        # joins 1st and 2nd
    >>> [x.tolist() for x in components(h, r)]
    [[0, 0, 1], [0]]
    """
    geoms = np.concatenate([np.asarray(g, dtype=object) for g in layers]) if layers else \
        np.empty(0, object)
    n = len(geoms)
    bounds = np.cumsum([0, *(len(g) for g in layers)])
    if n == 0:
        return [np.zeros(0, np.int64) for _ in layers]
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    touching = _threaded(shapely.touches, geoms[a], geoms[b]) if len(a) else np.zeros(0, bool)
    a, b = a[~touching], b[~touching]
    from scipy.sparse import coo_matrix  # here: importing scipy costs every command 0.1 s
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    labels = labels.astype(np.int64)
    return [labels[bounds[i]:bounds[i + 1]] for i in range(len(layers))]


def _pieces(geoms: np.ndarray, order: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Cut geometries into disjoint pieces: each minus all that come before it in ``order``.

    Only geometries of one component (``label``, see :func:`components`) are subtracted
    from each other, so a piece is the same whichever other components are cut with it.
    Vectorised in rounds: round r subtracts the r-th earlier neighbour of every geometry that
    has one, so the number of GEOS calls is the number of overlapping pairs.
    """
    n = len(geoms)
    pieces = geoms.copy()
    if n < 2:
        return pieces
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    earlier = (rank[right] < rank[left]) & (label[right] == label[left])
    left, right = left[earlier], right[earlier]
    if len(left) == 0:
        return pieces
    # subtract neighbours in a stable order; the r-th neighbour of each geometry in round r
    sort = np.lexsort((rank[right], left))
    left, right = left[sort], right[sort]
    starts = np.r_[0, np.flatnonzero(np.diff(left)) + 1]
    counts = np.diff(np.r_[starts, len(left)])
    within = np.arange(len(left)) - np.repeat(starts, counts)
    for r in range(int(within.max()) + 1):
        sel = within == r
        li = left[sel]
        pieces[li] = _threaded(shapely.difference, pieces[li], geoms[right[sel]])
    return pieces


_THREADS = max(1, min(4, os.cpu_count() or 1))


_MIN_CHUNK = 2_000


def _threaded(fn: Callable[..., np.ndarray], *arrays: np.ndarray) -> np.ndarray:
    """``fn`` over aligned arrays, split across threads (GEOS releases the GIL).

    Falls back to one call for small inputs or one core; the result is the same either way.
    """
    n = len(arrays[0])
    if _THREADS < 2 or n < 2 * _MIN_CHUNK:
        return fn(*arrays)
    # more chunks than threads, so that one slow chunk does not leave a core idle
    chunks = min(4 * _THREADS, max(_THREADS, n // _MIN_CHUNK))
    bounds = np.linspace(0, n, chunks + 1).astype(int)
    with ThreadPoolExecutor(_THREADS) as pool:
        parts = list(pool.map(lambda i: fn(*(a[bounds[i]:bounds[i + 1]] for a in arrays)),
                              range(chunks)))
    return np.concatenate(parts)


def _overlap_area(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Areas of the pairwise intersections [m²], robust to GEOS's topology failures.

    A sliver piece (two polygons sharing an edge whose vertices do not quite lie on it
    after reprojection) can make OverlayNG raise a TopologyException; those pairs are
    measured again one by one with snap-rounding on a 1 µm grid.
    """
    try:
        return shapely.area(shapely.intersection(a, b))
    except shapely.errors.GEOSException:
        out = np.empty(len(a))
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            try:
                out[i] = shapely.area(shapely.intersection(x, y))
            except shapely.errors.GEOSException:
                out[i] = shapely.area(shapely.intersection(x, y, grid_size=_GRID_M))
        log.warning("ledger: an overlap raised a topology error; measured again with "
                    "snap-rounding")
        return out


def hazard_order(day: np.ndarray, after: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Order in which hazards claim land: by date, baseline before discovered, then ``key``."""
    return np.lexsort((key, after, day))


def release_order(day: np.ndarray, method: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Order in which releases claim land: by date, cleared > reduced > cancelled, ``key``."""
    bad = sorted({str(m) for m in method} - set(METHODS))
    if bad:
        raise InputError(f"unknown release method(s) {', '.join(bad)}; use one of "
                         f"{', '.join(METHODS)}")
    rank = np.array([_METHOD_RANK[m] for m in method], dtype=np.int64)
    return np.lexsort((key, rank, day))


def overlap_excess(ph: np.ndarray, pr: np.ndarray, pa: np.ndarray, h_area: np.ndarray,
                   r_area: np.ndarray) -> np.ndarray:
    """Which overlaps belong to a piece whose overlaps add up to more than its area.

    Hazard pieces are disjoint and so are release pieces, so the overlaps of one piece can
    never exceed its area (beyond rounding): where they do, an overlay went wrong.
    """
    if len(pa) == 0:
        return np.zeros(0, dtype=bool)
    over_h = np.bincount(ph, weights=pa, minlength=len(h_area))
    over_r = np.bincount(pr, weights=pa, minlength=len(r_area))
    bad_h = over_h > h_area + _OVERLAP_TOLERANCE_M2 + 1e-9 * h_area
    bad_r = over_r > r_area + _OVERLAP_TOLERANCE_M2 + 1e-9 * r_area
    return bad_h[ph] | bad_r[pr]


def check_overlaps(ph: np.ndarray, pr: np.ndarray, pa: np.ndarray, h_area: np.ndarray,
                   r_area: np.ndarray) -> None:
    """Refuse a ledger whose overlaps exceed their pieces (see :func:`overlap_excess`)."""
    bad = overlap_excess(ph, pr, pa, h_area, r_area)
    if bad.any():
        raise PlannerError(
            f"{int(bad.sum())} overlap(s) of hazard and release pieces exceed the pieces "
            "themselves: the geometry library failed on these polygons, so no figures are "
            "given. Please report it with the store; simplifying the polygons involved "
            "usually avoids it.")


def valid_polygons(geoms: np.ndarray) -> np.ndarray:
    """The geometries, those that reprojection made invalid repaired (polygonal parts kept).

    A polygon valid in the store's CRS can self-intersect by a nanometre once reprojected
    when it has a sliver part; GEOS's overlay then raises. Valid geometries are returned
    as they are (the same objects), so figures of valid data do not move.
    """
    if not len(geoms):
        return geoms
    bad = np.flatnonzero(~shapely.is_valid(geoms))
    if not len(bad):
        return geoms
    out = geoms.copy()
    fixed = shapely.make_valid(geoms[bad])
    out[bad] = [shapely.MultiPolygon([p for p in shapely.get_parts(g)
                                      if p.geom_type == "Polygon"]) for g in fixed]
    log.info("ledger: %d polygon(s) made valid after reprojection", len(bad))
    return out


def measure(hz: np.ndarray, h_order: np.ndarray, rl: np.ndarray, r_order: np.ndarray,
            tell: Progress = lambda step, frac: None,
            labels: tuple[np.ndarray, np.ndarray] | None = None,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The areas of a ledger from equal-area geometries and their claiming orders [m²].

    Returns the area of each hazard piece, of each release piece, and the overlapping pairs
    (hazard index, release index, area). Works the same on a whole programme, on some of
    its components (``labels``, computed here when not given: see :func:`components`) and
    on the geometries of one tile clipped to it, which is what makes partitioned accounting
    exact: the pieces of a tile are the global pieces clipped to that tile.
    """
    tell("finding overlapping features", 0.05)
    hz, rl = valid_polygons(hz), valid_polygons(rl)
    h_label, r_label = labels if labels is not None else components(hz, rl)
    tell("cutting hazards into disjoint pieces", 0.1)
    h_pieces = _pieces(hz, h_order, h_label)
    tell("cutting releases into disjoint pieces", 0.35)
    r_pieces = _pieces(rl, r_order, r_label)

    tell("measuring overlaps of hazards and releases", 0.7)
    h_area = shapely.area(h_pieces) if len(h_pieces) else np.zeros(0)
    r_area = shapely.area(r_pieces) if len(r_pieces) else np.zeros(0)
    # releases wholly under earlier ones add nothing; crumbs under a square millimetre are
    # left out too (their total stays far below the 1 m² the figures reconcile to)
    live = np.flatnonzero(r_area > _CRUMB_M2)
    if len(h_pieces) and len(live):
        tree = shapely.STRtree(r_pieces[live])
        ph, pr = tree.query(h_pieces, predicate="intersects")
        pr = live[pr]
        same = h_label[ph] == r_label[pr]
        ph, pr = ph[same], pr[same]
        # a release piece inside a hazard piece overlaps it by its whole area: no cutting
        inside = shapely.contains_properly(h_pieces[ph], r_pieces[pr])
        pa = np.where(inside, r_area[pr], 0.0)
        cut = np.flatnonzero(~inside)
        # in chunks, so that only a chunk of intersection geometries is alive at a time
        for lo in range(0, len(cut), _PAIR_CHUNK):
            c = cut[lo:lo + _PAIR_CHUNK]
            pa[c] = _threaded(_overlap_area, h_pieces[ph[c]], r_pieces[pr[c]])
        suspect = overlap_excess(ph, pr, pa, h_area, r_area)
        if suspect.any():
            # GEOS's overlay can fail silently next to sliver parts of a piece (seen with
            # GEOS 3.14: 961 m² reported for an overlap of zero). Pieces are disjoint, so a
            # piece cannot overlap the others by more than its own area: where it seems to,
            # the overlaps are measured again with snap-rounding on a 1 µm grid.
            s = np.flatnonzero(suspect)
            log.warning("ledger: %d overlap(s) exceed their piece; measured again with "
                        "snap-rounding", len(s))
            pa[s] = shapely.area(shapely.intersection(h_pieces[ph[s]], r_pieces[pr[s]],
                                                      grid_size=_GRID_M))
            check_overlaps(ph, pr, pa, h_area, r_area)
        keep = pa > 0
        ph, pr, pa = ph[keep], pr[keep], pa[keep]
    else:
        ph = pr = np.empty(0, np.int64)
        pa = np.empty(0)
    tell("done", 1.0)
    return (np.asarray(h_area, dtype=float), np.asarray(r_area, dtype=float),
            ph.astype(np.int64), pr.astype(np.int64), np.asarray(pa, dtype=float))


def objects(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as an object array with None for missing values (all None if absent)."""
    if name not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    return np.asarray(frame[name].astype(object).where(frame[name].notna(), None)
                      .to_numpy(dtype=object))
