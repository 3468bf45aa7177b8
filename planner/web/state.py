"""What the service keeps between requests: the store, the cached ledger and layers, uploads.

One :class:`ServiceState` per app, made by :func:`planner.web.app.create_app` and kept on
``app.state.planner``; routes get it through the :data:`State` dependency, never through a
closure, so every router module stands on its own.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Depends, Request

from planner.accounting import Ledger, ledger_with
from planner.accounting.live import ledger_of, refreshed
from planner.areas import WGS84
from planner.errors import InputError
from planner.ingest import parse_date
from planner.layers import LayerName
from planner.store import Store, open_store
from planner.store.base import StoredLedger
from planner.treaty.extension import ExtensionDraft
from planner.web.settings import Settings
from planner.web.uploads import UploadWorkers, remove_stale_folders, upload_root

#: Cache keys of drafted extension requests start with this.
DRAFT_PREFIX = "draft:"
#: Cache keys of ledgers "as known on" a date start with this (kept like drafts).
KNOWN_PREFIX = "known:"
#: Drafts kept per store version (one per argument set asked for, the latest ones).
MAX_CACHED_DRAFTS = 8


class ServiceState:
    """The store and what is cached from it, shared by all requests.

    Parameters
    ----------
    settings : Settings
        The service's settings; the store is opened from ``settings.store``.

    Raises
    ------
    InputError
        ``engine`` is ``postgis`` but the store is a GeoPackage.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store = open_store(settings.store)
        if settings.engine == "postgis":
            from planner.store.postgis import PostGISStore

            if not isinstance(self.store, PostGISStore):
                raise InputError("PLANNER_ENGINE=postgis builds the ledger inside a PostGIS "
                                 "store, but the store is a GeoPackage; use a postgresql:// "
                                 "store or PLANNER_ENGINE=single or dask")
        self.lock = threading.Lock()
        self._ledger_lock = threading.Lock()
        self._ledger: tuple[tuple[int, int], StoredLedger | None, Ledger] | None = None
        #: how many times the ledger was read or patched (a test counts them)
        self.ledger_updates = 0
        self.cache: dict[str, tuple[tuple[int, int], Any]] = {}
        self.upload_root = upload_root(settings.upload_dir)
        remove_stale_folders(self.upload_root)     # left by a server that was killed
        self.uploads = UploadWorkers(settings.store, settings.upload_workers,
                                     settings.max_upload_seconds)

    def draft(self, as_of: dt.date | None, years: int | None) -> ExtensionDraft:
        """The extension request for these arguments, drafted once per store version."""
        from planner.treaty.extension import draft_extension_request

        return self.cached(f"{DRAFT_PREFIX}{as_of}:{years}", lambda: draft_extension_request(
            self.store, as_of=as_of, years=years, ledger=self.ledger()))

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()``, kept until the store's version changes (a new import)."""
        version = self.store.version()
        with self.lock:
            hit = self.cache.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]
        value = make()
        with self.lock:
            # entries of an older store version never hit again; drafts are kept for a few
            # argument sets only, so callers cannot grow the cache without bound
            self.cache = {k: v for k, v in self.cache.items() if v[0] == version}
            self.cache[key] = (version, value)
            for prefix in (DRAFT_PREFIX, KNOWN_PREFIX):
                kept = [k for k in self.cache if k.startswith(prefix)]
                for old in kept[:-MAX_CACHED_DRAFTS]:
                    del self.cache[old]
        return value

    def ledger(self, as_known_on: dt.date | None = None) -> Ledger:
        """The store's ledger, current with the store's version.

        With ``as_known_on``, the ledger of the records as they stood at the end of that
        day, built from the geometry and kept for the latest few dates asked.

        With the ``single`` engine it is read from the store's stored rows, and after an
        import only the rows it changed are read and patched in. One request at a time
        does that: a second request arriving meanwhile waits for it and uses its result.
        Other engines build it once per store version.
        """
        if as_known_on is not None:
            return self.cached(f"{KNOWN_PREFIX}{as_known_on}", lambda: ledger_with(
                self.store, as_known_on=as_known_on))
        if self.settings.engine != "single":
            return self.cached("ledger", lambda: ledger_with(
                self.store, self.settings.engine, workers=self.settings.workers))
        with self._ledger_lock:
            version = self.store.version()
            if self._ledger is not None and self._ledger[0] == version:
                return self._ledger[2]
            stored = refreshed(self.store, self._ledger[1] if self._ledger else None)
            led = (ledger_of(stored, self.store.programme().eif) if stored is not None
                   else ledger_with(self.store))
            self._ledger = (version, stored, led)
            self.ledger_updates += 1
            return led

    def layer_wgs84(self, layer: LayerName) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Per feature: its date, its bounds (WGS 84) and its GeoJSON text, cached."""
        def make() -> tuple[np.ndarray, np.ndarray, list[str]]:
            frame = self.store.read(layer, crs=WGS84)
            bounds = frame.geometry.bounds.to_numpy()
            col = "recorded_on" if layer == "hazards" else "released_on"
            days = np.array([_as_date(v) for v in frame[col]], dtype=object)
            frame[col] = [d.isoformat() if d else None for d in days]
            frame = frame.drop(columns=["import_id"])
            features = json.loads(frame.to_json(drop_id=True, to_wgs84=False))["features"]
            return days, bounds, [json.dumps(f, separators=(",", ":")) for f in features]
        return self.cached(f"layer:{layer}", make)


def get_state(request: Request) -> ServiceState:
    """The app's :class:`ServiceState` (a FastAPI dependency)."""
    state: ServiceState = request.app.state.planner
    return state


#: The service state, as a route parameter.
State = Annotated[ServiceState, Depends(get_state)]


def _as_date(value: Any) -> dt.date | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return parse_date(value)
