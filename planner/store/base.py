"""What every store offers (the :class:`Store` protocol), and the row helpers both back ends share.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from planner.errors import InputError, NotFoundError, StoreError
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


@dataclass(frozen=True)
class Retraction:
    """An import to take out of the records, by whom and why."""

    import_id: int
    reason: str
    by: str


@dataclass
class LedgerRows:
    """Rows of the stored ledger: the area of each feature's piece, and their overlaps [m²].

    Keyed by the features' store keys (``row``: the ``fid`` of ``hazards`` and
    ``releases``). A whole ledger (from a cold build) or the part an import recomputed: the
    features of the closure it touched, whose rows replace theirs.
    """

    hazard_row: np.ndarray
    hazard_area_m2: np.ndarray
    hazard_raw_area_m2: np.ndarray
    release_row: np.ndarray
    release_area_m2: np.ndarray
    release_raw_area_m2: np.ndarray
    pair_hazard_row: np.ndarray
    pair_release_row: np.ndarray
    pair_area_m2: np.ndarray

    @classmethod
    def empty(cls) -> LedgerRows:
        """No rows at all."""
        i, f = np.empty(0, np.int64), np.empty(0, float)
        return cls(i, f, f, i, f, f, i, i, f)


@dataclass(frozen=True)
class StoredLedger:
    """The stored ledger as read: attributes of every feature with its rows, no geometry.

    ``hazards`` has ``row``, ``hazard_id``, ``status``, ``recorded_on``,
    ``found_after_eif``, ``region``, ``area_m2``, ``raw_area_m2`` and ``changed_by`` (the
    import that last recomputed the row; 0 for a cold build); ``releases`` likewise with
    ``release_id``, ``method``, ``released_on``; ``overlaps`` has ``hazard_row``,
    ``release_row`` and ``area_m2``. All ordered by ``row``.
    """

    crs: pyproj.CRS
    hazards: pd.DataFrame
    releases: pd.DataFrame
    overlaps: pd.DataFrame
    #: changes with every cold build: rows read since one cannot patch rows read before it
    generation: str = ""
    #: None: the whole ledger; else only the rows changed by imports after this one
    since: int | None = None

    @property
    def last_change(self) -> int:
        """The latest import whose update these rows include (0: none)."""
        return int(max(self.hazards["changed_by"].max() if len(self.hazards) else 0,
                       self.releases["changed_by"].max() if len(self.releases) else 0))


class Neighbourhood(Protocol):
    """What a ledger update may read inside the import's own transaction."""

    #: the CRS the stored ledger measures in (None until the first feature is measured)
    ledger_crs: pyproj.CRS | None
    #: the store CRS, in which :meth:`near` takes boxes and returns geometries
    store_crs: pyproj.CRS

    def near(self, layer: LayerName, boxes: np.ndarray) -> gpd.GeoDataFrame:
        """The features whose bounding box meets one of ``boxes`` (n × minx, miny, maxx, maxy).

        With the column ``row``, ordered by it, features of this very import included.
        """
        ...

    def by_row(self, layer: LayerName, rows: np.ndarray) -> gpd.GeoDataFrame:
        """The features of these store keys, with the column ``row``, ordered by it."""
        ...


@dataclass(frozen=True)
class LedgerChange:
    """What a ledger update computed: rows to replace, their CRS, the land they cover.

    ``boxes`` are the bounding boxes (store CRS, padded) of every feature whose rows were
    measured: an import that lands elsewhere cannot change these rows.
    """

    rows: LedgerRows
    crs: pyproj.CRS
    boxes: np.ndarray
    #: keys of features taken out (a retraction), per layer: their rows are deleted
    gone: dict[str, np.ndarray] = field(default_factory=dict)

    def shifted(self, layer: LayerName, first: int, offset: int) -> LedgerChange:
        """The same change with the keys ``>= first`` of ``layer`` moved by ``offset``."""
        r = self.rows
        if layer == "hazards":
            h = np.where(r.hazard_row >= first, r.hazard_row + offset, r.hazard_row)
            ph = np.where(r.pair_hazard_row >= first, r.pair_hazard_row + offset,
                          r.pair_hazard_row)
            rows = replace(r, hazard_row=h, pair_hazard_row=ph)
        else:
            x = np.where(r.release_row >= first, r.release_row + offset, r.release_row)
            pr = np.where(r.pair_release_row >= first, r.pair_release_row + offset,
                          r.pair_release_row)
            rows = replace(r, release_row=x, pair_release_row=pr)
        return LedgerChange(rows, self.crs, self.boxes, self.gone)


#: Features taken out of the live layers (a retraction): their layer and the features as they
#: were, with ``row``.
Removed = tuple[LayerName, gpd.GeoDataFrame]

#: Called by :meth:`Store.add` (and :meth:`Store.retract`) with the layer and the store keys
#: of the new features, a :class:`Neighbourhood` in which they are visible, and the features
#: taken out if any: the :class:`LedgerChange` to write.
LedgerUpdate = Callable[[Neighbourhood, LayerName, np.ndarray, Removed | None], LedgerChange]


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
             import_id: int | None = None, retracted: bool = False,
             with_row: bool = False) -> gpd.GeoDataFrame:
        """All features of ``hazards`` or ``releases``, in the store CRS or in ``crs``.

        With ``crs`` the geometries are reprojected as they are read, so a large layer is
        never held twice. With ``import_id``, only the features of that import. With
        ``with_row``, each feature's store key in the column ``row`` (read in the same
        query). With ``retracted``, the features of retracted imports instead, each with
        ``row``, the key it had when live.
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

    def ids_in(self, layer: LayerName, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` a layer uses already (one query, whatever the layer's size)."""
        ...

    def summary(self, layer: LayerName
                ) -> tuple[dt.date | None, tuple[float, float, float, float] | None]:
        """The layer's earliest date and its bounds (store CRS), from indexes: no feature read.
        """
        ...

    def add(self, layer: LayerName, features: gpd.GeoDataFrame, record: ImportRecord,
            update: LedgerUpdate | None = None, replaces: Retraction | None = None,
            derived: gpd.GeoDataFrame | None = None,
            rejected: gpd.GeoDataFrame | None = None) -> int:
        """Add the features of one file and its import record, all or nothing.

        With ``rejected`` (features set aside by the checks, as read, with
        ``planner_problems``), those are kept in the store's ``rejected`` layer under the same
        import, to be fixed in QGIS. New hazards may not take an id in use. With ``derived``
        (releases, possibly none) the hazards are later versions of hazards in the store (a
        re-survey): their ids repeat, and the releases (the land the re-survey dropped) land
        in the same transaction under the same import.

        With ``replaces``, that import is retracted in the same transaction (as by
        :meth:`retract`), so a corrected file takes its place at once or not at all.

        With ``update``, a store whose ledger is live calls it inside the same transaction
        and writes the rows it returns, so figures never lag the features. Without it (a
        copy), a live ledger is dropped: it would no longer match the features.
        Returns the new ``import_id``.
        """
        ...

    def retract(self, import_id: int, *, reason: str, by: str,
                update: LedgerUpdate | None = None) -> dict[str, Any]:
        """Take an import out of every figure from now on; nothing is deleted.

        Its features move to the archive layers (``hazards_retracted``,
        ``releases_retracted``) and its ``imports`` row records when, by whom and why; a
        live ledger is updated by ``update`` in the same transaction. Returns what was
        retracted (import id, layer, file name, features, retracted_at/by, reason).

        Raises
        ------
        NotFoundError
            No such import.
        InputError
            The import was retracted already.
        """
        ...

    def upgrade(self) -> list[str]:
        """Bring a store made by an older planner to today's schema; what was done."""
        ...

    def record_document(self, entry: dict[str, Any]) -> int:
        """Keep what a document was drawn from (see :data:`DOCUMENT_COLUMNS`); its id."""
        ...

    def documents(self) -> pd.DataFrame:
        """The documents drawn from this store, oldest first (one row each)."""
        ...

    def ledger_state(self) -> tuple[bool, pyproj.CRS | None]:
        """Whether the stored ledger is live, and the CRS it measures in (None: not chosen)."""
        ...

    def read_ledger(self, since: int | None = None) -> StoredLedger | None:
        """The stored ledger with the features' attributes (no geometry); None if none.

        With ``since`` (an import id), only the rows imports after it changed: the features
        they recomputed and every overlap of those features.
        """
        ...

    def write_ledger(self, rows: LedgerRows, crs: pyproj.CRS, version: tuple[int, int]
                     ) -> bool:
        """Replace the whole stored ledger, if the store is still at ``version``.

        Returns False, having written nothing, when an import landed meanwhile.
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


def ledger_meta(crs: pyproj.CRS | None, live: bool = True) -> str:
    """The programme-table value saying whether the ledger is live, and its CRS, as JSON.

    A ledger that is no longer live keeps its CRS, so that rebuilding it gives the figures
    it gave before.
    """
    return json.dumps({"crs": None if crs is None else crs.to_wkt(), "live": live})


def ledger_state_of(value: str | None) -> tuple[bool, pyproj.CRS | None]:
    """The inverse of :func:`ledger_meta` (None: no ``ledger`` entry, no live ledger)."""
    if value is None:
        return False, None
    meta = json.loads(value)
    crs = meta.get("crs")
    return bool(meta.get("live", True)), None if crs is None else pyproj.CRS.from_wkt(crs)


def ledger_frames(hazards: pd.DataFrame, releases: pd.DataFrame, overlaps: pd.DataFrame,
                  crs: pyproj.CRS, location: str, generation: str = "",
                  since: int | None = None) -> StoredLedger:
    """A :class:`StoredLedger` from frames as read by either back end (types made plain).

    Refuses a stored ledger that misses the rows of some feature: it would under-count.
    """
    missing = int(hazards["area_m2"].isna().sum() + releases["area_m2"].isna().sum())
    if missing:
        raise StoreError(f"{location}: the stored ledger has no rows for {missing} feature(s); "
                         f"rebuild it with `planner rebuild-ledger {location}`.")
    # the same types whichever way the rows were read (SQLite rows, GDAL's Arrow stream)
    for frame, date in ((hazards, "recorded_on"), (releases, "released_on")):
        frame[date] = pd.to_datetime(frame[date], format="ISO8601").astype("datetime64[us]")
        for col in ("hazard_id", "status", "region", "release_id", "method"):
            if col in frame.columns:
                frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
        for col in ("row", "changed_by"):
            frame[col] = frame[col].astype(np.int64)
        for col in ("area_m2", "raw_area_m2"):
            frame[col] = frame[col].astype(float)
    hazards["found_after_eif"] = hazards["found_after_eif"].astype(bool)
    overlaps = overlaps.astype({"hazard_row": np.int64, "release_row": np.int64,
                                "area_m2": float})
    return StoredLedger(crs=crs, hazards=hazards, releases=releases, overlaps=overlaps,
                        generation=generation, since=since)


#: the table of each layer's rows in the stored ledger
PIECE_TABLE = {"hazards": "ledger_hazards", "releases": "ledger_releases"}


def ledger_queries(since: str | None) -> tuple[dict[str, str], str]:
    """The SQL that reads the stored ledger: one query per layer, and the overlaps' query.

    ``since`` is the back end's placeholder for an import id (``?``, ``:since``): only the
    rows that later imports changed are read. Both back ends run the same SQL.
    """
    columns = {"hazards": "hazard_id, status, recorded_on, found_after_eif, region",
               "releases": "release_id, method, released_on"}
    join, changed = ("LEFT JOIN", "") if since is None else ("JOIN",
                                                             f" WHERE l.changed_by > {since}")
    layers = {layer: f"SELECT t.fid + 0 AS row, {cols}, l.area_m2, l.raw_area_m2, l.changed_by "
                     f"FROM {layer} t {join} {PIECE_TABLE[layer]} l ON l.fid = t.fid{changed} "
                     "ORDER BY t.fid" for layer, cols in columns.items()}
    pairs = "" if since is None else (
        f" WHERE hazard_fid IN (SELECT fid FROM ledger_hazards WHERE changed_by > {since}) OR "
        f"release_fid IN (SELECT fid FROM ledger_releases WHERE changed_by > {since})")
    return layers, ("SELECT hazard_fid AS hazard_row, release_fid AS release_row, area_m2 "
                    f"FROM ledger_overlaps{pairs}")


def check_retractable(import_id: int, row: Sequence[Any] | None, same_layer: str | None
                      ) -> tuple[LayerName, str]:
    """(layer, file name) of an import that can be retracted, else the reason why not.

    ``row`` is the import's (layer, file_name, retracted_at); ``same_layer``, when a file
    replaces the import, the layer that file goes to.
    """
    if row is None:
        raise NotFoundError(f"there is no import {import_id} in this store; `planner imports` "
                            "lists them", argument="import_id")
    layer, name, already = row
    if already is not None:
        raise InputError(f"import {import_id} ({name}) was retracted already, on {already}",
                         argument="import_id")
    if same_layer is not None and layer != same_layer:
        raise InputError(f"import {import_id} ({name}) holds {layer}; a file of {same_layer} "
                         "cannot replace it", argument="import_id")
    return ("hazards" if layer == "hazards" else "releases"), str(name)


#: What the store keeps of each document drawn from it: enough to draw it again.
DOCUMENT_COLUMNS = ("kind", "drawn_at", "store_version", "arguments", "figures",
                    "figures_sha256", "file_name")


def rejected_rows(layer: str, frame: gpd.GeoDataFrame, crs: pyproj.CRS, import_id: int
                  ) -> list[tuple[Any, ...]]:
    """Rows of the ``rejected`` layer: (WKB or None, layer, import, row, problems, attributes).

    Geometries are reprojected to the store CRS when they can be; the attributes are kept as
    JSON text, as read, so nothing of the feature is lost.
    """
    geoms = frame.geometry
    if frame.crs is not None and not pyproj.CRS(frame.crs).equals(crs):
        geoms = geoms.to_crs(crs)
    attrs = frame.drop(columns=[frame.geometry.name, "planner_problems", "planner_row"],
                       errors="ignore")
    out = []
    for i, g in enumerate(geoms):
        record = {str(k): (None if v is None or (not isinstance(v, str) and pd.isna(v))
                           else str(v)) for k, v in attrs.iloc[i].items()}
        out.append((None if g is None else shapely.to_wkb(g, flavor="iso"), layer, import_id,
                    int(frame["planner_row"].iloc[i]), str(frame["planner_problems"].iloc[i]),
                    json.dumps(record, ensure_ascii=False)))
    return out
