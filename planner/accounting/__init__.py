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

from planner.accounting.direct import status_direct
from planner.accounting.engines import ENGINES, ledger_with, verified_status
from planner.accounting.ledger import RECONCILE_TOLERANCE_M2, Ledger, Status, period_ends
from planner.accounting.local import build_ledger, ledger_from_store
from planner.accounting.pieces import Progress
from planner.accounting.tiles import ledger_partitioned, plan_tiles

__all__ = ["ENGINES", "RECONCILE_TOLERANCE_M2", "Ledger", "Progress", "Status", "build_ledger",
           "ledger_from_store", "ledger_partitioned", "ledger_with", "period_ends", "plan_tiles",
           "status_direct", "verified_status"]
