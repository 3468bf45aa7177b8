from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely import box

from planner.areas import area_m2, equal_area_crs, geodesic_area_m2, union_area_m2
from tests.conftest import sq


def test_two_overlapping_squares_union_is_15000_not_20000() -> None:
    s = gpd.GeoSeries([sq(0, 0), sq(50, 0)], crs=3035)
    assert union_area_m2(s) == pytest.approx(15_000, abs=0.05)
    assert area_m2(s).sum() == pytest.approx(20_000, abs=0.05)  # the naive sum


@pytest.mark.parametrize("lat", [0.0, 19.5, 45.0, 65.0, -33.0])
def test_same_polygon_in_wgs84_and_its_utm_zone_has_the_same_area(lat: float) -> None:
    lon = 103.2
    zone = int((lon + 180) // 6) + 1
    utm = (32600 if lat >= 0 else 32700) + zone
    ll = gpd.GeoSeries([box(lon, lat, lon + 0.01, lat + 0.008)], crs=4326)
    in_utm = ll.to_crs(utm)
    a_ll, a_utm = area_m2(ll)[0], area_m2(in_utm)[0]
    geodesic = geodesic_area_m2(ll.iloc[0], 4326)
    assert a_utm == pytest.approx(a_ll, rel=1e-3)
    assert a_ll == pytest.approx(geodesic, rel=1e-6)  # equal-area agrees with the ellipsoid


@pytest.mark.parametrize("lat", [0.0, 45.0, 65.0])
def test_web_mercator_input_is_accepted_and_measured_on_the_ground(lat: float) -> None:
    ll = gpd.GeoSeries([box(10.0, lat, 10.01, lat + 0.01)], crs=4326)
    merc = ll.to_crs(3857)
    true = geodesic_area_m2(ll.iloc[0], 4326)
    assert area_m2(merc)[0] == pytest.approx(true, rel=1e-6)
    if lat >= 45:  # planar Web Mercator area would be badly wrong here
        assert shapely.area(merc.iloc[0]) > 1.9 * true


def test_antimeridian_data_is_centred_near_180() -> None:
    s = gpd.GeoSeries([box(179.9, -17.0, 179.99, -16.9), box(-179.99, -17.0, -179.9, -16.9)],
                      crs=4326)
    op = equal_area_crs(s).coordinate_operation
    assert op is not None
    lon0 = {p.name: p.value for p in op.params}["Longitude of natural origin"]
    assert abs(abs(lon0) - 180) < 0.1
    a = area_m2(s)
    expected = [geodesic_area_m2(g, 4326) for g in s]
    np.testing.assert_allclose(a, expected, rtol=1e-6)


def test_geographic_crs_needed_for_measuring() -> None:
    with pytest.raises(ValueError, match="no CRS"):
        area_m2(gpd.GeoSeries([box(0, 0, 1, 1)]))
