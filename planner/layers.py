"""The three layers of a programme's store and the vocabulary of their columns.

``hazards``: one contaminated area as surveyed (SHA or CHA).
``releases``: one land-release event (cancelled, reduced or cleared) on part of the land.
``imports``: one ingested file.

Column names carry units where they have one (``depth_cm``); dates are calendar dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LayerName = Literal["hazards", "releases"]

#: land-release methods, strongest evidence last (IMAS 07.11)
METHODS: tuple[str, ...] = ("cancelled", "reduced", "cleared")
#: hazard statuses: suspected / confirmed hazardous area
STATUSES: tuple[str, ...] = ("SHA", "CHA")


@dataclass(frozen=True)
class Column:
    """One attribute column of a layer.

    ``kind`` is one of ``text``, ``date``, ``bool``, ``int``, ``float``.
    """

    name: str
    kind: str
    required: bool = False
    description: str = ""


HAZARD_COLUMNS: tuple[Column, ...] = (
    Column("hazard_id", "text", True, "national code of the hazard, unique"),
    Column("status", "text", True, "SHA (suspected) or CHA (confirmed)"),
    Column("recorded_on", "date", True, "date the area was first recorded"),
    Column("found_after_eif", "bool", True, "recorded after entry into force"),
    Column("region", "text"),
    Column("munition_type", "text"),
    Column("source_file", "text", True),
    Column("import_id", "int", True),
)

RELEASE_COLUMNS: tuple[Column, ...] = (
    Column("release_id", "text", True, "identifier of the release event, unique"),
    Column("method", "text", True, "cancelled, reduced or cleared"),
    Column("released_on", "date", True, "date the land was released"),
    Column("hazard_id", "text", False, "hazard the release belongs to, if known"),
    Column("organisation", "text"),
    Column("items_destroyed", "int"),
    Column("depth_cm", "float", False, "clearance depth [cm]"),
    Column("source_file", "text", True),
    Column("import_id", "int", True),
)

COLUMNS: dict[str, tuple[Column, ...]] = {"hazards": HAZARD_COLUMNS, "releases": RELEASE_COLUMNS}
ID_COLUMN: dict[str, str] = {"hazards": "hazard_id", "releases": "release_id"}
