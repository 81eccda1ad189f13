"""Who is calling: the caller of a request, resolved once and kept on ``request.state``.

A key arrives as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` (or, to read, in the
web catalog's sign-in cookie); no key is the
anonymous public. A key that is not valid is a 401 ``invalid_key`` (``InvalidKey``, a
``UrbanLakeError``: a middleware that calls ``caller_for`` catches it and renders it with its
``status``, ``code`` and ``headers``), never a silent downgrade to anonymous.
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from urbanlake.catalog.keys import INVALID, KeyStore
from urbanlake.catalog.service import Caller
from urbanlake.core.errors import InvalidKey
from urbanlake.web.render import KEY_COOKIE


def header_key(request: Request) -> str | None:
    """The key the request's headers carry, if any."""
    header = request.headers.get("x-api-key", "").strip() or None
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    bearer = (value.strip() or None) if scheme.lower() == "bearer" else None
    if header and bearer and header != bearer:
        raise InvalidKey("two different API keys were sent (X-API-Key and Authorization)")
    return header or bearer


def cookie_key(request: Request) -> str | None:
    """The key of the web catalog's sign-in cookie, for reading (GET and HEAD) only: a partner
    who signed in sees partner data on pages, downloads and the API links they follow."""
    if request.method not in ("GET", "HEAD"):
        return None
    return request.cookies.get(KEY_COOKIE, "").strip() or None


def presented_key(request: Request) -> str | None:
    """The key the request carries, if any: a header, else the sign-in cookie."""
    return header_key(request) or cookie_key(request)


async def resolve_caller(request: Request) -> Caller:
    """``caller_for`` from an event loop: a key this worker has not checked lately costs a lookup
    and a deliberately slow hash, so that check runs in a worker thread, never on the loop."""
    if getattr(request.state, "caller", None) is None:
        key = presented_key(request)
        keys: KeyStore | None = getattr(request.app.state, "keys", None)
        if key is not None and keys is not None and not keys.is_cached(key):
            return await run_in_threadpool(caller_for, request)
    return caller_for(request)


def caller_for(request: Request) -> Caller:
    """The request's caller: the tier and name of its valid key, else the anonymous public;
    resolved once per request. Raises ``InvalidKey`` (401) for a key that is not valid."""
    cached = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    client = request.client.host if request.client else None
    key = header_key(request)
    signed_in = key is None and (key := cookie_key(request)) is not None
    caller = Caller(address=client)
    if key is not None:
        keys: KeyStore | None = getattr(request.app.state, "keys", None)
        try:
            if keys is None:
                raise InvalidKey(INVALID)
            info = keys.check(key)
        except InvalidKey:
            if not signed_in:
                raise
            # A sign-in whose key has since expired or been revoked ends like any web session:
            # the visitor reads as the public, and the pages say so and drop the cookie.
            request.state.signin_lapsed = True
        else:
            keys.count_use(info.name)
            caller = Caller(tier=info.tier, key=info.name, address=client)
    request.state.caller = caller
    return caller
