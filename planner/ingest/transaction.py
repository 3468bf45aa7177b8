"""One file into a store, all or nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from planner.accounting.live import ledger_update
from planner.errors import (
    DuplicateImportError,
    InputError,
    Problem,
    TooLargeError,
    ValidationError,
)
from planner.ingest.options import IngestOptions, StoreFacts, store_facts
from planner.ingest.prepare import prepare
from planner.io import formats
from planner.io.readers import read_file, sha256_of
from planner.layers import ID_COLUMN, LayerName
from planner.store import ImportRecord, Retraction, Store

log = logging.getLogger(__name__)


log.addHandler(logging.NullHandler())


@dataclass
class IngestResult:
    """What an import produced: the features as stored, and what was noticed on the way."""

    import_id: int
    features: gpd.GeoDataFrame
    problems: list[Problem]
    record: ImportRecord
    #: features set aside (``IngestOptions.set_aside``), as read, with ``planner_problems``
    set_aside: gpd.GeoDataFrame | None = None
    #: releases a re-survey made of the land it dropped (``ingest_resurvey``)
    derived: gpd.GeoDataFrame | None = None

    @property
    def warnings(self) -> list[Problem]:
        """Repairs and warnings (an import that landed has no errors)."""
        return [p for p in self.problems if p.severity != "error"]


def ingest(store: Store, kind: LayerName, path: str | Path,
           options: IngestOptions | None = None, replaces: Retraction | None = None
           ) -> IngestResult:
    """Read, check and add one file to a store, all or nothing.

    Parameters
    ----------
    store : Store
        Where the features go.
    kind : {"hazards", "releases"}
        Which layer.
    path : str or Path
        The survey file.
    options : IngestOptions
        How to read it.
    replaces : Retraction, optional
        An import this file corrects: it is retracted in the same transaction as this file
        lands (see :func:`retract_import`), so either both happen or neither.

    Returns
    -------
    IngestResult

    Raises
    ------
    DuplicateImportError
        The same file was imported before.
    CRSMissingError, ValidationError, InputError
        With the reason and the fix; the store is unchanged.
    """
    options = options or IngestOptions()
    path = Path(path)
    digest, raw = read_new_file(store, path, options)
    programme = store.programme()
    try:
        features, problems = prepare(raw, kind, programme, source=path.name, options=options,
                                     facts=_facts(store, kind, replaces))
    except ValidationError as exc:
        _raise_if_landed_meanwhile(store, digest, kind, path.name, exc)
        raise
    record = import_record(kind, path, digest, raw, options, features, problems)
    try:
        import_id = store.add(kind, features, record, update=ledger_update, replaces=replaces,
                              rejected=features.attrs.get("set_aside"))
    except InputError as exc:   # ids taken by an import that landed while this one was read
        _raise_if_landed_meanwhile(store, digest, kind, path.name, exc)
        raise
    features["import_id"] = import_id
    return IngestResult(import_id=import_id, features=features, problems=problems,
                        record=record, set_aside=features.attrs.pop("set_aside", None))


def read_new_file(store: Store, path: Path, options: IngestOptions
                  ) -> tuple[str, gpd.GeoDataFrame]:
    """The sha256 and the features of a file not imported yet, within the limits, or why not.
    """
    formats.check_local_path(path, path.name)
    if not path.exists():
        raise InputError(f"{path}: no such file.", argument="file")
    digest = sha256_of(path)
    previous = store.find_import(digest)
    if previous is not None:
        raise DuplicateImportError(
            f"{path.name}: this file was already imported into {previous['layer']} on "
            f"{previous['imported_at']} (import {previous['import_id']}, as "
            f"{previous['file_name']}); nothing was added.")
    raw = read_file(path, layer=options.layer, limits=options.archive_limits,
                    encoding=options.encoding)
    if len(raw) == 0:
        raise InputError(f"{path.name}: the file has no features; nothing was imported.",
                         argument="file")
    if options.max_vertices is not None:
        vertices = int(shapely.get_num_coordinates(np.asarray(raw.geometry.values)).sum())
        if vertices > options.max_vertices:
            raise TooLargeError(
                f"{path.name}: {vertices:,} vertices, more than the limit of "
                f"{options.max_vertices:,}; nothing was imported. Split the file, or simplify "
                "the polygons in your GIS (a tolerance of 0.5 m keeps every survey detail).")
    return digest, raw


def import_record(kind: LayerName, path: Path, digest: str, raw: gpd.GeoDataFrame,
                  options: IngestOptions, features: gpd.GeoDataFrame,
                  problems: list[Problem]) -> ImportRecord:
    """What the store keeps of one file."""
    return ImportRecord(
        layer=kind, file_name=path.name, sha256=digest,
        crs_read=raw.crs.to_string() if raw.crs is not None else None,
        crs_given=options.crs, rows=len(features), warnings=[str(p) for p in problems],
        imported_at=dt.datetime.now(dt.UTC))


def _facts(store: Store, kind: LayerName, replaces: Retraction | None) -> StoreFacts:
    """The store's facts; the ids of an import being replaced are free for its correction."""
    facts = store_facts(store, kind)
    if replaces is None:
        return facts
    freed = set(store.read(kind, import_id=replaces.import_id)[ID_COLUMN[kind]].astype(str))
    asked = facts.taken_among
    return replace(facts, taken_among=None if asked is None
                   else (lambda ids: asked(ids) - freed))


def _raise_if_landed_meanwhile(store: Store, digest: str, kind: str, name: str,
                               exc: Exception) -> None:
    """Report a concurrent upload of the very same file as a duplicate, not as id clashes."""
    landed = store.find_import(digest)
    if landed is not None:
        raise DuplicateImportError(
            f"{name}: the same file was imported into {kind} a moment ago (import "
            f"{landed['import_id']}); nothing was added.") from exc


def retract_import(store: Store, import_id: int, *, reason: str, by: str) -> dict[str, Any]:
    """Take an import out of every figure from now on, keeping its features and a trail.

    Its features move to the store's archive layers (``hazards_retracted``,
    ``releases_retracted``), its ``imports`` row records when, by whom and why, and the
    stored ledger is updated in the same transaction. Nothing is deleted: figures "as
    known on" an earlier date still count it.

    Raises
    ------
    InputError
        No reason given, or the import was retracted already.
    NotFoundError
        No such import.

    Examples
    --------
    >>> import tempfile, pathlib, datetime as dt
    >>> from planner.demo import build_demo_store
    >>> st = build_demo_store(pathlib.Path(tempfile.mkdtemp()) / "demo.gpkg")
    >>> retract_import(st, 4, reason="wrong team's file", by="ana")["features"]
    219
    """
    if not reason or not reason.strip():
        raise InputError("say why the import is retracted (--reason): the reason is kept "
                         "with the record", argument="reason")
    return store.retract(import_id, reason=reason.strip(), by=by, update=ledger_update)
