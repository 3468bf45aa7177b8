"""Parameters shared by several routes, validated at the edge, and small answer helpers."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Form, Query
from pydantic import AfterValidator

#: Dates outside these are refused at the edge (422): nothing in the treaty's life is there,
#: and date arithmetic near year 1 or 9999 overflows.
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2199, 12, 31)


def _sane_date(day: dt.date | None) -> dt.date | None:
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"dates must be between {FIRST_DAY} and {LAST_DAY}")
    return day


#: An optional ISO date in the query, between :data:`FIRST_DAY` and :data:`LAST_DAY`.
DateQ = Annotated[dt.date | None, Query(description=f"ISO date, {FIRST_DAY} to {LAST_DAY}"),
                  AfterValidator(_sane_date)]
#: The coordinate system of an uploaded file that carries none.
Crs = Annotated[str | None, Form(max_length=64, description="CRS when the file has none")]
#: A bounding box in degrees.
Bbox = Annotated[str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat")]
#: Features per GeoJSON page.
Limit = Annotated[int, Query(ge=1, le=100_000, description="features per page")]
#: Features skipped before a GeoJSON page.
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
#: The anti-forgery value of a page's form.
CsrfForm = Annotated[str | None, Form(max_length=128)]


def attachment(name: str) -> dict[str, str]:
    """The header that makes a browser save the answer as ``name``.

    Examples
    --------
    >>> attachment("plan.csv")
    {'Content-Disposition': 'attachment; filename="plan.csv"'}
    """
    return {"Content-Disposition": f'attachment; filename="{name}"'}
