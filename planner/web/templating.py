"""The pages' Jinja2 templates and the one function that renders them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from planner.web.auth import COOKIE, csrf_token
from planner.web.state import get_state
from planner.web.users import User

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def render_page(request: Request, template: str, title: str, user: User | None,
                code: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``templates/``, with the programme's name, the user and the form token.

    Parameters
    ----------
    request : Request
        The request the page answers.
    template : str
        File name under ``templates/``.
    title : str
        The page's title.
    user : User or None
        The signed-in caller, shown in the header.
    code : int
        HTTP status of the answer.
    **context
        What the template shows.
    """
    programme = get_state(request).store.programme()
    cookie = request.cookies.get(COOKIE)
    return TEMPLATES.TemplateResponse(request, template, {
        "title": title, "programme": programme.name, "user": user,
        "csrf": csrf_token(cookie) if cookie else "", **context}, status_code=code)


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser on a page (not the API), so errors come as a page."""
    return (not request.url.path.startswith("/api")
            and "text/html" in request.headers.get("accept", ""))
