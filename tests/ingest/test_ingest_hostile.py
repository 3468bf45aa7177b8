"""Files a careless coordinator or a hostile editor would upload: each is refused with a clear
message or read correctly, and the store is unchanged when refused (issue 14, items 1, 7, 9)."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely
from shapely import box
from typer.testing import CliRunner

from planner.cli import app
from planner.errors import InputError, UnsupportedFormatError, ValidationError
from planner.ingest import IngestOptions, ingest, read_file
from planner.store import Store

UTM48 = 32648
X, Y = 500_000.0, 2_150_000.0   # UTM 48N, Xieng Khouang
SECRET = "planner-secret-line-0123"
OPTS = IngestOptions(status="SHA", recorded_on=dt.date(2012, 1, 1))


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A local file the server must never read for an uploader."""
    p = tmp_path / "secret.csv"
    p.write_text(f"name,WKT\n{SECRET},\"POLYGON ((103 19, 103.01 19, 103.01 19.01, 103 19))\"\n")
    return p


def vrt(source: str) -> str:
    return (f'<OGRVRTDataSource><OGRVRTLayer name="secret"><SrcDataSource>{source}'
            '</SrcDataSource><SrcLayer>secret</SrcLayer><GeometryField encoding="WKT" '
            'field="WKT"/><LayerSRS>EPSG:4326</LayerSRS></OGRVRTLayer></OGRVRTDataSource>')


def counts(store: Store) -> tuple[int, int]:
    return len(store.ids("hazards")), len(store.imports())


def field_frame(n: int = 2, crs: object = UTM48, x: float = X) -> gpd.GeoDataFrame:
    geoms = [box(x + i * 300, Y, x + i * 300 + 100, Y + 100) for i in range(n)]
    return gpd.GeoDataFrame({"hazard_id": [f"H-{i}" for i in range(n)]}, geometry=geoms,
                            crs=crs)


# ------------------------------------------------------------ readers open only what names say


def test_the_vrt_really_reads_the_file_when_gdal_guesses(tmp_path: Path,
                                                         secret_file: Path) -> None:
    """The attack works against a plain GDAL open, so the refusals below mean something."""
    p = tmp_path / "x.geojson"
    p.write_text(vrt(f"CSV:{secret_file}"))
    assert SECRET in pyogrio.read_dataframe(p)["name"].tolist()


@pytest.mark.parametrize("name", ["x.geojson", "x.json", "x.kml", "x.gpkg", "x.shp"])
def test_a_vrt_under_any_supported_name_is_refused(tmp_path: Path, secret_file: Path,
                                                   make_store: Callable[..., Store],
                                                   name: str) -> None:
    st = make_store(crs="EPSG:4326")
    p = tmp_path / name
    p.write_text(vrt(f"CSV:{secret_file}"))
    if name.endswith(".shp"):
        for ext in (".shx", ".dbf"):
            p.with_suffix(ext).write_bytes(b"\0" * 100)
    with pytest.raises(UnsupportedFormatError) as exc:
        ingest(st, "hazards", p, OPTS)
    assert SECRET not in str(exc.value)
    assert "its content is not" in str(exc.value)
    assert counts(st) == (0, 0)


def test_a_vrt_inside_a_zip_is_refused_and_no_server_path_is_shown(
        tmp_path: Path, secret_file: Path, make_store: Callable[..., Store]) -> None:
    st = make_store(crs="EPSG:4326")
    z = tmp_path / "survey.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("data/hazards.geojson", vrt("/vsicurl/http://127.0.0.1:9/x.csv"))
    with pytest.raises(UnsupportedFormatError) as exc:
        ingest(st, "hazards", z, OPTS)
    text = str(exc.value)
    assert "survey.zip/data/hazards.geojson" in text
    assert "/tmp" not in text and "planner-" not in text
    assert counts(st) == (0, 0)


def _gpkg(tmp_path: Path) -> Path:
    p = tmp_path / "real.gpkg"
    field_frame().to_file(p, driver="GPKG")
    return p


def _geojson(tmp_path: Path) -> Path:
    p = tmp_path / "real.geojson"
    field_frame().to_file(p, driver="GeoJSON")
    return p


def _kml(tmp_path: Path) -> Path:
    p = tmp_path / "real.kml"
    field_frame().to_crs(4326).to_file(p, driver="KML")
    return p


def _gdalg(tmp_path: Path) -> Path:
    p = tmp_path / "alg.json"
    p.write_text(json.dumps({"type": "gdal_streamed_alg",
                             "command_line": "gdal vector read /etc/passwd"}))
    return p


@pytest.mark.parametrize(("make", "as_name"), [
    (_gpkg, "x.geojson"), (_kml, "x.geojson"), (_gdalg, "x.geojson"),
    (_geojson, "x.kml"), (_gpkg, "x.kml"),
    (_geojson, "x.gpkg"), (_kml, "x.gpkg"),
    (_geojson, "x.shp"), (_gpkg, "x.shp"),
])
def test_a_file_of_another_format_under_a_supported_name_is_refused(
        tmp_path: Path, make_store: Callable[..., Store],
        make: Callable[[Path], Path], as_name: str) -> None:
    st = make_store(crs="EPSG:32648")
    p = tmp_path / "up" / as_name
    p.parent.mkdir()
    p.write_bytes(make(tmp_path).read_bytes())
    if as_name.endswith(".shp"):
        for ext in (".shx", ".dbf"):
            p.with_suffix(ext).write_bytes(b"\0" * 100)
    with pytest.raises(InputError) as exc:
        ingest(st, "hazards", p, OPTS)
    assert as_name in str(exc.value)
    assert counts(st) == (0, 0)


@pytest.mark.parametrize("make", [_gpkg, _geojson, _kml])
def test_each_format_under_its_own_name_still_reads(tmp_path: Path,
                                                    make: Callable[[Path], Path]) -> None:
    assert len(read_file(make(tmp_path))) == 2


@pytest.mark.parametrize("name", ["/vsicurl/http://127.0.0.1:9/x.geojson",
                                  "CSV:/etc/passwd", "https://example.org/x.geojson"])
def test_connection_strings_and_urls_are_not_opened(name: str) -> None:
    with pytest.raises(UnsupportedFormatError, match="local files only"):
        read_file(name)


# ---------------------------------------------------------------- archives that cannot be read


def _zip_with(tmp_path: Path, name: str, patch: Callable[[bytearray], None]) -> Path:
    z = tmp_path / name
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.geojson", field_frame().to_crs(4326).to_json())
    b = bytearray(z.read_bytes())
    patch(b)
    z.write_bytes(bytes(b))
    return z


def _set_flag(b: bytearray, bit: int) -> None:
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        j = b.find(sig)
        b[j + off] |= bit


def _set_method(b: bytearray, method: int) -> None:
    for sig, off in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        j = b.find(sig)
        b[j + off] = method


def _flip_data_byte(b: bytearray) -> None:
    j = b.find(b"PK\x03\x04")
    b[j + 40] ^= 0xFF   # inside the compressed data of the first member


@pytest.mark.parametrize(("name", "patch", "expect"), [
    ("encrypted.zip", lambda b: _set_flag(b, 1), "encrypted"),
    ("deflate64.zip", lambda b: _set_method(b, 9), "method 9"),
    ("badcrc.zip", _flip_data_byte, "damaged"),
])
def test_unreadable_archives_get_a_message_and_change_nothing(
        tmp_path: Path, make_store: Callable[..., Store], name: str,
        patch: Callable[[bytearray], None], expect: str) -> None:
    st = make_store(crs="EPSG:4326")
    z = _zip_with(tmp_path, name, patch)
    with pytest.raises(InputError, match=expect):
        ingest(st, "hazards", z, OPTS)
    assert counts(st) == (0, 0)


def test_two_members_of_the_same_name_are_refused(tmp_path: Path,
                                                  make_store: Callable[..., Store]) -> None:
    st = make_store(crs="EPSG:4326")
    z = tmp_path / "dup.zip"
    with zipfile.ZipFile(z, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("a.geojson", field_frame().to_crs(4326).to_json())
        zf.writestr("a.geojson", field_frame(5).to_crs(4326).to_json())
    with pytest.raises(InputError, match="appears twice"):
        ingest(st, "hazards", z, OPTS)
    assert counts(st) == (0, 0)


# ------------------------------------------------------------------ bad content, clear messages


def test_an_unclosed_ring_is_closed_and_reported(tmp_path: Path,
                                                 make_store: Callable[..., Store]) -> None:
    st = make_store(crs="EPSG:4326")
    p = tmp_path / "open.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"hazard_id": "H1"},
        "geometry": {"type": "Polygon",
                     "coordinates": [[[103.2, 19.4], [103.21, 19.4], [103.21, 19.41]]]}}]}))
    result = ingest(st, "hazards", p, OPTS)
    assert [p.message for p in result.warnings if "not closed" in p.message]
    assert result.features.geometry.iloc[0].area > 0


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n"])
def test_an_empty_csv_is_refused_with_a_message(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "h.csv"
    p.write_bytes(content)
    with pytest.raises(InputError, match="empty"):
        read_file(p)


def test_a_date_before_1900_is_refused(tmp_path: Path,
                                       make_store: Callable[..., Store]) -> None:
    st = make_store(crs="EPSG:32648")
    p = tmp_path / "h.geojson"
    field_frame().assign(recorded_on=["31.12.1899", "2012-01-01"], status="SHA").to_file(p)
    with pytest.raises(ValidationError) as exc:
        ingest(st, "hazards", p)
    assert "1899-12-31 is before 1900" in str(exc.value)
    assert counts(st) == (0, 0)


def test_a_date_before_the_programme_first_record_is_warned_about(
        tmp_path: Path, make_store: Callable[..., Store]) -> None:
    st = make_store(crs="EPSG:32648")
    first = tmp_path / "first.geojson"
    field_frame().assign(recorded_on="2012-01-01", status="SHA").to_file(first)
    ingest(st, "hazards", first)
    later = tmp_path / "later.geojson"
    field_frame().assign(hazard_id=["H-8", "H-9"], recorded_on="1975-05-01",
                         status="SHA").to_file(later)
    result = ingest(st, "hazards", later)
    assert any("earlier than any record" in p.message for p in result.warnings)


def test_point_and_line_parts_of_a_collection_are_reported(tmp_path: Path,
                                                           make_store: Callable[..., Store]
                                                           ) -> None:
    st = make_store(crs="EPSG:32648")
    gc = shapely.GeometryCollection([box(X, Y, X + 100, Y + 100), shapely.Point(X, Y),
                                     shapely.LineString([(X, Y), (X + 50, Y + 50)])])
    p = tmp_path / "gc.gpkg"
    gpd.GeoDataFrame({"hazard_id": ["G1"]}, geometry=[gc], crs=UTM48).to_file(p)
    result = ingest(st, "hazards", p, OPTS)
    note = [w.message for w in result.warnings if "GeometryCollection" in w.message]
    assert note and "LineString, Point" in note[0]
    assert result.features.geometry.iloc[0].area == pytest.approx(10_000, rel=1e-9)


def test_data_in_the_wrong_utm_zone_is_warned_about(tmp_path: Path,
                                                    make_store: Callable[..., Store]) -> None:
    st = make_store(crs="EPSG:32648")
    right = tmp_path / "zone48.gpkg"
    field_frame().to_file(right)
    ingest(st, "hazards", right, OPTS)
    # the same coordinates, but a .prj that says zone 47: 600+ km west
    wrong = tmp_path / "zone47.gpkg"
    field_frame(crs=32647).assign(hazard_id=["W-1", "W-2"]).to_file(wrong)
    result = ingest(st, "hazards", wrong, OPTS)
    far = [w for w in result.warnings if "from the programme's other data" in w.message]
    assert far and far[0].argument == "crs"
    assert "2 of 2 features" in far[0].message
    # and a file next to the first one gives no such warning
    near = tmp_path / "near.gpkg"
    field_frame(x=X + 5_000).assign(hazard_id=["N-1", "N-2"]).to_file(near)
    assert not [w for w in ingest(st, "hazards", near, OPTS).warnings
                if "other data" in w.message]


# ------------------------------------------------------------------------- DBF text encodings


@pytest.mark.parametrize(("encoding", "text"), [("cp1251", "Сиенгкхуанг"),
                                                ("cp1252", "Région Été"),
                                                ("UTF-8", "ແຂວງຊຽງຂວາງ")])
def test_dbf_text_without_cpg_is_detected_and_reported(tmp_path: Path, encoding: str,
                                                       text: str) -> None:
    shp = tmp_path / "h.shp"
    frame = field_frame().assign(region=[text, text + " 2"])
    frame.to_file(shp, driver="ESRI Shapefile", encoding=encoding)
    for cpg in tmp_path.glob("h.[cC][pP][gG]"):
        cpg.unlink()
    # what GDAL alone makes of it: Latin-1 garbage (so the test can fail)
    if encoding != "cp1252":
        assert pyogrio.read_dataframe(shp)["region"].iloc[0] != text
    gdf = read_file(shp)
    assert gdf["region"].tolist() == [text, text + " 2"]
    notes = [n for n in gdf.attrs["read_notes"] if "encoding" in n[1]]
    assert notes and notes[0][3] == "encoding"


def test_the_encoding_can_be_forced(tmp_path: Path) -> None:
    shp = tmp_path / "h.shp"
    field_frame().assign(region=["Été", "Hiver"]).to_file(shp, encoding="cp1252")
    shp.with_suffix(".cpg").unlink()
    assert read_file(shp, encoding="cp1252")["region"].iloc[0] == "Été"


# --------------------------------------------------------------------------- the CLI's faces


@pytest.mark.parametrize("content", [b"", b"\n", b"PK\x03\x04broken"])
def test_the_cli_prints_no_traceback(tmp_path: Path, make_store: Callable[..., Store],
                                     content: bytes) -> None:
    make_store(crs="EPSG:32648")
    name = "h.zip" if content.startswith(b"PK") else "h.csv"
    (tmp_path / name).write_bytes(content)
    res = CliRunner().invoke(app, ["ingest", "hazards", str(tmp_path / name), "--store",
                                   str(tmp_path / "test.gpkg")])
    assert res.exit_code == 1
    assert "Traceback" not in res.output and "error:" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_the_cli_names_its_flag_for_the_argument(tmp_path: Path,
                                                 make_store: Callable[..., Store]) -> None:
    make_store(crs="EPSG:32648")
    p = tmp_path / "h.csv"
    p.write_text('hazard_id,WKT\nA,"POLYGON ((0 0, 100 0, 100 100, 0 0))"\n')
    res = CliRunner().invoke(app, ["ingest", "hazards", str(p), "--store",
                                   str(tmp_path / "test.gpkg")])
    assert res.exit_code == 1
    assert "[--crs]" in res.output and "no coordinate system" in res.output


def test_shapefile_column_names_cut_to_ten_characters_are_recognised(
        tmp_path: Path, make_store: Callable[..., Store]) -> None:
    """Every GIS writes DBF column names of at most 10 characters: released_on → released_o."""
    st = make_store(crs="EPSG:32648")
    shp = tmp_path / "releases.shp"
    gpd.GeoDataFrame({"release_id": ["R1"], "method": ["cleared"],
                      "released_on": ["2015-03-01"], "organisation": ["NPA"]},
                     geometry=[box(X, Y, X + 100, Y + 100)], crs=UTM48).to_file(shp)
    assert "released_o" in pyogrio.read_info(shp)["fields"]
    result = ingest(st, "releases", shp)
    row = result.features.iloc[0]
    assert row["released_on"] == dt.date(2015, 3, 1) and row["organisation"] == "NPA"


def test_a_repair_says_where_in_longitude_and_latitude(tmp_path: Path,
                                                       make_store: Callable[..., Store]) -> None:
    """A bow-tie is repaired; the message places it in WGS 84 degrees a GIS user can find, not
    in planner's internal equal-area coordinates."""
    st = make_store(crs="EPSG:32648")
    bowtie = shapely.Polygon([(X, Y), (X + 100, Y + 100), (X + 100, Y), (X, Y + 100)])
    p = tmp_path / "bowtie.gpkg"
    gpd.GeoDataFrame({"hazard_id": ["B1"]}, geometry=[bowtie], crs=UTM48).to_file(p)
    result = ingest(st, "hazards", p, OPTS)
    note = next(w.message for w in result.warnings if "make_valid" in w.message)
    lon, lat = pyproj.Transformer.from_crs(UTM48, 4326, always_xy=True).transform(X + 50, Y + 50)
    import re

    found = re.search(r"lon ([-0-9.]+), lat ([-0-9.]+)", note)
    assert found is not None, note
    assert float(found.group(1)) == pytest.approx(lon, abs=1e-5)
    assert float(found.group(2)) == pytest.approx(lat, abs=1e-5)
    assert "[" not in note


# -------------------------------------------------------------- setting bad features aside


def _with_sliver(tmp_path: Path) -> Path:
    """Three good hazards and a sliver of 6e-6 m², as a real national file had."""
    sliver = shapely.Polygon([(X, Y), (X + 0.006, Y), (X + 0.006, Y + 0.001)])
    frame = field_frame(3).assign(status="SHA", recorded_on="2012-01-01")
    frame = pd.concat([frame, gpd.GeoDataFrame(
        {"hazard_id": ["S-1"], "status": ["SHA"], "recorded_on": ["2012-01-01"],
         "region": ["=HYPERLINK(1)"]}, geometry=[sliver], crs=UTM48)], ignore_index=True)
    p = tmp_path / "national.gpkg"
    gpd.GeoDataFrame(frame, crs=UTM48).to_file(p)
    return p


def test_bad_features_can_be_set_aside_and_nothing_is_lost(
        tmp_path: Path, make_store: Callable[..., Store]) -> None:
    st = make_store(crs="EPSG:32648")
    p = _with_sliver(tmp_path)
    with pytest.raises(ValidationError, match="degenerate"):
        ingest(st, "hazards", p)
    assert counts(st) == (0, 0)
    result = ingest(st, "hazards", p, IngestOptions(set_aside=True))
    assert sorted(result.features["hazard_id"]) == ["H-0", "H-1", "H-2"]
    assert counts(st) == (3, 1)
    aside = result.set_aside
    assert aside is not None and aside["hazard_id"].tolist() == ["S-1"]
    assert "degenerate" in aside["planner_problems"].iloc[0]
    assert aside["planner_row"].tolist() == [4] and aside["region"].iloc[0] == "=HYPERLINK(1)"
    assert any("set aside" in w.message for w in result.warnings)


def test_errors_about_the_whole_file_still_refuse_it(tmp_path: Path,
                                                    make_store: Callable[..., Store]) -> None:
    st = make_store(crs="EPSG:32648")
    p = tmp_path / "nostatus.gpkg"
    field_frame(2).assign(recorded_on="2012-01-01").to_file(p)
    with pytest.raises(ValidationError, match="no status column"):
        ingest(st, "hazards", p, IngestOptions(set_aside=True))
    assert counts(st) == (0, 0)


def test_the_cli_sets_aside_into_a_file_to_fix(tmp_path: Path,
                                               make_store: Callable[..., Store]) -> None:
    make_store(crs="EPSG:32648")
    store = str(tmp_path / "test.gpkg")
    p = _with_sliver(tmp_path)
    res = CliRunner().invoke(app, ["ingest", "hazards", str(p), "--store", store])
    assert res.exit_code == 1 and "--set-aside" in res.output
    aside = tmp_path / "to_fix.gpkg"
    res = CliRunner().invoke(app, ["ingest", "hazards", str(p), "--store", store,
                                   "--set-aside", str(aside)])
    assert res.exit_code == 0, res.output
    assert "imported 3 hazards" in res.output and "1 feature(s) set aside" in res.output
    back = pyogrio.read_dataframe(aside)
    assert back["hazard_id"].tolist() == ["S-1"] and "degenerate" in back["planner_problems"][0]


def test_the_cli_skips_invalid_features_into_the_stores_rejected_layer(
        tmp_path: Path, make_store: Callable[..., Store]) -> None:
    make_store(crs="EPSG:32648")
    store = str(tmp_path / "test.gpkg")
    p = _with_sliver(tmp_path)
    res = CliRunner().invoke(app, ["ingest", "hazards", str(p), "--store", store])
    assert res.exit_code == 1 and "--skip-invalid" in res.output
    res = CliRunner().invoke(app, ["ingest", "hazards", str(p), "--store", store,
                                   "--skip-invalid", "--report", str(tmp_path / "r.csv")])
    assert res.exit_code == 0, res.output
    assert "imported 3 hazards" in res.output and "rejected layer" in res.output
    kept = pyogrio.read_dataframe(store, layer="rejected")
    assert len(kept) == 1 and "degenerate" in kept["problems"][0]
    # where it is, in the file's CRS and in lon/lat
    assert "in the file's CRS; lon " in kept["problems"][0]
    assert '"hazard_id": "S-1"' in kept["attributes"][0]
    assert "degenerate" in (tmp_path / "r.csv").read_text()
