"""``planner users | serve | copy``: the web service, its users, and copies between stores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from planner.cli.shared import JsonOpt, StoreOpt, _errors, _progress, app, err, out
from planner.errors import InputError
from planner.store import open_store

# -- web service -----------------------------------------------------------------------------
users_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                        help="Users of the web service and their tokens.")
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(name: Annotated[str, typer.Argument(help="User name.")], store: StoreOpt,
              role: Annotated[str, typer.Option(help="viewer, editor or admin.")] = "viewer"
              ) -> None:
    """Create a user and print their token (once: it is stored hashed)."""
    from planner.web.users import add_user

    with _errors():
        token = add_user(open_store(store), name, role)
    out.print(f"{name} ({role}) can now use this token; it is shown only this once:",
              markup=False)
    print(token)


@users_app.command("list")
def users_list(store: StoreOpt, as_json: JsonOpt = False) -> None:
    """List the users (never their tokens)."""
    with _errors():
        users = open_store(store).users()
    if as_json:
        print(json.dumps(users, indent=2))
        return
    for u in users:
        out.print(f"{u['name']}\t{u['role']}\t{u['created_at']}", markup=False)


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument(help="User name.")],
                 store: StoreOpt) -> None:
    """Remove a user; their token stops working at once."""
    with _errors():
        if not open_store(store).remove_user(name):
            raise InputError(f"no user called {name!r}; see `planner users list`")
    out.print(f"removed {name}", markup=False)


@app.command()
def serve(store: StoreOpt,
          host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port.")] = 8000,
          settings_file: Annotated[Path | None, typer.Option(
              "--settings", help=".env-style file of PLANNER_* settings.")] = None) -> None:
    """Run the web service (FastAPI on uvicorn) for one store."""
    import uvicorn

    from planner.web.app import create_app
    from planner.web.settings import load_settings

    with _errors():
        settings = load_settings(str(store), settings_file)
        application = create_app(settings)
    err.print(f"serving {store} on http://{host}:{port} (API docs at /docs)", markup=False)
    uvicorn.run(application, host=host, port=port, log_level="info")


@app.command("copy")
def copy_cmd(source: Annotated[str, typer.Option("--from", help="Store to copy: .gpkg path or "
                                                 "postgresql:// URL.")],
             target: Annotated[str, typer.Option("--to", help="New store: .gpkg path or the "
                                                 "URL of an empty PostGIS database.")]) -> None:
    """Copy a programme between stores (GeoPackage ⇄ PostGIS), keeping ids and history.

    The source's stored ledger is copied with it (or built once at the end when the source
    has none), so the copy's figures are read from it at once.
    """
    from planner.accounting.live import rebuild_ledger
    from planner.store import copy_store

    with _errors():
        src = open_store(source)
        copied = copy_store(src, target, progress=lambda m: err.print(m, markup=False))
        if not copied.ledger_state()[0]:   # the source had none: build the copy's
            with _progress(True) as tell:
                rebuild_ledger(copied, progress=tell)
        n_src, n_dst = src.version(), open_store(target).version()
    out.print(f"copied {n_dst[0]} imports from {source} to {target}"
              + ("" if n_src == n_dst else f" (source {n_src}, target {n_dst})"),
              markup=False)
