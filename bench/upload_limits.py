"""How long the service lets a ~5-million-vertex upload run before it refuses it.

Builds, on the fly, a zipped shapefile of ``--polygons`` round polygons holding ``--vertices``
vertices in all (just under the default ``PLANNER_MAX_VERTICES`` of 5 million, so the vertex
check lets it through), serves an empty store with ``planner serve`` in a child process (with
``PLANNER_MAX_UPLOAD_SECONDS=--limit``, default the service default 120 s) and uploads the file
once. Prints, as measured:

* the floor: time to read the same zip with ``pyogrio`` in this process (no checks, no store);
* the wall time of the upload request and the server's answer (201, or 413 "took longer than
  N s"), and whether the store is unchanged;
* whether the upload folder was removed.

Usage: ``python bench/upload_limits.py [--vertices 4900000] [--polygons 1000] [--limit 120]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, wait_until_up


def build_zip(folder: Path, vertices: int, polygons: int) -> Path:
    """A zipped shapefile (EPSG:32648) of ``polygons`` noisy circles, ``vertices`` in all."""
    import geopandas as gpd
    import numpy as np
    import shapely

    k = vertices // polygons
    rng = np.random.default_rng(5)
    t = np.linspace(0, 2 * np.pi, k - 1, endpoint=False)
    geoms = []
    for i in range(polygons):
        cx, cy = 300_000 + (i % 40) * 500.0, 2_150_000 + (i // 40) * 500.0
        r = 150 + rng.normal(0, 2, k - 1)
        ring = np.c_[cx + r * np.cos(t), cy + r * np.sin(t)].round(2)
        geoms.append(shapely.Polygon(np.vstack([ring, ring[:1]])))
    frame = gpd.GeoDataFrame({"hazard_id": [f"BIG-{i}" for i in range(polygons)],
                              "status": ["SHA"] * polygons},
                             geometry=geoms, crs="EPSG:32648")
    shp = folder / "big_survey.shp"
    frame.to_file(shp, engine="pyogrio")
    out = folder / "big_survey.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for part in folder.glob("big_survey.*"):
            if part.suffix != ".zip":
                zf.write(part, part.name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertices", type=int, default=4_900_000)
    parser.add_argument("--polygons", type=int, default=1_000)
    parser.add_argument("--limit", type=float, nargs="+", default=[120.0, 3.0],
                        help="PLANNER_MAX_UPLOAD_SECONDS of the server [s]; one run each")
    args = parser.parse_args()

    import pyogrio
    import shapely

    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        folder = Path(tmp)
        (folder / "src").mkdir()
        t0 = time.perf_counter()
        data = build_zip(folder / "src", args.vertices, args.polygons)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        frame = pyogrio.read_dataframe(data)
        floor = time.perf_counter() - t0
        n_vertices = int(shapely.get_num_coordinates(frame.geometry.values).sum())
        print(f"file: {data.name}, {data.stat().st_size / 1e6:.1f} MB zipped, {len(frame):,} "
              f"polygons, {n_vertices:,} vertices (built in {built:.1f} s)")
        print(f"floor: pyogrio reads it in {floor:.2f} s")
        del frame

        for limit in args.limit:
            upload_once(folder / f"limit-{limit:g}", data, limit)


def upload_once(folder: Path, data: Path, limit: float) -> None:
    """Serve an empty store with ``planner serve`` and upload ``data`` once; print figures."""
    import httpx

    from planner.programme import Programme
    from planner.store import create_store, open_store
    from planner.web.users import add_user

    folder.mkdir()
    store_path = folder / "bench.gpkg"
    store = create_store(store_path, Programme("Bench", dt.date(2011, 8, 1), "EPSG:32648"))
    token = add_user(store, "bench editor", "editor")
    uploads = folder / "uploads"
    port = free_port()
    env = {**os.environ, "PLANNER_MAX_UPLOAD_SECONDS": f"{limit:g}",
           "PLANNER_UPLOAD_DIR": str(uploads)}
    server = subprocess.Popen([sys.executable, "-c", "from planner.cli.shared import app; app()",
                               "serve", "--store", str(store_path), "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, tries=300)
        t0 = time.perf_counter()
        r = httpx.post(url + "/api/hazards", headers={"Authorization": f"Bearer {token}"},
                       files={"file": (data.name, data.read_bytes())},
                       data={"recorded_on": "2015-03-01"},   # shapefile names stop at 10
                       timeout=limit + 600)
        took = time.perf_counter() - t0
        imports = open_store(store_path).version()[0]
        detail = r.json().get("detail", "") if r.status_code != 201 else ""
        print(f"server (limit {limit:g} s): answered {r.status_code} after {took:.1f} s"
              + (f": {detail[:160]}" if detail else f", {r.json()['rows']:,} rows landed"))
        print(f"  store: {imports} import(s) after the upload; upload folders left: "
              f"{len(list(uploads.glob('planner-upload-*')))}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
