"""The ledger that lives in the store: built once, updated by each import, read for figures.

A feature's ledger rows (its piece's area, its overlaps) depend only on the features its
component holds (:func:`~planner.accounting.pieces.components`), so

* a **cold build** (:func:`rebuild_ledger`) labels the components of the whole programme and
  measures them in batches spread over processes;
* an **update** (:func:`ledger_update`, called by the store inside an import's transaction)
  finds the components the new features belong to by reading bounding-box windows around
  them, measures just those, and replaces their rows;
* **figures** (:func:`stored_ledger`) are sums over the stored rows: no geometry is read.

Both ways give the very same rows (a property test checks it to 1e-6 m²).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from planner.accounting.ledger import Ledger
from planner.accounting.pieces import (
    Progress,
    _days,
    components,
    hazard_order,
    measure,
    objects,
    release_order,
)
from planner.areas import equal_area_crs
from planner.errors import StoreBusyError, StoreError
from planner.layers import LayerName
from planner.store import Store
from planner.store.base import (
    LedgerChange,
    LedgerRows,
    Neighbourhood,
    Removed,
    StoredLedger,
)

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

#: below this many features a cold build runs in this process (a pool costs more than it saves)
_POOL_MIN_FEATURES = 5_000

#: how many times a cold build starts again when imports land while it runs
_BUILD_ATTEMPTS = 3


def ledger_crs_for(hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame) -> pyproj.CRS:
    """The equal-area CRS a ledger is measured in: centred on the hazards, else releases."""
    basis = hazards if len(hazards) else releases
    return equal_area_crs(basis) if len(basis) else pyproj.CRS.from_epsg(6933)


def measure_rows(hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame,
                 labels: tuple[np.ndarray, np.ndarray] | None = None,
                 tell: Progress = lambda step, frac: None) -> LedgerRows:
    """The ledger rows of features in an equal-area CRS, each frame with its store ``row``.

    ``hazards`` need ``recorded_on`` and ``found_after_eif``, ``releases`` ``released_on``
    and ``method``. Whole components must be given (see the module notes).
    """
    hz = np.asarray(hazards.geometry.values)
    rl = np.asarray(releases.geometry.values)
    h_row = hazards["row"].to_numpy(dtype=np.int64)
    r_row = releases["row"].to_numpy(dtype=np.int64)
    h_day = _days(hazards["recorded_on"]) if len(hz) else np.empty(0, np.int64)
    r_day = _days(releases["released_on"]) if len(rl) else np.empty(0, np.int64)
    h_order = hazard_order(h_day, hazards["found_after_eif"].to_numpy(dtype=bool), h_row)
    r_order = release_order(r_day, releases["method"].to_numpy(dtype=object), r_row)
    h_area, r_area, ph, pr, pa = measure(hz, h_order, rl, r_order, tell, labels)
    return LedgerRows(
        hazard_row=h_row, hazard_area_m2=h_area,
        hazard_raw_area_m2=np.asarray(shapely.area(hz), dtype=float),
        release_row=r_row, release_area_m2=r_area,
        release_raw_area_m2=np.asarray(shapely.area(rl), dtype=float),
        pair_hazard_row=h_row[ph], pair_release_row=r_row[pr], pair_area_m2=pa)


# -- an import's update ----------------------------------------------------------------------
def _padded(bounds: np.ndarray, geographic: bool) -> np.ndarray:
    """Boxes grown a little, so that reprojection's bending of edges never hides a neighbour."""
    size = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    pad = 0.01 * size + (1e-5 if geographic else 1.0)
    return np.column_stack([bounds[:, 0] - pad, bounds[:, 1] - pad, bounds[:, 2] + pad,
                            bounds[:, 3] + pad])


def ledger_update(near: Neighbourhood, layer: LayerName, rows: np.ndarray,
                  removed: Removed | None = None) -> LedgerChange:
    """The ledger rows to replace after the features ``rows`` of ``layer`` were written.

    Reads windows around the new features (and around features ``removed`` by a
    retraction), keeps what their interiors meet, and repeats around what it found until
    nothing new is found: the closure is the union of the components the new features, and
    the former neighbours of removed ones, belong to now. Measures that closure exactly as
    a cold build would (see :func:`measure_rows`). Called by :meth:`Store.add` and
    :meth:`Store.retract` inside their transaction.
    """
    geographic = near.store_crs.is_geographic
    new = near.by_row(layer, rows) if len(rows) else None
    crs = near.ledger_crs or equal_area_crs(new if new is not None else removed[1])  # type: ignore[index]
    found: dict[str, list[gpd.GeoDataFrame]] = {"hazards": [], "releases": []}
    seen: dict[str, set[int]] = {"hazards": set(), "releases": set()}
    frontier = []
    if new is not None:
        found[layer].append(new)
        seen[layer].update(int(r) for r in new["row"])
        frontier.append(new)
    all_boxes = []
    if removed is not None and len(removed[1]):
        # the features that met a removed one start the search, the removed ones do not
        boxes = _padded(shapely.bounds(np.asarray(removed[1].geometry.values)), geographic)
        all_boxes.append(boxes)
        frontier += _meeting(near, boxes, np.asarray(removed[1].geometry.to_crs(crs).values),
                             crs, seen, found)
    while frontier:
        store_geoms = np.concatenate([np.asarray(f.geometry.values) for f in frontier])
        ea = np.concatenate([np.asarray(f.geometry.to_crs(crs).values) for f in frontier])
        boxes = _padded(shapely.bounds(store_geoms), geographic)
        all_boxes.append(boxes)
        frontier = _meeting(near, boxes, ea, crs, seen, found)
    hz, rl = (_closure(found[name], name, crs) for name in ("hazards", "releases"))
    log.debug("ledger update: %d hazards and %d releases in the closure", len(hz), len(rl))
    gone: dict[str, np.ndarray] = {} if removed is None else {
        str(removed[0]): removed[1]["row"].to_numpy(dtype=np.int64)}
    return LedgerChange(measure_rows(hz, rl), crs,
                        np.concatenate(all_boxes) if all_boxes else np.empty((0, 4)), gone)


def _meeting(near: Neighbourhood, boxes: np.ndarray, ea: np.ndarray, crs: pyproj.CRS,
             seen: dict[str, set[int]], found: dict[str, list[gpd.GeoDataFrame]]
             ) -> list[gpd.GeoDataFrame]:
    """Live features in ``boxes``, not seen yet, whose interiors meet one of ``ea``."""
    tree = shapely.STRtree(ea)
    frontier = []
    names: tuple[LayerName, ...] = ("hazards", "releases")
    for name in names:
        cand = near.near(name, boxes)
        cand = cand[~cand["row"].isin(seen[name])]
        if not len(cand):
            continue
        cand_ea = np.asarray(cand.geometry.to_crs(crs).values)
        ci, fi = tree.query(cand_ea, predicate="intersects")
        meets = ~shapely.touches(cand_ea[ci], ea[fi])
        take = cand.iloc[np.unique(ci[meets])]
        if len(take):
            found[name].append(take)
            seen[name].update(int(r) for r in take["row"])
            frontier.append(take)
    return frontier


#: the columns measuring needs, per layer
_NEEDS = {"hazards": ("row", "recorded_on", "found_after_eif"),
          "releases": ("row", "released_on", "method")}


def _closure(parts: list[gpd.GeoDataFrame], layer: str, crs: pyproj.CRS) -> gpd.GeoDataFrame:
    if not parts:
        return gpd.GeoDataFrame({c: [] for c in _NEEDS[layer]}, geometry=[], crs=crs)
    frame = pd.concat(parts).sort_values("row")
    return frame.to_crs(crs)


# -- the cold build ----------------------------------------------------------------------------
def _batches(h_label: np.ndarray, r_label: np.ndarray, weight_h: np.ndarray,
             weight_r: np.ndarray, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Whole components grouped into about ``count`` batches of similar work (vertices)."""
    n_labels = int(max(h_label.max(initial=-1), r_label.max(initial=-1))) + 1
    work = (np.bincount(h_label, weights=weight_h, minlength=n_labels)
            + np.bincount(r_label, weights=weight_r, minlength=n_labels))
    # the heaviest components first, each to the lightest batch so far
    batch_of = np.empty(n_labels, dtype=np.int64)
    load = np.zeros(max(1, count))
    for lab in np.argsort(-work, kind="stable"):
        b = int(np.argmin(load))
        batch_of[lab] = b
        load[b] += work[lab]
    out = []
    for b in range(len(load)):
        hi, ri = np.flatnonzero(batch_of[h_label] == b), np.flatnonzero(batch_of[r_label] == b)
        if len(hi) or len(ri):
            out.append((hi, ri))
    return out


def _measure_batch(args: tuple[Any, ...]) -> LedgerRows:
    """One batch of components, in a worker process (arguments as plain arrays)."""
    hz, h_cols, rl, r_cols, labels, crs = args
    hazards = gpd.GeoDataFrame(h_cols, geometry=hz, crs=crs)
    releases = gpd.GeoDataFrame(r_cols, geometry=rl, crs=crs)
    return measure_rows(hazards, releases, labels)


def _concat(parts: list[LedgerRows]) -> LedgerRows:
    if not parts:
        return LedgerRows.empty()
    fields = LedgerRows.__dataclass_fields__
    return LedgerRows(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})


def build_rows(hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame, *,
               processes: int | None = None, client: Any | None = None,
               progress: Progress | None = None) -> LedgerRows:
    """The rows of a whole ledger, components measured in batches over ``processes``.

    ``hazards`` and ``releases`` are in the ledger's equal-area CRS, with ``row``. With one
    process (or a small programme) everything is measured here; otherwise batches of whole
    components of similar size go to a process pool, one batch per core at a time, so peak
    memory in a worker is that of one batch. With a dask ``client``, the batches go to its
    cluster instead (four per worker).
    """
    tell = progress or (lambda step, frac: None)
    if client is not None:
        processes = max(1, len(client.scheduler_info().get("workers", {})))
    processes = processes or os.cpu_count() or 1
    hz = np.asarray(hazards.geometry.values)
    rl = np.asarray(releases.geometry.values)
    tell("finding overlapping features", 0.02)
    h_label, r_label = components(hz, rl)
    if (processes < 2 and client is None) or len(hz) + len(rl) < _POOL_MIN_FEATURES:
        return measure_rows(hazards, releases, (h_label, r_label), tell)
    batches = _batches(h_label, r_label, shapely.get_num_coordinates(hz).astype(float),
                       shapely.get_num_coordinates(rl).astype(float), 4 * processes)
    tell(f"measuring {len(batches)} batches of overlapping features on {processes} processes",
         0.1)
    h_cols = hazards[list(_NEEDS["hazards"])]
    r_cols = releases[list(_NEEDS["releases"])]
    jobs = ((hz[hi], h_cols.iloc[hi].reset_index(drop=True), rl[ri],
             r_cols.iloc[ri].reset_index(drop=True), (h_label[hi], r_label[ri]), hazards.crs)
            for hi, ri in batches)
    parts = []
    if client is not None:
        from distributed import as_completed

        futures = [client.submit(_measure_batch, job, pure=False) for job in jobs]
        for i, future in enumerate(as_completed(futures)):
            parts.append(future.result())
            tell(f"measured {i + 1} of {len(batches)} batches of overlapping features",
                 0.1 + 0.85 * (i + 1) / len(batches))
        return _concat(parts)
    with ProcessPoolExecutor(processes) as pool:
        for i, part in enumerate(pool.map(_measure_batch, jobs)):
            parts.append(part)
            tell(f"measured {i + 1} of {len(batches)} batches of overlapping features",
                 0.1 + 0.85 * (i + 1) / len(batches))
    return _concat(parts)


def rebuild_ledger(store: Store, *, processes: int | None = None, client: Any | None = None,
                   progress: Progress | None = None) -> LedgerRows:
    """Build a store's whole ledger from its features and store it, live from then on.

    Batches of whole components are measured on ``processes`` local processes (default one
    per core) or, given a dask ``client``, on its cluster (see :func:`build_rows`).

    The CRS is the stored ledger's if it has one (so figures do not move), else one centred
    on the hazards. If an import lands while the ledger is built, the build starts again
    (at most three times), so the stored ledger always matches the features.

    Examples
    --------
    >>> import tempfile, pathlib, datetime as dt
    >>> from planner.demo import build_demo_store
    >>> st = build_demo_store(pathlib.Path(tempfile.mkdtemp()) / "demo.gpkg")
    >>> rows = rebuild_ledger(st, processes=1)
    >>> round(stored_ledger(st).status(dt.date(2024, 12, 31)).remaining_m2)
    1352724
    """
    tell = progress or (lambda step, frac: None)
    for _ in range(_BUILD_ATTEMPTS):
        version = store.version()
        _, crs = store.ledger_state()
        tell("reading hazards and releases", 0.0)
        hazards = store.read("hazards", with_row=True)
        if crs is None:
            crs = ledger_crs_for(hazards, store.read("releases") if not len(hazards)
                                 else hazards.iloc[:0])
        hazards = hazards.to_crs(crs)
        releases = store.read("releases", crs=crs, with_row=True)
        rows = build_rows(hazards, releases, processes=processes, client=client,
                          progress=tell)
        tell("writing the ledger", 0.97)
        if store.write_ledger(rows, crs, version):
            tell("done", 1.0)
            return rows
        log.info("imports landed while the ledger was built; building it again")
    raise StoreBusyError("imports kept landing while the ledger was built; run "
                         "`planner rebuild-ledger` again when they are done", argument="store")


# -- figures from the stored rows --------------------------------------------------------------
def _positions(rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Where each key is in the sorted ``rows``; refuse keys of features that are not there.
    """
    at = np.searchsorted(rows, keys)
    found = at < len(rows)
    found[found] = rows[at[found]] == keys[found]
    if not found.all():
        raise StoreError(f"the stored ledger has {int((~found).sum())} overlap(s) of features "
                         "no longer in the store; rebuild it with `planner rebuild-ledger`",
                         argument="store")
    return at


def ledger_of(stored: StoredLedger, eif: Any) -> Ledger:
    """A :class:`Ledger` from stored rows: sums over them answer every figure."""
    h, r, o = stored.hazards, stored.releases, stored.overlaps
    h_rows = h["row"].to_numpy(dtype=np.int64)
    r_rows = r["row"].to_numpy(dtype=np.int64)
    ph = _positions(h_rows, o["hazard_row"].to_numpy(dtype=np.int64))
    pr = _positions(r_rows, o["release_row"].to_numpy(dtype=np.int64))
    return Ledger(
        eif=eif, crs=stored.crs,
        hazard_ids=objects(h, "hazard_id"),
        hazard_day=_days(h["recorded_on"]) if len(h) else np.empty(0, np.int64),
        hazard_after=h["found_after_eif"].to_numpy(dtype=bool),
        hazard_status=objects(h, "status"), hazard_region=objects(h, "region"),
        hazard_area_m2=np.array(h["area_m2"], dtype=float),
        hazard_raw_area_m2=h["raw_area_m2"].to_numpy(dtype=float),
        release_ids=objects(r, "release_id"),
        release_day=_days(r["released_on"]) if len(r) else np.empty(0, np.int64),
        release_method=r["method"].to_numpy(dtype=object),
        release_area_m2=r["area_m2"].to_numpy(dtype=float),
        release_raw_area_m2=r["raw_area_m2"].to_numpy(dtype=float),
        pair_hazard=ph.astype(np.int64), pair_release=pr.astype(np.int64),
        pair_area_m2=o["area_m2"].to_numpy(dtype=float))


def refreshed(store: Store, previous: StoredLedger | None) -> StoredLedger | None:
    """The stored ledger now, reading only what changed since ``previous`` was read.

    Rows of the features that imports since then recomputed replace theirs, and so do
    those features' overlaps; after a cold build (another generation) everything is read.
    None when the store has no live ledger.
    """
    if previous is None:
        return store.read_ledger()
    change = store.read_ledger(since=previous.last_change)
    if change is None:
        return None
    if change.generation != previous.generation:
        return store.read_ledger()
    if not len(change.hazards) and not len(change.releases):
        return previous
    hazards = _merged(previous.hazards, change.hazards)
    releases = _merged(previous.releases, change.releases)
    o = previous.overlaps
    gone = (o["hazard_row"].isin(change.hazards["row"])
            | o["release_row"].isin(change.releases["row"]))
    overlaps = pd.concat([o[~gone], change.overlaps], ignore_index=True)
    return StoredLedger(crs=change.crs, hazards=hazards, releases=releases, overlaps=overlaps,
                        generation=change.generation)


def _merged(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    if not len(new):
        return old
    kept = old[~old["row"].isin(new["row"])]
    return pd.concat([kept, new], ignore_index=True).sort_values("row", ignore_index=True)


def stored_ledger(store: Store) -> Ledger | None:
    """The store's live ledger, read (no geometry); None when it has none.

    Examples
    --------
    >>> import tempfile, pathlib, datetime as dt
    >>> from planner.demo import build_demo_store
    >>> st = build_demo_store(pathlib.Path(tempfile.mkdtemp()) / "demo.gpkg")
    >>> round(stored_ledger(st).status(dt.date(2024, 12, 31)).remaining_m2)
    1352724
    """
    stored = store.read_ledger()
    if stored is None:
        return None
    return ledger_of(stored, store.programme().eif)
