"""Web-service figures: GeoJSON read throughput and upload latency.

1. A store with the 10,000-hazard synthetic programme is served by uvicorn (one process) in a
   child process; 100 concurrent clients (httpx, asyncio) each read pages of
   ``GET /api/hazards?limit=100&offset=…`` for ``--seconds`` seconds. Prints requests/s,
   features/s and latency percentiles. The first request (which reads and caches the layer) is
   timed apart.
2. A 1,000-polygon zipped shapefile is uploaded ``--uploads`` times (each a distinct file) to an
   empty store; prints the latency of each upload (read, checks, transaction).

Usage: ``python bench/api.py [--hazards 10000] [--clients 100] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, wait_until_up

RETURNED = re.compile(rb'"numberReturned":(\d+)')


def build_store(path: Path, n: int) -> None:
    import shapely

    from planner.programme import Programme
    from planner.store import ImportRecord, create_store
    from planner.synthetic import SyntheticSpec, synthetic_programme

    spec = SyntheticSpec(n_hazards=n, seed=7)
    store = create_store(path, Programme("bench", spec.eif, spec.crs))
    hazards, _ = synthetic_programme(spec)
    features = hazards.assign(source_file="hazards.gpkg", import_id=0, geometry=[
        g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])
        for g in hazards.geometry])
    store.add("hazards", features, ImportRecord("hazards", "hazards.gpkg", f"h-{n}", None,
                                                None, len(features), [], dt.datetime.now()))


def serve(store: Path, port: int) -> subprocess.Popen[bytes]:
    code = ("import uvicorn; from planner.web.app import create_app; "
            "from planner.web.settings import Settings; "
            f"uvicorn.run(create_app(Settings(store={str(store)!r})), host='127.0.0.1', "
            f"port={port}, log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code])
    if wait_until_up(f"http://127.0.0.1:{port}"):
        return proc
    proc.kill()
    raise RuntimeError("the server did not start")


async def read_load(url: str, token: str, clients: int, seconds: float, total: int
                    ) -> tuple[list[float], int, int]:
    import httpx

    latencies: list[float] = []
    features = 0
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        async def worker(k: int) -> None:
            nonlocal features, errors
            offset = (k * 100) % total
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                try:
                    r = await client.get("/api/hazards", params={"limit": 100,
                                                                 "offset": offset})
                    r.raise_for_status()
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                # the count is at the head of the body: no need to parse 200 kB of JSON here
                features += int(RETURNED.search(r.content[:200]).group(1))  # type: ignore[union-attr]
                offset = (offset + 100 * clients) % total

        await asyncio.gather(*(worker(k) for k in range(clients)))
    return latencies, features, errors


def shapefile_zip(folder: Path, k: int, n: int = 1000) -> Path:
    import geopandas as gpd
    from shapely import box

    x0, y0 = 290_000 + 20_000 * k, 2_150_000
    frame = gpd.GeoDataFrame(
        {"HAZ_CODE": [f"B{k:02d}-{i:04d}" for i in range(n)], "TYPE": ["SHA"] * n,
         "SURVEY_DT": ["2015-06-01"] * n},
        geometry=[box(x0 + 150 * (i % 40), y0 + 150 * (i // 40), x0 + 150 * (i % 40) + 100,
                      y0 + 150 * (i // 40) + 100) for i in range(n)], crs=32648)
    shp = folder / f"survey_{k:02d}"
    shp.mkdir()
    frame.to_file(shp / "survey.shp", engine="pyogrio")
    target = folder / f"survey_{k:02d}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in shp.iterdir():
            zf.write(f, f.name)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hazards", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--uploads", type=int, default=5)
    args = parser.parse_args()

    import httpx

    from planner.store import open_store
    from planner.web.users import add_user

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = folder / "read.gpkg"
        build_store(store, args.hazards)
        token = add_user(open_store(store), "bench", "viewer")
        port = free_port()
        proc = serve(store, port)
        url = f"http://127.0.0.1:{port}"
        try:
            t0 = time.perf_counter()
            httpx.get(url + "/api/hazards", params={"limit": 100},
                      headers={"Authorization": f"Bearer {token}"}, timeout=120)
            first = time.perf_counter() - t0
            lat, feats, errors = asyncio.run(read_load(url, token, args.clients,
                                                       args.seconds, args.hazards))
        finally:
            proc.terminate()
            proc.wait()
        lat.sort()
        q = statistics.quantiles(lat, n=100)
        print(f"GeoJSON reads: {args.hazards:,}-hazard store, {args.clients} concurrent "
              f"clients, pages of 100, {args.seconds:g} s")
        print(f"  first request (reads and caches the layer): {first:.2f} s")
        print(f"  {len(lat):,} requests: {len(lat) / args.seconds:,.1f} requests/s, "
              f"{feats / args.seconds:,.0f} features/s, {errors} failed (connection errors)")
        print(f"  latency p50 {q[49] * 1000:,.0f} ms, p90 {q[89] * 1000:,.0f} ms, "
              f"p99 {q[98] * 1000:,.0f} ms")

        empty = folder / "upload.gpkg"
        from planner.programme import Programme
        from planner.store import create_store

        st = create_store(empty, Programme("bench", dt.date(2011, 8, 1), "EPSG:32648"))
        editor = add_user(st, "bench", "editor")
        files = [shapefile_zip(folder, k) for k in range(args.uploads)]
        port = free_port()
        proc = serve(empty, port)
        url = f"http://127.0.0.1:{port}"
        times = []
        try:
            for f in files:
                t0 = time.perf_counter()
                r = httpx.post(url + "/api/hazards", headers={
                    "Authorization": f"Bearer {editor}"}, files={"file": (f.name, f.read_bytes())},
                    timeout=300)
                times.append(time.perf_counter() - t0)
                assert r.status_code == 201, r.text
        finally:
            proc.terminate()
            proc.wait()
        print(f"Upload of a 1,000-polygon zipped shapefile ({files[0].stat().st_size / 1e3:.0f}"
              f" kB), {len(times)} distinct files: " + ", ".join(f"{t:.2f}" for t in times)
              + f" s (median {statistics.median(times):.2f} s)")


if __name__ == "__main__":
    main()
