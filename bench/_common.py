"""Helpers shared by the bench scripts: synthetic stores and peak memory."""

from __future__ import annotations

import datetime as dt
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

CHUNK = 100_000


def add_frames(store: object, hazards: object, releases: object, tag: str) -> None:
    """Write synthetic frames straight to a store (ingest checks are not what is measured)."""
    import shapely

    from planner.store import ImportRecord

    for kind, frame in (("hazards", hazards), ("releases", releases)):
        features = frame.assign(source_file=f"{kind}.gpkg", import_id=0,  # type: ignore[attr-defined]
                                geometry=[g if g.geom_type == "MultiPolygon"
                                          else shapely.MultiPolygon([g])
                                          for g in frame.geometry])  # type: ignore[attr-defined]
        store.add(kind, features, ImportRecord(  # type: ignore[attr-defined]
            kind, f"{kind}-{tag}.gpkg", f"{kind}-{tag}", None, None, len(features), [],
            dt.datetime.now()))


def build_store(n: int, path: Path, *, seed: int = 7, chunked: bool = False) -> Path:
    """A GeoPackage store with a synthetic programme of ``n`` hazards (~5 releases each).

    With ``chunked``, the programme is generated and written 100,000 hazards at a time (same
    province, same density, ids prefixed by the chunk), so that a million hazards never have
    to be in memory at once.
    """
    from planner.programme import Programme
    from planner.store import create_store
    from planner.synthetic import SyntheticSpec, synthetic_programme

    spec = SyntheticSpec(n_hazards=n, seed=seed)
    store = create_store(path, Programme("bench", spec.eif, spec.crs))
    if not chunked:
        hazards, releases = synthetic_programme(spec)
        add_frames(store, hazards, releases, str(n))
        return path
    t0 = time.perf_counter()
    for c, lo in enumerate(range(0, n, CHUNK)):
        part = SyntheticSpec(n_hazards=min(CHUNK, n - lo), seed=seed * 1000 + c)
        hazards, releases = synthetic_programme(part)
        prefix = f"C{c:02d}-"
        hazards["hazard_id"] = prefix + hazards["hazard_id"]
        releases["hazard_id"] = prefix + releases["hazard_id"]
        releases["release_id"] = prefix + releases["release_id"]
        add_frames(store, hazards, releases, f"{n}-{c}")
        print(f"# chunk {c}: {lo + len(hazards):,} hazards written "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return path


def peak_rss_mb() -> float:
    """Peak resident memory of this process [MiB].

    Linux's VmHWM belongs to this process image alone; ``ru_maxrss`` would also count the
    memory of the parent at the moment it forked us.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, *, tries: int = 600, pause_s: float = 0.1) -> bool:
    """Whether ``url``/health answered 200 within ``tries`` attempts ``pause_s`` apart."""
    import httpx

    for _ in range(tries):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(pause_s)
    return False


def cli(*args: str) -> tuple[float, str]:
    """Run ``planner ARGS`` in a fresh process: (wall seconds, stdout); raise if it fails."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "planner", *args], capture_output=True,
                          text=True, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"planner {' '.join(args)} failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout
