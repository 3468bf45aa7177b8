"""Time of a marking plan on the synthetic programme (target: 10,000 hazards under 30 s).

For each size, the hazards of a synthetic programme (clustered, overlapping, UTM 48N) are
planned with the default options (perimeter 0 m, fence 10 m with round corners, signs every
50 m, posts every 2.5 m, merge at 20 m), then the plan is written as GeoPackage, KML, GPX and
CSV. A second plan marks only what remains at the end of 2024 (hazards minus releases).

Usage: ``python bench/marking.py [--sizes 1000 10000]``. Prints one table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path


def measure(n: int, folder: Path) -> str:
    """One row of the table for a programme of ``n`` hazards."""
    from planner.field import exports
    from planner.field.marking import marking_plan, remaining_hazards
    from planner.synthetic import SyntheticSpec, synthetic_programme

    hazards, releases = synthetic_programme(SyntheticSpec(n_hazards=n, seed=7))
    t0 = time.perf_counter()
    plan = marking_plan(hazards)
    t_plan = time.perf_counter() - t0
    t0 = time.perf_counter()
    exports.write_gpkg(plan, folder / f"plan_{n}.gpkg")
    exports.write_kml(plan, folder / f"plan_{n}.kml")
    exports.write_gpx(plan, folder / f"plan_{n}.gpx")
    exports.write_csv(plan, folder / f"plan_{n}.csv")
    t_files = time.perf_counter() - t0
    t0 = time.perf_counter()
    left = remaining_hazards(hazards, releases, dt.date(2024, 12, 31))
    rest = marking_plan(left).totals
    t_rest = time.perf_counter() - t0
    tt = plan.totals
    return (f"{n:>8,} {tt['enclosures']:>11,} {tt['signs']:>9,} {tt['posts']:>10,} "
            f"{tt['fence_m'] / 1000:>9,.1f} {t_plan:>8.2f} {t_files:>8.2f} "
            f"{len(left):>10,} {rest['signs']:>10,} {t_rest:>11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    header = (f"{'hazards':>8} {'enclosures':>11} {'signs':>9} {'posts':>10} "
              f"{'fence km':>9} {'plan s':>8} {'files s':>8} {'remaining':>10} "
              f"{'rem. signs':>10} {'remaining s':>11}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            print(measure(n, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
