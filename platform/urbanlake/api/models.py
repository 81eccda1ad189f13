"""Response models of ``/api/v1``: what OpenAPI promises and the tests hold the API to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class DatasetSummary(BaseModel):
    name: str
    title: str
    description: str
    domain: str
    theme: str | None
    keywords: list[str]
    publisher: dict[str, Any]
    license: str
    frequency: str
    version: int | None = Field(description="the current version (a lake snapshot id)")
    rows: int | None
    updated: datetime | None
    url: str


class SearchResult(BaseModel):
    datasets: list[DatasetSummary]
    total: int = Field(description="exact number of datasets matching")
    facets: dict[str, dict[str, int]]
    next: str | None


class DatasetDetail(DatasetSummary):
    access: str
    spatial: dict[str, Any] | None
    temporal: dict[str, Any] | None
    primary_key: list[str]
    geometry: dict[str, Any] | None
    schema_: list[dict[str, Any]] = Field(alias="schema")
    statistics: dict[str, Any]
    source: dict[str, Any]
    lineage: list[dict[str, Any]]
    quality: dict[str, Any]
    freshness: dict[str, Any]
    downloads: dict[str, str]


class RecordsPage(BaseModel):
    rows: list[dict[str, Any]]
    total: int = Field(description="exact number of rows matching the filters in this version")
    version: int
    next: str | None = Field(description="the next page of the same version; null on the last")
    facets: dict[str, Any]


class AggregateResult(BaseModel):
    rows: list[dict[str, Any]]
    version: int


class VersionInfo(BaseModel):
    version: int
    time: datetime
    rows: int
    inputs: list[dict[str, Any]]
    how: str


class VersionList(BaseModel):
    versions: list[VersionInfo]


class Changes(BaseModel):
    from_: int = Field(alias="from")
    to: int
    key: list[str]
    counts: dict[str, int]
    inserted: list[dict[str, Any]]
    updated: list[dict[str, Any]]
    deleted: list[dict[str, Any]]
    complete: bool = Field(description="false when a list holds fewer rows than its count")


class QualityReport(BaseModel):
    summary: dict[str, Any]
    tables: dict[str, Any]


class Health(BaseModel):
    status: str
    datasets: int
    snapshot: int


class SqlRequest(BaseModel):
    sql: str = Field(
        description="one read-only DuckDB SELECT (or WITH … SELECT) over the datasets the caller "
        'may see, named as in the catalog ("vehicle-positions") or with _ for - (vehicle_positions)',
        examples=['SELECT route_id, count(*) AS n FROM "vehicle-positions" GROUP BY route_id'],
    )


class SqlResult(BaseModel):
    columns: list[str]
    types: list[str] = Field(description="DuckDB's type of each column")
    rows: list[list[Any]]
    truncated: bool = Field(description="true when there were more rows than row_cap")
    row_cap: int = Field(description="most rows an answer holds for the caller's access tier")
    datasets: dict[str, int] = Field(description="each dataset the query read → its version")
