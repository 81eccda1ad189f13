"""Who is calling: the caller of a request, resolved once and kept on ``request.state``."""

from __future__ import annotations

from fastapi import Request

from urbanlake.catalog.service import Caller


def caller_for(request: Request) -> Caller:
    """The request's caller (anonymous until API keys are checked), resolved once per request."""
    cached = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    client = request.client.host if request.client else None
    caller = Caller(address=client)
    request.state.caller = caller
    return caller
