"""The dataset page's map (stub: filled in by the map work)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from urbanlake.catalog.service import Caller, Catalog


def map_context(
    request: Request, catalog: Catalog, caller: Caller, detail: dict[str, Any]
) -> dict[str, Any] | None:
    """What `_map.html` shows for a geographic dataset; None for one without geometry."""
    return None
