"""The stored ledger against a floor: cold build, status, series, an ingest, an upload.

For each size, on a copy of the synthetic programme's GeoPackage (``bench/scale.py`` builds
it once and keeps it in ``--data``), in one run:

* **floor**: read both layers with pyogrio (arrow), reproject to planner's equal-area CRS
  and compute planar areas, in a fresh Python process like the commands; best of two runs;
* **cold build**: ``planner rebuild-ledger`` (every core), wall time and the peak resident
  memory of the largest process;
* **status** and **15-year series**: ``planner status`` and ``planner series``, whole
  commands (Python start-up included), best of ``--runs``;
* **ingest + status**: ``planner ingest releases`` of a file of 10 releases over existing
  hazards, then ``planner status``: the time until the CLI shows them;
* **upload → /api/status**: ``planner serve``-equivalent uvicorn on the copy; after one
  status request (warm), 10 releases are uploaded and ``/api/status`` is asked until it
  counts them: the time from the upload's response to the first updated answer, and the
  upload's own time.

Prints every figure and its ratio to the floor measured in the same run.

Usage: ``python bench/ledger.py [--sizes 10000 100000] [--data DIR] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import cli, free_port, wait_until_up
from scale import ensure_gpkg

AT = "2030-12-31"


FLOOR = """
import sys, pyogrio
from planner.areas import equal_area_crs
hazards = pyogrio.read_dataframe(sys.argv[1], layer="hazards", use_arrow=True)
releases = pyogrio.read_dataframe(sys.argv[1], layer="releases", use_arrow=True)
crs = equal_area_crs(hazards)
assert hazards.to_crs(crs).area.sum() + releases.to_crs(crs).area.sum() > 0
"""


def floor_s(path: Path) -> float:
    """Read both layers (arrow), reproject to the equal-area CRS, planar areas: seconds.

    In a fresh process, like the commands it is compared with (Python's start-up and the
    imports of geopandas count on both sides).
    """
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", FLOOR, str(path)], check=True)
    return time.perf_counter() - t0


def best(runs: int, *args: str) -> float:
    return min(cli(*args)[0] for _ in range(runs))


def releases_file(store_path: Path, folder: Path, tag: str, n: int = 10) -> Path:
    """``n`` cleared releases over the middle of ``n`` existing hazards, as GeoJSON (WGS 84)."""
    import geopandas as gpd
    import numpy as np

    from planner.store import open_store

    hazards = open_store(store_path).read("hazards")
    pick = np.random.default_rng(len(tag)).choice(len(hazards), n, replace=False)
    geoms = hazards.geometry.iloc[pick].centroid.buffer(20.0)
    frame = gpd.GeoDataFrame({"release_id": [f"BENCH-{tag}-{i}" for i in range(n)],
                              "method": ["cleared"] * n, "released_on": ["2025-06-01"] * n},
                             geometry=list(geoms), crs=hazards.crs).to_crs(4326)
    out = folder / f"releases_{tag}.geojson"
    frame.to_file(out, driver="GeoJSON", engine="pyogrio")
    return out


def upload_then_status(store_path: Path, folder: Path) -> tuple[float, float]:
    """(upload seconds, seconds from the upload's answer to /api/status counting it)."""
    import httpx

    from planner.store import open_store
    from planner.web.users import add_user

    token = add_user(open_store(store_path), "bench-editor", "editor")
    port = free_port()
    code = ("import uvicorn; from planner.web.app import create_app; "
            "from planner.web.settings import Settings; "
            f"uvicorn.run(create_app(Settings(store={str(store_path)!r})), host='127.0.0.1', "
            f"port={port}, log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code])
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_up(url, tries=300, pause_s=0.2):
            raise RuntimeError("the server did not start")
        with httpx.Client(base_url=url, timeout=600) as c:
            before = c.get("/api/status", params={"at": AT}).json()["release_count"]
            upload = releases_file(store_path, folder, "upload")
            t0 = time.perf_counter()
            r = c.post("/api/releases", headers={"Authorization": f"Bearer {token}"},
                       files={"file": (upload.name, upload.read_bytes())})
            t1 = time.perf_counter()
            if r.status_code != 201:
                raise RuntimeError(f"upload refused: {r.status_code} {r.text[:500]}")
            while c.get("/api/status", params={"at": AT}).json()["release_count"] < before + 10:
                time.sleep(0.01)
            return t1 - t0, time.perf_counter() - t1
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_size(n: int, data: Path, runs: int) -> dict[str, float]:
    source = ensure_gpkg(n, data)
    with tempfile.TemporaryDirectory(dir=data) as tmp:
        folder = Path(tmp)
        store = folder / "bench.gpkg"
        shutil.copy(source, store)
        # the cold build first: RUSAGE_CHILDREN's peak is then that of its processes alone
        # (the largest of them), not of a floor run; one size per invocation for the same
        # reason (see main)
        cold, _ = cli("rebuild-ledger", "--store", str(store), "--json")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        fig: dict[str, float] = {"floor": min(floor_s(store) for _ in range(2)),
                                 "cold build": cold, "cold build peak MiB": peak}
        print(f"# {n:,}: floor {fig['floor']:.1f} s, cold build {cold:.1f} s", file=sys.stderr,
              flush=True)
        fig["status"] = best(runs, "status", "--store", str(store), "--at", AT, "--json")
        fig["series (15 years)"] = best(runs, "series", "--store", str(store), "--start",
                                        "2016-01-01", "--end", "2030-12-31", "--json")
        f = releases_file(store, folder, "cli")
        t_ingest, _ = cli("ingest", "releases", str(f), "--store", str(store))
        t_status, _ = cli("status", "--store", str(store), "--at", AT, "--json")
        fig["ingest 10 + status"] = t_ingest + t_status
        fig["upload 10"], fig["upload → /api/status updated"] = upload_then_status(store,
                                                                                   folder)
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "planner-bench")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_size(args.one, args.data, args.runs)))
        return
    args.data.mkdir(parents=True, exist_ok=True)
    print(f"# {os.cpu_count()} cores; load average at start {os.getloadavg()}")
    results = {}
    for n in args.sizes:
        # each size in its own process, so that a cold build's peak memory is its own
        done = subprocess.run([sys.executable, __file__, "--one", str(n), "--data",
                               str(args.data), "--runs", str(args.runs)],
                              capture_output=True, text=True, check=True)
        sys.stderr.write(done.stderr)
        results[n] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"# load average at the end {os.getloadavg()}")
    print(f"{'figure':34} " + " ".join(f"{n:>22,}" for n in results))
    for key in next(iter(results.values())):
        cells = []
        for fig in results.values():
            v = fig[key]
            ratio = "" if key in ("floor", "cold build peak MiB") or "upload" in key or \
                "ingest" in key else f" ({v / fig['floor']:.1f}× floor)"
            unit = " MiB" if "MiB" in key else " s"
            cells.append(f"{v:,.2f}{unit}{ratio}")
        print(f"{key:34} " + " ".join(f"{c:>22}" for c in cells))
    print(json.dumps({str(n): f for n, f in results.items()}))


if __name__ == "__main__":
    main()
