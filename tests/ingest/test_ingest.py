from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely import box

from planner.accounting import build_ledger
from planner.errors import (
    CRSMissingError,
    DuplicateImportError,
    InputError,
    LayerChoiceError,
    UnsupportedFormatError,
    ValidationError,
)
from planner.ingest import IngestOptions, ingest, parse_date, read_file
from planner.store import Store
from tests.conftest import AMSTERDAM

D = dt.date
UTM = 32648
X, Y = 500_000.0, 2_150_000.0  # UTM 48N, Xieng Khouang


def field_frame(n: int = 3, crs: object = UTM) -> gpd.GeoDataFrame:
    geoms = [box(X + i * 300, Y, X + i * 300 + 100, Y + 100) for i in range(n)]
    return gpd.GeoDataFrame({"HAZ_CODE": [f"XK-{i}" for i in range(n)], "TYPE": ["CHA"] * n,
                             "SURVEY_DT": ["2010-05-01"] * n, "DISTRICT": ["Pek"] * n},
                            geometry=geoms, crs=crs)


def write_shp_zip(frame: gpd.GeoDataFrame, path: Path, *, drop_prj: bool = False,
                  folder: str = "export/2012", name: str = "hazards") -> Path:
    shp_dir = path.parent / f"shp-{path.stem}"
    shp_dir.mkdir()
    frame.to_file(shp_dir / f"{name}.shp", engine="pyogrio")
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(shp_dir.iterdir()):
            if drop_prj and f.suffix == ".prj":
                continue
            zf.write(f, f"{folder}/{f.name}")
    return path


def store_utm(any_store: Callable[..., Store]) -> Store:
    return any_store(crs="EPSG:32648")


def test_zipped_shapefile_in_nested_folder(tmp_path: Path, any_store: Callable[..., Store]
                                           ) -> None:
    store = store_utm(any_store)
    result = ingest(store, "hazards", write_shp_zip(field_frame(), tmp_path / "s.zip"))
    got = store.read("hazards")
    assert list(got["hazard_id"]) == ["XK-0", "XK-1", "XK-2"]
    assert set(got["status"]) == {"CHA"} and set(got["region"]) == {"Pek"}
    assert result.import_id == 1 and store.imports()["rows"].tolist() == [3]


def test_shapefile_without_prj_is_refused_naming_the_fix_and_store_unchanged(
        tmp_path: Path, any_store: Callable[..., Store]) -> None:
    store = store_utm(any_store)
    z = write_shp_zip(field_frame(), tmp_path / "survey_2019.zip", drop_prj=True)
    with pytest.raises(CRSMissingError, match="no coordinate system") as exc:
        ingest(store, "hazards", z)
    assert "survey_2019.zip" in str(exc.value) and exc.value.argument == "crs"
    assert "--" not in str(exc.value)  # core text names no CLI flag; each face adds its own
    assert len(store.read("hazards")) == 0 and len(store.imports()) == 0
    ingest(store, "hazards", z, IngestOptions(crs="EPSG:32648"))  # the fix works
    assert len(store.read("hazards")) == 3


def test_ten_bad_features_are_all_reported_and_nothing_lands(
        tmp_path: Path, any_store: Callable[..., Store]) -> None:
    store = store_utm(any_store)
    f = field_frame(14)
    bow = shapely.Polygon([(X, Y), (X + 100, Y + 100), (X + 100, Y), (X, Y + 100)])
    f.loc[0, "SURVEY_DT"] = "not a date"
    f.loc[1, "SURVEY_DT"] = "2099-01-01"  # in the future
    f.loc[2, "TYPE"] = "maybe"
    f.loc[3, "HAZ_CODE"] = "XK-4"  # duplicate id
    f.loc[5, "geometry"] = shapely.Point(X, Y)  # point where a polygon is expected
    f.loc[6, "geometry"] = shapely.LineString([(X, Y), (X + 50, Y)])
    f.loc[7, "geometry"] = box(X, Y, X + 100, Y + 100).union(
        shapely.Polygon([(X, Y), (X + 90_000, Y + 10), (X, Y + 20)]))  # wild vertex
    f.loc[8, "geometry"] = shapely.Polygon([(X, Y), (X + 10, Y), (X + 20, Y), (X, Y)])  # flat
    f.loc[9, "geometry"] = box(-X, Y, -X + 100, Y + 100)  # far outside UTM 48N
    f.loc[10, "HAZ_CODE"] = None  # no id
    f.loc[11, "geometry"] = bow  # invalid but repairable: not an error
    f.to_file(tmp_path / "bad.gpkg", engine="pyogrio")
    with pytest.raises(ValidationError) as exc:
        ingest(store, "hazards", tmp_path / "bad.gpkg")
    errors = [p for p in exc.value.problems if p.severity == "error"]
    rows = sorted({p.feature.split(" ")[1] for p in errors})
    assert rows == sorted(str(i) for i in (1, 2, 3, 5, 6, 7, 8, 9, 10, 11)), errors
    text = str(exc.value)
    for needle in ("not a date", "future", "'maybe'", "used twice", "buffer radius", "a line",
                   "km apart", "degenerate", "outside the area", "has no hazard_id"):
        assert needle in text
    assert "buffer_m" in {p.argument for p in errors}
    assert len(store.read("hazards")) == 0 and len(store.imports()) == 0


def test_invalid_ring_is_repaired_and_reported(tmp_path: Path,
                                               any_store: Callable[..., Store]) -> None:
    store = store_utm(any_store)
    f = field_frame(1)
    f.loc[0, "geometry"] = shapely.Polygon([(X, Y), (X + 100, Y + 100), (X + 100, Y),
                                            (X, Y + 100)])
    f.to_file(tmp_path / "bow.geojson", engine="pyogrio")
    result = ingest(store, "hazards", tmp_path / "bow.geojson")
    assert [p.severity for p in result.problems] == ["repaired"]
    assert "make_valid" in result.problems[0].message
    g = store.read("hazards").geometry.iloc[0]
    assert g.is_valid and g.area == pytest.approx(5_000, rel=1e-6)


def test_second_import_of_the_same_file_is_refused(tmp_path: Path,
                                                   any_store: Callable[..., Store]) -> None:
    store = store_utm(any_store)
    z = write_shp_zip(field_frame(), tmp_path / "s.zip")
    ingest(store, "hazards", z)
    with pytest.raises(DuplicateImportError, match="already imported"):
        ingest(store, "hazards", z)
    assert len(store.read("hazards")) == 3


def test_several_shapefiles_in_one_zip_need_a_choice(tmp_path: Path,
                                                    any_store: Callable[..., Store]) -> None:
    store = store_utm(any_store)
    a = tmp_path / "a"
    a.mkdir()
    field_frame(2).to_file(a / "north.shp", engine="pyogrio")
    field_frame(3).assign(HAZ_CODE=["S1", "S2", "S3"]).to_file(a / "south.shp",
                                                                engine="pyogrio")
    z = tmp_path / "two.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in a.iterdir():
            zf.write(f, f"layers/{f.name}")
    with pytest.raises(LayerChoiceError, match=r"north\.shp.*south\.shp"):
        ingest(store, "hazards", z)
    ingest(store, "hazards", z, IngestOptions(layer="south"))
    assert sorted(store.read("hazards")["hazard_id"]) == ["S1", "S2", "S3"]


def test_geopackage_layer_choice_and_wgs84_geojson(tmp_path: Path,
                                                   any_store: Callable[..., Store]) -> None:
    store = store_utm(any_store)
    gp = tmp_path / "multi.gpkg"
    field_frame(2).to_file(gp, layer="one", engine="pyogrio")
    field_frame(2).assign(HAZ_CODE=["B1", "B2"]).to_file(gp, layer="two", engine="pyogrio")
    with pytest.raises(LayerChoiceError, match="one, two"):
        ingest(store, "hazards", gp)
    ingest(store, "hazards", gp, IngestOptions(layer="two"))
    field_frame(1).assign(HAZ_CODE=["G1"]).to_crs(4326).to_file(
        tmp_path / "h.geojson", engine="pyogrio")
    ingest(store, "hazards", tmp_path / "h.geojson")
    got = store.read("hazards").set_index("hazard_id")
    assert got.crs.to_epsg() == UTM
    assert got.geometry["G1"].area == pytest.approx(10_000, rel=1e-6)


def test_kml_and_kmz_from_a_handheld(tmp_path: Path, any_store: Callable[..., Store]) -> None:
    store = store_utm(any_store)
    f = field_frame(2).to_crs(4326).rename(columns={"HAZ_CODE": "Name"})
    f.to_file(tmp_path / "strikes.kml", driver="KML", engine="pyogrio")
    result = ingest(store, "hazards", tmp_path / "strikes.kml",
                    IngestOptions(recorded_on=D(2014, 5, 1), status="SHA"))
    assert len(result.features) == 2
    got = store.read("hazards")
    assert set(got["status"]) == {"SHA"} and set(got["found_after_eif"]) == {True}
    kmz = tmp_path / "more.kmz"
    f2 = f.assign(Name=["K1", "K2"])
    f2.to_file(tmp_path / "doc.kml", driver="KML", engine="pyogrio")
    with zipfile.ZipFile(kmz, "w") as zf:
        zf.write(tmp_path / "doc.kml", "doc.kml")
    ingest(store, "hazards", kmz, IngestOptions(recorded_on=D(2014, 5, 1), status="SHA"))
    assert len(store.read("hazards")) == 4


def test_csv_of_vertices_and_csv_of_points(tmp_path: Path,
                                           any_store: Callable[..., Store]) -> None:
    store = any_store(crs="EPSG:4326")
    rows = ["hazard_id,vertex,lat,lon,status,recorded_on"]
    for hid, lon0 in (("V1", 103.0), ("V2", 103.1)):
        for k, (dx, dy) in enumerate([(0, 0), (0.001, 0), (0.001, 0.001), (0, 0.001)]):
            rows.append(f"{hid},{k},{19.4 + dy},{lon0 + dx},SHA,2012-01-01")
    (tmp_path / "v.csv").write_text("\n".join(rows) + "\n")
    result = ingest(store, "hazards", tmp_path / "v.csv")
    assert any("WGS 84" in p.message for p in result.warnings)
    got = store.read("hazards")
    assert list(got["hazard_id"]) == ["V1", "V2"]
    assert got.geom_type.tolist() == ["MultiPolygon"] * 2
    (tmp_path / "p.csv").write_text("id,latitude,longitude\nP1,19.4,103.2\nP2,19.41,103.2\n")
    with pytest.raises(ValidationError, match="buffer radius"):
        ingest(store, "hazards", tmp_path / "p.csv",
               IngestOptions(status="SHA", recorded_on=D(2013, 1, 1)))
    ingest(store, "hazards", tmp_path / "p.csv",
           IngestOptions(status="SHA", recorded_on=D(2013, 1, 1), buffer_m=50))
    from planner.areas import area_m2
    circles = store.read("hazards").iloc[2:]
    assert area_m2(circles) == pytest.approx([3.14159 * 2500] * 2, rel=0.01)


def test_swapped_lat_lon_is_diagnosed(tmp_path: Path, any_store: Callable[..., Store]) -> None:
    store = any_store(crs="EPSG:4326")
    f = gpd.GeoDataFrame({"id": ["S1"], "status": ["SHA"], "date": ["2012-01-01"]},
                         geometry=[box(19.4, 103.2, 19.41, 103.21)], crs=4326)
    f.to_file(tmp_path / "swapped.geojson", engine="pyogrio")
    with pytest.raises(ValidationError, match="swapped"):
        ingest(store, "hazards", tmp_path / "swapped.geojson")


def test_antimeridian_polygon_is_kept_whole(tmp_path: Path,
                                            any_store: Callable[..., Store]) -> None:
    store = any_store(crs="EPSG:4326")
    poly = shapely.Polygon([(179.99, -17.0), (-179.99, -17.0), (-179.99, -16.99),
                            (179.99, -16.99)])
    f = gpd.GeoDataFrame({"id": ["F1"], "status": ["SHA"], "date": ["2012-01-01"]},
                         geometry=[poly], crs=4326)
    f.to_file(tmp_path / "fiji.geojson", engine="pyogrio")
    result = ingest(store, "hazards", tmp_path / "fiji.geojson")
    assert result.problems[0].severity == "repaired"
    s = build_ledger(store.read("hazards"), store.read("releases").iloc[:0],
                     eif=D(2011, 8, 1)).status(D(2013, 1, 1))
    assert s.known_m2 == pytest.approx(2_300_000, rel=0.05)  # 0.02 deg x 0.01 deg, not 360


def test_zip_slip_archive_is_refused(tmp_path: Path, any_store: Callable[..., Store]) -> None:
    store = store_utm(any_store)
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../../outside.shp", b"x")
        zf.writestr("/etc/passwd.shp", b"x")
    with pytest.raises(InputError, match="outside the archive") as exc:
        ingest(store, "hazards", z)
    assert "absolute path" in str(exc.value)
    assert not (tmp_path.parent / "outside.shp").exists()


def test_not_a_zip_and_not_geodata(tmp_path: Path, any_store: Callable[..., Store]) -> None:
    store = store_utm(any_store)
    png = tmp_path / "photo.zip"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(UnsupportedFormatError, match="not a readable zip"):
        ingest(store, "hazards", png)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedFormatError, match="not a geodata format"):
        read_file(tmp_path / "notes.txt")


def test_parse_date_formats() -> None:
    assert parse_date("2016-12-06") == D(2016, 12, 6)
    assert parse_date("2016/12/06") == D(2016, 12, 6)
    assert parse_date("06.12.2016") == D(2016, 12, 6)
    assert parse_date("31/12/2016") == D(2016, 12, 31)
    assert parse_date("12/31/2016") is None and parse_date("") is None


# ------------------------------------------------------------------ real public data

def test_amsterdam_real_data_union_not_sum(any_store: Callable[..., Store]) -> None:
    """Real WWII UXO records of Amsterdam (MPL-2.0, see tests/data/amsterdam-uxo/SOURCE.txt).

    The WKT is in EPSG:28992 without saying so: planner refuses it until told. Two surveys of
    Zeeburgereiland share one polygon, so summing the survey polygons double-counts.
    """
    store = any_store(crs="EPSG:28992", eif=D(1945, 5, 5))
    surveys = AMSTERDAM / "reeds_uitgevoerd_ce_onderzoek.csv"
    with pytest.raises(CRSMissingError):
        ingest(store, "hazards", surveys, IngestOptions(status="SHA"))
    result = ingest(store, "hazards", surveys, IngestOptions(
        crs="EPSG:28992", status="SHA", column_map={"hazard_id": "", "recorded_on": "Datum"}))
    assert any("same geometry" in p.message for p in result.warnings)
    ingest(store, "releases", AMSTERDAM / "gevrijwaard_gebied.csv",
           IngestOptions(crs="EPSG:28992", method="cleared"))
    h, r = store.read("hazards"), store.read("releases")
    # every release dated: Datum1 is used where Datum is empty
    assert len(r) == 19 and r["released_on"].notna().all()
    assert set(r["released_on"].dt.year) <= set(range(1990, 2017))
    s = build_ledger(h, r, eif=D(1945, 5, 5)).status(D(2016, 12, 31))
    # the file's own figures (planar RD New): sum 2,660,697 m², union 1,570,632 m²
    assert s.naive_hazard_sum_m2 == pytest.approx(2_660_697, rel=0.005)
    assert s.known_m2 == pytest.approx(1_570_632, rel=0.005)


def test_day_month_dates_that_read_both_ways_are_said_once(
        make_store: Callable[..., Store], tmp_path: Path) -> None:
    store = make_store()
    path = tmp_path / "clearance.geojson"
    x, y = 4_200_000.0, 3_200_000.0
    gpd.GeoDataFrame({"release_id": ["A", "B", "C"], "method": ["cleared"] * 3,
                      "released_on": ["01/02/2013", "03/04/2013", "05/06/2013"]},
                     geometry=[box(x + 100 * i, y, x + 100 * i + 50, y + 50) for i in range(3)],
                     crs=3035).to_file(path, driver="GeoJSON")
    result = ingest(store, "releases", path)
    said = [p for p in result.warnings if "day/month or month/day" in p.message]
    assert len(said) == 1 and "3 date(s)" in said[0].message
    assert sorted(result.features["released_on"].astype(str))[0].startswith("2013-02-01")
