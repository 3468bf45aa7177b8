"""The web and the CLI are two faces of one core call: same inputs, same document."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from planner.cli import app as cli_app
from planner.store import Store, open_store
from planner.web.app import create_app
from planner.web.settings import Settings
from planner.web.users import add_user

#: A figure in the CLI's Markdown (a PNG beside it, then its caption) ...
_CLI_FIGURE = re.compile(r"!\[((?:\\.|[^\]\\])*)\]\([^)\s]+\.png\)\n\n\*\1\*")
#: ... and in the web's (one file, no PNG): a placeholder with the same caption.
_WEB_FIGURE = r"*[figure: \1]*"
CHECK_ROW = "check: remaining by global union of all polygons"


def web_markdown(path: Path, params: dict[str, str]) -> str:
    """The extension request the web serves as Markdown, to a viewer."""
    token = add_user(open_store(path), "viewer-faces", "viewer")
    with TestClient(create_app(Settings(store=str(path)))) as client:
        r = client.get("/api/extension-request", params={"format": "md", **params},
                       headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/markdown")
    return r.text


def cli_markdown(path: Path, out: Path, args: list[str]) -> str:
    """The extension request ``planner extension-request`` writes as Markdown."""
    result = CliRunner().invoke(cli_app, ["extension-request", "--store", str(path),
                                          "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize(("params", "args"), [
    ({"as_of": "2023-12-31"}, ["--as-of", "2023-12-31"]),
    ({"as_of": "2024-12-31", "years": "2"}, ["--as-of", "2024-12-31", "--years", "2"]),
])
def test_extension_request_is_the_same_from_the_web_and_the_cli(
        demo_store: Store, tmp_path: Path, params: dict[str, str], args: list[str]) -> None:
    path = tmp_path / "faces.gpkg"
    shutil.copy(demo_store.location, path)  # type: ignore[attr-defined]
    web = web_markdown(path, params)
    cli = cli_markdown(path, tmp_path / "request.md", args)

    # both carry the independent check of (f), and it agrees
    for text in (web, cli):
        assert CHECK_ROW in text
        assert "difference (within 1 m²)" in text and "not verified" not in text
    # the CLI's figures are PNG files beside its Markdown; the web's Markdown names them
    assert _CLI_FIGURE.search(cli), "the CLI's request lost its burn-down chart"
    assert list(tmp_path.glob("request_*.png")), "the CLI wrote no figure file"
    cli_text = _CLI_FIGURE.sub(_WEB_FIGURE, cli)
    # the same figures, row by row, then the same text, word for word
    rows = [line for line in web.splitlines() if line.startswith("| ")]
    assert rows == [line for line in cli_text.splitlines() if line.startswith("| ")]
    assert web == cli_text

