"""Marking and fencing plans on shapes whose answers are known on paper."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pyproj
import pytest
import shapely
from shapely import box

from planner.errors import InputError
from planner.field.exports import compass, write_csv, write_gpkg, write_gpx, write_kml
from planner.field.marking import (
    MarkingOptions,
    MarkingPlan,
    Prices,
    marking_plan,
    remaining_hazards,
    select_hazards,
    stations,
)

X, Y = 500_000.0, 2_000_000.0   # on the central meridian of UTM 48N: grid north = true north
UTM = 32648
GEOD = pyproj.Geod(ellps="WGS84")


def frame(geoms: list[shapely.Geometry], crs: int = UTM, **cols: list[object]
          ) -> gpd.GeoDataFrame:
    data: dict[str, list[object]] = {"hazard_id": [f"H{i + 1}" for i in range(len(geoms))]}
    data.update(cols)
    return gpd.GeoDataFrame(data, geometry=geoms, crs=crs)


def square(x: float = 0, y: float = 0, size: float = 100) -> shapely.Polygon:
    return box(X + x, Y + y, X + x + size, Y + y + size)


def bearing_from(lon0: float, lat0: float, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    az, _, _ = GEOD.inv(np.full(len(lon), lon0), np.full(len(lat), lat0), lon, lat)
    return np.mod(az, 360)


def angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + 180) % 360 - 180)


def test_square_gets_eight_signs_facing_away_from_its_centre() -> None:
    plan = marking_plan(frame([square()]), MarkingOptions(sign_spacing_m=50))
    s = plan.signs
    assert len(s) == 8 and int(s["corner"].sum()) == 4
    centre = gpd.GeoSeries([square().centroid], crs=UTM).to_crs(4326).iloc[0]
    away = bearing_from(centre.x, centre.y, s["lon"].to_numpy(), s["lat"].to_numpy())
    assert angle_diff(s["facing_deg"].to_numpy(), away).max() < 0.5
    assert sorted(s["facing_deg"].round().astype(int)) == [0, 45, 90, 135, 180, 225, 270, 315]
    assert (s["hazard_ids"] == "H1").all()
    assert s["sign_id"].tolist()[:2] == ["E0001-S001", "E0001-S002"]


def test_fence_with_round_corners_is_400_plus_two_pi_r() -> None:
    plan = marking_plan(frame([square()]), MarkingOptions(fence_margin_m=10, join="round"))
    # the UTM square is 100 m on the grid; on the ground lengths differ by the scale factor
    assert plan.totals["fence_m"] == pytest.approx(400 + 2 * math.pi * 10, rel=0.01)
    mitred = marking_plan(frame([square()]), MarkingOptions(fence_margin_m=10, join="mitre"))
    assert mitred.totals["fence_m"] == pytest.approx(480, rel=0.01)
    assert "round corners" in plan.method and "mitre corners" in mitred.method
    # posts: at most 2.5 m apart along the fence
    assert plan.totals["posts"] == pytest.approx(462.8 / 2.5, abs=6)


def test_two_squares_5_m_apart_become_one_enclosure() -> None:
    plan = marking_plan(frame([square(), square(105)]), MarkingOptions(merge_distance_m=20))
    assert plan.totals["enclosures"] == 1
    e = plan.enclosures.iloc[0]
    assert e["hazard_ids"] == "H1,H2" and e["hazard_count"] == 2
    # the 5 m gap is closed: one 205 m x 100 m rectangle, no sign inside either hazard
    rectangle = box(X, Y, X + 205, Y + 100)
    assert plan.enclosures.geometry.iloc[0].symmetric_difference(rectangle).area < 1e-6
    hazards = shapely.union_all([square(), square(105)])
    assert not shapely.intersects(np.asarray(plan.signs.geometry.values),
                                  shapely.buffer(hazards, -0.01)).any()
    # far apart they stay separate
    apart = marking_plan(frame([square(), square(150)]), MarkingOptions(merge_distance_m=20))
    assert apart.totals["enclosures"] == 2


def test_an_enclosure_never_crosses_into_another_hazard() -> None:
    # 25 m apart: not merged at 20 m, but 15 m fences would overlap, so one enclosure
    opts = MarkingOptions(merge_distance_m=20, fence_margin_m=15)
    plan = marking_plan(frame([square(), square(125)]), opts)
    assert plan.totals["enclosures"] == 1
    # with 10 m fences they stay apart and neither fence touches the other hazard
    plan = marking_plan(frame([square(), square(125)]), MarkingOptions(fence_margin_m=10))
    assert plan.totals["enclosures"] == 2
    for fence in plan.fence.itertuples():
        other = square(125) if fence.enclosure_id == plan.enclosures.sort_values(
            "enclosure_id")["enclosure_id"].iloc[0] else square()
        assert not fence.geometry.intersects(other)


def test_hole_gets_signs_on_its_edge_facing_into_the_hole() -> None:
    donut = square(0, 0, 200).difference(square(50, 50, 100))
    plan = marking_plan(frame([donut]), MarkingOptions(sign_spacing_m=50))
    holes = plan.signs[plan.signs["ring"] == "hole"]
    outer = plan.signs[plan.signs["ring"] == "outer"]
    assert len(holes) == 8 and len(outer) == 16
    centre = gpd.GeoSeries([square(50, 50, 100).centroid], crs=UTM).to_crs(4326).iloc[0]
    towards = bearing_from(centre.x, centre.y, holes["lon"].to_numpy(),
                           holes["lat"].to_numpy())
    # facing into the hole: opposite to the direction from the hole's centre to the sign
    assert angle_diff(holes["facing_deg"].to_numpy(), (towards + 180) % 360).max() < 0.5


def test_same_sign_count_in_wgs84_as_in_its_utm_zone() -> None:
    utm = frame([square(0, 0, 300), square(1000, 0, 140)])
    wgs = utm.to_crs(4326)
    a = marking_plan(utm)
    b = marking_plan(wgs)
    assert len(a.signs) == len(b.signs) and len(a.posts) == len(b.posts)
    assert b.signs.crs.to_epsg() == 4326 and a.signs.crs.to_epsg() == UTM
    assert np.allclose(a.signs["lat"], b.signs["lat"], atol=1e-6)


def test_sharp_corners_get_signs_and_gentle_ones_do_not() -> None:
    ring = shapely.Polygon([(0, 0), (100, 0), (130, 20), (130, 100), (0, 100)]).exterior
    pts, normals, corner = stations(ring, 50, 45)
    # turns: 90 at (0,0), 33.7 at (100,0), 56.3 at (130,20), 90, 90 -> 4 corners
    assert int(corner.sum()) == 4
    assert np.allclose(np.hypot(normals[:, 0], normals[:, 1]), 1)
    gaps = np.hypot(*np.diff(np.vstack([pts, pts[:1]]), axis=0).T)
    assert gaps.max() <= 50 + 1e-6


def test_circle_without_corners_gets_evenly_spaced_signs() -> None:
    circle = gpd.GeoDataFrame({"hazard_id": ["C"]}, geometry=[
        shapely.Point(X, Y).buffer(100, quad_segs=32)], crs=UTM)
    plan = marking_plan(circle, MarkingOptions(sign_spacing_m=50))
    assert len(plan.signs) == math.ceil(2 * math.pi * 100 / 50 - 0.1)
    assert plan.signs["corner"].sum() == 0


def test_quantities_costs_labour_and_priority() -> None:
    opts = MarkingOptions(prices=Prices(sign=25, post=8, fence_m=4, currency="EUR"))
    h = frame([square(0, 0, 50), square(2000, 0, 200)])
    plan = marking_plan(h, opts)
    e = plan.enclosures
    assert (e["cost"] == e["signs"] * 25 + e["posts"] * 8 + e["fence_m"] * 4).all()
    assert plan.totals["cost"] == pytest.approx(e["cost"].sum()) and plan.totals[
        "currency"] == "EUR"
    assert e.sort_values("priority")["hazard_ids"].tolist() == ["H2", "H1"]   # by area
    village = gpd.GeoDataFrame(geometry=[shapely.Point(X - 100, Y)], crs=UTM)
    near = marking_plan(h, opts, settlements=village)
    assert near.enclosures.sort_values("priority")["hazard_ids"].tolist() == ["H1", "H2"]
    assert "settlements" in near.totals["priority_basis"]
    assert near.enclosures["distance_m"].min() == pytest.approx(100, abs=0.1)


def test_selection_and_remaining_geometry() -> None:
    h = frame([square(), square(500)], region=["North", "South"], status=["CHA", "SHA"],
              recorded_on=[dt.date(2012, 1, 1)] * 2)
    assert select_hazards(h, regions=["South"])["hazard_id"].tolist() == ["H2"]
    assert select_hazards(h, statuses=["cha"])["hazard_id"].tolist() == ["H1"]
    with pytest.raises(InputError, match="no hazard with id"):
        select_hazards(h, ids=["H9"])
    r = gpd.GeoDataFrame({"released_on": [dt.date(2015, 1, 1), dt.date(2016, 1, 1)]},
                         geometry=[box(X, Y, X + 50, Y + 100), square(500)], crs=UTM)
    left = remaining_hazards(h, r, dt.date(2016, 12, 31))
    assert left["hazard_id"].tolist() == ["H1"]
    assert left.geometry.iloc[0].area == pytest.approx(5_000)
    assert len(marking_plan(left).signs) == 6   # a 50 m x 100 m rectangle


def test_bad_options_are_all_reported() -> None:
    with pytest.raises(InputError) as e:
        MarkingOptions(sign_spacing_m=0, margin_m=-1, join="bevel")  # type: ignore[arg-type]
    assert "sign_spacing_m" in str(e.value) and "margin_m" in str(e.value)
    assert "join" in str(e.value)
    with pytest.raises(InputError, match="nothing to mark"):
        marking_plan(frame([]))


def _plan() -> MarkingPlan:
    donut = square(0, 0, 200).difference(square(50, 50, 100))
    return marking_plan(frame([donut, square(1000)], region=["<b>North</b>", "South"]))


def test_kml_and_gpx_reread_with_gdal_give_the_same_signs(tmp_path: Path) -> None:
    plan = _plan()
    kml = write_kml(plan, tmp_path / "plan.kml", title="Plan <&>")
    gpx = write_gpx(plan, tmp_path / "plan.gpx")
    signs = plan.signs.sort_values("sign_id")
    k = pyogrio.read_dataframe(kml, layer="Signs").sort_values("Name")
    g = pyogrio.read_dataframe(gpx, layer="waypoints").sort_values("name")
    for df, name in ((k, "Name"), (g, "name")):
        assert len(df) == len(signs)
        assert df[name].tolist() == signs["sign_id"].tolist()
        assert np.allclose(df.geometry.x, signs["lon"], atol=1e-6)
        assert np.allclose(df.geometry.y, signs["lat"], atol=1e-6)
    tracks = pyogrio.read_dataframe(gpx, layer="tracks")
    assert len(tracks) == len(plan.fence)
    fence = pyogrio.read_dataframe(kml, layer="Fence")
    assert len(fence) == len(plan.fence)
    assert len(pyogrio.read_dataframe(kml, layer="Enclosures")) == len(plan.enclosures)


def test_gpkg_and_csv(tmp_path: Path) -> None:
    plan = _plan()
    gpkg = write_gpkg(plan, tmp_path / "plan.gpkg")
    layers = {name for name, _ in pyogrio.list_layers(gpkg)}
    assert layers == {"enclosures", "signs", "fence", "posts"}
    assert len(pyogrio.read_dataframe(gpkg, layer="signs")) == len(plan.signs)
    csv = write_csv(plan, tmp_path / "signs.csv")
    import pandas as pd

    df = pd.read_csv(csv)
    assert {"sign_id", "lat", "lon", "x_m", "y_m", "epsg", "facing_deg", "facing"} <= set(df)
    assert (df["epsg"] == UTM).all()
    assert df["facing"].iloc[0] == compass(df["facing_deg"].iloc[0])


def test_kml_arrows_are_turned_to_each_signs_facing_and_lines_styled(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    plan = _plan()
    kml = write_kml(plan, tmp_path / "plan.kml", title="Plan ]]> <&>")
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    doc = ET.parse(kml).getroot().find("k:Document", ns)
    assert doc is not None and doc.findtext("k:name", namespaces=ns) == "Plan ]]> <&>"
    folders = {f.findtext("k:name", namespaces=ns): f for f in doc.findall("k:Folder", ns)}
    facing = dict(zip(plan.signs["sign_id"], plan.signs["facing_deg"], strict=True))
    placemarks = folders["Signs"].findall("k:Placemark", ns)
    assert len(placemarks) == len(facing)
    for pm in placemarks:
        heading = pm.findtext("k:Style/k:IconStyle/k:heading", namespaces=ns)
        assert heading is not None
        assert float(heading) == pytest.approx(facing[pm.findtext("k:name", namespaces=ns)],
                                               abs=0.05)
        assert pm.findtext("k:Style/k:IconStyle/k:Icon/k:href", namespaces=ns).endswith(
            "arrow.png")
    assert {pm.findtext("k:styleUrl", namespaces=ns)
            for pm in folders["Fence"].findall("k:Placemark", ns)} == {"#fence"}
    assert doc.find("k:Style[@id='enclosure']/k:PolyStyle/k:color", ns) is not None
