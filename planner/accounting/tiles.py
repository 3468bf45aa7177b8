"""The tile engine: the ledger of a large programme built tile by tile on dask.

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

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from planner.accounting.ledger import Ledger
from planner.accounting.pieces import (
    Progress,
)
from planner.accounting.rows import ROWS_META, _tile_rows, ledger_from_rows, ledger_inputs
from planner.errors import InputError
from planner.layers import LayerName
from planner.store import Store, open_store

log = logging.getLogger(__name__)


log.addHandler(logging.NullHandler())


#: hazards per tile when the number of tiles is not given
HAZARDS_PER_TILE = 20_000


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
