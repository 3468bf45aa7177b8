"""Article 4 deadlines: the original ones, extensions granted, and when a request must be filed.

A programme holds one deadline per *group* of hazards:

- contamination present when the Convention entered into force (EIF) for the State must be
  cleared no later than 10 years after EIF (Article 4(1)(a));
- contamination that arose after EIF, from hostilities that ended on a given date, no later
  than 10 years after the end of those active hostilities (Article 4(1)(b));
- each deadline can be extended by up to 5 years at a time (4(5)), and extended again (4(8));
- a request must reach the States Parties at least nine months before the meeting that
  considers it (4(6)).

Calendar arithmetic is exact. When the same day does not exist in the target month (29 February
plus 10 years, or 30 November minus 9 months) the last day of that month is used, which is the
earlier of the two candidate days: a deadline is never later, and a filing date never closer to
the meeting, than the treaty allows.

The groups live in the programme settings (JSON in the store) under ``"extensions"`` (for the
4(1)(a) group) and ``"hostilities"`` (a list of 4(1)(b) groups, each with ``name``,
``ended_on``, the ``regions`` and/or ``hazard_ids`` it covers, and its own ``extensions``).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from planner.errors import InputError
from planner.programme import Programme

#: Years from EIF (or end of hostilities) to the clearance deadline, Article 4(1).
CLEARANCE_YEARS = 10
#: Longest single extension, Article 4(5) and 4(8), in months.
MAX_EXTENSION_MONTHS = 60
#: A request is due at least this many months before the meeting that decides it, 4(6).
FILING_MONTHS_BEFORE_MEETING = 9
#: Name of the group of contamination present at EIF.
EIF_GROUP = "present at entry into force"

Basis = Literal["4(1)(a)", "4(1)(b)"]


def add_months(d: dt.date, months: int) -> dt.date:
    """``d`` moved by a whole number of calendar months (negative goes back).

    A day that does not exist in the target month becomes that month's last day.

    Examples
    --------
    >>> add_months(dt.date(2011, 8, 1), 120)
    datetime.date(2021, 8, 1)
    >>> add_months(dt.date(2012, 2, 29), 12)
    datetime.date(2013, 2, 28)
    >>> add_months(dt.date(2026, 11, 30), -9)
    datetime.date(2026, 2, 28)
    """
    index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(d.day, last))


def add_years(d: dt.date, years: int) -> dt.date:
    """``d`` moved by whole calendar years; 29 February lands on 28 February if needed.

    Examples
    --------
    >>> add_years(dt.date(2016, 2, 29), 10)
    datetime.date(2026, 2, 28)
    >>> add_years(dt.date(2016, 2, 29), 8)
    datetime.date(2024, 2, 29)
    """
    return add_months(d, 12 * years)


def filing_deadline(meeting: dt.date) -> dt.date:
    """Latest date to submit an extension request considered at ``meeting`` (Article 4(6)).

    Examples
    --------
    >>> filing_deadline(dt.date(2026, 9, 14))
    datetime.date(2025, 12, 14)
    """
    return add_months(meeting, -FILING_MONTHS_BEFORE_MEETING)


@dataclass(frozen=True)
class Extension:
    """An extension granted (or requested) by a Meeting of States Parties.

    Parameters
    ----------
    months : int
        Length of the extension, 1 to 60 months (Article 4(5): at most five years).
    granted_on : datetime.date, optional
        Date of the decision.
    note : str
        Free text (the meeting, the decision's reference).
    """

    months: int
    granted_on: dt.date | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.months <= MAX_EXTENSION_MONTHS:
            raise InputError(f"an extension of {self.months} months is not allowed: Article "
                             f"4(5) allows 1 to {MAX_EXTENSION_MONTHS} months (five years) per "
                             "request; record a longer period as several renewals (4(8)).")

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as kept in the programme settings."""
        return {"months": self.months,
                "granted_on": self.granted_on.isoformat() if self.granted_on else None,
                "note": self.note}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Extension:
        """Read the JSON form; ``years`` is accepted in place of ``months``."""
        months = d.get("months")
        if months is None and d.get("years") is not None:
            months = 12 * int(d["years"])
        if months is None:
            raise InputError(f"extension {dict(d)!r} has no length: give 'months' or 'years'")
        granted = d.get("granted_on")
        return cls(months=int(months),
                   granted_on=dt.date.fromisoformat(granted) if granted else None,
                   note=str(d.get("note") or ""))


@dataclass(frozen=True)
class DeadlineGroup:
    """Hazards that share one Article 4 deadline.

    Examples
    --------
    >>> g = DeadlineGroup(EIF_GROUP, "4(1)(a)", dt.date(2011, 8, 1))
    >>> g.original, g.current
    (datetime.date(2021, 8, 1), datetime.date(2021, 8, 1))
    >>> g.with_extension(Extension(60)).current
    datetime.date(2026, 8, 1)
    """

    name: str
    basis: Basis
    start: dt.date
    extensions: tuple[Extension, ...] = ()
    regions: tuple[str, ...] = ()
    hazard_ids: tuple[str, ...] = ()

    @property
    def original(self) -> dt.date:
        """Deadline before any extension: ``start`` + 10 years."""
        return add_years(self.start, CLEARANCE_YEARS)

    @property
    def deadlines(self) -> list[dt.date]:
        """The original deadline, then the deadline after each extension in turn."""
        out = [self.original]
        for ext in self.extensions:
            out.append(add_months(out[-1], ext.months))
        return out

    @property
    def current(self) -> dt.date:
        """Deadline in force, after every extension granted."""
        return self.deadlines[-1]

    def with_extension(self, ext: Extension) -> DeadlineGroup:
        """This group with one more extension."""
        return DeadlineGroup(self.name, self.basis, self.start, (*self.extensions, ext),
                             self.regions, self.hazard_ids)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (dates as ISO strings)."""
        return {"name": self.name, "basis": self.basis, "start": self.start.isoformat(),
                "original_deadline": self.original.isoformat(),
                "extensions": [e.to_dict() for e in self.extensions],
                "current_deadline": self.current.isoformat(),
                "regions": list(self.regions), "hazard_ids": list(self.hazard_ids)}


def _extensions(raw: Any, where: str) -> tuple[Extension, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError(f"{where}: 'extensions' must be a list of {{'months': …}} objects")
    return tuple(Extension.from_dict(e) for e in raw)


def deadline_groups(programme: Programme) -> list[DeadlineGroup]:
    """The deadline groups of a programme, the 4(1)(a) group first.

    Examples
    --------
    >>> p = Programme("P", dt.date(2011, 8, 1), settings={
    ...     "extensions": [{"months": 60, "granted_on": "2020-11-16"}],
    ...     "hostilities": [{"name": "2019 conflict", "ended_on": "2019-03-31",
    ...                      "regions": ["East"]}]})
    >>> [(g.basis, g.current.isoformat()) for g in deadline_groups(p)]
    [('4(1)(a)', '2026-08-01'), ('4(1)(b)', '2029-03-31')]
    """
    s = programme.settings
    groups = [DeadlineGroup(EIF_GROUP, "4(1)(a)", programme.eif,
                            _extensions(s.get("extensions"), "programme settings"))]
    names = {EIF_GROUP}
    for i, h in enumerate(s.get("hostilities") or []):
        name = str(h.get("name") or f"hostilities {i + 1}")
        where = f"hostilities {name!r}"
        if name in names:
            raise InputError(f"{where}: two deadline groups have this name; rename one")
        names.add(name)
        try:
            ended = dt.date.fromisoformat(str(h["ended_on"]))
        except (KeyError, ValueError) as exc:
            raise InputError(f"{where}: 'ended_on' must be the ISO date active hostilities "
                             "ended, e.g. 2019-03-31") from exc
        if ended <= programme.eif:
            raise InputError(f"{where}: hostilities that ended on {ended} (before entry into "
                             f"force on {programme.eif}) are covered by Article 4(1)(a); "
                             "remove the group or correct its date")
        regions = tuple(str(r) for r in h.get("regions") or ())
        ids = tuple(str(x) for x in h.get("hazard_ids") or ())
        if not regions and not ids:
            raise InputError(f"{where}: say which hazards it covers with 'regions' and/or "
                             "'hazard_ids'")
        groups.append(DeadlineGroup(name, "4(1)(b)", ended,
                                    _extensions(h.get("extensions"), where), regions, ids))
    return groups


def assign_groups(hazard_ids: Sequence[Any] | np.ndarray, regions: Sequence[Any] | np.ndarray,
                  groups: Sequence[DeadlineGroup]) -> np.ndarray:
    """Name of the deadline group of each hazard (4(1)(b) groups by id, then by region).

    Examples
    --------
    >>> g = deadline_groups(Programme("P", dt.date(2011, 8, 1), settings={"hostilities": [
    ...     {"name": "late", "ended_on": "2019-03-31", "hazard_ids": ["H2"]}]}))
    >>> assign_groups(["H1", "H2"], ["North", "North"], g).tolist()
    ['present at entry into force', 'late']
    """
    out = np.full(len(hazard_ids), groups[0].name if groups else EIF_GROUP, dtype=object)
    ids = pd.Series(hazard_ids, dtype=object).astype(str).to_numpy()
    reg = pd.Series(regions, dtype=object).astype(str).to_numpy()
    free = np.ones(len(out), dtype=bool)
    for g in groups:  # explicit ids first, so an id wins over a region
        if g.hazard_ids:
            hit = free & np.isin(ids, list(g.hazard_ids))
            out[hit] = g.name
            free &= ~hit
    for g in groups:
        if g.regions:
            hit = free & np.isin(reg, list(g.regions))
            out[hit] = g.name
            free &= ~hit
    return out


def group_by_name(groups: Iterable[DeadlineGroup], name: str | None) -> DeadlineGroup:
    """The group called ``name`` (the 4(1)(a) group when ``name`` is None)."""
    groups = list(groups)
    if name is None:
        return groups[0]
    for g in groups:
        if g.name == name:
            return g
    raise InputError(f"no deadline group called {name!r}; the programme has: "
                     + ", ".join(repr(g.name) for g in groups))


def record_extension(programme: Programme, ext: Extension, group: str | None = None
                     ) -> dict[str, Any]:
    """Programme settings with ``ext`` added to ``group`` (the 4(1)(a) group by default).

    Save the result with :meth:`planner.store.Store.set_settings`.

    Examples
    --------
    >>> p = Programme("P", dt.date(2011, 8, 1))
    >>> s = record_extension(p, Extension(60, dt.date(2020, 11, 16)))
    >>> deadline_groups(Programme("P", dt.date(2011, 8, 1), settings=s))[0].current
    datetime.date(2026, 8, 1)
    """
    settings = dict(programme.settings)
    if group is None or group == EIF_GROUP:
        settings["extensions"] = [*settings.get("extensions", []), ext.to_dict()]
    else:
        hostilities = [dict(h) for h in settings.get("hostilities", [])]
        for h in hostilities:
            if h.get("name") == group:
                h["extensions"] = [*h.get("extensions", []), ext.to_dict()]
                break
        else:
            raise InputError(f"no hostilities group called {group!r}; add it first")
        settings["hostilities"] = hostilities
    deadline_groups(Programme(programme.name, programme.eif, programme.crs, settings))
    return settings


def record_hostilities(programme: Programme, name: str, ended_on: dt.date, *,
                       regions: Sequence[str] = (), hazard_ids: Sequence[str] = ()
                       ) -> dict[str, Any]:
    """Programme settings with a 4(1)(b) group for contamination from later hostilities."""
    settings = dict(programme.settings)
    settings["hostilities"] = [*settings.get("hostilities", []),
                               {"name": name, "ended_on": ended_on.isoformat(),
                                "regions": list(regions), "hazard_ids": list(hazard_ids),
                                "extensions": []}]
    deadline_groups(Programme(programme.name, programme.eif, programme.crs, settings))
    return settings


@dataclass(frozen=True)
class DeadlineReport:
    """The deadline groups of a programme, and a filing date if a meeting is given."""

    groups: list[DeadlineGroup]
    meeting: dt.date | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def filing_deadline(self) -> dt.date | None:
        """Latest date to file a request considered at :attr:`meeting`."""
        return filing_deadline(self.meeting) if self.meeting else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"groups": [g.to_dict() for g in self.groups],
                "meeting": self.meeting.isoformat() if self.meeting else None,
                "filing_deadline": (self.filing_deadline.isoformat()
                                    if self.filing_deadline else None),
                "notes": self.notes}


def deadline_report(programme: Programme, meeting: dt.date | None = None) -> DeadlineReport:
    """Every deadline of ``programme``; with ``meeting``, the latest date to file for it.

    Examples
    --------
    >>> r = deadline_report(Programme("P", dt.date(2011, 8, 1)), dt.date(2021, 9, 20))
    >>> r.groups[0].current, r.filing_deadline
    (datetime.date(2021, 8, 1), datetime.date(2020, 12, 20))
    """
    groups = deadline_groups(programme)
    notes = []
    if meeting is not None:
        late = [g.name for g in groups if meeting > g.current]
        if late:
            notes.append("the meeting of " + meeting.isoformat() + " is after the deadline "
                         "of " + ", ".join(late) + ": Article 4(6) asks for the request to be "
                         "decided before the deadline runs out")
    return DeadlineReport(groups, meeting, notes)
