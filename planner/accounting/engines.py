"""Which engine builds a store's ledger, and the status every face asks for.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

from planner.accounting.ledger import Ledger, Status
from planner.accounting.pieces import (
    Progress,
)
from planner.accounting.tiles import ledger_partitioned
from planner.errors import InputError
from planner.store import Store

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

#: the ways a ledger can be built: in this process, tiled on a dask cluster, inside PostGIS
ENGINES = ("single", "dask", "postgis")


def ledger_with(store: Store, engine: str = "single", *, workers: int = 2,
                progress: Progress | None = None, as_known_on: dt.date | None = None
                ) -> Ledger:
    """Build a store's ledger with one of :data:`ENGINES`; all give the same figures.

    ``single`` reads the ledger stored in the store (:func:`stored_ledger`: sums over
    stored rows, no geometry) or, for a store without one, builds it in this process
    (:func:`planner.accounting.ledger_from_store`) and says how to store it; ``dask`` is
    :func:`ledger_partitioned` on a local cluster of ``workers`` processes; ``postgis`` is
    :func:`planner.accounting.sql.ledger_in_database` with ``workers`` sessions (PostGIS only).
    With ``as_known_on``, the ledger of the records as they stood at the end of that day
    (:func:`planner.accounting.known.ledger_as_known_on`), whatever the engine.

    Examples
    --------
    >>> ledger_with(None, "gpu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    planner.errors.InputError: engine 'gpu': use one of single, dask, postgis
    """
    from planner.accounting.live import stored_ledger
    from planner.accounting.local import ledger_from_store

    if as_known_on is not None:   # the records as they stood then: built from the geometry
        from planner.accounting.known import ledger_as_known_on

        return ledger_as_known_on(store, as_known_on, progress=progress)
    if engine == "single":
        led = stored_ledger(store)
        if led is not None:
            return led
        log.warning("%s has no stored ledger, so it is built from every polygon now; run "
                    "`planner rebuild-ledger` once to keep it in the store", store.location)
        return ledger_from_store(store, progress=progress)
    if engine == "dask":
        return ledger_partitioned(store, workers=workers, progress=progress)
    if engine == "postgis":
        from planner.accounting.sql import ledger_in_database
        from planner.store.postgis import PostGISStore

        if not isinstance(store, PostGISStore):
            raise InputError("the postgis engine runs inside a PostGIS store; give a "
                             "postgresql:// store or use the single or dask engine",
                             argument="engine")
        return ledger_in_database(store, sessions=workers, progress=progress)
    raise InputError(f"engine {engine!r}: use one of {', '.join(ENGINES)}", argument="engine")


def verified_status(store: Store, at: dt.date, *, verify: bool = False,
                    ledger: Ledger | None = None, engine: str = "single", workers: int = 2,
                    progress: Progress | None = None) -> Status:
    """The status of a programme at a date, checked independently when asked.

    The one call every face makes for "status": the CLI's ``planner status``, the web's
    ``/api/status`` and the notebooks.

    Parameters
    ----------
    store : Store
        The programme.
    at : datetime.date
        Status date (valid time).
    verify : bool
        Also compute the remaining area by global unions of every polygon
        (:func:`planner.accounting.status_direct`) and keep it in
        ``Status.remaining_direct_m2``; :attr:`Status.verified` then says whether the ledger
        agrees to 1 m². Without it, ``verified`` is None: not verified.
    ledger : Ledger, optional
        A ledger already built for this store (else one is built with ``engine``).
    engine, workers, progress
        As for :func:`ledger_with`.

    Returns
    -------
    Status

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from planner.demo import build_demo_store
    >>> st = build_demo_store(pathlib.Path(tempfile.mkdtemp()) / "demo.gpkg")
    >>> s = verified_status(st, dt.date(2024, 12, 31), verify=True)
    >>> s.verified, round(s.remaining_m2)
    (True, 1352724)
    """
    from planner.accounting.direct import status_direct
    from planner.accounting.known import known_records

    ledger = ledger or ledger_with(store, engine, workers=workers, progress=progress)
    s = ledger.status(at)
    if not verify:
        return s
    hazards, releases = known_records(store, ledger.known_on)   # the records it was built from
    direct = status_direct(hazards, releases, at, crs=ledger.crs)
    return replace(s, remaining_direct_m2=direct)
