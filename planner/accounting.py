"""Land-release accounting on the union of polygons, in square metres.

The method
----------
Everything is measured in a Lambert azimuthal equal-area CRS centred on the data
(:func:`planner.areas.equal_area_crs`). The polygons are first cut into disjoint pieces once:

* a **hazard piece** is the land a hazard added when it was recorded: the hazard minus every
  hazard recorded before it (ties: baseline before discovered, then store order). It carries
  that hazard's date, baseline/discovered class, status and region;
* a **release piece** is the land a release released first: the release minus every earlier
  release (ties on one day: cleared, then reduced, then cancelled). A later re-clearance of the
  same land therefore adds nothing, and each piece of land is counted under its earliest
  release;
* the **ledger** then holds the area of every hazard piece, every release piece, and every
  overlap of a hazard piece with a release piece.

Because the pieces are disjoint, every figure at any date is a sum over the ledger:

* known(t) = baseline(t) + discovered(t), the union of hazards recorded by t;
* released(t) by method = overlaps of pieces both dated by t (release land outside any hazard
  recorded by t is reported, not counted);
* remaining(t) = known(t) - released(t).

A series at many dates is a cumulative sum over the ledger sorted by date: the geometry is cut
once, not once per date. :func:`status_direct` recomputes remaining area with global unions
instead, as an independent check (``planner status --verify``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from planner.areas import equal_area_crs
from planner.errors import InputError, PlannerError
from planner.layers import METHODS

if TYPE_CHECKING:
    from planner.store import Store

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

Progress = Callable[[str, float], None]
RECONCILE_TOLERANCE_M2 = 1.0
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


def _pieces(geoms: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Cut geometries into disjoint pieces: each minus all that come before it in ``order``.

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
    earlier = rank[right] < rank[left]
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
    return shapely.area(shapely.intersection(a, b))


@dataclass(frozen=True)
class Ledger:
    """Disjoint hazard and release pieces and their overlaps, with areas [m²].

    Build it with :func:`build_ledger`; ask it for :meth:`status` at a date or a
    :meth:`series`. All arrays are aligned per piece; dates are int64 days since 1970-01-01.
    """

    eif: dt.date
    crs: pyproj.CRS
    hazard_ids: np.ndarray
    hazard_day: np.ndarray
    hazard_after: np.ndarray
    hazard_status: np.ndarray
    hazard_region: np.ndarray
    hazard_area_m2: np.ndarray
    hazard_raw_area_m2: np.ndarray
    release_ids: np.ndarray
    release_day: np.ndarray
    release_method: np.ndarray
    release_area_m2: np.ndarray
    release_raw_area_m2: np.ndarray
    pair_hazard: np.ndarray
    pair_release: np.ndarray
    pair_area_m2: np.ndarray

    # -- one date ------------------------------------------------------------------------
    def status(self, at: dt.date) -> Status:
        """Figures at the end of day ``at``.

        Examples
        --------
        Two 100 m squares overlapping by half, a release of the left half of the first:

        >>> from shapely import box
        >>> h = gpd.GeoDataFrame({"hazard_id": ["A", "B"], "status": ["CHA", "SHA"],
        ...     "recorded_on": [dt.date(2010, 1, 1)] * 2, "found_after_eif": [False] * 2,
        ...     "region": ["North"] * 2}, geometry=[box(0, 0, 100, 100), box(50, 0, 150, 100)],
        ...     crs=3035)
        >>> r = gpd.GeoDataFrame({"release_id": ["R1"], "method": ["cleared"],
        ...     "released_on": [dt.date(2012, 6, 1)]}, geometry=[box(0, 0, 50, 100)], crs=3035)
        >>> s = build_ledger(h, r, eif=dt.date(2011, 8, 1)).status(dt.date(2012, 12, 31))
        >>> round(s.baseline_m2), round(s.cleared_m2), round(s.remaining_m2)
        (15000, 5000, 10000)
        """
        t = _day(at)
        known = self.hazard_day <= t
        baseline = float(self.hazard_area_m2[known & ~self.hazard_after].sum())
        discovered = float(self.hazard_area_m2[known & self.hazard_after].sum())
        live = (self.hazard_day[self.pair_hazard] <= t) & (self.release_day[self.pair_release]
                                                           <= t)
        by_method = {m: 0.0 for m in METHODS}
        methods = self.release_method[self.pair_release[live]]
        areas = self.pair_area_m2[live]
        for m in METHODS:
            by_method[m] = float(areas[methods == m].sum())
        released = sum(by_method.values())
        rel_live = self.release_day <= t
        inside_per_release = np.bincount(self.pair_release[live], weights=areas,
                                         minlength=len(self.release_ids))
        outside_per_release = np.where(rel_live, self.release_area_m2 - inside_per_release, 0.0)
        outside_ids = [str(x) for x in self.release_ids[outside_per_release > 1.0]]
        return Status(
            at=at, eif=self.eif,
            baseline_m2=baseline, discovered_m2=discovered,
            cancelled_m2=by_method["cancelled"], reduced_m2=by_method["reduced"],
            cleared_m2=by_method["cleared"],
            remaining_m2=baseline + discovered - released,
            outside_m2=float(np.clip(outside_per_release, 0, None).sum()),
            outside_release_ids=outside_ids,
            hazard_count=int(known.sum()),
            release_count=int(rel_live.sum()),
            naive_hazard_sum_m2=float(self.hazard_raw_area_m2[known].sum()),
            naive_release_sum_m2=float(self.release_raw_area_m2[rel_live].sum()),
            area_method=_describe(self.crs),
        )

    def breakdown(self, at: dt.date) -> pd.DataFrame:
        """Known, released (by method) and remaining area [m²] per region and status at ``at``.

        Each piece of land is attributed to the region and status of the first hazard that
        recorded it, so the rows add up to the totals of :meth:`status`.
        """
        t = _day(at)
        known = self.hazard_day <= t
        region = np.array([r if r is not None else "(no region)" for r in self.hazard_region],
                          dtype=object)
        df = pd.DataFrame({"region": region[known], "status": self.hazard_status[known],
                           "known_m2": self.hazard_area_m2[known]})
        out = df.groupby(["region", "status"], dropna=False).sum()
        live = known[self.pair_hazard] & (self.release_day[self.pair_release] <= t)
        h = self.pair_hazard[live]
        rel = pd.DataFrame({"region": region[h], "status": self.hazard_status[h],
                            "method": self.release_method[self.pair_release[live]],
                            "area": self.pair_area_m2[live]})
        piv = rel.pivot_table(index=["region", "status"], columns="method", values="area",
                              aggfunc="sum", fill_value=0.0)
        for m in METHODS:
            out[f"{m}_m2"] = piv[m] if m in piv.columns else 0.0
        out = out.fillna(0.0)
        out["released_m2"] = out[[f"{m}_m2" for m in METHODS]].sum(axis=1)
        out["remaining_m2"] = out["known_m2"] - out["released_m2"]
        return out.reset_index()

    # -- many dates ----------------------------------------------------------------------
    def series(self, dates: Sequence[dt.date]) -> pd.DataFrame:
        """Figures at each date [m²], by cumulative sums over the ledger (no geometry).

        Returns one row per date with ``baseline_m2``, ``discovered_m2``, ``cancelled_m2``,
        ``reduced_m2``, ``cleared_m2``, ``released_m2``, ``remaining_m2`` (all cumulative, at
        the end of that day) and the same released figures for the period since the previous
        date (``*_in_period_m2``).
        """
        days = np.array([_day(d) for d in dates], dtype=np.int64)
        if len(days) and np.any(np.diff(days) < 0):
            raise InputError("series dates must be in increasing order")

        def cumulative(event_day: np.ndarray, weight: np.ndarray) -> np.ndarray:
            order = np.argsort(event_day, kind="stable")
            csum = np.r_[0.0, np.cumsum(weight[order])]
            return csum[np.searchsorted(event_day[order], days, side="right")]

        data: dict[str, Any] = {"date": list(dates)}
        w = self.hazard_area_m2
        data["baseline_m2"] = cumulative(self.hazard_day, np.where(~self.hazard_after, w, 0.0))
        data["discovered_m2"] = cumulative(self.hazard_day, np.where(self.hazard_after, w, 0.0))
        effective = np.maximum(self.hazard_day[self.pair_hazard],
                               self.release_day[self.pair_release])
        methods = self.release_method[self.pair_release]
        for m in METHODS:
            data[f"{m}_m2"] = cumulative(effective, np.where(methods == m, self.pair_area_m2,
                                                             0.0))
        df = pd.DataFrame(data)
        df["released_m2"] = df[[f"{m}_m2" for m in METHODS]].sum(axis=1)
        df["remaining_m2"] = df["baseline_m2"] + df["discovered_m2"] - df["released_m2"]
        for m in (*METHODS, "released"):
            df[f"{m}_in_period_m2"] = df[f"{m}_m2"].diff().fillna(df[f"{m}_m2"])
        return df

    # -- parts of the programme ----------------------------------------------------------
    def remaining_by_hazard(self, at: dt.date) -> pd.DataFrame:
        """Known and remaining area [m²] of each hazard's piece at ``at``.

        A piece of land covered by several hazards belongs to the one recorded first, so the
        column ``remaining_m2`` sums to :attr:`Status.remaining_m2`. Hazards recorded after
        ``at`` are left out.
        """
        t = _day(at)
        known = self.hazard_day <= t
        live = known[self.pair_hazard] & (self.release_day[self.pair_release] <= t)
        released = np.bincount(self.pair_hazard[live], weights=self.pair_area_m2[live],
                               minlength=len(self.hazard_ids))
        df = pd.DataFrame({"hazard_id": self.hazard_ids, "region": self.hazard_region,
                           "status": self.hazard_status,
                           "recorded_on": [_date_of(int(d)) for d in self.hazard_day],
                           "found_after_eif": self.hazard_after,
                           "known_m2": self.hazard_area_m2, "released_m2": released})
        df["remaining_m2"] = df["known_m2"] - df["released_m2"]
        return df[known].reset_index(drop=True)

    def subset(self, hazards: np.ndarray) -> Ledger:
        """The ledger of the hazards selected by the boolean mask ``hazards`` only.

        Releases stay whole, but only their overlaps with the selected hazards count, so the
        figures are those of that part of the programme (one deadline group, one region).
        """
        keep = np.asarray(hazards, dtype=bool)
        if keep.shape != self.hazard_ids.shape:
            raise InputError("the hazard mask must have one entry per hazard of the ledger")
        new_index = np.cumsum(keep) - 1
        pairs = keep[self.pair_hazard]
        return replace(
            self,
            hazard_ids=self.hazard_ids[keep], hazard_day=self.hazard_day[keep],
            hazard_after=self.hazard_after[keep], hazard_status=self.hazard_status[keep],
            hazard_region=self.hazard_region[keep], hazard_area_m2=self.hazard_area_m2[keep],
            hazard_raw_area_m2=self.hazard_raw_area_m2[keep],
            pair_hazard=new_index[self.pair_hazard[pairs]],
            pair_release=self.pair_release[pairs], pair_area_m2=self.pair_area_m2[pairs])

    def _event_day(self, pick: Callable[[np.ndarray], Any]) -> dt.date | None:
        days = np.r_[self.hazard_day, self.release_day]
        return None if len(days) == 0 else _date_of(int(pick(days)))

    @property
    def first_day(self) -> dt.date | None:
        """Date of the earliest hazard or release, if any."""
        return self._event_day(np.min)

    @property
    def last_day(self) -> dt.date | None:
        """Date of the latest hazard or release, if any."""
        return self._event_day(np.max)


def _describe(crs: pyproj.CRS) -> str:
    op = crs.coordinate_operation
    if op is not None and op.method_name == "Lambert Azimuthal Equal Area":
        params = {p.name: p.value for p in op.params}
        lat = params.get("Latitude of natural origin")
        lon = params.get("Longitude of natural origin")
        return (f"union areas in a Lambert azimuthal equal-area projection on WGS 84 centred "
                f"at lat {lat}, lon {lon}")
    return f"union areas in {crs.name}"


@dataclass(frozen=True)
class Status:
    """The figures of a programme at one date. All areas in square metres [m²].

    ``baseline_m2`` is the union of hazards recorded on or before entry into force,
    ``discovered_m2`` the land recorded after it (not already in the baseline), the three
    release figures are disjoint and count each piece of land once under its earliest
    release, and ``remaining_m2`` = baseline + discovered - released.
    """

    at: dt.date
    eif: dt.date
    baseline_m2: float
    discovered_m2: float
    cancelled_m2: float
    reduced_m2: float
    cleared_m2: float
    remaining_m2: float
    outside_m2: float
    outside_release_ids: list[str]
    hazard_count: int
    release_count: int
    naive_hazard_sum_m2: float
    naive_release_sum_m2: float
    area_method: str
    remaining_direct_m2: float | None = None

    @property
    def known_m2(self) -> float:
        """Baseline plus discovered: the union of all hazards recorded by this date [m²]."""
        return self.baseline_m2 + self.discovered_m2

    @property
    def released_m2(self) -> float:
        """Cancelled + reduced + cleared [m²]."""
        return self.cancelled_m2 + self.reduced_m2 + self.cleared_m2

    @property
    def check_gap_m2(self) -> float | None:
        """Remaining by global unions minus remaining by the ledger [m²]; None if not checked.

        ``remaining = baseline + discovered - released`` holds by construction of the ledger,
        so it proves nothing. The check that can fail compares the ledger's remaining area
        with one computed independently (:func:`status_direct`), set in
        ``remaining_direct_m2`` by :func:`verified_status`.
        """
        if self.remaining_direct_m2 is None:
            return None
        return self.remaining_direct_m2 - self.remaining_m2

    @property
    def verified(self) -> bool | None:
        """True/False: the independent check agrees to 1 m² or not; None: not verified."""
        gap = self.check_gap_m2
        return None if gap is None else abs(gap) <= RECONCILE_TOLERANCE_M2

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (dates as ISO strings), derived figures included."""
        d = asdict(self)
        d["at"] = self.at.isoformat()
        d["eif"] = self.eif.isoformat()
        d["known_m2"] = self.known_m2
        d["released_m2"] = self.released_m2
        d["check_gap_m2"] = self.check_gap_m2
        d["verified"] = self.verified
        return d


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


def measure(hz: np.ndarray, h_order: np.ndarray, rl: np.ndarray, r_order: np.ndarray,
            tell: Progress = lambda step, frac: None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The areas of a ledger from equal-area geometries and their claiming orders [m²].

    Returns the area of each hazard piece, of each release piece, and the overlapping pairs
    (hazard index, release index, area). Works the same on a whole programme and on the
    geometries of one tile clipped to it, which is what makes partitioned accounting exact:
    the pieces of a tile are the global pieces clipped to that tile.
    """
    tell("cutting hazards into disjoint pieces", 0.1)
    h_pieces = _pieces(hz, h_order)
    tell("cutting releases into disjoint pieces", 0.35)
    r_pieces = _pieces(rl, r_order)

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
    return np.array([None if (v is None or (not isinstance(v, str) and pd.isna(v)))
                     else v for v in frame[name]], dtype=object)


def build_ledger(hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame, *, eif: dt.date,
                 crs: pyproj.CRS | None = None, progress: Progress | None = None) -> Ledger:
    """Cut hazards and releases into disjoint pieces and measure them [m²].

    Parameters
    ----------
    hazards : GeoDataFrame
        Columns ``hazard_id``, ``status``, ``recorded_on``, ``found_after_eif`` and optionally
        ``region``; any CRS.
    releases : GeoDataFrame
        Columns ``release_id``, ``method``, ``released_on``; any CRS.
    eif : datetime.date
        Entry into force for the State.
    crs : pyproj.CRS, optional
        Equal-area CRS to measure in (default: Lambert azimuthal equal-area on the hazards).
    progress : callable, optional
        Called as ``progress(step, fraction)``.

    Returns
    -------
    Ledger
    """
    def tell(step: str, frac: float) -> None:
        if progress is not None:
            progress(step, frac)
        log.debug("ledger: %s", step)

    for frame, name in ((hazards, "hazards"), (releases, "releases")):
        if len(frame) and frame.crs is None:
            raise InputError(f"{name} have no CRS; set one with .set_crs() before accounting")
    if crs is None:
        basis = hazards if len(hazards) else releases
        crs = equal_area_crs(basis) if len(basis) else pyproj.CRS.from_epsg(6933)
    elif not crs.is_projected or "Equal Area" not in (crs.coordinate_operation.method_name
                                                      if crs.coordinate_operation else ""):
        raise InputError(f"{crs.name} is not an equal-area projection; areas would be wrong")
    tell("reprojecting to an equal-area CRS", 0.0)
    hz = np.asarray(hazards.geometry.to_crs(crs).values) if len(hazards) else np.empty(0, object)
    rl = np.asarray(releases.geometry.to_crs(crs).values) if len(releases) else np.empty(0,
                                                                                          object)

    h_day = _days(hazards["recorded_on"]) if len(hazards) else np.empty(0, np.int64)
    h_after = (hazards["found_after_eif"].to_numpy(dtype=bool) if len(hazards)
               else np.empty(0, bool))
    r_day = _days(releases["released_on"]) if len(releases) else np.empty(0, np.int64)
    r_method = releases["method"].to_numpy(dtype=object) if len(releases) else np.empty(0,
                                                                                         object)
    h_order = hazard_order(h_day, h_after, np.arange(len(hz)))
    r_order = release_order(r_day, r_method, np.arange(len(rl)))
    h_area, r_area, ph, pr, pa = measure(hz, h_order, rl, r_order, tell)

    return Ledger(
        eif=eif, crs=crs,
        hazard_ids=objects(hazards, "hazard_id"), hazard_day=h_day, hazard_after=h_after,
        hazard_status=objects(hazards, "status"), hazard_region=objects(hazards, "region"),
        hazard_area_m2=h_area,
        hazard_raw_area_m2=np.asarray(shapely.area(hz), dtype=float),
        release_ids=objects(releases, "release_id"), release_day=r_day, release_method=r_method,
        release_area_m2=r_area,
        release_raw_area_m2=np.asarray(shapely.area(rl), dtype=float),
        pair_hazard=ph, pair_release=pr, pair_area_m2=pa,
    )


def ledger_from_store(store: Store, *, progress: Progress | None = None) -> Ledger:
    """:func:`build_ledger` on a store's hazards and releases, holding each layer once.

    The equal-area CRS is centred on the hazards (on the releases when there are none), and
    the releases are reprojected as they are read, so a large programme never has both the
    stored and the reprojected geometries of its biggest layer in memory.
    """
    programme = store.programme()
    hazards = store.read("hazards")
    if len(hazards):
        crs = equal_area_crs(hazards)
        hazards = hazards.to_crs(crs)
        releases = store.read("releases", crs=crs)
    else:
        releases = store.read("releases")
        crs = equal_area_crs(releases) if len(releases) else pyproj.CRS.from_epsg(6933)
        releases = releases.to_crs(crs) if len(releases) else releases
    return build_ledger(hazards, releases, eif=programme.eif, crs=crs, progress=progress)


def status_direct(hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame, at: dt.date, *,
                  crs: pyproj.CRS | None = None) -> float:
    """Remaining area at ``at`` [m²] by global unions: an independent check of the ledger.

    Remaining = area(union(hazards recorded by ``at``) - union(releases by ``at``)).
    """
    crs = crs or equal_area_crs(hazards)
    t = pd.Timestamp(at)
    h = hazards[pd.to_datetime(hazards["recorded_on"]) <= t].geometry.to_crs(crs)
    r = releases[pd.to_datetime(releases["released_on"]) <= t].geometry.to_crs(crs)
    known = shapely.union_all(np.asarray(h.values))
    gone = shapely.union_all(np.asarray(r.values))
    return float(shapely.area(shapely.difference(known, gone)))


def period_ends(start: dt.date, end: dt.date, freq: Literal["year", "month"] = "year"
                ) -> list[dt.date]:
    """Last day of each year (or month) from ``start``'s period to ``end``'s, inclusive.

    Examples
    --------
    >>> period_ends(dt.date(2019, 5, 3), dt.date(2021, 1, 1))
    [datetime.date(2019, 12, 31), datetime.date(2020, 12, 31), datetime.date(2021, 12, 31)]
    >>> period_ends(dt.date(2024, 1, 15), dt.date(2024, 3, 1), "month")[1]
    datetime.date(2024, 2, 29)
    """
    code = {"year": "YE", "month": "ME"}.get(freq)
    if code is None:
        raise InputError(f"frequency {freq!r}: use 'year' or 'month'")
    rng = pd.date_range(pd.Timestamp(start), pd.Timestamp(end) + pd.offsets.YearEnd(0)
                        if freq == "year" else pd.Timestamp(end) + pd.offsets.MonthEnd(0),
                        freq=code)
    return [d.date() for d in rng]
