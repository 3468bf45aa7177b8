"""The 15-year accounting series at scale: one process vs dask (2 workers) vs PostGIS SQL.

For each size a synthetic programme (about 5 releases per hazard, clustered, overlapping,
UTM 48N; generated 100,000 hazards at a time) is written once to a GeoPackage store and
copied once to a PostGIS store; both are kept in ``--data`` for the next run. Then each
engine builds the ledger and the yearly series 2010-2024 in a fresh child process:

* ``single``: :func:`planner.accounting.ledger_from_store` on the GeoPackage store;
* ``dask``: :func:`planner.accounting.ledger_partitioned` on the GeoPackage store with a
  LocalCluster of ``--workers`` processes (cluster start-up included in the time);
* ``postgis``: :func:`planner.accounting.sql.ledger_in_database` on the PostGIS store, in
  ``--workers`` database sessions at once.

Peak memory is VmHWM: of the child process (driver), and the largest of the dask workers or
the sum over the PostgreSQL backends of the ``--workers`` sessions that ran the SQL (their
shared buffers are counted in each). ``diff`` is the largest difference of any figure of
the series from the single-process series [m²]: each run's series is kept in ``--data``, so
the reference may come from an earlier run (the line above the table says which); without
one, the first engine of this run is the reference. Warnings the engines log (for example
overlaps measured again) are printed as ``#`` lines.

Usage::

    python bench/scale.py [--sizes 100000 1000000] [--postgres-url URL] [--data DIR]

Without ``--postgres-url`` a throwaway PostgreSQL/PostGIS cluster is started with
``scripts/postgres.sh`` and removed at the end (its database is then rebuilt every run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import build_store, peak_rss_mb

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("single", "dask", "postgis")
FIGURES = ("baseline_m2", "discovered_m2", "cancelled_m2", "reduced_m2", "cleared_m2",
           "remaining_m2")


def _proc_peak_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_engine(engine: str, location: str, workers: int) -> dict[str, object]:
    """In a child: build the ledger with one engine and the 15-year series; figures out."""
    from planner.accounting import ledger_from_store, period_ends
    from planner.store import open_store

    dates = period_ends(dt.date(2010, 1, 1), dt.date(2024, 12, 31))
    t0 = time.perf_counter()
    store = open_store(location)
    other_peak: float | None = None
    if engine == "single":
        ledger = ledger_from_store(store)
    elif engine == "dask":
        from planner.accounting import ledger_partitioned, local_client

        with local_client(workers) as client:
            ledger = ledger_partitioned(store, workers=workers, client=client)
            other_peak = max(client.run(peak_rss_mb).values())
    else:
        import sqlalchemy as sa

        from planner.accounting.sql import ledger_in_database
        from planner.store.postgis import PostGISStore

        assert isinstance(store, PostGISStore)
        ledger = ledger_in_database(store, sessions=workers)
        # the pooled sessions are still open: their backends' high-water marks, summed
        with store.engine.connect() as con:
            pids = con.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
                "backend_type = 'client backend'")).scalars().all()
        other_peak = sum(_proc_peak_mb(int(p)) or 0.0 for p in pids)
    df = ledger.series(dates)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_mb": peak_rss_mb(), "other_peak_mb": other_peak,
            "hazards": len(ledger.hazard_ids), "releases": len(ledger.release_ids),
            "series": {f: [float(v) for v in df[f]] for f in FIGURES}}


def ensure_gpkg(n: int, data: Path) -> Path:
    path = data / f"scale_{n}.gpkg"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".partial.gpkg")
        tmp.unlink(missing_ok=True)
        build_store(n, tmp, chunked=True)
        tmp.rename(path)
        print(f"# built {path.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def ensure_postgis(n: int, gpkg: Path, admin_url: str) -> str:
    """A PostGIS copy of the store in database scale_<n> (kept when complete)."""
    import psycopg

    from planner.store import copy_store, open_store

    name = f"scale_{n}"
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin_url, autocommit=True) as con:
        exists = con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists:
        try:
            if open_store(url).version() == open_store(gpkg).version():
                return url
        except Exception:  # an incomplete copy: made again below
            pass
        with psycopg.connect(admin_url, autocommit=True) as con:
            con.execute(f'DROP DATABASE "{name}"')
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    t0 = time.perf_counter()
    copy_store(open_store(gpkg), url)
    print(f"# copied {gpkg.name} to PostGIS in {time.perf_counter() - t0:.0f} s", flush=True)
    return url


def _saved_series(data: Path, n: int, engine: str
                  ) -> tuple[dict[str, list[float]] | None, str]:
    """The series an earlier run of ``engine`` at size ``n`` kept, and what it was."""
    path = data / f"series_{n}_{engine}.json"
    if not path.exists():
        return None, ""
    saved = json.loads(path.read_text())
    return saved["series"], f"the {engine} run of {saved['at']} ({path.name})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--postgres-url", help="admin URL of a PostGIS server to use")
    parser.add_argument("--timeout", type=float, default=4 * 3600,
                        help="seconds before one run is given up")
    parser.add_argument("--run", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:  # child process
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        print(json.dumps(run_engine(args.run, args.store, args.workers)))
        return
    args.data.mkdir(parents=True, exist_ok=True)
    pg_dir = None
    admin = args.postgres_url
    if admin is None and "postgis" in args.engines:
        pg_dir = tempfile.mkdtemp(prefix="planner-bench-pg-")
        admin = subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "start",
                                pg_dir], capture_output=True, text=True, check=True
                               ).stdout.strip()
    try:
        print(f"{'hazards':>9} {'releases':>9} {'engine':>8} {'seconds':>8} "
              f"{'peak MiB':>9} {'workers/server MiB':>19} {'diff m2':>8}", flush=True)
        for n in args.sizes:
            gpkg = ensure_gpkg(n, args.data)
            reference, ref_name = _saved_series(args.data, n, "single")
            if reference is not None:
                print(f"# {n}: diff against {ref_name}", flush=True)
            for engine in args.engines:
                location = (ensure_postgis(n, gpkg, admin) if engine == "postgis" and admin
                            else str(gpkg))
                try:
                    out = subprocess.run(
                        [sys.executable, __file__, "--run", engine, "--store", location,
                         "--workers", str(args.workers)], capture_output=True, text=True,
                        timeout=args.timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})
                except subprocess.TimeoutExpired:
                    print(f"{n:>9} {'':>9} {engine:>8}  gave up after {args.timeout:.0f} s",
                          flush=True)
                    continue
                for line in out.stderr.splitlines():
                    if line.startswith("WARNING"):
                        print(f"# {n} {engine}: {line}", flush=True)
                if out.returncode != 0:
                    tail = (out.stderr.strip().splitlines() or ["?"])[-1]
                    print(f"{n:>9} {'':>9} {engine:>8}  failed (exit {out.returncode}): "
                          f"{tail}", flush=True)
                    continue
                res = json.loads(out.stdout.strip().splitlines()[-1])
                series = res["series"]
                (args.data / f"series_{n}_{engine}.json").write_text(json.dumps(
                    {"at": dt.datetime.now().isoformat(timespec="seconds"), **res}))
                reference = reference or series
                diff = max(abs(a - b) for f in FIGURES
                           for a, b in zip(series[f], reference[f], strict=True))
                other = res["other_peak_mb"]
                print(f"{res['hazards']:>9} {res['releases']:>9} {engine:>8} "
                      f"{res['seconds']:>8.1f} {res['peak_mb']:>9.0f} "
                      f"{'-' if other is None else f'{other:.0f}':>19} {diff:>8.3f}",
                      flush=True)
    finally:
        if pg_dir is not None:
            subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "stop", pg_dir],
                           check=False)


if __name__ == "__main__":
    main()
