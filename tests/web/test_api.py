"""The web service: every endpoint and role, hostile uploads, concurrency, schema fuzzing."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import shutil
import threading
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pytest
from fastapi.testclient import TestClient
from shapely import box

from planner.demo import default_data_dir
from planner.errors import ValidationError
from planner.store import Store, open_store
from planner.web.app import create_app
from planner.web.errors import status_for
from planner.web.settings import Settings
from planner.web.uploads import safe_file_name
from planner.web.users import add_user
from tests.conftest import free_port, wait_until_up

DATA = default_data_dir()
SHP_ZIP = DATA / "hazards_baseline_survey.zip"
ROLES = ("anonymous", "viewer", "editor", "admin")


@pytest.fixture(scope="module")
def api_store(demo_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api") / "api.gpkg"
    shutil.copy(demo_store.location, path)  # type: ignore[attr-defined]
    return path


@pytest.fixture(scope="module")
def tokens(api_store: Path) -> dict[str, str]:
    st = open_store(api_store)
    return {r: add_user(st, f"test-{r}", r) for r in ROLES[1:]}


@pytest.fixture(scope="module")
def client(api_store: Path, tokens: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store=str(api_store)))) as c:
        yield c


def auth(tokens: dict[str, str], role: str) -> dict[str, str]:
    return {} if role == "anonymous" else {"Authorization": f"Bearer {tokens[role]}"}


def geojson_bytes(ids: list[str], x0: float = 103.2, y0: float = 19.45) -> bytes:
    """Small hazards in WGS 84, 0.001° squares, with the given ids."""
    frame = gpd.GeoDataFrame(
        {"hazard_id": ids, "status": ["SHA"] * len(ids), "recorded_on": ["2015-03-01"] * len(ids)},
        geometry=[box(x0 + 0.002 * i, y0, x0 + 0.002 * i + 0.001, y0 + 0.001)
                  for i in range(len(ids))], crs=4326)
    return frame.to_json().encode()


def imports_count(path: Path) -> int:
    return open_store(path).version()[0]


# -- roles ---------------------------------------------------------------------------------
OPEN = {"anonymous": 200, "viewer": 200, "editor": 200, "admin": 200}
VIEW = {"anonymous": 401, "viewer": 200, "editor": 200, "admin": 200}
ADMIN = {"anonymous": 401, "viewer": 403, "editor": 403, "admin": 200}


@pytest.mark.parametrize(("path", "expected"), [
    ("/health", OPEN),
    ("/api/status?at=2024-12-31", OPEN),
    ("/api/series?freq=year&start=2010-01-01&end=2024-12-31", OPEN),
    ("/api/deadlines?meeting=2026-09-14", OPEN),
    ("/api/forecast?draws=500", OPEN),
    ("/api/hazards?limit=5", VIEW),
    ("/api/releases?limit=5&released_from=2020-01-01", VIEW),
    ("/api/imports", VIEW),
    ("/api/extension-request?format=html", VIEW),
    ("/api/marking-plan?format=csv&region=Thathom&at=2024-12-31", VIEW),
    ("/map", VIEW),
    ("/imports/1/map", VIEW),
    ("/api/users", ADMIN),
])
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_what_it_should(client: TestClient, tokens: dict[str, str],
                                               path: str, expected: dict[str, int],
                                               role: str) -> None:
    r = client.get(path, headers=auth(tokens, role))
    assert r.status_code == expected[role], r.text[:300]
    if r.status_code == 401:
        assert r.headers["www-authenticate"] == "Bearer"
        assert "coordinates" not in r.text


def test_anonymous_figures_carry_no_locations(client: TestClient) -> None:
    for path in ("/api/status?at=2024-12-31", "/api/series", "/api/forecast?draws=200",
                 "/status"):
        text = client.get(path).text
        assert "coordinates" not in text and "Polygon" not in text


def test_a_wrong_token_is_refused(client: TestClient) -> None:
    r = client.get("/api/hazards", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and "not valid" in r.json()["detail"]


def test_users_are_managed_by_admins_only(client: TestClient, tokens: dict[str, str]) -> None:
    for role, code in (("anonymous", 401), ("viewer", 403), ("editor", 403), ("admin", 201)):
        r = client.post("/api/users", json={"name": f"new-{role}", "role": "viewer"},
                        headers=auth(tokens, role))
        assert r.status_code == code, r.text
    token = r.json()["token"]
    assert client.get("/api/hazards?limit=1",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listed = client.get("/api/users", headers=auth(tokens, "admin")).json()
    assert "new-admin" in {u["name"] for u in listed}
    assert all("token" not in u or u["token"] is None for u in listed)
    for role, code in (("viewer", 403), ("admin", 204)):
        assert client.delete("/api/users/new-admin",
                             headers=auth(tokens, role)).status_code == code
    assert client.get("/api/hazards?limit=1",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.delete("/api/users/new-admin", headers=auth(tokens, "admin")).status_code == 404


@pytest.mark.parametrize(("role", "code"), [("anonymous", 401), ("viewer", 403),
                                             ("editor", 201), ("admin", 201)])
def test_uploads_need_an_editor(client: TestClient, tokens: dict[str, str], api_store: Path,
                                role: str, code: int) -> None:
    before = imports_count(api_store)
    r = client.post("/api/hazards", headers=auth(tokens, role),
                    files={"file": (f"strikes_{role}.geojson",
                                    geojson_bytes([f"UP-{role}-1", f"UP-{role}-2"]))})
    assert r.status_code == code, r.text
    assert imports_count(api_store) == before + (1 if code == 201 else 0)
    if code == 201:
        body = r.json()
        assert body["rows"] == 2 and body["file_name"] == f"strikes_{role}.geojson"


def test_geojson_paging_and_filters(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens, "viewer")
    page1 = client.get("/api/hazards?limit=50&offset=0", headers=h).json()
    page2 = client.get("/api/hazards?limit=50&offset=50", headers=h).json()
    assert page1["numberReturned"] == 50 and page1["numberMatched"] >= 200
    ids1 = {f["properties"]["hazard_id"] for f in page1["features"]}
    ids2 = {f["properties"]["hazard_id"] for f in page2["features"]}
    assert not ids1 & ids2
    lon, lat = page1["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 100 < lon < 106 and 17 < lat < 22     # WGS 84
    none = client.get("/api/hazards?bbox=0,0,1,1", headers=h).json()
    assert none["numberMatched"] == 0 and none["features"] == []
    late = client.get("/api/hazards?recorded_from=2020-01-01&limit=10000", headers=h).json()
    assert all(f["properties"]["recorded_on"] >= "2020-01-01" for f in late["features"])
    assert client.get("/api/hazards?bbox=a,b", headers=h).status_code == 422
    assert client.get("/api/hazards?limit=0", headers=h).status_code == 422


# -- hostile input ---------------------------------------------------------------------------
def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_slip_is_refused_and_nothing_lands(client: TestClient, tokens: dict[str, str],
                                               api_store: Path) -> None:
    before = imports_count(api_store)
    evil = _zip({"../../evil.geojson": geojson_bytes(["SLIP-1"]),
                 "/etc/cron.d/x.geojson": b"{}"})
    r = client.post("/api/hazards", headers=auth(tokens, "editor"),
                    files={"file": ("slip.zip", evil)})
    assert r.status_code == 422 and "outside the archive" in r.json()["detail"]
    assert "absolute path" in r.json()["detail"]
    assert imports_count(api_store) == before
    assert not (Path("/tmp") / "evil.geojson").exists()


def test_a_1_gb_zip_bomb_is_refused(client: TestClient, tokens: dict[str, str],
                                    api_store: Path) -> None:
    buf = io.BytesIO()
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, zf.open(
            "survey.geojson", "w", force_zip64=True) as member:
        for _ in range(1024):   # 1 GiB of zeros, about 1 MB packed
            member.write(zeros)
    bomb = buf.getvalue()
    assert len(bomb) < 10 << 20
    before = imports_count(api_store)
    r = client.post("/api/hazards", headers=auth(tokens, "editor"),
                    files={"file": ("bomb.zip", bomb)})
    assert r.status_code == 422 and "zip bomb" in r.json()["detail"]
    assert imports_count(api_store) == before


@pytest.mark.parametrize(("name", "data", "code", "words"), [
    ("photo.zip", b"\x89PNG\r\n\x1a\n" + bytes(2000), 415, "not a readable zip"),
    ("notes.txt", b"just some text", 415, ""),
    ("empty.geojson", b"", 422, "empty"),
    ("broken.geojson", b'{"type": "FeatureCollection", "features": [', 415, ""),
])
def test_files_that_are_not_geodata_get_a_clear_4xx(client: TestClient, tokens: dict[str, str],
                                                    api_store: Path, name: str, data: bytes,
                                                    code: int, words: str) -> None:
    before = imports_count(api_store)
    r = client.post("/api/hazards", headers=auth(tokens, "editor"), files={"file": (name, data)})
    assert r.status_code in (code, 422) and 400 <= r.status_code < 500, r.text
    assert words in r.json()["detail"]
    assert imports_count(api_store) == before


def test_shapefile_without_prj_asks_for_the_crs(client: TestClient, tokens: dict[str, str],
                                                api_store: Path) -> None:
    with zipfile.ZipFile(SHP_ZIP) as zf:
        members = {Path(n).name: zf.read(n) for n in zf.namelist()
                   if not n.endswith((".prj", "/"))}
    before = imports_count(api_store)
    r = client.post("/api/hazards", headers=auth(tokens, "editor"),
                    files={"file": ("no_prj.zip", _zip(members))})
    assert r.status_code == 422 and "coordinate system" in r.json()["detail"].lower()
    assert imports_count(api_store) == before


def test_every_problem_of_a_bad_file_is_listed(client: TestClient, tokens: dict[str, str]
                                               ) -> None:
    frame = gpd.GeoDataFrame({"hazard_id": ["B1", "B1", "B3"],
                              "recorded_on": ["2015-01-01", "2099-01-01", "not a date"]},
                             geometry=[box(103.2, 19.4, 103.201, 19.401)] * 2
                             + [box(103.3, 19.4, 103.3, 19.4)], crs=4326)
    r = client.post("/api/hazards", headers=auth(tokens, "editor"),
                    files={"file": ("bad.geojson", frame.to_json().encode())})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "ValidationError" and len(body["problems"]) >= 3
    text = json.dumps(body["problems"])
    assert "B1" in text and "future" in text


def test_size_and_vertex_limits(api_store: Path, tokens: dict[str, str]) -> None:
    settings = Settings(store=str(api_store), max_upload_mb=0.05, max_vertices=50)
    with TestClient(create_app(settings)) as small:
        before = imports_count(api_store)
        r = small.post("/api/hazards", headers=auth(tokens, "editor"),
                       files={"file": ("big.geojson", b" " * 200_000)})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        many = geojson_bytes([f"V{i}" for i in range(20)])   # 20 squares, 100 vertices
        r = small.post("/api/hazards", headers=auth(tokens, "editor"),
                       files={"file": ("many.geojson", many)})
        assert r.status_code == 413 and "vertices" in r.json()["detail"]
        assert imports_count(api_store) == before


def test_malformed_multipart_is_a_4xx(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.post("/api/hazards", content=b"--xx\r\nContent-Disposition: form-data\r\n\r\nzz",
                    headers={**auth(tokens, "editor"),
                             "Content-Type": "multipart/form-data; boundary=xx"})
    assert 400 <= r.status_code < 500


def test_uploaded_names_cannot_reach_outside(client: TestClient, tokens: dict[str, str]
                                             ) -> None:
    r = client.post("/api/hazards", headers=auth(tokens, "editor"),
                    files={"file": ("../../../../tmp/escape.geojson",
                                    geojson_bytes(["ESC-1"]))})
    assert r.status_code == 201 and r.json()["file_name"] == "escape.geojson"
    assert safe_file_name("..\\..\\x.zip") == "x.zip"


def test_error_table_and_html_pages_escape(client: TestClient, tokens: dict[str, str]) -> None:
    assert status_for(ValidationError("x", [])) == 422
    r = client.get("/api/extension-request?format=html", headers={"Accept": "text/html"})
    assert r.status_code == 401     # API paths answer JSON even to browsers
    page = client.get("/map", headers={"Accept": "text/html"})
    assert page.status_code == 401 and "sign in" in page.text
    assert "Content-Security-Policy" in page.headers


# -- concurrency against a real server ------------------------------------------------------
@contextlib.contextmanager
def running_server(store: Path) -> Iterator[str]:
    """A real uvicorn server on ``store`` in a thread; yields its base URL."""

    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(Settings(store=str(store))),
                                        host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, tries=200, pause_s=0.05)
    try:
        yield url
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(api_store: Path) -> Iterator[str]:
    """A server on the test store, stopped after each test.

    (Kept running for the whole module, it made the in-process schemathesis calls of a later
    test stall; a server per test avoids that.)
    """
    with running_server(api_store) as url:
        yield url


def _post(url: str, token: str, name: str, data: bytes) -> int:
    r = httpx.post(url + "/api/hazards", headers={"Authorization": f"Bearer {token}"},
                   files={"file": (name, data)}, timeout=120)
    return r.status_code


def test_20_concurrent_uploads_of_distinct_files_all_land(server: str, tokens: dict[str, str],
                                                          api_store: Path) -> None:
    before = imports_count(api_store)
    hazards_before = len(open_store(api_store).read("hazards"))
    files = [(f"team_{i:02d}.geojson", geojson_bytes([f"C{i:02d}-A", f"C{i:02d}-B"],
                                                     y0=19.3 + 0.003 * i)) for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda f: _post(server, tokens["editor"], *f), files))
    assert codes == [201] * 20
    assert imports_count(api_store) == before + 20
    assert len(open_store(api_store).read("hazards")) == hazards_before + 40


def test_20_concurrent_uploads_of_one_file_land_once(server: str, tokens: dict[str, str],
                                                     api_store: Path) -> None:
    before = imports_count(api_store)
    data = geojson_bytes(["SAME-1", "SAME-2", "SAME-3"], y0=19.6)
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: _post(server, tokens["editor"], "same.geojson", data),
                              range(20)))
    assert sorted(codes) == [201] + [409] * 19
    assert imports_count(api_store) == before + 1


# -- fuzzing the OpenAPI schema ---------------------------------------------------------------
#: Dates at and past the edges of what Python and the treaty arithmetic handle.
BOUNDARY_DATES = ("0001-01-01", "0001-12-31", "1899-12-31", "1900-01-01", "2199-12-31",
                  "2200-01-01", "9998-12-31", "9999-12-31", "2011-08-01", "2024-02-29")


@pytest.fixture
def boundary_dates() -> Iterator[None]:
    """Make schemathesis draw ``format: date`` values mostly from :data:`BOUNDARY_DATES`."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import strategies as st

    schemathesis.openapi.format("date", st.one_of(
        st.sampled_from(BOUNDARY_DATES), st.dates().map(lambda d: d.isoformat())))
    try:
        yield
    finally:
        from schemathesis.specs.openapi import unregister_string_format

        unregister_string_format("date")


@pytest.mark.slow
def test_schema_fuzzing_finds_no_server_error(api_store: Path, tokens: dict[str, str],
                                              boundary_dates: None) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    app = create_app(Settings(store=str(api_store)))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    calls: list[str] = []
    dates: set[str] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == "DELETE":
            continue   # would delete the test users
        # figures are open to anonymous callers: fuzz them both ways
        who = ("admin", "anonymous") if operation.method.upper() == "GET" else ("admin",)
        for role in who:
            @given(case=operation.as_strategy())
            @settings(max_examples=15, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                response = case.call(headers=auth(tokens, role), timeout=120)  # noqa: B023
                calls.append(f"{case.method} {case.path}")
                dates.update(v for v in (case.query or {}).values() if v in BOUNDARY_DATES)
                if response.status_code >= 500 or b"Traceback" in response.content:
                    failures.append(f"{case.method} {case.formatted_path} {case.query}: "
                                    f"{response.status_code} {response.content[:200]!r}")

            run()
    assert failures == []
    assert len(set(calls)) >= 10 and len(calls) >= 100   # the fuzzing really ran
    assert {"0001-01-01", "9999-12-31"} <= dates          # and reached the edges


# -- the upload page in a real browser ---------------------------------------------------------
@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A server on an empty store, and an editor token for it."""
    import datetime as dt

    from planner.programme import Programme
    from planner.store import create_store

    path = tmp_path / "field.gpkg"
    st = create_store(path, Programme("Field test", dt.date(2011, 8, 1), "EPSG:32648"))
    token = add_user(st, "field coordinator", "editor")
    with running_server(path) as url:
        yield url, token


def test_upload_page_in_chromium_shows_report_and_map(fresh_server: tuple[str, str],
                                                      chromium: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    from PIL import Image

    from tests.conftest import ARTEFACTS

    url, token = fresh_server
    tile = tmp_path / "tile.png"
    Image.new("RGB", (256, 256), (235, 235, 230)).save(tile)
    problems: list[str] = []
    ARTEFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 1100})
            context.route(lambda u: "tile.openstreetmap.org" in u, lambda r: r.fulfill(
                status=200, content_type="image/png", body=tile.read_bytes()))
            page = context.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(url + "/")
            page.fill("#token", token)
            page.click("button[type=submit]")
            page.wait_for_selector("text=signed in as field coordinator")
            page.goto(url + "/upload")
            page.set_input_files("#file", str(SHP_ZIP))
            page.select_option("#layer", "hazards")
            page.screenshot(path=str(ARTEFACTS / "upload_form.png"))
            page.click("button:has-text('upload and check')")
            page.wait_for_selector("#report")
            status = page.inner_text("[role=status]")
            frame = page.frame_locator("#imported-map")
            frame.locator("path.leaflet-interactive").first.wait_for()
            drawn = frame.locator("path.leaflet-interactive").count()
            page.screenshot(path=str(ARTEFACTS / "upload_report.png"), full_page=True)
            # the same file again: refused, with the reason on the page
            page.goto(url + "/upload")
            page.set_input_files("#file", str(SHP_ZIP))
            page.click("button:has-text('upload and check')")
            again = page.inner_text("[role=alert]")
        finally:
            browser.close()
    assert "Imported 111 hazards" in status and "hazards_baseline_survey.zip" in status
    assert drawn >= 50
    assert "already imported" in again
    assert problems == [] or all("409" in m for m in problems)


# -- engines -------------------------------------------------------------------------------
def test_postgis_engine_needs_a_postgis_store(api_store: Path) -> None:
    from planner.errors import InputError

    with pytest.raises(InputError, match="PLANNER_ENGINE=postgis"):
        create_app(Settings(store=str(api_store), engine="postgis"))
    with pytest.raises(ValueError, match="engine"):
        Settings(store=str(api_store), engine="spark")


@pytest.mark.parametrize("engine", ["dask", "postgis"])
def test_engine_setting_gives_the_same_figures(api_store: Path, engine: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from planner.store import copy_store
    from tests.conftest import POSTGRES_ENV, new_postgis_database, postgres_url

    store = str(api_store)
    if engine == "postgis":
        admin = postgres_url()
        if admin is None:
            pytest.skip(f"NO POSTGRESQL: the service's postgis engine was not tested. Set "
                        f"{POSTGRES_ENV} or run scripts/test.sh.")
        store = new_postgis_database(admin)
        copy_store(open_store(api_store), store)
    at = "/api/status?at=2024-12-31"
    with TestClient(create_app(Settings(store=str(api_store)))) as single, \
            TestClient(create_app(Settings(store=store, engine=engine, workers=2))) as other:
        a = single.get(at).json()
        with caplog.at_level(logging.INFO, logger="planner"):
            b = other.get(at).json()
    # the ledger was built by the engine asked for
    assert ("partitioned ledger: done" if engine == "dask" else "database ledger: done") \
        in caplog.text
    figures = [k for k, v in a.items() if k.endswith("_m2") and isinstance(v, float)]
    assert "remaining_m2" in figures and a["remaining_m2"] > 0
    assert {k: b[k] for k in figures} == pytest.approx({k: a[k] for k in figures}, abs=1.0)


def test_extension_requests_are_drafted_once_per_store_version_and_the_cache_is_bounded(
        api_store: Path, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The draft (a global union and 10,000 futures) is made once per argument set and store
    version; many different argument sets keep only the latest few."""
    import planner.treaty.extension as extension
    from planner.web.state import DRAFT_PREFIX, MAX_CACHED_DRAFTS

    calls: list[tuple[object, object]] = []
    real = extension.draft_extension_request

    def counting(store: Store, **kwargs: object) -> object:
        calls.append((kwargs.get("as_of"), kwargs.get("years")))
        return real(store, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(extension, "draft_extension_request", counting)
    app = create_app(Settings(store=str(api_store)))
    with TestClient(app) as c:
        for _ in range(2):
            r = c.get("/api/extension-request?format=md&as_of=2024-12-31",
                      headers=auth(tokens, "viewer"))
            assert r.status_code == 200 and "global union" in r.text
        assert calls == [(dt.date(2024, 12, 31), None)]
        for day in range(1, MAX_CACHED_DRAFTS + 4):
            assert c.get(f"/api/extension-request?format=md&as_of=2024-06-{day:02d}",
                         headers=auth(tokens, "viewer")).status_code == 200
        drafts = [k for k in app.state.planner.cache if k.startswith(DRAFT_PREFIX)]
        assert len(drafts) == MAX_CACHED_DRAFTS


def test_the_upload_page_tells_a_signed_in_viewer_what_is_missing(
        client: TestClient, tokens: dict[str, str]) -> None:
    """A viewer is signed in: the page says a viewer may not upload, not "sign in first"."""
    page = client.get("/upload", headers=auth(tokens, "viewer")).text
    assert "signed in as test-viewer, a viewer" in page and "sign in</a> first" not in page
    assert "sign in</a> first" in client.get("/upload").text
    assert 'id="file"' in client.get("/upload", headers=auth(tokens, "editor")).text


def test_the_page_icon_is_served(client: TestClient) -> None:
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.startswith("<svg") and "<script" not in r.text


def test_status_after_an_upload_patches_the_ledger_once_for_two_requests(
        demo_store: Store, tmp_path: Path) -> None:
    """An upload's rows are patched into the service's ledger by one request; a second
    request arriving at the same time waits for it; the figures are those of a full read."""
    path = tmp_path / "patch.gpkg"
    shutil.copy(demo_store.location, path)  # type: ignore[attr-defined]
    token = add_user(open_store(path), "ed", "editor")
    app = create_app(Settings(store=str(path)))
    with TestClient(app) as c:
        state = app.state.planner
        before = c.get("/api/status?at=2024-12-31").json()
        assert state.ledger_updates == 1
        r = c.post("/api/hazards", headers={"Authorization": f"Bearer {token}"},
                   files={"file": ("late.geojson", geojson_bytes(["LATE-1", "LATE-2"],
                                                                 x0=103.5, y0=19.8))})
        assert r.status_code == 201, r.text
        with ThreadPoolExecutor(2) as pool:
            after = list(pool.map(lambda _: c.get("/api/status?at=2024-12-31").json(),
                                  range(2)))
        assert state.ledger_updates == 2      # one patch for both requests
        assert after[0] == after[1]
        assert after[0]["hazard_count"] == before["hazard_count"] + 2
        from planner.accounting.live import stored_ledger

        full = stored_ledger(open_store(path))
        assert full is not None
        gap = abs(full.status(dt.date(2024, 12, 31)).remaining_m2 - after[0]["remaining_m2"])
        assert gap <= 1e-6
        assert after[0]["remaining_m2"] > before["remaining_m2"]


def test_an_admin_retracts_an_import_and_figures_as_known_on_keep_it(
        demo_store: Store, tmp_path: Path) -> None:
    path = tmp_path / "retract.gpkg"
    shutil.copy(demo_store.location, path)  # type: ignore[attr-defined]
    st = open_store(path)
    admin, editor = add_user(st, "boss", "admin"), add_user(st, "ed", "editor")
    with TestClient(create_app(Settings(store=str(path)))) as c:
        before = c.get("/api/status?at=2024-12-31").json()
        r = c.post("/api/imports/4/retract", json={"reason": "NTS <b>duplicated</b>"},
                   headers={"Authorization": f"Bearer {editor}"})
        assert r.status_code == 403
        r = c.post("/api/imports/4/retract", json={"reason": ""},
                   headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 422
        r = c.post("/api/imports/4/retract", json={"reason": "NTS <b>duplicated</b>"},
                   headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200, r.text
        assert r.json()["retracted_by"] == "boss" and r.json()["features"] == 219
        after = c.get("/api/status?at=2024-12-31").json()
        assert after["release_count"] == before["release_count"] - 219
        assert after["cancelled_m2"] < before["cancelled_m2"]
        # the records as known yesterday still hold the import
        yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
        known = c.get(f"/api/status?at=2024-12-31&as_known_on={yesterday}").json()
        assert known["hazard_count"] == 0     # the demo store was made today
        today = dt.date.today().isoformat()
        series = c.get(f"/api/series?start=2024-01-01&end=2024-12-31&as_known_on={today}")
        assert abs(series.json()[0]["remaining_m2"] - after["remaining_m2"]) <= 1e-6
        again = c.post("/api/imports/4/retract", json={"reason": "again"},
                       headers={"Authorization": f"Bearer {admin}"})
        assert again.status_code == 422 and "retracted already" in again.text
        missing = c.post("/api/imports/99/retract", json={"reason": "x"},
                         headers={"Authorization": f"Bearer {admin}"})
        assert missing.status_code == 404
        listed = c.get("/api/imports", headers={"Authorization": f"Bearer {admin}"}).json()
        assert [i["retraction_reason"] for i in listed if i["import_id"] == 4] == [
            "NTS <b>duplicated</b>"]


def test_an_admin_replaces_an_import_with_a_corrected_file(demo_store: Store,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "replace.gpkg"
    shutil.copy(demo_store.location, path)  # type: ignore[attr-defined]
    st = open_store(path)
    admin, editor = add_user(st, "boss", "admin"), add_user(st, "ed", "editor")
    baseline = st.read("hazards", import_id=1)
    fixed = baseline.iloc[1:][["hazard_id", "status", "recorded_on", "region", "geometry"]]
    fixed = fixed.assign(recorded_on=fixed["recorded_on"].dt.strftime("%Y-%m-%d")).to_crs(4326)
    body = fixed.to_json().encode()
    with TestClient(create_app(Settings(store=str(path)))) as c:
        before = c.get("/api/status?at=2024-12-31").json()
        r = c.post("/api/imports/1/replace", headers={"Authorization": f"Bearer {editor}"},
                   files={"file": ("fixed.geojson", body)}, data={"reason": "twice"})
        assert r.status_code == 403
        r = c.post("/api/imports/1/replace", headers={"Authorization": f"Bearer {admin}"},
                   files={"file": ("fixed.geojson", body)}, data={"reason": "surveyed twice"})
        assert r.status_code == 201, r.text
        assert r.json()["rows"] == len(baseline) - 1
        after = c.get("/api/status?at=2024-12-31").json()
        assert after["hazard_count"] == before["hazard_count"] - 1
        missing = c.post("/api/imports/99/replace", headers={"Authorization": f"Bearer {admin}"},
                         files={"file": ("f.geojson", body)}, data={"reason": "x"})
        assert missing.status_code == 404
    row = open_store(path).imports().set_index("import_id").loc[1]
    assert row["retracted_by"] == "boss" and row["retraction_reason"] == "surveyed twice"
