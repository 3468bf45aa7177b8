"""The ledger: areas of disjoint pieces and of their overlaps, and the figures read from it.

Baseline = pieces recorded on or before EIF; discovered = pieces recorded after; released by
method = overlaps dated by *t*; remaining = baseline + discovered - released. A series at many
dates is a cumulative sum over the ledger: the geometry is cut once, not once per date.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyproj

from planner.accounting.pieces import _date_of, _day
from planner.errors import InputError
from planner.layers import METHODS

if TYPE_CHECKING:
    pass


log = logging.getLogger(__name__)


log.addHandler(logging.NullHandler())




RECONCILE_TOLERANCE_M2 = 1.0


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
    #: the records it was built from, when not today's: as they stood on this day or instant
    known_on: dt.date | dt.datetime | None = None

    # -- one date ------------------------------------------------------------------------
    def status(self, at: dt.date) -> Status:
        """Figures at the end of day ``at``.

        Examples
        --------
        Two 100 m squares overlapping by half, a release of the left half of the first:

        >>> import geopandas as gpd
        >>> from shapely import box
        >>> from planner.accounting import build_ledger
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
        latest = self._latest(t)
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
            hazard_count=int((known & (latest == np.arange(len(latest)))).sum()),
            release_count=int(rel_live.sum()),
            naive_hazard_sum_m2=float(self.hazard_raw_area_m2[
                known & (latest == np.arange(len(latest)))].sum()),
            naive_release_sum_m2=float(self.release_raw_area_m2[rel_live].sum()),
            area_method=_describe(self.crs),
        )

    def breakdown(self, at: dt.date) -> pd.DataFrame:
        """Known, released (by method) and remaining area [m²] per region and status at ``at``.

        Each piece of land is attributed to the hazard that first recorded it, with that
        hazard's region and status as its latest version recorded by ``at`` gives them (a
        re-survey that confirms an SHA as a CHA moves its land to CHA), so the rows add up
        to the totals of :meth:`status`.
        """
        t = _day(at)
        known = self.hazard_day <= t
        latest = self._latest(t)
        region = np.array([r if r is not None else "(no region)"
                           for r in self.hazard_region[latest]], dtype=object)
        status = self.hazard_status[latest]
        df = pd.DataFrame({"region": region[known], "status": status[known],
                           "known_m2": self.hazard_area_m2[known]})
        out = df.groupby(["region", "status"], dropna=False).sum()
        live = known[self.pair_hazard] & (self.release_day[self.pair_release] <= t)
        h = self.pair_hazard[live]
        rel = pd.DataFrame({"region": region[h], "status": status[h],
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
        """Known and remaining area [m²] of each hazard at ``at``, one row per hazard.

        A piece of land covered by several hazards belongs to the one recorded first, so the
        column ``remaining_m2`` sums to :attr:`Status.remaining_m2`. The versions of one
        hazard (re-surveys) add up in one row, with the region and status of the latest
        version recorded by ``at`` and ``recorded_on`` of the first. Hazards recorded after
        ``at`` are left out.
        """
        t = _day(at)
        known = self.hazard_day <= t
        latest = self._latest(t)
        live = known[self.pair_hazard] & (self.release_day[self.pair_release] <= t)
        released = np.bincount(self.pair_hazard[live], weights=self.pair_area_m2[live],
                               minlength=len(self.hazard_ids))
        df = pd.DataFrame({"hazard_id": self.hazard_ids, "region": self.hazard_region[latest],
                           "status": self.hazard_status[latest],
                           "recorded_on": [_date_of(int(d)) for d in self.hazard_day],
                           "found_after_eif": self.hazard_after,
                           "known_m2": self.hazard_area_m2, "released_m2": released})
        df = df[known]
        if df["hazard_id"].is_unique:
            df = df.reset_index(drop=True)
        else:
            first = {"region": "last", "status": "last", "recorded_on": "first",
                     "found_after_eif": "first", "known_m2": "sum", "released_m2": "sum"}
            df = df.groupby("hazard_id", sort=False, as_index=False).agg(first)
        df["remaining_m2"] = df["known_m2"] - df["released_m2"]
        return df

    def _latest(self, t: int) -> np.ndarray:
        """For each hazard row, the row of its hazard's latest version recorded by day ``t``.

        Rows of a hazard not recorded by ``t`` point to themselves (they are not counted).
        """
        n = len(self.hazard_ids)
        rows = np.arange(n)
        if n == 0 or pd.Index(self.hazard_ids).is_unique:
            return rows
        df = pd.DataFrame({"id": self.hazard_ids, "day": self.hazard_day, "row": rows})
        known = df[df["day"] <= t].sort_values(["day", "row"], kind="stable")
        last = known.groupby("id", sort=False)["row"].last()
        mapped = df["id"].map(last).to_numpy(dtype=float)
        return np.where(np.isnan(mapped), rows, mapped).astype(np.int64)

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
