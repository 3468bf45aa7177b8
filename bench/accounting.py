"""Time and peak memory of the accounting at 1,000 / 10,000 / 100,000 hazards.

For each size a synthetic programme (about 5 releases per hazard, clustered and overlapping,
UTM 48N) is written to a GeoPackage store, then three things are measured, each in a fresh
process so that peak memory (ru_maxrss) belongs to that step alone:

* floor: read both layers from the store and compute plain planar areas (reprojection to the
  equal-area CRS included, releases reprojected as they are read);
* status: read the store, build the ledger, status at one date;
* series: read the store, build the ledger, a 15-year yearly series.

Usage: ``python bench/accounting.py [--sizes 1000 10000 100000]``. Prints one table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import build_store, peak_rss_mb

STEPS = ("floor", "status", "series")


def build(n: int, folder: Path) -> Path:
    return build_store(n, folder / f"bench_{n}.gpkg")


def run_step(step: str, path: str) -> dict[str, float]:
    import numpy as np
    import shapely

    from planner.accounting import ledger_from_store, period_ends
    from planner.areas import equal_area_crs
    from planner.store import open_store

    t0 = time.perf_counter()
    store = open_store(path)
    if step == "floor":
        h = store.read("hazards")
        crs = equal_area_crs(h)
        h = h.to_crs(crs)
        r = store.read("releases", crs=crs)   # reprojected as read, as the ledger does
        total = float(shapely.area(np.asarray(h.geometry.values)).sum()
                      + shapely.area(np.asarray(r.geometry.values)).sum())
        counts = len(h), len(r)
    else:
        ledger = ledger_from_store(store)
        counts = len(ledger.hazard_ids), len(ledger.release_ids)
        if step == "status":
            total = ledger.status(dt.date(2024, 12, 31)).remaining_m2
        else:
            df = ledger.series(period_ends(dt.date(2010, 1, 1), dt.date(2024, 12, 31)))
            assert len(df) == 15
            total = float(df["remaining_m2"].iloc[-1])
    seconds = time.perf_counter() - t0
    peak_mb = peak_rss_mb()
    return {"seconds": seconds, "peak_mb": peak_mb, "value": total,
            "hazards": counts[0], "releases": counts[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--step", choices=STEPS)
    parser.add_argument("--store")
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # child process
        print(json.dumps(run_step(args.step, args.store)))
        return
    if args.build:  # child process: build the store, so the parent stays small
        print(build(args.build, Path(args.store)))
        return
    print(f"{'hazards':>8} {'releases':>9} {'step':>7} {'seconds':>8} {'peak MB':>8} "
          f"{'x floor':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            t0 = time.perf_counter()
            path = Path(subprocess.run(
                [sys.executable, __file__, "--build", str(n), "--store", tmp],
                capture_output=True, text=True, check=True).stdout.strip())
            print(f"# built {path.name} in {time.perf_counter() - t0:.1f} s "
                  f"({path.stat().st_size / 1e6:.1f} MB)", flush=True)
            floor = None
            for step in STEPS:
                out = subprocess.run([sys.executable, __file__, "--step", step, "--store",
                                      str(path)], capture_output=True, text=True, check=True)
                res = json.loads(out.stdout)
                floor = floor or res["seconds"]
                print(f"{res['hazards']:>8} {res['releases']:>9} {step:>7} "
                      f"{res['seconds']:>8.2f} {res['peak_mb']:>8.0f} "
                      f"{res['seconds'] / floor:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
