"""The query parameters of the records, aggregate and export endpoints, parsed into typed
requests: ``col=value``, ``col__gt=…``, ``select=``, ``order_by=``, ``bbox=``, ``facet=``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from urbanlake.catalog.cursor import Position, decode_cursor
from urbanlake.core.errors import BadQuery
from urbanlake.lakehouse.record_query import METRICS, OPERATORS, Filter

RESERVED = {"select", "order_by", "bbox", "facet", "facet_size", "limit", "cursor", "version",
            "as_of", "format", "group_by", "bucket", "metrics"}  # fmt: skip
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100


@dataclass
class RecordParams:
    filters: list[Filter] = field(default_factory=list)
    select: list[str] | None = None
    order_by: list[tuple[str, bool]] = field(default_factory=list)
    bbox: tuple[float, float, float, float] | None = None
    facets: list[str] = field(default_factory=list)
    facet_size: int = 50
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    position: Position | None = None  # the cursor, decoded
    version: int | None = None
    as_of: datetime | None = None


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _int(text: str, parameter: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadQuery(f"{parameter} must be a whole number, not '{text}'", parameter) from None
    if not low <= value <= high:
        raise BadQuery(
            f"{parameter} must be between {low:,} and {high:,}, not {value:,}", parameter
        )
    return value


def parse_filter(key: str, value: str) -> Filter:
    column, _, op = key.partition("__")
    op = op or "eq"
    if op not in OPERATORS:
        raise BadQuery(
            f"unknown operator '__{op}' in '{key}'; valid: {', '.join('__' + o for o in OPERATORS if o != 'eq')}",
            key,
            "unknown_operator",
        )
    if op == "in":
        return Filter(column, op, _names(value) if value else [], key)
    if op == "isnull":
        if value.lower() not in ("true", "false", "1", "0"):
            raise BadQuery(f"{key} takes true or false, not '{value}'", key)
        return Filter(column, op, value.lower() in ("true", "1"), key)
    return Filter(column, op, value, key)


def parse_record_params(
    items: list[tuple[str, str]], limit_default: int = DEFAULT_LIMIT
) -> RecordParams:
    """Parse a request's query parameters (in order, repeats allowed)."""
    params = RecordParams(limit=limit_default)
    for key, value in items:
        if key in RESERVED and value == "":
            continue  # ``?as_of=`` is as if not given, as forms send empty fields
        if key not in RESERVED:
            params.filters.append(parse_filter(key, value))
        elif key == "select":
            params.select = _names(value)
        elif key == "order_by":
            params.order_by = [(n.removeprefix("-"), n.startswith("-")) for n in _names(value)]
        elif key == "bbox":
            params.bbox = parse_bbox(value)
        elif key == "facet":
            params.facets.extend(_names(value))
        elif key == "facet_size":
            params.facet_size = _int(value, key, 1, 1000)
        elif key == "limit":
            params.limit = _int(value, key, 1, MAX_LIMIT)
        elif key == "cursor":
            params.cursor, params.position = value, decode_cursor(value)
        elif key == "version":
            params.version = _int(value, key, 0, 2**62)
        elif key == "as_of":
            params.as_of = parse_time(value, key)
    return params


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4 or not (parts[0] <= parts[2] and parts[1] <= parts[3]):
        raise BadQuery(
            "bbox must be minlon,minlat,maxlon,maxlat (four numbers, min before max)", "bbox"
        )
    return parts[0], parts[1], parts[2], parts[3]


def parse_time(text: str, parameter: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(
            f"{parameter} must be an ISO 8601 time, e.g. 2026-11-01T12:00:00Z", parameter
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def parse_metrics(text: str) -> list[tuple[str, str | None]]:
    metrics: list[tuple[str, str | None]] = []
    for part in _names(text):
        name, _, column = part.partition(":")
        if name not in METRICS:
            raise BadQuery(f"unknown metric '{name}'; valid: {', '.join(METRICS)}", "metrics")
        if name == "count":
            metrics.append(("count", None))
        elif not column:
            raise BadQuery(f"metric '{name}' needs a column: {name}:<column>", "metrics")
        else:
            metrics.append((name, column))
    if not metrics:
        raise BadQuery("give at least one metric, e.g. metrics=count,avg:kwh", "metrics")
    return metrics


def parse_bucket(text: str) -> tuple[str, str]:
    column, _, interval = text.partition(":")
    if not column or not interval:
        raise BadQuery("bucket is <time column>:<interval>, e.g. measured_at:15m", "bucket")
    return column, interval
