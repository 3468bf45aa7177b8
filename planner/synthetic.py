"""Seeded synthetic programmes: realistic cluster-strike footprints and land release.

Used for the shipped demo data (``planner/data/demo``, written by ``python -m planner.demo
--write planner/data/demo``) and for the benchmarks in ``bench/``. Nothing here is real
contamination data.

A programme is a set of strike *sites*; each site leaves a few overlapping elliptical
footprints (150–600 m long, as submunition footprints are), recorded as SHA or CHA over several
years (most before entry into force, the rest discovered later). Each hazard then gets a few
land-release events over the following years: non-technical survey cancelling part of it,
technical survey reducing part, and clearance of the rest, with some re-clearance of land
already released and some release polygons drawn a little outside the hazard, as real data has.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely

REGIONS = ("Pek", "Kham", "Nonghet", "Phaxay", "Khoun", "Thathom")
MUNITIONS = ("BLU-26", "BLU-24", "BLU-63", "M42", "unknown")


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate.

    Parameters
    ----------
    n_hazards : int
        Number of hazard polygons.
    releases_per_hazard : float
        Mean number of release events per hazard.
    seed : int
        Seed of the random generator: same seed, same programme.
    centre_lonlat : tuple of float
        Where the programme lies (default: Xieng Khouang, Lao PDR).
    crs : str
        CRS of the output (default UTM zone 48N).
    eif : datetime.date
        Entry into force; about 60 % of hazards are recorded before it.
    first_year, last_year : int
        Years of survey and release activity.
    """

    n_hazards: int = 300
    releases_per_hazard: float = 5.0
    seed: int = 20111
    centre_lonlat: tuple[float, float] = (103.2, 19.45)
    crs: str = "EPSG:32648"
    eif: dt.date = dt.date(2011, 8, 1)
    first_year: int = 2008
    last_year: int = 2024


def _ellipse(cx: float, cy: float, a: float, b: float, angle: float, n: int = 40
             ) -> shapely.Polygon:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = a * np.cos(t), b * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return shapely.Polygon(np.column_stack([cx + c * x - s * y, cy + s * x + c * y]))


def _random_date(rng: np.random.Generator, start: dt.date, end: dt.date) -> dt.date:
    span = max((end - start).days, 0)
    return start + dt.timedelta(days=int(rng.integers(0, span + 1)))


def synthetic_programme(spec: SyntheticSpec | None = None
                        ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Generate hazards and releases of a synthetic programme.

    Returns
    -------
    (hazards, releases) : tuple of GeoDataFrame
        In ``spec.crs``, with planner's column names.

    Examples
    --------
    >>> h, r = synthetic_programme(SyntheticSpec(n_hazards=20, seed=1))
    >>> len(h), h.crs.to_epsg(), sorted(set(r["method"]))
    (20, 32648, ['cancelled', 'cleared', 'reduced'])
    """
    spec = spec or SyntheticSpec()
    rng = np.random.default_rng(spec.seed)
    crs = pyproj.CRS.from_user_input(spec.crs)
    hazard_rows, hazard_geoms = _hazards(spec, rng, crs)
    hazards = gpd.GeoDataFrame(hazard_rows, geometry=hazard_geoms, crs=crs)
    release_rows, release_geoms = _releases(spec, rng, hazard_rows, hazard_geoms)
    releases = gpd.GeoDataFrame(release_rows, geometry=release_geoms, crs=crs)
    return hazards, releases


def _hazards(spec: SyntheticSpec, rng: np.random.Generator, crs: pyproj.CRS
             ) -> tuple[list[dict[str, Any]], list[shapely.Polygon]]:
    """Strike sites, each leaving a few overlapping elliptical footprints."""
    to_xy = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    x0, y0 = to_xy.transform(*spec.centre_lonlat)
    n = spec.n_hazards
    n_sites = max(1, n // 4)
    # the province is wider when there are more sites, so density stays realistic, but never
    # wider than 500 km so that it stays inside one UTM zone (with the usual margin)
    half_width = min(4_000 * np.sqrt(n_sites), 250_000)
    sites = np.column_stack([x0 + rng.uniform(-half_width, half_width, n_sites),
                             y0 + rng.uniform(-half_width, half_width, n_sites)])
    site_of = rng.integers(0, n_sites, n)
    site_region = rng.integers(0, len(REGIONS), n_sites)
    site_munition = rng.integers(0, len(MUNITIONS), n_sites)
    eif = spec.eif
    first = dt.date(spec.first_year, 1, 1)

    hazard_rows: list[dict[str, Any]] = []
    hazard_geoms: list[shapely.Polygon] = []
    for i in range(n):
        s = site_of[i]
        cx, cy = sites[s] + rng.normal(0, 180, 2)
        a = rng.uniform(60, 250)
        b = a * rng.uniform(0.35, 0.7)
        geom = _ellipse(cx, cy, a, b, rng.uniform(0, np.pi))
        before = rng.random() < 0.6
        recorded = (_random_date(rng, first, eif) if before
                    else _random_date(rng, eif + dt.timedelta(days=1),
                                      dt.date(spec.last_year - 2, 12, 31)))
        hazard_rows.append({
            "hazard_id": f"XK-{i + 1:05d}",
            "status": "CHA" if rng.random() < 0.4 else "SHA",
            "recorded_on": recorded,
            "found_after_eif": recorded > eif,
            "region": REGIONS[site_region[s]],
            "munition_type": MUNITIONS[site_munition[s]],
        })
        hazard_geoms.append(geom)

    return hazard_rows, hazard_geoms


def _releases(spec: SyntheticSpec, rng: np.random.Generator,
              hazard_rows: list[dict[str, Any]], hazard_geoms: list[shapely.Polygon]
              ) -> tuple[list[dict[str, Any]], list[Any]]:
    """A few strips of each hazard released over the years, by all three methods."""
    n = len(hazard_rows)
    last = dt.date(spec.last_year, 12, 31)
    release_rows, release_geoms = [], []
    k = 0
    for i in range(n):
        geom = hazard_geoms[i]
        count = int(rng.poisson(spec.releases_per_hazard))
        if count == 0:
            continue
        start = max(hazard_rows[i]["recorded_on"], dt.date(spec.first_year + 1, 1, 1))
        dates = sorted(_random_date(rng, start, last) for _ in range(count))
        minx, miny, maxx, maxy = geom.bounds
        for day in dates:
            u = rng.random()
            method = ("cancelled" if u < 0.2 else "reduced" if u < 0.45 else "cleared")
            # a strip of the hazard, sometimes spilling over its edge (drawn by hand)
            w = rng.uniform(0.15, 0.45) * (maxx - minx)
            x_start = minx + rng.uniform(-0.05, 0.9) * (maxx - minx)
            strip = shapely.box(x_start, miny - 20, x_start + w, maxy + 20)
            piece = shapely.intersection(geom, strip)
            if rng.random() < 0.1:
                piece = shapely.buffer(piece, rng.uniform(3, 12))  # drawn a little outside
            if piece.is_empty or piece.area < 1:
                continue
            k += 1
            release_rows.append({
                "release_id": f"XK-R{k:06d}",
                "method": method,
                "released_on": day,
                "hazard_id": hazard_rows[i]["hazard_id"],
                "organisation": ("NRA", "HALO", "MAG", "NPA")[int(rng.integers(0, 4))],
                "items_destroyed": int(rng.poisson(6)) if method == "cleared" else 0,
                "depth_cm": 30.0 if method == "cleared" else None,
            })
            release_geoms.append(piece)
    return release_rows, release_geoms

