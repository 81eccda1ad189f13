"""One JSON error shape for every error of ``/api/v1``:
``{"error": {"code": "<snake_case>", "message": "<for a person>", "details": [...]}}``.
The one place where domain errors become HTTP statuses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from urbanlake.core.errors import LakeError, UrbanLakeError
from urbanlake.core.secrets import mask

log = logging.getLogger("uvicorn.error")
STATUS_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                406: "not_acceptable", 413: "too_large", 416: "range_not_satisfiable",
                422: "invalid_parameter", 429: "too_many_requests", 500: "internal_error",
                503: "unavailable"}  # fmt: skip


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, mask(message), details), status_code=status, headers=headers
    )


def refused_response(exc: UrbanLakeError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The answer to a request the platform refused. Errors meant for callers carry their HTTP
    status, code and headers (core.errors); a lake (or key store) that failed is a 503 that tells
    nothing of the cause, which is logged; any other is a 400. ``headers`` go out as well."""
    if isinstance(exc, LakeError):
        log.error("lake error: %s", mask(str(exc)))
        return error_response(503, "unavailable", "the lake could not be read; try again shortly",
                              headers=headers)  # fmt: skip
    parameter = getattr(exc, "parameter", None)
    return error_response(getattr(exc, "status", 400), getattr(exc, "code", "bad_request"),
                          str(exc), [{"parameter": parameter}] if parameter else None,
                          headers={**(headers or {}), **(getattr(exc, "headers", None) or {})})  # fmt: skip


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "parameter": ".".join(str(p) for p in e.get("loc", ())[1:]) or None,
                "problem": e.get("msg"),
            }
            for e in exc.errors()
        ]
        names = ", ".join(d["parameter"] or "?" for d in details)
        return error_response(400, "invalid_parameter", f"invalid parameter: {names}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.url.path}"
            # A browser asking for a page that does not exist gets a page that says so.
            page_error = getattr(request.app.state, "page_error", None)
            page = page_error(request, 404, message) if page_error else None
            if page is not None:
                return page
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(UrbanLakeError)
    async def platform_error(request: Request, exc: UrbanLakeError) -> JSONResponse:
        return refused_response(exc)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return error_response(500, "internal_error", "internal error; it has been logged")
