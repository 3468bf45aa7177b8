"""What every store offers (the :class:`Store` protocol), and the row helpers both back ends share.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from planner.errors import (
    InputError,
)
from planner.layers import COLUMNS, Column, LayerName
from planner.programme import Programme


@dataclass(frozen=True)
class ImportRecord:
    """What the store remembers of one ingested file."""

    layer: str
    file_name: str
    sha256: str
    crs_read: str | None
    crs_given: str | None
    rows: int
    warnings: list[str]
    imported_at: dt.datetime
    import_id: int | None = None   # set only when copying a store, to keep its history


class Store(Protocol):
    """What every store back end offers. Core code depends on this and nothing else."""

    location: str

    def programme(self) -> Programme:
        """The programme settings."""
        ...

    def set_settings(self, settings: dict[str, Any]) -> None:
        """Replace the programme's free-form settings (extensions, overrides)."""
        ...

    def read(self, layer: LayerName, crs: pyproj.CRS | None = None,
             import_id: int | None = None) -> gpd.GeoDataFrame:
        """All features of ``hazards`` or ``releases``, in the store CRS or in ``crs``.

        With ``crs`` the geometries are reprojected as they are read, so a large layer is
        never held twice. With ``import_id``, only the features of that import.
        """
        ...

    def attributes(self, layer: LayerName, columns: Sequence[str]) -> pd.DataFrame:
        """Some attribute columns of every feature, without geometry, in store order.

        The frame also has ``row`` (the feature's key in the store, increasing in store
        order) and its bounding box ``minx``, ``miny``, ``maxx``, ``maxy`` in the store CRS:
        what a partitioned computation needs to plan its tiles without reading geometry.
        """
        ...

    def read_window(self, layer: LayerName, bounds: tuple[float, float, float, float],
                    crs: pyproj.CRS | None = None) -> gpd.GeoDataFrame:
        """The features whose bounding box meets ``bounds`` (store CRS), with ``row``.

        Uses the spatial index; may return a few features just outside (the index stores
        rounded boxes), never fewer. Ordered by ``row``; reprojected to ``crs`` if given.
        """
        ...

    def imports(self) -> pd.DataFrame:
        """One row per imported file."""
        ...

    def find_import(self, sha256: str) -> dict[str, Any] | None:
        """The import record of a file already imported, else None."""
        ...

    def ids(self, layer: LayerName) -> set[str]:
        """Ids already used in a layer."""
        ...

    def add(self, layer: LayerName, features: gpd.GeoDataFrame, record: ImportRecord) -> int:
        """Add the features of one file and its import record, all or nothing.

        Returns the new ``import_id``.
        """
        ...

    def add_user(self, name: str, role: str, token_sha256: str) -> None:
        """Record a user of the web service with the hash of their token."""
        ...

    def users(self) -> list[dict[str, Any]]:
        """Users (name, role, created_at); never their token hashes."""
        ...

    def user_by_token(self, token_sha256: str) -> dict[str, Any] | None:
        """The user whose token has this hash, else None."""
        ...

    def remove_user(self, name: str) -> bool:
        """Remove a user; False if there was none of that name."""
        ...

    def version(self) -> tuple[int, int]:
        """Changes whenever features are added: (number of imports, last import id)."""
        ...


def frame_from_rows(layer: LayerName, batches: Iterable[Sequence[Any]],
                    wkb_of: Callable[[Any], bytes], source: pyproj.CRS,
                    crs: pyproj.CRS | None = None,
                    plain: Callable[[Any], Any] = lambda v: v,
                    with_row: bool = False) -> gpd.GeoDataFrame:
    """A layer's GeoDataFrame from batches of rows ``(geometry, *columns)`` of any back end.

    Batch by batch, so that only one batch of raw rows is alive at a time; with ``crs`` each
    batch is reprojected as it comes, so a large layer is never held twice. With
    ``with_row`` each row ends with the feature's store key, returned as column ``row``.
    """
    columns = COLUMNS[layer] + ((Column("row", "int"),) if with_row else ())
    target = source if crs is None else pyproj.CRS.from_user_input(crs)
    reproject = not pyproj.CRS.from_user_input(source).is_exact_same(target)
    chunks: list[np.ndarray] = []
    values: list[list[Any]] = [[] for _ in columns]
    for rows in batches:
        chunk = shapely.from_wkb([wkb_of(r[0]) for r in rows])
        if reproject:
            chunk = np.asarray(gpd.GeoSeries(chunk, crs=source).to_crs(target).values)
        chunks.append(chunk)
        for i, column_values in enumerate(values):
            column_values.extend(plain(r[i + 1]) for r in rows)
    geoms: Any = np.concatenate(chunks) if chunks else []
    data = {c.name: _column_values(c, v) for c, v in zip(columns, values, strict=True)}
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=target), crs=target)


def _columns_of(layer: LayerName, names: Sequence[str]) -> list[Column]:
    known = {c.name: c for c in COLUMNS[layer]}
    missing = [n for n in names if n not in known]
    if missing:
        raise InputError(f"{layer} have no column(s) {', '.join(missing)}; use "
                         f"{', '.join(known)}")
    return [known[n] for n in names]


def attribute_frame(columns: Sequence[Column], rows: Sequence[Any], boxes: np.ndarray,
                    values: Sequence[list[Any]]) -> pd.DataFrame:
    """The frame :meth:`Store.attributes` returns, from raw values of any back end."""
    df = pd.DataFrame({"row": np.asarray(rows, dtype=np.int64),
                       "minx": boxes[:, 0], "miny": boxes[:, 1],
                       "maxx": boxes[:, 2], "maxy": boxes[:, 3]})
    for c, v in zip(columns, values, strict=True):
        df[c.name] = _column_values(c, v)
    return df


def sql_rows(columns: Sequence[Column], features: pd.DataFrame, import_id: int
             ) -> list[tuple[Any, ...]]:
    """The attribute values of each feature as SQL values, column by column (fast)."""
    values = [[import_id] * len(features) if c.name == "import_id"
              else [_sql_value(c, v) for v in features[c.name].tolist()] for c in columns]
    return list(zip(*values, strict=True)) if values else []


def _sql_value(column: Column, v: Any) -> Any:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if column.kind == "date":
        return pd.Timestamp(v).date().isoformat()
    if column.kind == "bool":
        return int(bool(v))
    if column.kind == "int":
        return int(v)
    if column.kind == "float":
        return float(v)
    return str(v)


def _column_values(column: Column, values: list[Any]) -> Any:
    if column.kind == "date":
        return pd.to_datetime(pd.Series(values, dtype="object"), format="ISO8601")
    if column.kind == "bool":
        return pd.Series(values, dtype="object").astype(bool)
    if column.kind == "int":
        return pd.array(values, dtype="Int64")
    if column.kind == "float":
        return pd.array(values, dtype="Float64")
    return pd.Series(values, dtype="object")
