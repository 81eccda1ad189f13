"""A dataset's page: what it is, how fresh and how good, its rows, chart, map, versions,
downloads and snippets."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from urbanlake.catalog import actions
from urbanlake.web.render import caller_of, catalog_of, page, render

router = APIRouter(include_in_schema=False)


@router.get("/datasets/{name}", response_class=HTMLResponse)
@page
def dataset_page(request: Request, name: str) -> HTMLResponse:
    detail = actions.dataset_show(catalog_of(request), caller_of(request), name)
    return render(request, "dataset.html", {"title": detail["title"], "nav": "datasets",
                                            "detail": detail})  # fmt: skip
