"""The web service under attack: no location to anonymous callers, no 500, CSRF, bounded uploads.

Issue 14, web items. Every test here runs the real app (TestClient, a real uvicorn server or
``planner serve`` in a subprocess) on a real GeoPackage store.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyproj
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from shapely import box

from planner.programme import Programme
from planner.store import create_store, open_store
from planner.web.app import create_app
from planner.web.settings import Settings
from planner.web.users import add_user
from tests.conftest import fill_store, free_port, hazards_frame, releases_frame, wait_until_up

#: Where the one hazard lies (WGS 84), and its ids; none of this may reach anonymous callers.
LON, LAT = 103.2, 19.45
SECRET_IDS = ("HZ-SECRET-7", "RL-SECRET-9")
STORE_CRS = "EPSG:32648"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@pytest.fixture(scope="module")
def one_hazard_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of one hazard (a 200 m square) and one release partly outside it."""
    path = tmp_path_factory.mktemp("one") / "one.gpkg"
    programme = Programme("One hazard", dt.date(2011, 8, 1), STORE_CRS, settings={
        "hostilities": [{"name": "2019 conflict", "ended_on": "2019-03-31",
                         "hazard_ids": [SECRET_IDS[0]]}]})
    store = create_store(path, programme)
    hazards = hazards_frame([box(LON, LAT, LON + 0.002, LAT + 0.002)], crs=4326,
                            hazard_id=[SECRET_IDS[0]])
    releases = releases_frame([box(LON + 0.001, LAT + 0.001, LON + 0.004, LAT + 0.004)],
                              [dt.date(2020, 1, 1)], ["cleared"], crs=4326)
    releases["release_id"] = [SECRET_IDS[1]]
    fill_store(store, hazards, releases)
    return path


@pytest.fixture(scope="module")
def one_client(one_hazard_store: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store=str(one_hazard_store)))) as c:
        yield c


def _km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance [km]."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(a)))


def locations_in(text: str, radius_km: float = 50.0) -> list[str]:
    """Every pair of adjacent numbers in ``text`` that lies within ``radius_km`` of the hazard.

    Each pair is read as lon/lat, lat/lon, and as x/y and y/x in the store's CRS.
    """
    x0, y0 = pyproj.Transformer.from_crs(4326, STORE_CRS, always_xy=True).transform(LON, LAT)
    numbers = [float(m) for m in _NUMBER.findall(text)]
    found = []
    for a, b in itertools.pairwise(numbers):
        for lon, lat in ((a, b), (b, a)):
            if -180 <= lon <= 180 and -90 <= lat <= 90 and _km(lon, lat, LON, LAT) < radius_km:
                found.append(f"{a}, {b} (degrees)")
        for x, y in ((a, b), (b, a)):
            if math.hypot(x - x0, y - y0) < radius_km * 1000:
                found.append(f"{a}, {b} (metres in {STORE_CRS})")
    return found


def test_the_location_finder_finds_the_old_leak() -> None:
    """The checker itself: the text the issue quotes is caught, plain figures are not."""
    assert locations_in("centred at lat 19.451, lon 103.201")
    x, y = pyproj.Transformer.from_crs(4326, STORE_CRS, always_xy=True).transform(103.3, 19.5)
    assert locations_in(f'"x": {x:.1f}, "y": {y:.1f}')
    assert not locations_in('{"remaining_m2": 34871.4, "at": "2024-12-31", "hazard_count": 1}')


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every route of an app, those of included routers too.

    FastAPI 0.16x keeps an included router as one entry of ``app.routes`` (its routes are
    reached through ``original_router``); older versions copied its routes into the app.
    """
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif getattr(route, "original_router", None) is not None:
            out += api_routes(route.original_router.routes)
    return out


def test_the_route_walk_reaches_the_pages(one_client: TestClient) -> None:
    """The walk below sees routes that are not in the OpenAPI schema, in included routers."""
    paths = {r.path for r in api_routes(one_client.app.routes)}  # type: ignore[attr-defined]
    assert {"/map", "/status", "/imports/{import_id}/map", "/api/hazards"} <= paths


def anonymous_get_paths(client: TestClient) -> list[str]:
    """Every GET route of the app (in the OpenAPI schema or not), path parameters filled."""
    paths = {"/", "/openapi.json", "/docs", "/redoc"}
    schema = client.get("/openapi.json").json()
    paths |= {p for p, ops in schema["paths"].items() if "get" in ops}
    paths |= {r.path for r in api_routes(client.app.routes)  # type: ignore[attr-defined]
              if "GET" in r.methods}
    out = []
    for path in sorted(paths):
        path = re.sub(r"\{[^}]+\}", "1", path)
        out += [path, f"{path}?at=2024-12-31", f"{path}?as_of=2024-12-31&draws=200",
                f"{path}?meeting=2026-09-14", f"{path}?freq=month&start=2019-01-01"]
    return out


def test_anonymous_callers_learn_no_location(one_client: TestClient) -> None:
    seen: dict[str, int] = {}
    leaks: list[str] = []
    for path in anonymous_get_paths(one_client):
        for accept in ("application/json", "text/html"):
            r = one_client.get(path, headers={"Accept": accept})
            seen[path] = r.status_code
            text = r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items())
            leaks += [f"{path}: {hit}" for hit in locations_in(text)]
            leaks += [f"{path}: id {i}" for i in SECRET_IDS if i in text]
    assert leaks == []
    # the walk really reached the figures (200) and was refused the geometry (401)
    assert seen["/api/status"] == seen["/api/forecast?as_of=2024-12-31&draws=200"] == 200
    assert seen["/status"] == seen["/api/deadlines"] == seen["/health"] == 200
    assert seen["/api/hazards"] == seen["/map"] == 401
    assert len(seen) >= 60


def test_signed_in_viewers_still_get_the_area_method(one_hazard_store: Path,
                                                     one_client: TestClient) -> None:
    token = add_user(open_store(one_hazard_store), "viewer-one", "viewer")
    body = one_client.get("/api/status", headers={"Authorization": f"Bearer {token}"}).json()
    assert "centred at lat" in body["area_method"]
    assert body["outside_release_ids"] == [SECRET_IDS[1]]


# -- no 500 on boundary dates -----------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/api/deadlines?meeting=0001-01-01", "/api/deadlines?meeting=9999-12-31",
    "/api/forecast?as_of=9999-12-31", "/api/forecast?as_of=0001-01-01",
    "/api/status?at=0001-01-01", "/api/status?at=9999-12-31",
    "/api/series?start=0001-01-01&end=0001-12-31", "/api/series?start=9999-01-01",
    "/status?at=9999-12-31", "/status?at=0001-01-01",
])
def test_boundary_dates_get_a_4xx_with_a_message(one_client: TestClient, path: str) -> None:
    r = one_client.get(path)
    assert 400 <= r.status_code < 500, r.text[:300]
    assert "between" in r.text and "Traceback" not in r.text


# -- errors: the form field, busy store, internal errors -----------------------------------------
@pytest.fixture(scope="module")
def editor_token(one_hazard_store: Path) -> str:
    return add_user(open_store(one_hazard_store), "editor-one", "editor")


def _shapefile_zip_without_prj() -> bytes:
    import io
    import zipfile

    from tests.web.test_api import SHP_ZIP

    buf = io.BytesIO()
    with zipfile.ZipFile(SHP_ZIP) as src, zipfile.ZipFile(buf, "w") as dst:
        for name in src.namelist():
            if not name.endswith((".prj", "/")):
                dst.writestr(Path(name).name, src.read(name))
    return buf.getvalue()


def test_errors_name_the_form_field(one_client: TestClient, one_hazard_store: Path,
                                    editor_token: str) -> None:
    bearer = {"Authorization": f"Bearer {editor_token}"}
    before = open_store(one_hazard_store).version()
    r = one_client.post("/api/hazards", headers=bearer,
                        files={"file": ("no_prj.zip", _shapefile_zip_without_prj())})
    assert r.status_code == 422 and r.json()["field"] == "crs", r.text
    r = one_client.post("/api/hazards", headers=bearer, data={"recorded_on": "soon"},
                        files={"file": ("x.geojson", b'{"type": "FeatureCollection"}')})
    assert r.status_code == 422 and r.json()["field"] == "recorded_on", r.text
    page = one_client.post("/upload", headers={**bearer, "Accept": "text/html"},
                           files={"file": ("no_prj.zip", _shapefile_zip_without_prj())})
    assert page.status_code == 422
    assert "Check the field “Coordinate system”" in page.text
    assert 'id="crs" name="crs"' in page.text and 'aria-invalid="true"' in page.text
    assert open_store(one_hazard_store).version() == before


def test_a_busy_store_is_503_with_retry_after(one_hazard_store: Path) -> None:
    from planner.errors import StoreBusyError
    from planner.web.errors import status_for

    assert status_for(StoreBusyError("busy")) == 503
    app = create_app(Settings(store=str(one_hazard_store)))

    @app.get("/busy-for-test")
    def busy() -> None:
        raise StoreBusyError("another import is writing to the store; nothing was written, "
                             "try again in a few seconds")

    with TestClient(app) as c:
        r = c.get("/busy-for-test")
        page = c.get("/busy-for-test", headers={"Accept": "text/html"})
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert "try again" in r.json()["detail"]
    assert page.status_code == 503 and page.headers["retry-after"] == "5"


def test_internal_errors_show_an_id_and_nothing_else(one_hazard_store: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    import logging

    app = create_app(Settings(store=str(one_hazard_store)))

    @app.get("/api/crash-for-test")
    @app.get("/crash-for-test")
    def crash() -> None:
        raise RuntimeError("cannot open /srv/secret/internal/path.gpkg")

    with TestClient(app) as c, caplog.at_level(logging.ERROR, logger="planner.web.middleware"):
        r = c.get("/api/crash-for-test")
        page = c.get("/crash-for-test", headers={"Accept": "text/html"})
    assert r.status_code == 500 and page.status_code == 500
    error_id = r.json()["error_id"]
    assert r.json()["detail"].startswith(f"internal error, id {error_id}")
    assert "internal error, id" in page.text and "content-security-policy" in page.headers
    for text in (r.text, page.text):
        assert "/srv/secret" not in text and "Traceback" not in text
        assert "RuntimeError" not in text
    assert error_id in caplog.text and "/srv/secret/internal/path.gpkg" in caplog.text


# -- cross-site request forgery ---------------------------------------------------------------
def _geojson(hazard_id: str, dy: float = 0.0) -> bytes:
    import json

    x, y = LON + 0.01, LAT + 0.01 + dy
    ring = [[x, y], [x + 0.001, y], [x + 0.001, y + 0.001], [x, y + 0.001], [x, y]]
    return json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"hazard_id": hazard_id, "status": "SHA",
                       "recorded_on": "2015-03-01"}}]}).encode()


def test_cookie_posts_need_this_origin_and_the_form_token(one_client: TestClient,
                                                          one_hazard_store: Path,
                                                          editor_token: str) -> None:
    from planner.web.auth import csrf_token

    own = "http://testserver"
    before = open_store(one_hazard_store).version()
    one_client.cookies.set("planner_token", editor_token)
    try:
        upload = {"file": ("csrf.geojson", _geojson("CSRF-1"))}
        for headers in ({}, {"Origin": "http://127.0.0.1:9"}, {"Origin": "null"},
                        {"Referer": "http://testserver.evil.example/upload"},
                        {"Origin": "http://testserver:8081"}):
            for path in ("/upload", "/api/hazards"):
                r = one_client.post(path, headers=headers, files=upload)
                assert r.status_code == 403, (path, headers, r.text)
                assert "another site" in r.json()["detail"]
        # this origin, but no anti-forgery value in the form: refused too
        r = one_client.post("/upload", headers={"Origin": own}, files=upload)
        assert r.status_code == 403 and "reload this page" in r.text
        assert open_store(one_hazard_store).version() == before
        # this origin (by Origin or by Referer) and the form's value: accepted
        page = one_client.get("/upload")
        assert csrf_token(editor_token) in page.text
        r = one_client.post("/upload", headers={"Referer": own + "/upload"},
                            data={"csrf": csrf_token(editor_token)}, files=upload)
        assert r.status_code == 201, r.text
        # sign-out from another origin is refused; from here it works
        assert one_client.post("/logout", headers={"Origin": "http://127.0.0.1:9"},
                               data={"csrf": csrf_token(editor_token)}).status_code == 403
        r = one_client.post("/logout", headers={"Origin": own},
                            data={"csrf": csrf_token(editor_token)}, follow_redirects=False)
        assert r.status_code == 303
    finally:
        one_client.cookies.clear()
    # a bearer token needs neither Origin nor the form value
    r = one_client.post("/api/hazards", headers={"Authorization": f"Bearer {editor_token}"},
                        files={"file": ("bearer.geojson", _geojson("CSRF-2", 0.01))})
    assert r.status_code == 201, r.text
    # sign-in from another origin is refused (login forgery)
    r = one_client.post("/login", headers={"Origin": "http://127.0.0.1:9"},
                        data={"token": editor_token}, follow_redirects=False)
    assert r.status_code == 403 and "set-cookie" not in r.headers


HOSTILE_PAGE = """<!DOCTYPE html><html><body><h1>Free maps</h1>
<form id="f" method="post" action="{app}/upload" enctype="multipart/form-data">
<input type="file" name="file" id="file"><input name="layer" value="hazards"></form>
<script>
const blob = new File([{geojson}], "forged.geojson", {{type: "application/geo+json"}});
const data = new FormData(); data.append("file", blob);
fetch("{app}/api/hazards", {{method: "POST", body: data, credentials: "include",
                            mode: "no-cors"}}).finally(() => {{
  const dt = new DataTransfer(); dt.items.add(blob);
  document.getElementById("file").files = dt.files;
  document.getElementById("f").submit();
}});
</script></body></html>"""


@pytest.fixture
def hostile_site() -> Iterator[tuple[str, list[str]]]:
    """A web server on another port of 127.0.0.1 (same site, other origin); yields its URL
    and a list to put its page in."""
    import http.server
    import threading

    pages: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages[0].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


def test_a_same_site_page_cannot_upload_as_the_signed_in_editor(
        tmp_path: Path, chromium: str, hostile_site: tuple[str, list[str]]) -> None:
    """Chromium holds the editor's cookie; a page on another port posts the upload form and
    fetches the API with credentials. Both are refused and the store is unchanged; the
    service's own form still works."""
    import json

    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.web.test_api import SHP_ZIP, running_server

    path = tmp_path / "csrf.gpkg"
    store = create_store(path, Programme("CSRF", dt.date(2011, 8, 1), STORE_CRS))
    token = add_user(store, "field coordinator", "editor")
    hostile, pages = hostile_site
    answers: list[tuple[str, str, int]] = []
    with running_server(path) as app, sync_api.sync_playwright() as p:
        pages.append(HOSTILE_PAGE.format(app=app, geojson=json.dumps(
            _geojson("FORGED-1").decode())))
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context().new_page()
            page.on("response", lambda r: answers.append(
                (r.request.method, r.url, r.status)) if r.request.method == "POST" else None)
            page.goto(app + "/")
            page.fill("#token", token)
            page.click("button[type=submit]")
            page.wait_for_selector("text=signed in as field coordinator")
            before = open_store(path).version()
            with page.expect_response(lambda r: r.url == app + "/upload"):
                page.goto(hostile + "/")
            # the form's submission navigates to the service's 403 page: wait until it is there
            page.wait_for_url(app + "/upload")
            page.wait_for_load_state("load")
            forged_page = page.content()
            after_attack = open_store(path).version()
            # the genuine form, on the service's own page, in the same browser
            page.goto(app + "/upload")
            page.set_input_files("#file", str(SHP_ZIP))
            page.click("button:has-text('upload and check')")
            page.wait_for_selector("#report")
            status = page.inner_text("[role=status]")
        finally:
            browser.close()
    forged = [(m, u, s) for m, u, s in answers if u.startswith(app) and "FORGED" not in u]
    assert ("POST", app + "/upload", 403) in forged, answers
    assert ("POST", app + "/api/hazards", 403) in forged, answers
    assert after_attack == before, "the forged upload landed"
    assert "another site" in forged_page
    assert "Imported 111 hazards" in status
    assert open_store(path).version()[0] == before[0] + 1


# -- bounded work per upload -------------------------------------------------------------------
def heavy_geojson(n: int, k: int, tag: str, lat: float = LAT + 0.05) -> bytes:
    """``n`` hazards of ``k`` vertices each (round 200 m polygons), ids ``{tag}-i``."""
    import json

    import numpy as np

    t = np.linspace(0, 2 * np.pi, k, endpoint=False)
    features = []
    for i in range(n):
        cx, cy = LON + 0.05 + (i % 50) * 0.003, lat + (i // 50) * 0.003
        ring = np.c_[cx + 0.001 * np.cos(t), cy + 0.001 * np.sin(t)].round(7).tolist()
        features.append({"type": "Feature",
                         "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                         "properties": {"hazard_id": f"{tag}-{i}", "status": "SHA",
                                        "recorded_on": "2015-03-01"}})
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def _store_intact(path: Path) -> tuple[int, int]:
    """(imports, hazards) of a GeoPackage store, after SQLite's own integrity check."""
    import sqlite3

    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = open_store(path)
    return store.version()[0], len(store.read("hazards"))


def test_an_upload_past_the_time_limit_is_stopped_and_nothing_lands(
        tmp_path: Path) -> None:
    """The worker is killed at several moments of the same import (reading, checking,
    writing): each time the store is exactly as before (the transaction rolled back) and the
    upload folder is gone; with time enough, the same file lands whole."""
    path = tmp_path / "slow.gpkg"
    store = create_store(path, Programme("Slow", dt.date(2011, 8, 1), STORE_CRS))
    token = add_user(store, "editor-slow", "editor")
    uploads = tmp_path / "uploads"
    data = heavy_geojson(1500, 200, "SLOW")          # 300,000 vertices, about 1.5 s of work
    before = _store_intact(path)
    outcomes = []
    for seconds in (0.3, 0.7, 1.0, 1.3, 1.6, 2.0, 300.0):
        settings = Settings(store=str(path), max_upload_seconds=seconds,
                            upload_dir=str(uploads))
        with TestClient(create_app(settings)) as c:
            r = c.post("/api/hazards", headers={"Authorization": f"Bearer {token}"},
                       files={"file": ("slow.geojson", data)})
        outcomes.append((seconds, r.status_code))
        assert list(uploads.glob("planner-upload-*")) == []
        if r.status_code == 413:
            assert r.json()["field"] == "file"
            assert f"longer than the limit of {seconds:g} s" in r.json()["detail"]
            assert "split the file" in r.json()["detail"].lower()
            assert _store_intact(path) == before
        else:
            assert r.status_code == 201, r.text
            assert _store_intact(path) == (before[0] + 1, before[1] + 1500)
            break
    assert outcomes[0] == (0.3, 413) and outcomes[-1][1] == 201, outcomes


def test_upload_folders_left_by_a_dead_server_are_removed_at_start(
        tmp_path: Path, one_hazard_store: Path) -> None:
    import subprocess
    import sys

    from planner.web.uploads import FOLDER_PREFIX

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        root = tmp_path / "uploads"
        stale = root / f"{FOLDER_PREFIX}{dead_pid}-x1y2"
        (stale / "work" / "planner-abc").mkdir(parents=True)
        (stale / "survey.zip").write_bytes(b"x" * 1000)
        live = root / f"{FOLDER_PREFIX}{alive.pid}-z3"
        live.mkdir()
        other = root / "somebody-elses-folder"
        other.mkdir()
        create_app(Settings(store=str(one_hazard_store), upload_dir=str(root)))
        assert not stale.exists()
        assert live.exists() and other.exists()
    finally:
        alive.kill()
        alive.wait()


def test_sigterm_during_an_upload_stops_planner_serve_within_seconds(tmp_path: Path) -> None:
    """`planner serve` in a subprocess: an upload of 900,000 vertices is in progress (its
    worker has begun the import) when SIGTERM arrives; the server exits within 5 s, the
    client is told to send it again, the store is unchanged and no upload folder is left."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    import httpx

    path = tmp_path / "term.gpkg"
    store = create_store(path, Programme("Term", dt.date(2011, 8, 1), STORE_CRS))
    token = add_user(store, "editor-term", "editor")
    before = _store_intact(path)
    uploads = tmp_path / "uploads"
    port = free_port()
    env = {**os.environ, "PLANNER_UPLOAD_DIR": str(uploads),
           "PLANNER_MAX_UPLOAD_SECONDS": "600",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    server = subprocess.Popen(
        [sys.executable, "-c", "from planner.cli.shared import app; app()", "serve", "--store",
         str(path), "--port", str(port)], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    answers: list[httpx.Response | Exception] = []
    try:
        wait_until_up(url, tries=300, pause_s=0.1)
        data = heavy_geojson(3000, 300, "TERM")

        def upload() -> None:
            try:
                answers.append(httpx.post(url + "/api/hazards", files={
                    "file": ("term.geojson", data)}, timeout=120,
                    headers={"Authorization": f"Bearer {token}"}))
            except Exception as exc:
                answers.append(exc)

        client = threading.Thread(target=upload)
        client.start()
        deadline = time.monotonic() + 60
        while not list(uploads.glob("planner-upload-*/work")):   # the worker has the job
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.05)
        time.sleep(0.5)
        sent = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        took = time.monotonic() - sent
        client.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    log = server.stdout.read().decode() if server.stdout else ""
    assert took < 5.0, (took, log[-2000:])
    assert _store_intact(path) == before
    assert list(uploads.glob("planner-upload-*")) == []
    answer = answers[0]
    if isinstance(answer, httpx.Response):
        assert answer.status_code == 503 and "send the file again" in answer.text, log[-3000:]
        assert answer.headers["retry-after"] == "5"
