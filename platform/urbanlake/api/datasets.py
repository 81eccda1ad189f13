"""``/api/v1/datasets``: search, metadata, records, aggregates, exports, versions, changes and
quality. Thin: every route parses, calls one catalog action and renders."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from urbanlake.api.access import caller_for
from urbanlake.api.errors import error_response
from urbanlake.api.models import (
    AggregateResult,
    Changes,
    DatasetDetail,
    ErrorBody,
    QualityReport,
    RecordsPage,
    SearchResult,
    VersionList,
)
from urbanlake.catalog import actions
from urbanlake.catalog.exports import FORMATS, export, version_file
from urbanlake.catalog.params import MAX_LIMIT, parse_record_params
from urbanlake.catalog.service import Caller, Catalog
from urbanlake.core.errors import BadQuery

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "a parameter, filter, column or cursor that cannot be used",
    },
    404: {
        "model": ErrorBody,
        "description": "no such dataset or version (or one the caller may not see)",
    },
    503: {"model": ErrorBody, "description": "the lake could not be read; try again"},
}
router = APIRouter(prefix="/api/v1", tags=["datasets"], responses=ERRORS)
log = logging.getLogger("uvicorn.error")
IMMUTABLE = "public, max-age=31536000, immutable"


def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def get_caller(request: Request) -> Caller:
    return caller_for(request)


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
CallerDep = Annotated[Caller, Depends(get_caller)]
Name = Annotated[str, "dataset name"]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page (at most 10,000)")]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = orjson.dumps(body, default=str, option=orjson.OPT_NON_STR_KEYS)
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def base_url(request: Request, catalog: Catalog) -> str:
    return (catalog.settings.api.url or str(request.base_url)).rstrip("/")


def with_params(request: Request, catalog: Catalog, path: str, changes: dict[str, str]) -> str:
    """The request's own URL with some parameters replaced: the ``next`` links."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    items += list(changes.items())
    return f"{base_url(request, catalog)}{path}?{urlencode(items)}"


def dataset_url(request: Request, catalog: Catalog, name: str) -> str:
    return f"{base_url(request, catalog)}/api/v1/datasets/{name}"


@router.get("/datasets", response_model=SearchResult, summary="Search datasets")
def search_datasets(
    request: Request,
    catalog: CatalogDep,
    caller: CallerDep,
    q: Annotated[
        str,
        Query(
            description="words that must all appear in title, description, keywords or column names"
        ),
    ] = "",
    domain: Annotated[list[str] | None, Query()] = None,
    theme: Annotated[list[str] | None, Query()] = None,
    publisher: Annotated[list[str] | None, Query()] = None,
    license: Annotated[list[str] | None, Query()] = None,
    keyword: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    after: Annotated[
        str | None, Query(description="continue after this dataset name (from next)")
    ] = None,
) -> Response:
    filters = {k: v for k, v in {"domain": domain, "theme": theme, "publisher": publisher,
                                 "license": license, "keyword": keyword}.items() if v}  # fmt: skip
    found = actions.dataset_search(catalog, caller, q, filters, limit, after)
    for dataset in found["datasets"]:
        dataset["url"] = dataset_url(request, catalog, dataset["name"])
    after_name = found.pop("next_after")
    found["next"] = (
        with_params(request, catalog, "/api/v1/datasets", {"after": after_name})
        if after_name
        else None
    )
    return json_response(found)


@router.get("/datasets/{name}", response_model=DatasetDetail, summary="A dataset's metadata")
def show_dataset(request: Request, name: Name, catalog: CatalogDep, caller: CallerDep) -> Response:
    detail = actions.dataset_show(catalog, caller, name)
    url = dataset_url(request, catalog, name)
    detail["url"] = url
    downloads = {fmt: f"{url}/export?format={fmt}" for fmt in FORMATS if fmt != "parquet"}
    if detail.get("geometry") is None:
        downloads.pop("geojson")
    if detail["version"] is not None:
        downloads["parquet"] = f"{url}/versions/{detail['version']}/data.parquet"
    detail["downloads"] = downloads
    return json_response(detail)


def record_params(request: Request, limit_default: int = 100) -> Any:
    return parse_record_params(list(request.query_params.multi_items()), limit_default)


@router.get("/datasets/{name}/records", response_model=RecordsPage, summary="Records of a version",
            responses={200: {"content": {"text/csv": {}, "application/geo+json": {}}}})  # fmt: skip
def dataset_records(
    request: Request,
    name: Name,
    catalog: CatalogDep,
    caller: CallerDep,
    limit: Limit = 100,
    cursor: Annotated[str | None, Query(description="from the previous page's next URL")] = None,
    select: Annotated[str | None, Query(description="columns to return, comma-separated")] = None,
    order_by: Annotated[str | None, Query(description="columns, -col for descending")] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    facet: Annotated[list[str] | None, Query(description="columns to count values of")] = None,
    version: Annotated[int | None, Query(ge=0, description="read this version")] = None,
    as_of: Annotated[str | None, Query(description="read the version current at this time")] = None,
    format: Annotated[str, Query(pattern="^(json|csv|geojson)$")] = "json",
) -> Response:
    """Filters: ``col=value``, ``col__gt``, ``__gte``, ``__lt``, ``__lte``, ``__ne``, ``__in`` (a
    comma list), ``__contains``, ``__isnull``. Pages are keyset cursors pinned to one version."""
    params = record_params(request)
    if format == "geojson" and params.select is not None:
        # A feature needs its position even when the properties asked for leave it out.
        geometry = catalog.entry(caller, name).geometry
        extra = [c for c in (geometry.columns() if geometry else []) if c not in params.select]
        params.select = [*params.select, *extra]
    page = actions.records_page(catalog, caller, name, params)
    path = f"/api/v1/datasets/{name}/records"
    next_url = None
    if page["next_cursor"]:
        next_url = with_params(request, catalog, path, {"cursor": page["next_cursor"]})
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    if format == "csv":
        columns = params.select or list(page["pinned"].types)
        return Response(_csv_page(page["rows"], columns),
                        media_type="text/csv; charset=utf-8", headers=headers)  # fmt: skip
    if format == "geojson":
        return Response(_geojson_page(page), media_type="application/geo+json", headers=headers)
    return json_response({"rows": page["rows"], "total": page["total"], "version": page["version"],
                          "next": next_url, "facets": page["facets"]}, headers=headers)  # fmt: skip


def _csv_page(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in row.items()}
        for row in rows
    )
    return out.getvalue().encode()


def _geojson_page(page: dict[str, Any]) -> bytes:
    pinned = page["pinned"]
    geometry = pinned.entry.geometry
    if geometry is None:
        raise BadQuery(
            f"dataset '{pinned.entry.name}' has no geometry: GeoJSON needs one", "format"
        )
    features = []
    for row in page["rows"]:
        shape: dict[str, Any] | None = None
        if geometry.wkt:
            text = row.get(geometry.wkt)
            if isinstance(text, str) and text.upper().startswith("POINT"):
                x, y = text[text.index("(") + 1 : text.index(")")].split()[:2]
                shape = {"type": "Point", "coordinates": [float(x), float(y)]}
        else:
            lon, lat = row.get(geometry.lon or ""), row.get(geometry.lat or "")
            shape = (
                {"type": "Point", "coordinates": [lon, lat]}
                if lon is not None and lat is not None
                else None
            )
        features.append({"type": "Feature", "geometry": shape, "properties": row})
    return orjson.dumps({"type": "FeatureCollection", "features": features,
                         "total": page["total"], "version": page["version"]}, default=str)  # fmt: skip


@router.get(
    "/datasets/{name}/aggregate", response_model=AggregateResult, summary="Exact aggregates"
)
def dataset_aggregate(
    request: Request,
    name: Name,
    catalog: CatalogDep,
    caller: CallerDep,
    group_by: Annotated[str | None, Query(description="columns, comma-separated")] = None,
    bucket: Annotated[
        str | None, Query(description="<time column>:<interval>, e.g. measured_at:15m")
    ] = None,
    metrics: Annotated[str, Query(description="count,sum:col,avg:col,min:col,max:col")] = "count",
    version: Annotated[int | None, Query(ge=0)] = None,
    as_of: Annotated[str | None, Query()] = None,
) -> Response:
    params = record_params(request)
    return json_response(
        actions.records_aggregate(catalog, caller, name, params, group_by, bucket, metrics)
    )


@router.get("/datasets/{name}/export", summary="Every filtered row, streamed",
            responses={200: {"content": {t: {} for t, _ in FORMATS.values()}}})  # fmt: skip
def dataset_export(
    request: Request,
    name: Name,
    catalog: CatalogDep,
    caller: CallerDep,
    format: Annotated[str, Query(pattern="^(csv|jsonl|geojson|parquet)$")] = "csv",
    select: Annotated[str | None, Query()] = None,
    order_by: Annotated[str | None, Query()] = None,
    version: Annotated[int | None, Query(ge=0)] = None,
    as_of: Annotated[str | None, Query()] = None,
) -> Response:
    params = record_params(request)
    pinned, media, chunks = export(catalog, caller, name, format, params)
    filename = f"{name}-v{pinned.number}.{FORMATS[format][1]}"
    return StreamingResponse(chunks, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "X-Dataset-Version": str(pinned.number)})  # fmt: skip


VERSION_FILE = "/datasets/{name}/versions/{version}/data.parquet"
VERSION_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/vnd.apache.parquet": {}}},
    206: {"description": "the requested byte range"},
    304: {"description": "not modified (If-None-Match)"},
    416: {"model": ErrorBody, "description": "a range outside the file"},
}


# GET and HEAD as two routes of one function, so that each has an operation id of its own.
@router.get(VERSION_FILE, summary="A version's stable Parquet file (Range requests)",
            responses=VERSION_FILE_RESPONSES)  # fmt: skip
@router.head(VERSION_FILE, summary="A version's Parquet file: its size and ETag, no body",
             responses=VERSION_FILE_RESPONSES, operation_id="version_parquet_head")  # fmt: skip
def version_parquet(
    request: Request, name: Name, version: int, catalog: CatalogDep, caller: CallerDep
) -> Response:
    found = version_file(catalog, caller, name, version)
    headers = {"ETag": found.etag, "Cache-Control": IMMUTABLE, "Accept-Ranges": "bytes",
               "Content-Disposition": f'inline; filename="{found.filename}"'}  # fmt: skip
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    wanted = request.headers.get("range")
    start, end, status = 0, found.size - 1, 200
    if wanted:
        log.info("Range request %s for %s", wanted, request.url.path)
        parsed = parse_range(wanted, found.size)
        if parsed is None:
            return error_response(416, "range_not_satisfiable", f"cannot serve range {wanted} of {found.size} bytes",
                                  headers={"Content-Range": f"bytes */{found.size}"})  # fmt: skip
        start, end = parsed
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{found.size}"
    headers["Content-Length"] = str(max(0, end - start + 1))
    media = "application/vnd.apache.parquet"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media)
    return StreamingResponse(_read_range(found.fs, found.path, start, end), status_code=status,
                             headers=headers, media_type=media)  # fmt: skip


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The first range of ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n``; None if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or not spec:
        return None
    first = spec.split(",")[0].strip()
    low, _, high = first.partition("-")
    try:
        if not low:
            length = int(high)
            start, end = max(0, size - length), size - 1
        else:
            start = int(low)
            end = min(int(high), size - 1) if high else size - 1
    except ValueError:
        return None
    if start > end or start >= size:
        return None
    return start, end


def _read_range(fs: Any, path: str, start: int, end: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    with fs.open_input_file(path) as handle:
        handle.seek(start)
        left = end - start + 1
        while left > 0:
            data = handle.read(min(chunk, left))
            if not data:
                break
            left -= len(data)
            yield data


@router.get("/datasets/{name}/versions", response_model=VersionList, summary="Published versions")
def dataset_versions(name: Name, catalog: CatalogDep, caller: CallerDep) -> Response:
    return json_response(actions.dataset_versions(catalog, caller, name))


@router.get(
    "/datasets/{name}/changes", response_model=Changes, summary="What changed between versions"
)
def dataset_changes(
    name: Name,
    catalog: CatalogDep,
    caller: CallerDep,
    from_: Annotated[int, Query(alias="from", ge=0, description="the older version")],
    to: Annotated[int, Query(ge=0, description="the newer version")],
    limit: Limit = 1000,
) -> Response:
    return json_response(actions.dataset_changes(catalog, caller, name, from_, to, limit))


@router.get("/datasets/{name}/quality", response_model=QualityReport, summary="Quality evidence")
def dataset_quality(
    name: Name,
    catalog: CatalogDep,
    caller: CallerDep,
    runs: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Response:
    return json_response(actions.dataset_quality(catalog, caller, name, runs))
