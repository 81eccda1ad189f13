"""Rendering pages: one Jinja2 environment (autoescaped), the caller of a request, and the
error page every web route falls back to. Routes call catalog actions and hand the result to a
template; no page queries the lake any other way."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from urbanlake import __version__
from urbanlake.catalog.service import Caller, Catalog
from urbanlake.core.errors import LakeError, UrbanLakeError
from urbanlake.core.secrets import mask
from urbanlake.web.strings import Strings

log = logging.getLogger("uvicorn.error")
STATIC = Path(__file__).parent / "static"
KEY_COOKIE = "urbanlake_key"  # a partner's API key after sign-in (HttpOnly, SameSite=Lax)
GOOD_QUALITY, FAIR_QUALITY = 0.95, 0.80  # share of checks passed: "ok" at or above, then "warn"
REASONS = {400: "Bad request", 401: "Not signed in", 404: "Not found", 429: "Too many requests",
           503: "Unavailable"}  # fmt: skip

ENVIRONMENT = Environment(
    loader=PackageLoader("urbanlake.web", "templates"),
    autoescape=select_autoescape(["html", "xml"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def quality_class(score: float) -> str:
    """ok, warn or bad: the one rule by which every page colours a quality score (the badge's
    words say the same, so colour never carries the meaning alone)."""
    return "ok" if score >= GOOD_QUALITY else "warn" if score >= FAIR_QUALITY else "bad"


def catalog_of(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def caller_of(request: Request) -> Caller:
    """The visitor: the partner whose key the sign-in cookie holds, else the anonymous public.
    The app resolves it (``app.state.resolve_caller``: the same rules as the API)."""
    resolve: Callable[[Request], Caller] = request.app.state.resolve_caller
    return resolve(request)


def strings_of(request: Request) -> Strings:
    strings: Strings = request.app.state.web_strings
    return strings


def url_with(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    for key, value in changes.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        params.extend((key, str(v)) for v in values)
    query = urlencode(params)
    return f"{request.url.path}?{query}" if query else request.url.path


def render(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """A page: the template with the request, the visitor, the words and the helpers."""
    catalog = catalog_of(request)
    caller = caller_of(request)
    page = ENVIRONMENT.get_template(template).render(
        request=request,
        caller=caller,
        t=strings_of(request),
        city=catalog.settings.name,
        version=__version__,
        url_with=functools.partial(url_with, request),
        now=datetime.now(UTC),
        signin_lapsed=getattr(request.state, "signin_lapsed", False),
        **context,
    )
    response = HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-cache"})
    if getattr(request.state, "signin_lapsed", False):
        response.delete_cookie(KEY_COOKIE, path="/")
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The page of an error: its status, a sentence for a person, a way back."""
    strings = strings_of(request)
    reason = REASONS.get(status, "Error")
    return render(request, "error.html", {"status": status, "reason": reason,
                                          "message": mask(message), "title": strings(
                                              "error.title", status=status, reason=reason)},
                  status=status)  # fmt: skip


def page(handler: Callable[..., Response]) -> Callable[..., Response]:
    """A web route: a refused request (no such dataset, a bad filter, an unreadable lake) is an
    error page with the API's status, never a JSON body or a traceback. The route answers a page
    or a redirect."""

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        request: Request = kwargs["request"]
        try:
            return handler(*args, **kwargs)
        except LakeError as exc:
            log.error("lake error: %s", mask(str(exc)))
            return error_page(request, 503, "The data could not be read just now; try again.")
        except UrbanLakeError as exc:
            return error_page(request, getattr(exc, "status", 400), str(exc))

    return wrapped
