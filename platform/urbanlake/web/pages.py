"""The catalog's own pages: home and search with facets, data health (status), sign-in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from urbanlake.catalog import actions
from urbanlake.web.render import caller_of, catalog_of, page, render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
@page
def home(request: Request) -> HTMLResponse:
    found = actions.dataset_search(catalog_of(request), caller_of(request))
    return render(request, "home.html", {"title": "Datasets", "nav": "datasets", "found": found})
