"""Areas in square metres, computed the only ways planner allows.

Every area planner reports is measured in a Lambert azimuthal equal-area projection centred
on the data (:func:`equal_area_crs`), or geodesically on the WGS 84 ellipsoid
(:func:`geodesic_area_m2`), never in degrees and never in Web Mercator. Both agree to about
1e-9 relative error for hazard-sized polygons.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

WGS84 = pyproj.CRS.from_epsg(4326)


def _lonlat_centre(geoms: gpd.GeoSeries) -> tuple[float, float]:
    """Centre of the data's bounding boxes as (lon, lat), robust to the antimeridian."""
    if geoms.crs is None:
        raise ValueError("geometries have no CRS; set one with .set_crs() before measuring")
    bounds = shapely.bounds(np.asarray(geoms.values))
    ok = ~np.isnan(bounds).any(axis=1)
    if not ok.any():
        return 0.0, 0.0
    bounds = bounds[ok]
    x = (bounds[:, 0] + bounds[:, 2]) / 2
    y = (bounds[:, 1] + bounds[:, 3]) / 2
    if geoms.crs.is_geographic:
        lon, lat = x, y
    else:
        to_ll = pyproj.Transformer.from_crs(geoms.crs, WGS84, always_xy=True)
        lon, lat = to_ll.transform(x, y)
    # mean of unit vectors: the centre of points on both sides of 180 deg stays near 180 deg
    lon_r, lat_r = np.radians(lon), np.radians(lat)
    vx = np.mean(np.cos(lat_r) * np.cos(lon_r))
    vy = np.mean(np.cos(lat_r) * np.sin(lon_r))
    vz = np.mean(np.sin(lat_r))
    lon_c = float(np.degrees(np.arctan2(vy, vx)))
    lat_c = float(np.degrees(np.arctan2(vz, np.hypot(vx, vy))))
    return round(lon_c, 4), round(lat_c, 4)


def equal_area_crs(geoms: gpd.GeoSeries | gpd.GeoDataFrame) -> pyproj.CRS:
    """Lambert azimuthal equal-area CRS centred on the data, in metres.

    Parameters
    ----------
    geoms : GeoSeries or GeoDataFrame
        Geometries with a CRS.

    Returns
    -------
    pyproj.CRS
        ``+proj=laea`` on the WGS 84 ellipsoid, centred on the data.

    Examples
    --------
    >>> from shapely import box
    >>> s = gpd.GeoSeries([box(102.0, 18.0, 102.01, 18.01)], crs=4326)
    >>> equal_area_crs(s).coordinate_operation.method_name
    'Lambert Azimuthal Equal Area'
    """
    series = geoms.geometry if isinstance(geoms, gpd.GeoDataFrame) else geoms
    lon, lat = _lonlat_centre(series)
    return pyproj.CRS.from_user_input(
        f"+proj=laea +lat_0={lat} +lon_0={lon} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
    )


def area_m2(geoms: gpd.GeoSeries | gpd.GeoDataFrame) -> np.ndarray:
    """Area of each geometry [m²], measured in an equal-area CRS centred on the data.

    Overlaps are *not* merged; use :func:`union_area_m2` for a total.

    Examples
    --------
    A 100 m square drawn in an equal-area CRS (ETRS89-LAEA) is 10,000 m²:

    >>> from shapely import box
    >>> s = gpd.GeoSeries([box(4321000, 3210000, 4321100, 3210100)], crs=3035)
    >>> float(area_m2(s)[0].round(1))
    10000.0
    """
    series = geoms.geometry if isinstance(geoms, gpd.GeoDataFrame) else geoms
    if len(series) == 0:
        return np.zeros(0)
    ea = series.to_crs(equal_area_crs(series))
    return np.asarray(shapely.area(np.asarray(ea.values)), dtype=float)


def union_area_m2(geoms: gpd.GeoSeries | gpd.GeoDataFrame) -> float:
    """Area of the union of the geometries [m²]: overlapping land is counted once.

    Examples
    --------
    Two 100 m squares overlapping by half cover 15,000 m², not 20,000 m²:

    >>> from shapely import box
    >>> s = gpd.GeoSeries([box(4321000, 3210000, 4321100, 3210100),
    ...                    box(4321050, 3210000, 4321150, 3210100)], crs=3035)
    >>> round(union_area_m2(s))
    15000
    """
    series = geoms.geometry if isinstance(geoms, gpd.GeoDataFrame) else geoms
    if len(series) == 0:
        return 0.0
    ea = series.to_crs(equal_area_crs(series))
    return float(shapely.area(shapely.union_all(np.asarray(ea.values))))


_GEOD = pyproj.Geod(ellps="WGS84")


def geodesic_area_m2(geom: BaseGeometry, crs: pyproj.CRS | str | int) -> float:
    """Geodesic area of one geometry on the WGS 84 ellipsoid [m²].

    Used to cross-check the equal-area method. A 1 km square drawn on a UTM central meridian
    covers 1/0.9996² = 1.0008 km² of ground (the UTM scale factor):

    Examples
    --------
    >>> from shapely import box
    >>> round(geodesic_area_m2(box(500000, 2000000, 501000, 2001000), 32648) / 1e6, 4)
    1.0008
    """
    src = pyproj.CRS.from_user_input(crs)
    if not src.equals(WGS84):
        tr = pyproj.Transformer.from_crs(src, WGS84, always_xy=True)
        geom = shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    area, _ = _GEOD.geometry_area_perimeter(shapely.force_2d(geom))
    return abs(float(area))

def lonlat_bounds(geoms: np.ndarray, crs: pyproj.CRS) -> np.ndarray:
    """West, south, east, north of each geometry [degrees, WGS 84]; NaN where off the Earth."""
    b = shapely.bounds(geoms)
    if crs.is_geographic:
        return np.asarray(b, dtype=float)
    tr = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
    with np.errstate(all="ignore"):
        x0, y0 = tr.transform(b[:, 0], b[:, 1], errcheck=False)
        x1, y1 = tr.transform(b[:, 2], b[:, 3], errcheck=False)
    return np.column_stack([x0, y0, x1, y1]).astype(float)
