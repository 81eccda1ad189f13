"""The catalog API: FastAPI over the catalog's actions. ``create_app()`` is what uvicorn runs
(``urbanlake serve``); the project comes from ``URBANLAKE_PROJECT`` or the current folder."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from swagger_ui_bundle import swagger_ui_path

from urbanlake import __version__
from urbanlake.api.access import caller_for
from urbanlake.api.datasets import get_catalog, json_response, router
from urbanlake.api.errors import install_error_handlers
from urbanlake.api.metadata import root as metadata_root
from urbanlake.api.metadata import router as metadata_router
from urbanlake.api.models import Health
from urbanlake.api.quota import UNLIMITED_PATHS, QuotaMiddleware, Quotas
from urbanlake.api.sql import router as sql_router
from urbanlake.catalog.keys import KeyStore
from urbanlake.catalog.service import ANONYMOUS, Catalog
from urbanlake.catalog.usage import ApiUsage
from urbanlake.core.secrets import mask_logs
from urbanlake.core.settings import Settings, load_settings
from urbanlake.web import install as install_web

log = logging.getLogger("uvicorn.error")
REQUESTS = Counter("urbanlake_api_requests_total", "API requests", ["route", "method", "status"])
LATENCY = Histogram(
    "urbanlake_api_request_seconds", "API request time until the first byte", ["route"]
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    mask_logs()  # uvicorn set its handlers up before it called this factory

    usage = ApiUsage(settings) if settings.quota.usage_flush_seconds > 0 else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        catalog = Catalog(settings)
        for problem in catalog.problems:
            log.warning("catalog entry left out: %s", problem)
        app.state.catalog = catalog
        app.state.keys = KeyStore(settings)  # API keys: a hash store outside the lake
        if usage is not None:
            usage.start()
        yield
        if usage is not None:
            usage.stop()  # the counts since the last write, before the worker exits
        app.state.keys.close()
        app.state.catalog.close()

    app = FastAPI(
        title=f"{settings.name} open data (UrbanLake)",
        version=__version__,
        description="Curated city datasets: search, records with version-pinned cursors, exact "
        "aggregates, streamed exports, versions and changes.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served below from the packaged Swagger UI: no CDN, works offline
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Inside the measuring middleware below, so that /metrics counts the 429s too.
    app.add_middleware(QuotaMiddleware, quotas=Quotas(settings), usage=usage, openapi=app.openapi)
    app.include_router(metadata_router)  # first: /datasets/{name}.jsonld before /datasets/{name}
    app.include_router(metadata_root)
    app.include_router(router)
    app.include_router(sql_router)
    install_web(app, settings, caller_for)  # the pages for people, from the same actions
    document_errors(app)

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        LATENCY.labels(name).observe(time.perf_counter() - started)
        REQUESTS.labels(name, request.method, str(response.status_code)).inc()
        return response

    app.mount("/api/v1/docs/assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/api/v1/docs", include_in_schema=False)
    def docs() -> Response:
        assets = "/api/v1/docs/assets"
        return get_swagger_ui_html(
            openapi_url="/api/v1/openapi.json", title=f"{app.title} — API docs",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js", swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
        )  # fmt: skip

    @app.get("/healthz", response_model=Health, tags=["operations"])
    def healthz(request: Request) -> Response:
        catalog = get_catalog(request)
        reader = catalog.reader()
        try:
            snapshot = reader.current_snapshot()
        finally:
            reader.close()
        public = len(catalog.visible(ANONYMOUS))  # no count that reveals what a caller cannot see
        return json_response({"status": "ok", "datasets": public, "snapshot": snapshot})

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})  # fmt: skip
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
ACCESS_ERRORS = {
    "401": {"description": "the API key is not valid (unknown, expired or revoked)",
            "content": ERROR_BODY},
    "429": {"description": "the caller's quota is spent; Retry-After says for how long",
            "content": ERROR_BODY},
}  # fmt: skip


def document_errors(app: FastAPI) -> None:
    """Invalid parameters answer 400 in the one error shape, not FastAPI's 422; keys are optional
    (anonymous callers see public datasets) and every quota-counted route may answer 401 or 429:
    say so in OpenAPI."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {})
            schemes = components.setdefault("securitySchemes", {})
            schemes["ApiKey"] = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
            schemes["Bearer"] = {"type": "http", "scheme": "bearer"}
            for route, path in schema.get("paths", {}).items():
                for operation in path.values():
                    responses = operation.setdefault("responses", {})
                    responses.pop("422", None)
                    if route not in UNLIMITED_PATHS:  # no key is read, no quota counted
                        operation["security"] = [{}, {"ApiKey": []}, {"Bearer": []}]
                        for status, answer in ACCESS_ERRORS.items():
                            responses.setdefault(status, answer)
            for name in ("HTTPValidationError", "ValidationError"):
                components.get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
