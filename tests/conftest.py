"""Shared fixtures: tiny hand-made polygons whose answers are known on paper.

Polygons are drawn in ETRS89-LAEA (EPSG:3035), an equal-area CRS, so a 100 m square drawn there
really is 10,000 m² of ground and the paper answers are exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from shapely import box

from planner.programme import Programme
from planner.store import Store, create_store

DATA = Path(__file__).parent / "data"
AMSTERDAM = DATA / "amsterdam-uxo"
EIF = dt.date(2011, 8, 1)
X0, Y0 = 4_321_000.0, 3_210_000.0  # a spot in ETRS89-LAEA (Germany)


def sq(x: float, y: float, size: float = 100.0) -> shapely.Polygon:
    """A square of ``size`` metres with its lower-left corner at (X0 + x, Y0 + y)."""
    return box(X0 + x, Y0 + y, X0 + x + size, Y0 + y + size)


def hazards_frame(geoms: Sequence[Any], dates: Sequence[dt.date] | None = None,
                  *, crs: Any = 3035, **cols: Sequence[Any]) -> gpd.GeoDataFrame:
    n = len(geoms)
    dates = list(dates) if dates is not None else [dt.date(2010, 1, 1)] * n
    data = {"hazard_id": [f"H{i + 1}" for i in range(n)], "status": ["CHA"] * n,
            "recorded_on": dates, "found_after_eif": [d > EIF for d in dates],
            "region": ["North"] * n}
    data.update({k: list(v) for k, v in cols.items()})
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)


def releases_frame(geoms: Sequence[Any], dates: Sequence[dt.date], methods: Sequence[str],
                   *, crs: Any = 3035) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"release_id": [f"R{i + 1}" for i in range(len(geoms))],
                             "method": list(methods), "released_on": list(dates)},
                            geometry=list(geoms), crs=crs)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, *, tries: int, pause_s: float) -> bool:
    """Whether ``url``/health answered 200 within ``tries`` attempts ``pause_s`` apart."""
    import time

    import httpx

    for _ in range(tries):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(pause_s)
    return False


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., Store]:
    def make(crs: str = "EPSG:3035", eif: dt.date = EIF, name: str = "test.gpkg") -> Store:
        return create_store(tmp_path / name, Programme("Test programme", eif, crs))
    return make


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    from planner.demo import build_demo_store

    return build_demo_store(tmp_path_factory.mktemp("demo") / "demo.gpkg")


# -- artefacts and the headless browser ------------------------------------------------------
ARTEFACTS = Path(__file__).resolve().parent.parent / "artefacts"
ARTEFACTS.mkdir(exist_ok=True)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium_path() -> str | None:
    """Debian's Chromium (``apt-get install chromium``), or $PLANNER_CHROMIUM."""
    import os
    import shutil

    return os.environ.get("PLANNER_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless-capable Chromium; the test skips loudly when there is none."""
    path = chromium_path()
    if path is None:
        pytest.skip("NO CHROMIUM: browser tests did not run. Install it with "
                    "`apt-get install chromium` (scripts/test.sh does this) or set "
                    "PLANNER_CHROMIUM to its path.")
    return path


def screenshot(chromium: str, page: Path, out: Path, size: str = "1200,2400") -> Path:
    """Render ``page`` in headless Chromium and save a PNG screenshot as ``out``."""
    import subprocess
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                        f"--window-size={size}", f"--screenshot={out}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
    return out


# -- both store back ends --------------------------------------------------------------------
POSTGRES_ENV = "PLANNER_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    """URL of the throwaway PostgreSQL/PostGIS cluster scripts/test.sh starts, if any."""
    import os

    return os.environ.get(POSTGRES_ENV) or None


def new_postgis_database(admin_url: str) -> str:
    """A fresh, empty database on the test cluster; returns its URL."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["gpkg", "postgis"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Store]:
    """Like ``make_store``, once with a GeoPackage and once with a PostGIS store."""
    kind = request.param
    admin = postgres_url()
    if kind == "postgis" and admin is None:
        pytest.skip(f"NO POSTGRESQL: PostGIS store tests did not run. Set {POSTGRES_ENV} or run "
                    "scripts/test.sh, which starts a throwaway cluster.")

    def make(crs: str = "EPSG:3035", eif: dt.date = EIF, name: str = "test.gpkg") -> Store:
        programme = Programme("Test programme", eif, crs)
        if kind == "gpkg":
            return create_store(tmp_path / name, programme)
        assert admin is not None
        return create_store(new_postgis_database(admin), programme)
    return make


def fill_store(store: Store, hazards: gpd.GeoDataFrame, releases: gpd.GeoDataFrame,
               tag: str = "", replaces: Any = None) -> Store:
    """Write hand-made frames straight into a store (as two imports), in the store CRS.

    The stored ledger is kept live, as ``planner ingest`` keeps it; ``tag`` tells the
    imports of several calls apart.
    """
    import pandas as pd

    from planner.accounting.live import ledger_update
    from planner.store import ImportRecord

    crs = store.programme().crs
    for layer, frame in (("hazards", hazards), ("releases", releases)):
        if frame.empty:
            continue
        frame = frame.to_crs(crs)
        frame = frame.assign(
            geometry=[g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])
                      for g in frame.geometry],
            source_file=f"{layer}.gpkg", import_id=0)
        for name in ("region", "munition_type", "hazard_id", "organisation",
                     "items_destroyed", "depth_cm"):
            if name not in frame.columns:
                frame[name] = pd.Series([None] * len(frame), dtype=object)
        store.add(layer, frame, ImportRecord(layer, f"{layer}{tag}.gpkg", f"sha-{layer}{tag}",
                                             None, None, len(frame), [],
                                             dt.datetime(2024, 1, 1)), update=ledger_update,
                  replaces=replaces)
    return store
