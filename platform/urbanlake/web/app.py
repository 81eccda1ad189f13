"""Installing the web catalog into the API's app: its routes, its static files and its error
pages for paths outside ``/api``."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from urbanlake.catalog.service import Caller
from urbanlake.core.settings import Settings
from urbanlake.web import dataset, pages
from urbanlake.web.render import STATIC, error_page
from urbanlake.web.strings import Strings

STATIC_PREFIX = "/static"


def install(app: FastAPI, settings: Settings, resolve_caller: Callable[[Request], Caller]) -> None:
    """Add the pages to ``app``. ``resolve_caller`` is the API's: one rule for who is calling."""
    words = settings.api.web_strings
    app.state.web_strings = Strings.load(settings.project_dir / words if words else None)
    app.state.resolve_caller = resolve_caller
    app.state.page_error = page_error
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(dataset.router)


def wants_page(request: Request) -> bool:
    """A request a person's browser made for a page (not the API, not a script)."""
    path = request.url.path
    if path.startswith(("/api/", STATIC_PREFIX + "/")) or path in ("/healthz", "/metrics"):
        return False
    return "text/html" in request.headers.get("accept", "")


def page_error(request: Request, status: int, message: str) -> HTMLResponse | None:
    """The HTML error page for a browser's request outside the API, else None (JSON it is)."""
    if not wants_page(request):
        return None
    return error_page(request, status, message)
