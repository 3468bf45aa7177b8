"""Concurrent uploads to a GeoPackage store through ``planner serve``, with readers.

1. ``planner init`` makes a fresh GeoPackage store, ``planner users add`` an editor (its
   printed token is used), and ``planner serve`` runs it (a real uvicorn child process).
2. ``--files`` distinct GeoJSON files of ``--polygons`` synthetic hazard footprints each
   (``planner.synthetic``, 40-vertex ellipses, ids prefixed per file) are uploaded all at once
   (one asyncio httpx client, one connection per upload) while ``--readers`` clients loop on
   ``GET /api/status`` (anonymous) and ``GET /api/hazards?limit=100`` (with the token) until
   the last upload is answered.
3. The store is then checked: imports landed, refused by HTTP code, duplicates (files landed
   twice, ids twice: must be 0), R-tree entries against features.
4. The floor, measured in the same run: the same files ingested one after another by one
   process (``planner.ingest.ingest``, no HTTP) into another fresh store.

Prints landed, refused, duplicates, p50/p99 latency of uploads and of reads, total time, the
floor and the ratio. Usage: ``python bench/uploads.py [--files 100] [--polygons 2000]
[--readers 4]``; ``--files 20`` for a quick try.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, wait_until_up

CLI = "import sys; from planner.cli.shared import app; sys.argv[0] = 'planner'; app()"


def cli(*args: str) -> str:
    """Run the ``planner`` CLI of the code on ``sys.path`` (PYTHONPATH); its stdout."""
    done = subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"planner {' '.join(args)}: {done.stderr}")
    return done.stdout


def serve(store: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``planner serve`` in a child process; returns once ``/health`` answers."""
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--store", str(store),
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    if wait_until_up(f"http://127.0.0.1:{port}"):
        return proc
    proc.kill()
    raise RuntimeError(f"the server did not start; see {log}")


def make_files(folder: Path, n_files: int, polygons: int) -> list[Path]:
    """Distinct GeoJSON files (WGS 84) of synthetic hazards, ids prefixed by the file."""
    from planner.synthetic import SyntheticSpec, synthetic_programme

    files = []
    for k in range(n_files):
        hazards, _ = synthetic_programme(SyntheticSpec(n_hazards=polygons, seed=1000 + k,
                                                       releases_per_hazard=0))
        hazards["hazard_id"] = f"U{k:03d}-" + hazards["hazard_id"]
        path = folder / f"team_{k:03d}.geojson"
        hazards.to_crs(4326).to_file(path, driver="GeoJSON", engine="pyogrio",
                                     layer_options={"COORDINATE_PRECISION": 7})
        files.append(path)
    return files


async def load(url: str, token: str, files: list[Path], readers: int
               ) -> tuple[list[tuple[str, int, float, str]], list[tuple[str, int, float]], float]:
    """Upload every file at once while readers loop; (uploads, reads, wall time)."""
    import httpx

    limits = httpx.Limits(max_connections=len(files) + readers + 4,
                          max_keepalive_connections=len(files) + readers + 4)
    uploads: list[tuple[str, int, float, str]] = []
    reads: list[tuple[str, int, float]] = []
    done = asyncio.Event()
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=900) as client:
        async def upload(path: Path) -> None:
            data = path.read_bytes()
            t0 = time.perf_counter()
            try:
                r = await client.post("/api/hazards", headers=auth,
                                      files={"file": (path.name, data)})
                code, text = r.status_code, r.text[:200]
            except httpx.HTTPError as exc:
                code, text = 0, f"{type(exc).__name__}: {exc}"
            uploads.append((path.name, code, time.perf_counter() - t0, text))

        async def reader(k: int) -> None:
            i = k
            while not done.is_set():
                what = "/api/status" if i % 2 == 0 else "/api/hazards"
                t0 = time.perf_counter()
                try:
                    if what == "/api/status":
                        r = await client.get(what)
                    else:
                        r = await client.get(what, params={"limit": 100, "offset": 100 * i},
                                             headers=auth)
                    code = r.status_code
                except httpx.HTTPError:
                    code = 0
                reads.append((what, code, time.perf_counter() - t0))
                i += 1

        wall = 0.0

        async def uploads_then_stop() -> None:
            nonlocal wall
            t0 = time.perf_counter()
            await asyncio.gather(*(upload(f) for f in files))
            wall = time.perf_counter() - t0
            done.set()

        await asyncio.gather(uploads_then_stop(), *(reader(k) for k in range(readers)))
    return uploads, reads, wall


def check_store(store: Path) -> dict[str, int]:
    """What landed, counted in the store itself."""
    with sqlite3.connect(store) as con:
        one = lambda sql: int(con.execute(sql).fetchone()[0])  # noqa: E731
        out = {
            "imports": one("SELECT count(*) FROM imports"),
            "features": one("SELECT count(*) FROM hazards"),
            "rtree": one("SELECT count(*) FROM rtree_hazards_geom"),
            "files_twice": one("SELECT count(*) FROM (SELECT file_name FROM imports GROUP BY "
                               "file_name HAVING count(*) > 1)"),
            "ids_twice": one("SELECT count(*) FROM (SELECT hazard_id FROM hazards GROUP BY "
                             "hazard_id HAVING count(*) > 1)"),
            "rows_declared": one("SELECT coalesce(sum(rows), 0) FROM imports"),
        }
    con.close()
    return out


def floor(files: list[Path], folder: Path) -> float:
    """The same files ingested one after another by this process into a fresh store."""
    from planner.ingest import IngestOptions, ingest
    from planner.store import open_store

    store = folder / "floor.gpkg"
    cli("init", str(store), "--name", "floor", "--eif", "2011-08-01", "--crs",
            "EPSG:32648")
    st = open_store(store)
    t0 = time.perf_counter()
    for f in files:
        ingest(st, "hazards", f, IngestOptions())
    return time.perf_counter() - t0


def pct(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--polygons", type=int, default=2000)
    parser.add_argument("--readers", type=int, default=4)
    args = parser.parse_args()

    import planner as package

    print(f"# planner from {Path(package.__file__).parent}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="planner-bench-uploads-") as tmp:
        folder = Path(tmp)
        store = folder / "uploads.gpkg"
        cli("init", str(store), "--name", "bench", "--eif", "2011-08-01", "--crs",
                "EPSG:32648")
        token = cli("users", "add", "bench", "--role", "editor", "--store",
                        str(store)).strip().splitlines()[-1]
        t0 = time.perf_counter()
        files = make_files(folder, args.files, args.polygons)
        size = sum(f.stat().st_size for f in files) / len(files) / 1e6
        print(f"# {len(files)} files of {args.polygons:,} polygons made in "
              f"{time.perf_counter() - t0:.0f} s ({size:.1f} MB each, GeoJSON)")
        port = free_port()
        log = folder / "serve.log"
        proc = serve(store, port, log)
        try:
            uploads, reads, wall = asyncio.run(load(f"http://127.0.0.1:{port}", token, files,
                                                    args.readers))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server_errors = [line for line in log.read_text(errors="replace").splitlines()
                         if "Traceback" in line or "locked" in line]
        landed = check_store(store)
        codes = collections.Counter(code for _, code, _, _ in uploads)
        ok = [t for _, code, t, _ in uploads if code == 201]
        print(f"uploads: {len(files)} distinct files of {args.polygons:,} polygons at once, "
              f"{args.readers} readers meanwhile")
        print("  answered: " + ", ".join(f"{c}: {n}" for c, n in sorted(codes.items())))
        for name, code, _, text in sorted(uploads):
            if code != 201:
                print(f"    {name}: {code} {text}")
        print(f"  landed in the store: {landed['imports']} imports, {landed['features']:,} "
              f"features (declared {landed['rows_declared']:,}), R-tree entries "
              f"{landed['rtree']:,}")
        print(f"  duplicates: {landed['files_twice']} files landed twice, "
              f"{landed['ids_twice']} ids twice")
        print(f"  201 answers vs imports: {len(ok)} vs {landed['imports']}")
        every = [t for _, _, t, _ in uploads]
        print(f"  upload latency (all answers): p50 {pct(every, 50):.1f} s, "
              f"p99 {pct(every, 99):.1f} s, max {max(every):.1f} s")
        for what in ("/api/status", "/api/hazards"):
            lat = [t for w, c, t in reads if w == what]
            bad = collections.Counter(c for w, c, _ in reads if w == what and c != 200)
            print(f"  reads {what}: {len(lat)} requests, not 200: {dict(bad) or 0}, "
                  f"p50 {pct(lat, 50) * 1000:,.0f} ms, p99 {pct(lat, 99) * 1000:,.0f} ms")
        print(f"  total time, first upload sent to last answered: {wall:.1f} s")
        print(f"  server log lines with a traceback or 'locked': {len(server_errors)}")
        t_floor = floor(files, folder)
        print(f"floor: the same {len(files)} files ingested one after another in one process: "
              f"{t_floor:.1f} s ({t_floor / len(files):.2f} s each)")
        print(f"ratio, concurrent through the server / floor: {wall / t_floor:.2f}")


if __name__ == "__main__":
    main()
