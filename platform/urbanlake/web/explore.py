"""The dataset page's preview table and chart builder (stub: filled in by the explore work)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse

from urbanlake.catalog.service import Caller, Catalog


def filter_redirect(request: Request) -> RedirectResponse | None:
    """A submitted filter form (fcol/fop/fval) as a 303 to the clean URL; None otherwise."""
    return None


def preview_context(
    request: Request, catalog: Catalog, caller: Caller, detail: dict[str, Any]
) -> dict[str, Any]:
    """What `_preview.html` shows: a keyset page of rows of the pinned version."""
    return {}


def chart_context(
    request: Request, catalog: Catalog, caller: Caller, detail: dict[str, Any]
) -> dict[str, Any]:
    """What `_chart.html` shows: the builder's form and, when asked, the chart."""
    return {}
