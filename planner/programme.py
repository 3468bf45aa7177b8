"""A programme: one State's (or one operator area's) settings that the figures depend on."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pyproj


@dataclass(frozen=True)
class Programme:
    """Settings of one mine-action programme.

    Parameters
    ----------
    name : str
        Name shown on reports, e.g. ``"Demo province"``.
    eif : datetime.date
        Date the Convention entered into force for the State (Article 4(1)(a)).
    crs : str
        CRS the store keeps geometries in (``"EPSG:32648"``). Areas are never measured in it:
        they are measured in an equal-area CRS centred on the data.
    settings : dict
        Further settings (extensions granted, deadline overrides), stored as JSON.

    Examples
    --------
    >>> p = Programme("Demo province", dt.date(2011, 8, 1), "EPSG:32648")
    >>> p.eif.isoformat()
    '2011-08-01'
    """

    name: str
    eif: dt.date
    crs: str = "EPSG:4326"
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pyproj.CRS.from_user_input(self.crs)  # fail early on a CRS PROJ does not know

    @property
    def pyproj_crs(self) -> pyproj.CRS:
        """The store CRS as a :class:`pyproj.CRS`."""
        return pyproj.CRS.from_user_input(self.crs)
