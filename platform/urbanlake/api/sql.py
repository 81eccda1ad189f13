"""``POST /api/v1/sql``: one read-only DuckDB query over the curated datasets the caller may see,
within the caller's tier's time budget and row cap. Thin: the checks, the rewriting and the
run are the catalog's (``catalog.sql``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from urbanlake.api.datasets import CallerDep, CatalogDep
from urbanlake.api.models import ErrorBody, SqlRequest, SqlResult
from urbanlake.catalog.sql import FORMATS, render, sql_query

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "a statement refused (`sql_refused`: what was refused, or a dataset the "
        "caller cannot read), stopped at its time budget (`query_timeout`), or failed in "
        "DuckDB (`sql_error`)",
    },
    404: {"model": ErrorBody, "description": "the SQL endpoint is turned off on this server"},
    503: {"model": ErrorBody, "description": "the lake could not be read; try again"},
}
router = APIRouter(prefix="/api/v1", tags=["sql"], responses=ERRORS)


@router.post(
    "/sql",
    response_model=SqlResult,
    summary="Read-only SQL over the datasets you may see",
    responses={200: {"content": {FORMATS["csv"]: {}, FORMATS["parquet"]: {}},
                     "headers": {"X-Row-Cap": {"schema": {"type": "integer"}},
                                 "X-Truncated": {"schema": {"type": "string"}}}}},
)  # fmt: skip
def run_sql(
    body: SqlRequest,
    catalog: CatalogDep,
    caller: CallerDep,
    format: Annotated[str, Query(pattern="^(json|csv|parquet)$")] = "json",
) -> Response:
    """One `SELECT` (or `WITH … SELECT`) in DuckDB's dialect. Datasets are tables by name —
    `"vehicle-positions"` or `vehicle_positions` — each read at its current version (the answer
    says which). No other tables, files, URLs, settings or system catalogs. An answer over the
    row cap is cut and says so (`truncated`, `row_cap`; headers `X-Truncated`, `X-Row-Cap` in
    CSV and Parquet)."""
    answer = sql_query(catalog, caller, body.sql, format)
    headers = {
        "X-Row-Cap": str(answer.row_cap),
        "X-Truncated": "true" if answer.truncated else "false",
        "X-Dataset-Versions": ", ".join(f"{n}={v}" for n, v in answer.datasets.items()),
        "Cache-Control": "no-store",
    }
    if format != "json":
        headers["Content-Disposition"] = f'attachment; filename="query.{format}"'
    return Response(render(answer, format), media_type=FORMATS[format], headers=headers)
