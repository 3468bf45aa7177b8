from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely

from planner.errors import DuplicateImportError, InputError, StoreError, StoreNotFoundError
from planner.store import ImportRecord, Store, open_store

from .conftest import hazards_frame, sq


def record(sha: str = "abc", rows: int = 2) -> ImportRecord:
    return ImportRecord("hazards", "f.gpkg", sha, None, None, rows, [],
                        dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


def multi(frame):  # type: ignore[no-untyped-def]
    frame = frame.copy()
    frame["geometry"] = [shapely.MultiPolygon([g]) for g in frame.geometry]
    frame["source_file"] = "f.gpkg"
    frame["munition_type"] = None
    frame["import_id"] = 0
    return frame


def test_store_opens_in_gdal_as_ordinary_layers_with_spatial_index(
        make_store: Callable[..., Store]) -> None:
    store = make_store()
    store.add("hazards", multi(hazards_frame([sq(0, 0), sq(500, 0)])), record())
    path = Path(store.location)
    layers = dict(pyogrio.list_layers(path))
    assert layers["hazards"] == "MultiPolygon" and layers["releases"] == "MultiPolygon"
    assert "imports" in layers and "programme" in layers
    info = pyogrio.read_info(path, layer="hazards")
    assert info["crs"] == "EPSG:3035" and info["features"] == 2
    assert info["capabilities"]["fast_spatial_filter"]  # the R-tree is there and used
    b = sq(500, 0).bounds
    hit = pyogrio.read_dataframe(path, layer="hazards", bbox=(b[0] + 1, b[1] + 1, b[2], b[3]))
    assert list(hit["hazard_id"]) == ["H2"]
    assert str(info["dtypes"][list(info["fields"]).index("recorded_on")]).startswith(
        "datetime64")


def test_round_trip_keeps_ids_dates_and_geometry(make_store: Callable[..., Store]) -> None:
    store = make_store()
    frame = multi(hazards_frame([sq(0, 0)], [dt.date(2012, 2, 29)]))
    store.add("hazards", frame, record())
    got = store.read("hazards")
    assert got["recorded_on"].iloc[0].date() == dt.date(2012, 2, 29)
    assert got.geometry.iloc[0].equals(frame.geometry.iloc[0])
    assert bool(got["found_after_eif"].iloc[0]) is True


def test_a_failing_import_leaves_nothing(make_store: Callable[..., Store]) -> None:
    store = make_store()
    store.add("hazards", multi(hazards_frame([sq(0, 0)])), record("one", 1))
    clash = multi(hazards_frame([sq(0, 0), sq(200, 0)]))  # H1 exists already
    with pytest.raises(InputError, match=r"already used in hazards.*nothing was added"):
        store.add("hazards", clash, record("two"))
    assert len(store.read("hazards")) == 1 and len(store.imports()) == 1
    with pytest.raises(DuplicateImportError):
        store.add("hazards", multi(hazards_frame([sq(900, 0)])).assign(hazard_id=["Z"]),
                  record("one", 1))
    assert len(store.read("hazards")) == 1


def test_missing_and_foreign_stores(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="planner init"):
        open_store(tmp_path / "nope.gpkg")
    other = tmp_path / "other.gpkg"
    hazards_frame([sq(0, 0)]).to_file(other, engine="pyogrio")
    with pytest.raises(StoreError, match="planner init"):
        open_store(other)


def test_settings_round_trip(make_store: Callable[..., Store]) -> None:
    store = make_store()
    store.set_settings({"extensions": [{"years": 5}]})
    assert store.programme().settings == {"extensions": [{"years": 5}]}


def test_read_can_reproject_as_it_reads(demo_store: Store) -> None:
    from planner.areas import equal_area_crs

    stored = demo_store.read("releases")
    crs = equal_area_crs(stored)
    read = demo_store.read("releases", crs=crs)
    assert read.crs.is_exact_same(crs)
    expected = stored.to_crs(crs)
    assert len(read) == len(stored)
    assert shapely.equals_exact(np.asarray(read.geometry.values),
                                np.asarray(expected.geometry.values), tolerance=1e-6).all()
    assert (read["release_id"] == stored["release_id"]).all()
