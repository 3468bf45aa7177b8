"""Partitioned accounting: the ledger of a large programme built tile by tile with dask.

The method
----------
The equal-area plane of the programme is cut into rectangular **tiles** that do not overlap
and together cover every feature (a k-d split on the hazards' centres, so tiles hold about
the same number of hazards). Each tile is one partition of a dask-geopandas GeoDataFrame
(its ``spatial_partitions`` are the tiles): a worker reads from the store only the features
whose bounding box meets its tile, reprojects them, clips them to the tile, and measures
them with the very function the single-process ledger uses (:func:`planner.accounting.measure`),
ordering them by the same global keys (date, class, store order).

Because cutting into pieces commutes with clipping — (A ∩ T) − (B ∩ T) = (A − B) ∩ T — the
pieces of a tile are exactly the global pieces clipped to that tile, and since the tiles do
not overlap, the area of every piece and every overlap is the sum of its areas over the tiles.
Land on a shared border is therefore counted once, and the combined ledger gives the same
figures as :func:`planner.accounting.ledger_from_store` (to rounding, far below 1 m²).

Only one tile's geometry is in a worker's memory at a time; the driver holds attributes and
areas, never geometry.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from planner.accounting import (
    Ledger,
    Progress,
    Status,
    _days,
    check_overlaps,
    hazard_order,
    measure,
    objects,
    overlap_excess,
    release_order,
)
from planner.areas import equal_area_crs
from planner.errors import InputError
from planner.layers import LayerName
from planner.programme import Programme
from planner.store import Store, open_store

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

#: hazards per tile when the number of tiles is not given
HAZARDS_PER_TILE = 20_000
_HAZARD_COLUMNS = ("hazard_id", "status", "recorded_on", "found_after_eif", "region")
_RELEASE_COLUMNS = ("release_id", "method", "released_on")
Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class Tile:
    """One partition: a rectangle of the equal-area plane and the store windows covering it.

    ``windows`` are rectangles in the store CRS (two when a tile of a geographic store
    crosses the antimeridian).
    """

    index: int
    bounds: Bounds
    windows: tuple[Bounds, ...]


def _split(cell: Bounds, points: np.ndarray, k: int) -> list[Bounds]:
    """Cut ``cell`` into ``k`` rectangles holding about the same number of ``points``."""
    if k <= 1:
        return [cell]
    minx, miny, maxx, maxy = cell
    axis = 0 if (maxx - minx) >= (maxy - miny) else 1
    k_low = k // 2
    if len(points):
        cut = float(np.quantile(points[:, axis], k_low / k))
    else:
        cut = (cell[axis] + cell[axis + 2]) / 2
    lo_edge, hi_edge = cell[axis], cell[axis + 2]
    if not lo_edge < cut < hi_edge:  # all points on one line: halve the cell instead
        cut = (lo_edge + hi_edge) / 2
    below = points[:, axis] < cut if len(points) else np.zeros(0, bool)
    if axis == 0:
        low, high = (minx, miny, cut, maxy), (cut, miny, maxx, maxy)
    else:
        low, high = (minx, miny, maxx, cut), (minx, cut, maxx, maxy)
    return _split(low, points[below], k_low) + _split(high, points[~below], k - k_low)


def _windows(bounds: Bounds, to_store: pyproj.Transformer, geographic: bool
             ) -> tuple[Bounds, ...]:
    """Store-CRS rectangles that cover an equal-area tile, with a margin."""
    west, south, east, north = to_store.transform_bounds(*bounds, densify_pts=21)
    if geographic and west > east:  # the tile crosses the antimeridian
        return ((west - 1e-6, south - 1e-6, 180.0, north + 1e-6),
                (-180.0, south - 1e-6, east + 1e-6, north + 1e-6))
    mx, my = (east - west) * 0.01 + 1e-6, (north - south) * 0.01 + 1e-6
    return ((west - mx, south - my, east + mx, north + my),)


def plan_tiles(hazard_boxes: pd.DataFrame, release_boxes: pd.DataFrame,
               store_crs: pyproj.CRS, crs: pyproj.CRS, n_tiles: int) -> list[Tile]:
    """Tiles of the equal-area plane covering every feature, balanced on the hazards.

    Parameters
    ----------
    hazard_boxes, release_boxes : DataFrame
        ``minx``, ``miny``, ``maxx``, ``maxy`` of each feature in ``store_crs`` (as
        :meth:`planner.store.Store.attributes` returns them).
    store_crs, crs : pyproj.CRS
        The store's CRS and the equal-area CRS the tiles are drawn in.
    n_tiles : int
        How many tiles.

    Examples
    --------
    >>> boxes = pd.DataFrame({"minx": [0.0, 5000.0], "miny": [0.0, 0.0],
    ...                       "maxx": [100.0, 5100.0], "maxy": [100.0, 100.0]})
    >>> tiles = plan_tiles(boxes, boxes.iloc[:0], pyproj.CRS(3035), pyproj.CRS(3035), 2)
    >>> [round(t.bounds[2]) for t in tiles]
    [2550, 5152]
    """
    if n_tiles < 1:
        raise InputError("the number of tiles must be at least 1")
    boxes = pd.concat([hazard_boxes[["minx", "miny", "maxx", "maxy"]],
                       release_boxes[["minx", "miny", "maxx", "maxy"]]]).dropna()
    if boxes.empty:
        return []
    to_ea = pyproj.Transformer.from_crs(store_crs, crs, always_xy=True)
    to_store = pyproj.Transformer.from_crs(crs, store_crs, always_xy=True)
    # extent: the union of every feature's box, carried into the equal-area plane
    corners = boxes.to_numpy()
    xs = np.r_[corners[:, 0], corners[:, 2], corners[:, 0], corners[:, 2]]
    ys = np.r_[corners[:, 1], corners[:, 3], corners[:, 3], corners[:, 1]]
    ex, ey = to_ea.transform(xs, ys)
    extent = (float(np.min(ex)), float(np.min(ey)), float(np.max(ex)), float(np.max(ey)))
    margin = 0.01 * max(extent[2] - extent[0], extent[3] - extent[1]) + 1.0
    extent = (extent[0] - margin, extent[1] - margin, extent[2] + margin, extent[3] + margin)
    hb = hazard_boxes.dropna(subset=["minx"])
    cx, cy = to_ea.transform(((hb["minx"] + hb["maxx"]) / 2).to_numpy(),
                             ((hb["miny"] + hb["maxy"]) / 2).to_numpy())
    cells = _split(extent, np.column_stack([cx, cy]), n_tiles)
    return [Tile(i, c, _windows(c, to_store, store_crs.is_geographic))
            for i, c in enumerate(cells)]


def _read_tile(location: str, layer: LayerName, tile: Tile, crs_wkt: str) -> gpd.GeoDataFrame:
    """The features of a layer that meet a tile, in the equal-area CRS, clipped to it."""
    store = open_store(location)
    crs = pyproj.CRS.from_wkt(crs_wkt)
    frames = [store.read_window(layer, w, crs=crs) for w in tile.windows]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames).drop_duplicates("row")
    clipped = shapely.intersection(np.asarray(frame.geometry.values),
                                   shapely.box(*tile.bounds))
    frame = frame.set_geometry(gpd.GeoSeries(clipped, index=frame.index, crs=crs))
    frame = frame[~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)]
    return frame.sort_values("row").reset_index(drop=True)


#: the rows every engine measures: a hazard piece has ``release_row`` -1, a release piece
#: ``hazard_row`` -1, an overlap both rows; areas in the equal-area CRS [m²]
ROWS_META = pd.DataFrame({"hazard_row": pd.Series(dtype="int64"),
                           "release_row": pd.Series(dtype="int64"),
                           "area_m2": pd.Series(dtype="float64"),
                           "raw_area_m2": pd.Series(dtype="float64")})


def _tile_rows(hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame) -> pd.DataFrame:
    """Areas of one tile's pieces and overlaps, keyed by store rows.

    A hazard piece is a row with ``release_row`` -1, a release piece one with
    ``hazard_row`` -1, an overlap one with both.
    """
    hz = np.asarray(hazards.geometry.values)
    rl = np.asarray(releases.geometry.values)
    h_row = hazards["row"].to_numpy(dtype=np.int64)
    r_row = releases["row"].to_numpy(dtype=np.int64)
    h_order = hazard_order(_days(hazards["recorded_on"]) if len(hz) else np.empty(0, np.int64),
                           hazards["found_after_eif"].to_numpy(dtype=bool), h_row)
    r_order = release_order(_days(releases["released_on"]) if len(rl)
                            else np.empty(0, np.int64),
                            releases["method"].to_numpy(dtype=object), r_row)
    h_area, r_area, ph, pr, pa = measure(hz, h_order, rl, r_order)
    none_h, none_r = np.full(len(rl), -1), np.full(len(hz), -1)
    return pd.DataFrame({
        "hazard_row": np.r_[h_row, none_h, h_row[ph]].astype(np.int64),
        "release_row": np.r_[none_r, r_row, r_row[pr]].astype(np.int64),
        "area_m2": np.r_[h_area, r_area, pa],
        "raw_area_m2": np.r_[shapely.area(hz) if len(hz) else np.zeros(0),
                             shapely.area(rl) if len(rl) else np.zeros(0),
                             np.zeros(len(pa))],
    })


@contextmanager
def local_client(workers: int, memory_limit: str | None = None) -> Iterator[Any]:
    """A dask ``Client`` on a fresh ``LocalCluster`` of ``workers`` processes, one thread each.

    Without ``memory_limit`` each worker may use an equal share of this machine's memory.
    """
    from distributed import Client, LocalCluster

    if workers < 1:
        raise InputError("the number of workers must be at least 1")
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        # dask's scheduler and nannies report every start and stop at INFO: keep it for -v
        for name in [n for n in logging.root.manager.loggerDict if n.startswith("distributed")]:
            logging.getLogger(name).setLevel(logging.WARNING)
    # dashboard on a free port: a user's own dask dashboard may hold the usual 8787
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", memory_limit=memory_limit or "auto") as cluster, \
            Client(cluster) as client:
        yield client


def ledger_partitioned(store: Store, *, workers: int = 2, tiles: int | None = None,
                       client: Any | None = None, progress: Progress | None = None) -> Ledger:
    """The ledger of a store built tile by tile on a dask cluster (see the module docstring).

    Parameters
    ----------
    store : Store
        Any store; workers open it again by its ``location``.
    workers : int
        Worker processes of the local cluster started when no ``client`` is given.
    tiles : int, optional
        Number of tiles (default: one per 20,000 hazards, at least two per worker).
    client : distributed.Client, optional
        An existing dask client (a cluster of several machines, say) to run on.
    progress : callable, optional
        Called as ``progress(step, fraction)``, once per finished tile.

    Returns
    -------
    Ledger
        The same figures as :func:`planner.accounting.ledger_from_store`.

    Examples
    --------
    >>> import datetime as dt, tempfile
    >>> from pathlib import Path
    >>> from planner.programme import Programme
    >>> from planner.store import create_store
    >>> empty = create_store(Path(tempfile.mkdtemp()) / "p.gpkg",
    ...                      Programme("P", dt.date(2011, 8, 1), "EPSG:32648"))
    >>> ledger_partitioned(empty, workers=1).status(dt.date(2020, 1, 1)).remaining_m2
    0.0
    """
    def tell(step: str, frac: float) -> None:
        if progress is not None:
            progress(step, frac)
        log.info("partitioned ledger: %s (%.0f %%)", step, 100 * frac)

    if workers < 1:
        raise InputError("the number of workers must be at least 1")
    tell("reading attributes and bounding boxes", 0.0)
    programme, h_att, r_att, crs = ledger_inputs(store)
    n_tiles = (tiles if tiles is not None
               else max(2 * workers, math.ceil(len(h_att) / HAZARDS_PER_TILE)))
    plan = plan_tiles(h_att, r_att, programme.pyproj_crs, crs, n_tiles)
    rows = _run_tiles(store.location, plan, crs, workers, client, tell) if plan else ROWS_META
    tell("combining the tiles", 0.95)
    ledger = ledger_from_rows(programme.eif, crs, h_att, r_att, rows)
    tell("done", 1.0)
    return ledger


def _run_tiles(location: str, plan: list[Tile], crs: pyproj.CRS, workers: int,
               client: Any | None, tell: Callable[[str, float], None]) -> pd.DataFrame:
    """Measure every tile on the cluster; the rows of all tiles."""
    import dask.dataframe as dd
    import dask_geopandas  # noqa: F401  (registers the GeoDataFrame backend with dask)
    from distributed import as_completed

    wkt = crs.to_wkt()
    meta = {layer: _read_tile(location, layer, Tile(-1, (0.0, 0.0, 0.0, 0.0),
                                                    ((0.0, 0.0, -1.0, -1.0),)), wkt).iloc[:0]
            for layer in ("hazards", "releases")}
    boxes = gpd.GeoSeries([shapely.box(*t.bounds) for t in plan], crs=crs)
    parts = {}
    for layer in ("hazards", "releases"):
        ddf = dd.from_map(_read_tile, [location] * len(plan), [layer] * len(plan), plan,
                          [wkt] * len(plan), meta=meta[layer], enforce_metadata=False)
        ddf.spatial_partitions = boxes
        parts[layer] = ddf
    rows = parts["hazards"].map_partitions(_tile_rows, parts["releases"], meta=ROWS_META,
                                           align_dataframes=False)
    with (local_client(workers) if client is None else nullcontext(client)) as c:
        futures = c.compute(rows.to_delayed())
        results = []
        for done, future in enumerate(as_completed(futures), start=1):
            results.append(future.result())
            tell(f"tile {done} of {len(plan)} measured", 0.05 + 0.9 * done / len(plan))
    return pd.concat(results, ignore_index=True) if results else ROWS_META


def ledger_inputs(store: Store) -> tuple[Programme, pd.DataFrame, pd.DataFrame, pyproj.CRS]:
    """What a ledger needs besides geometry: programme, attributes, and its equal-area CRS.

    The CRS is the one :func:`planner.accounting.ledger_from_store` would choose (centred on
    the hazards' bounding boxes), so every engine measures in the same projection. Unknown
    release methods are refused here, before any geometry is read.
    """
    programme = store.programme()
    h_att = store.attributes("hazards", _HAZARD_COLUMNS)
    r_att = store.attributes("releases", _RELEASE_COLUMNS)
    basis = h_att if len(h_att) else r_att
    crs = (equal_area_crs(gpd.GeoSeries(shapely.box(basis["minx"], basis["miny"],
                                                     basis["maxx"], basis["maxy"]),
                                         crs=programme.pyproj_crs))
           if len(basis) else pyproj.CRS.from_epsg(6933))
    release_order(np.zeros(len(r_att), np.int64), r_att["method"].to_numpy(dtype=object),
                  np.arange(len(r_att)))
    return programme, h_att, r_att, crs


#: measures overlapping pairs again, given as store rows (hazard rows, release rows) [m²]
Remeasure = Callable[[np.ndarray, np.ndarray], np.ndarray]


def ledger_from_rows(eif: dt.date, crs: pyproj.CRS, h_att: pd.DataFrame,
                     r_att: pd.DataFrame, rows: pd.DataFrame,
                     remeasure: Remeasure | None = None) -> Ledger:
    """One ledger from measured rows keyed by store row (see :data:`ROWS_META`).

    Areas are summed per hazard piece, per release piece and per overlapping pair, so rows
    of several tiles (or of a database) combine exactly. Hazard pieces are disjoint and so
    are release pieces, so the overlaps of one piece cannot add up to more than its area;
    pairs where they do (:func:`planner.accounting.overlap_excess`) are given to
    ``remeasure``, if any, and a ledger whose overlaps still exceed their pieces is refused
    (:func:`planner.accounting.check_overlaps`).

    Examples
    --------
    A release piece of 10 m² said to overlap a hazard piece of 100 m² by 50 m², measured
    again as 10 m²:

    >>> att = pd.DataFrame({"row": [7], "hazard_id": ["H"], "recorded_on": ["2010-01-01"],
    ...                     "found_after_eif": [False], "status": ["CHA"],
    ...                     "release_id": ["R"], "released_on": ["2012-01-01"],
    ...                     "method": ["cleared"]})
    >>> rows = pd.DataFrame({"hazard_row": [7, -1, 7], "release_row": [-1, 7, 7],
    ...                      "area_m2": [100.0, 10.0, 50.0], "raw_area_m2": [0.0] * 3})
    >>> again = lambda h, r: print("again:", h, r) or np.array([10.0])
    >>> led = ledger_from_rows(dt.date(2011, 1, 1), pyproj.CRS(3035), att, att, rows, again)
    again: [7] [7]
    >>> led.pair_area_m2.tolist()
    [10.0]
    """
    # store rows are increasing, so a row's position is found by bisection
    h_rows, r_rows = h_att["row"].to_numpy(), r_att["row"].to_numpy()
    hr, rr = rows["hazard_row"].to_numpy(), rows["release_row"].to_numpy()
    area, raw = rows["area_m2"].to_numpy(), rows["raw_area_m2"].to_numpy()

    def per(rows_of: np.ndarray, keys: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(rows_of, keys), weights=weights,
                           minlength=len(rows_of))

    only_h, only_r = rr < 0, hr < 0
    pairs = (hr >= 0) & (rr >= 0)
    pair_sum = (pd.DataFrame({"h": np.searchsorted(h_rows, hr[pairs]),
                              "r": np.searchsorted(r_rows, rr[pairs]), "a": area[pairs]})
                .groupby(["h", "r"], sort=True)["a"].sum())
    pair_sum = pair_sum[pair_sum > 0]
    ph = pair_sum.index.get_level_values("h").to_numpy(dtype=np.int64)
    pr = pair_sum.index.get_level_values("r").to_numpy(dtype=np.int64)
    pa = pair_sum.to_numpy(dtype=float, copy=True)
    h_area, r_area = per(h_rows, hr[only_h], area[only_h]), per(r_rows, rr[only_r], area[only_r])
    if remeasure is not None:
        bad = np.flatnonzero(overlap_excess(ph, pr, pa, h_area, r_area))
        if len(bad):
            pa[bad] = remeasure(h_rows[ph[bad]], r_rows[pr[bad]])
            keep = pa > 0
            ph, pr, pa = ph[keep], pr[keep], pa[keep]
    check_overlaps(ph, pr, pa, h_area, r_area)

    return Ledger(
        eif=eif, crs=crs,
        hazard_ids=objects(h_att, "hazard_id"),
        hazard_day=_days(h_att["recorded_on"]) if len(h_att) else np.empty(0, np.int64),
        hazard_after=h_att["found_after_eif"].to_numpy(dtype=bool),
        hazard_status=objects(h_att, "status"), hazard_region=objects(h_att, "region"),
        hazard_area_m2=h_area, hazard_raw_area_m2=per(h_rows, hr[only_h], raw[only_h]),
        release_ids=objects(r_att, "release_id"),
        release_day=_days(r_att["released_on"]) if len(r_att) else np.empty(0, np.int64),
        release_method=r_att["method"].to_numpy(dtype=object),
        release_area_m2=r_area, release_raw_area_m2=per(r_rows, rr[only_r], raw[only_r]),
        pair_hazard=ph, pair_release=pr, pair_area_m2=pa,
    )


#: the ways a ledger can be built: in this process, tiled on a dask cluster, inside PostGIS
ENGINES = ("single", "dask", "postgis")


def ledger_with(store: Store, engine: str = "single", *, workers: int = 2,
                progress: Progress | None = None) -> Ledger:
    """Build a store's ledger with one of :data:`ENGINES`; all give the same figures.

    ``single`` is :func:`planner.accounting.ledger_from_store`; ``dask`` is
    :func:`ledger_partitioned` on a local cluster of ``workers`` processes; ``postgis`` is
    :func:`planner.postgis.ledger_in_database` with ``workers`` sessions (PostGIS stores only).

    Examples
    --------
    >>> ledger_with(None, "gpu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    planner.errors.InputError: engine 'gpu': use one of single, dask, postgis
    """
    from planner.accounting import ledger_from_store

    if engine == "single":
        return ledger_from_store(store, progress=progress)
    if engine == "dask":
        return ledger_partitioned(store, workers=workers, progress=progress)
    if engine == "postgis":
        from planner.postgis import PostGISStore, ledger_in_database

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
    from planner.accounting import status_direct

    ledger = ledger or ledger_with(store, engine, workers=workers, progress=progress)
    s = ledger.status(at)
    if not verify:
        return s
    direct = status_direct(store.read("hazards"), store.read("releases"), at, crs=ledger.crs)
    return replace(s, remaining_direct_m2=direct)
