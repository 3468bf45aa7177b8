"""What hazard versions cost the figures: a 15-year series before and after 10 % re-surveys.

On a copy of the synthetic programme's GeoPackage (``bench/scale.py`` builds it once and keeps
it in ``--data``), in one run: the stored ledger is built, ``planner series`` (15 years) is
timed (best of ``--runs``), then one tenth of the hazards are re-surveyed once with
``planner ingest resurvey`` (each shrunk by 10 m on every side, a technical survey, so the
strip is released as reduced), and the series is timed again. Prints both times, their
ratio, the re-survey import's own time and the reduced area it released.

Usage: ``python bench/versions.py [--sizes 10000 100000] [--data DIR] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import cli
from scale import ensure_gpkg


def series_s(store: Path, runs: int) -> tuple[float, float]:
    """Best time of a 15-year series, and its last remaining area [m²]."""
    best, last = float("inf"), 0.0
    for _ in range(runs):
        t, out = cli("series", "--store", str(store), "--start", "2016-01-01", "--end",
                     "2030-12-31", "--json")
        best = min(best, t)
        last = json.loads(out)[-1]["remaining_m2"]
    return best, last


def resurvey_file(store: Path, folder: Path, share: float = 0.1) -> Path:
    """One tenth of the hazards, each shrunk by 10 m, as CHA: a technical survey in 2031."""
    import numpy as np

    from planner.store import open_store

    hazards = open_store(store).read("hazards")
    pick = np.random.default_rng(11).choice(len(hazards), int(share * len(hazards)),
                                            replace=False)
    part = hazards.iloc[np.sort(pick)]
    shrunk = part.geometry.buffer(-10.0)
    keep = ~shrunk.is_empty
    out = part.loc[keep, ["hazard_id", "region"]].assign(status="CHA")
    out = out.set_geometry(list(shrunk[keep])).set_crs(hazards.crs)
    path = folder / "resurvey.gpkg"
    out.to_file(path, driver="GPKG", engine="pyogrio")
    return path


def run_size(n: int, data: Path, runs: int) -> dict[str, float]:
    source = ensure_gpkg(n, data)
    with tempfile.TemporaryDirectory(dir=data) as tmp:
        store = Path(tmp) / "bench.gpkg"
        shutil.copy(source, store)
        cli("upgrade", str(store))
        cli("rebuild-ledger", "--store", str(store))
        before, rem0 = series_s(store, runs)
        f = resurvey_file(store, Path(tmp))
        t_import, _ = cli("ingest", "resurvey", str(f), "--store", str(store),
                          "--surveyed-on", "2031-06-01", "--method", "reduced")
        after, rem1 = series_s(store, runs)
        _, out = cli("status", "--store", str(store), "--at", "2031-12-31", "--json")
        status = json.loads(out)
    return {"series without versions s": before, "series with versions s": after,
            "ratio": after / before, "re-survey import s": t_import,
            "reduced by 2031-12-31 m2": status["reduced_m2"],
            "remaining 2030 before m2": rem0, "remaining 2030 after m2": rem1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "planner-bench")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    print(f"# {os.cpu_count()} cores; load average at start {os.getloadavg()}")
    results = {n: run_size(n, args.data, args.runs) for n in args.sizes}
    print(f"# load average at the end {os.getloadavg()}")
    for n, fig in results.items():
        print(f"{n:,} hazards: " + ", ".join(f"{k} {v:,.2f}" for k, v in fig.items()))
    print(json.dumps({str(n): f for n, f in results.items()}))


if __name__ == "__main__":
    main()
