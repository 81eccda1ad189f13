"""``http``: JSON, CSV or JSON Lines from an HTTP(S) API, page by page, optionally incremental.

Each page is one payload. Pages are followed through a next link in the body, a
``Link: <…>; rel="next"`` header, a page number or an offset. An incremental source sends the
highest event time loaded so far (minus a look-back) as a query parameter, so a run asks only for
what changed; that high-water mark moves only when the last page of a run is committed, so a run
that dies half-way asks for the same window again instead of skipping what it had not reached.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from urbanlake.connectors.base import ConnectorContext, Decoded, Payload, SourceSpec
from urbanlake.connectors.credentials import SECRET_HEADER, came_from_reference, literal_secrets
from urbanlake.connectors.formats import DuplicateColumns, Encoding, decode, guess_format
from urbanlake.connectors.remote import RemoteConnector
from urbanlake.core.errors import ConfigError, ConfigProblem, DecodeError, FatalSourceError
from urbanlake.core.secrets import mask
from urbanlake.core.spec import ConnectorConfig, parse_duration

log = logging.getLogger(__name__)


# A number this large is an epoch in milliseconds: as seconds it would be after the year 5000.
EPOCH_MS_THRESHOLD = 100_000_000_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Pagination(Strict):
    """How to reach the next page; ``max_pages`` stops a runaway feed with a failed run."""

    type: Literal["none", "next_link", "link_header", "page", "offset"] = "none"
    next_path: str | None = Field(
        default=None, description="next_link: dotted path in the body to the next page's URL"
    )
    page_param: str = Field(
        default="page", description="page: query parameter holding the page number"
    )
    start: int = Field(default=1, description="page: number of the first page")
    size_param: str | None = Field(
        default=None, description="page: query parameter holding the page size"
    )
    size: int | None = Field(
        default=None, ge=1, description="page: records per page; a shorter page is the last"
    )
    offset_param: str = Field(
        default="offset", description="offset: query parameter holding the offset"
    )
    limit_param: str = Field(
        default="limit", description="offset: query parameter holding the page size"
    )
    limit: int = Field(
        default=100, ge=1, description="offset: records per page; a shorter page is the last"
    )
    max_pages: int = Field(
        default=10_000, ge=1, description="a run fails rather than read more pages than this"
    )

    @model_validator(mode="before")
    @classmethod
    def from_text(cls, value: Any) -> Any:
        # ``pagination: link_header`` is enough for the types that need no other field.
        return {"type": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def fields_fit_type(self) -> Pagination:
        applies = {
            "none": set(),
            "next_link": {"next_path"},
            "link_header": set(),
            "page": {"page_param", "start", "size_param", "size"},
            "offset": {"offset_param", "limit_param", "limit"},
        }[self.type]
        stray = sorted(self.model_fields_set - applies - {"type", "max_pages"})
        if stray:
            raise ValueError(
                f"{', '.join(stray)} do(es) not apply to pagination type '{self.type}'"
            )
        if self.type == "next_link" and not self.next_path:
            raise ValueError(
                "pagination type 'next_link' needs next_path, the dotted path to the next URL in the body"
            )
        if self.size_param and self.size is None:
            raise ValueError("size_param needs size, the number of records per page to ask for")
        return self


class Incremental(Strict):
    """Ask only for records changed since the last run, through one query parameter."""

    param: str = Field(description="query parameter that takes the lower bound, e.g. since")
    field: str | None = Field(
        default=None, description="record field with the event time; default table.event_time"
    )
    lookback: str = Field(
        default="0s", description="re-read this far behind the last event time, e.g. 10m"
    )
    initial: str | int | float | None = Field(
        default=None, description="lower bound sent on the first run; default none"
    )
    format: Literal["iso", "epoch"] = Field(
        default="iso", description="iso: 2024-05-01T12:00:00Z; epoch: seconds"
    )

    @field_validator("lookback")
    @classmethod
    def check_lookback(cls, value: str) -> str:
        if parse_duration(value) < timedelta(0):
            raise ValueError("must not be negative")
        return value

    @field_validator("initial")
    @classmethod
    def check_initial(cls, value: str | int | float | None) -> str | int | float | None:
        if value is not None and as_datetime(value) is None:
            raise ValueError(
                f"'{value}' is not a timestamp: use ISO 8601 (2024-05-01T00:00:00Z) or epoch seconds"
            )
        return value

    @property
    def lookback_delta(self) -> timedelta:
        return parse_duration(self.lookback)


class HttpSpec(SourceSpec):
    type: Literal["http"] = "http"
    url: str = Field(description="http(s):// URL of the first page; may hold ${ENV} references")
    format: Literal["json", "csv", "jsonl"] | None = Field(
        default=None,
        description="default: from the Content-Type, then the URL's extension, else json",
    )
    records_path: str | None = Field(
        default=None, description="dotted path to the list of records in a JSON body"
    )
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="query parameters"
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="request headers; secrets as ${ENV}"
    )
    pagination: Pagination = Field(
        default_factory=Pagination, description="how to reach the next page"
    )
    incremental: Incremental | None = Field(
        default=None, description="ask only for records changed since the last run"
    )
    encoding: Encoding = Field(
        default="utf-8", description="text encoding of the bodies, as Python names it (latin-1)"
    )
    duplicate_columns: DuplicateColumns = Field(
        default="fail",
        description="a repeated CSV column name: fail (the page is set aside) or rename (v, v_2)",
    )

    @field_validator("url")
    @classmethod
    def check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"'{mask(value)}' is not an http:// or https:// URL")
        return value

    @field_validator("headers")
    @classmethod
    def secret_headers_are_references(cls, value: dict[str, str]) -> dict[str, str]:
        problems = literal_secrets(value, {}, came_from_reference)
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
        return value

    @field_validator("params")
    @classmethod
    def secret_params_are_references(cls, value: dict[str, Any]) -> dict[str, Any]:
        problems = literal_secrets({}, value, came_from_reference)
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
        return value

    @model_validator(mode="after")
    def consistent(self) -> HttpSpec:
        if self.pagination.type == "next_link" and self.format not in (None, "json"):
            raise ValueError(
                "pagination type 'next_link' reads the next URL from a JSON body: format must be json"
            )
        if self.records_path and self.format not in (None, "json"):
            raise ValueError("records_path applies to JSON bodies only")
        if self.incremental and self.incremental.param in self.params:
            raise ValueError(
                f"query parameter '{self.incremental.param}' is set by incremental; remove it from params"
            )
        return self


# -- event times ---------------------------------------------------------------------------------


def as_datetime(value: Any) -> datetime | None:
    """A timestamp from an ISO 8601 string, epoch seconds or milliseconds, a date or a datetime."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        seconds = value / 1000 if abs(value) >= EPOCH_MS_THRESHOLD else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        try:
            return as_datetime(float(text))
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return None
    return None


def _instant(value: datetime) -> datetime:
    # Naive times are compared as if UTC: a source writes them all in one zone, so their order holds.
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return a if _instant(a) >= _instant(b) else b


def iso(value: datetime) -> str:
    """ISO 8601, in UTC with ``Z`` when the time has a zone; naive times stay naive."""
    if value.tzinfo is None:
        return value.isoformat()
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def column_max(column: pa.ChunkedArray) -> tuple[datetime | None, int]:
    """The latest time in a column, and how many non-null values could not be read as times."""
    kind = column.type
    if (
        pa.types.is_timestamp(kind)
        or pa.types.is_date(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
    ):
        values = [pc.max(column).as_py()]
    else:
        values = pc.unique(column).to_pylist()
    best: datetime | None = None
    unreadable = 0
    for value in values:
        when = as_datetime(value)
        if when is None:
            unreadable += value is not None
            continue
        best = later(best, when)
    return best, unreadable


# -- the connector -------------------------------------------------------------------------------


def _same_origin(a: str, b: str) -> bool:
    x, y = httpx.URL(a), httpx.URL(b)
    return (x.scheme, x.host, x.port) == (y.scheme, y.host, y.port)


def with_params(url: str, params: Mapping[str, Any]) -> str:
    """``url`` with ``params`` added to (or replacing same-named parameters in) its query string."""
    # Not ``client.get(url, params=…)``: httpx then drops the query string already in ``url``.
    return str(httpx.URL(url).copy_merge_params(dict(params))) if params else url


def _lookup(document: Any, path: str) -> Any:
    """The value at a dotted path, or None; keys that hold dots (``@iot.nextLink``) are found too."""
    node, parts = document, path.split(".")
    while parts:
        if isinstance(node, list) and parts[0].isdigit() and int(parts[0]) < len(node):
            node, parts = node[int(parts[0])], parts[1:]
            continue
        if not isinstance(node, dict):
            return None
        for width in range(len(parts), 0, -1):
            key = ".".join(parts[:width])
            if key in node:
                node, parts = node[key], parts[width:]
                break
        else:
            return None
    return node


class HttpConnector(RemoteConnector[HttpSpec]):
    """An HTTP(S) API: one payload per page, through the platform's shared retrying client."""

    type_name = "http"
    spec_model = HttpSpec
    example = {"type": "http", "url": "https://api.city.example/v1/parking", "records_path": "data"}
    written_params = ("params",)

    def __init__(self, spec: HttpSpec, config: ConnectorConfig, context: ConnectorContext):
        super().__init__(spec, config, context)
        self._state: dict[str, Any] = {}
        self._high: datetime | None = None
        self._last: Payload | None = None
        self._held = False  # a page of this run was set aside: the high-water mark stays
        # Pages decoded in ``fetch`` to count their records, kept for ``decode`` (with the payload
        # itself, so that its id cannot be reused while the entry lives).
        self._decoded: dict[int, tuple[Payload, Decoded]] = {}
        where = str(config.path or config.table_name)
        if spec.incremental and not self.event_field:
            message = "incremental needs the field with each record's event time: set it here or in table.event_time"
            raise ConfigError([ConfigProblem(where, None, "source.incremental.field", message)])

    @property
    def event_field(self) -> str | None:
        incremental = self.spec.incremental
        return (incremental.field if incremental else None) or self.config.table.event_time

    # -- fetching ------------------------------------------------------------------------------

    def fetch(self, state: dict[str, Any]) -> Iterator[Payload]:
        self._state = dict(state)
        self._high = as_datetime(state.get("since"))
        self._last = None
        self._held = False
        self._decoded.clear()
        params: dict[str, Any] = dict(self.spec.params)
        since = self._since_value()
        if since is not None and self.spec.incremental:
            params[self.spec.incremental.param] = since
        # One page behind: a page is handed on only once the next one is in, so the last page
        # is known as the last and only its commit moves the high-water mark.
        pending: Payload | None = None
        for payload in self._pages(params):
            if pending is not None:
                yield pending
            pending = payload
        if pending is not None:
            self._last = pending
            yield pending

    def _since_value(self) -> str | None:
        incremental = self.spec.incremental
        if incremental is None:
            return None
        lower: datetime | None = None
        if self._high is not None:
            lower = self._high - incremental.lookback_delta
        elif incremental.initial is not None:
            lower = as_datetime(incremental.initial)
        if lower is None:
            return None
        if incremental.format == "epoch":
            return str(math.floor(_instant(lower).timestamp()))
        return iso(lower)

    def _pages(self, params: dict[str, Any]) -> Iterator[Payload]:
        kind = self.spec.pagination.type
        if kind == "none":
            yield self._get_response(with_params(self.spec.url, params))[0]
        elif kind in ("next_link", "link_header"):
            yield from self._linked_pages(params)
        else:
            yield from self._numbered_pages(params)

    def _linked_pages(self, params: dict[str, Any]) -> Iterator[Payload]:
        pagination = self.spec.pagination
        url = with_params(self.spec.url, params)
        fetched: set[str] = set()
        while True:
            payload, response = self._get_response(url)
            fetched.add(url)
            yield payload
            link = self._next_url(payload, response)
            if link is None:
                return
            # Next links usually carry every parameter; add back those they drop (an API key).
            present = httpx.URL(link).params
            url = with_params(link, {k: v for k, v in params.items() if k not in present})
            if url in fetched:
                raise FatalSourceError(
                    f"{payload.origin}: the next link points back to {mask(url)}, already read in this run; "
                    "the feed's pagination loops"
                )
            if len(fetched) >= pagination.max_pages:
                raise self._too_many_pages()

    def _next_url(self, payload: Payload, response: httpx.Response) -> str | None:
        pagination = self.spec.pagination
        if pagination.type == "link_header":
            link = response.links.get("next", {}).get("url")
            return urljoin(str(response.url), link) if link else None
        assert pagination.next_path is not None
        try:
            document = orjson.loads(payload.content)
        except orjson.JSONDecodeError:
            return None  # ``decode`` sets this page aside; the feed ends here
        link = _lookup(document, pagination.next_path)
        if link is None or link == "":
            return None
        if not isinstance(link, str):
            raise FatalSourceError(
                f"{payload.origin}: '{pagination.next_path}' holds a {type(link).__name__}, not the next page's URL"
            )
        return urljoin(str(response.url), link)

    def _numbered_pages(self, params: dict[str, Any]) -> Iterator[Payload]:
        pagination = self.spec.pagination
        by_page = pagination.type == "page"
        number, offset, pages = pagination.start, 0, 0
        previous_digest = ""
        while True:
            query = dict(params)
            if by_page:
                query[pagination.page_param] = number
                if pagination.size_param and pagination.size:
                    query[pagination.size_param] = pagination.size
            else:
                query[pagination.offset_param] = offset
                query[pagination.limit_param] = pagination.limit
            payload = self._get_response(with_params(self.spec.url, query))[0]
            pages += 1
            count = self._count(payload)
            digest = hashlib.sha256(payload.content).hexdigest()
            payload.sha256 = digest  # the pipeline keys the raw zone by it: hashed once
            full = pagination.size if by_page else pagination.limit
            if count is None:
                if digest == previous_digest:
                    return  # the same unreadable answer again: the feed ends here
                # Not decodable: it is set aside, and the next page is asked for as if this one
                # was full (the offset moves by a whole page).
                count = full or 0
            elif count == 0:
                if pages == 1:
                    yield payload  # an empty feed is still one answer worth recording
                return
            elif digest == previous_digest:
                where = pagination.page_param if by_page else pagination.offset_param
                raise FatalSourceError(
                    f"{payload.origin}: same records as the previous page; does the API take '{where}'?"
                )
            previous_digest = digest
            yield payload
            if full is not None and count < full:
                return
            if pages >= pagination.max_pages:
                raise self._too_many_pages()
            number += 1
            offset += count

    def _too_many_pages(self) -> FatalSourceError:
        limit = self.spec.pagination.max_pages
        return FatalSourceError(
            f"{mask(self.spec.url)}: more than {limit} pages (source.pagination.max_pages); the run stops "
            "rather than load part of the feed: raise max_pages if the feed is really that long"
        )

    def _get_response(self, url: str) -> tuple[Payload, httpx.Response]:
        response = self.client.get(url, headers=self._headers_for(url))
        origin = mask(str(response.url))
        media_type = response.headers.get("Content-Type")
        fmt = (
            self.spec.format
            or guess_format("", media_type)
            or guess_format(response.url.path)
            or "json"
        )  # fmt: skip
        payload = Payload(
            content=response.content,
            origin=origin,
            format=fmt,
            state=dict(self._state),
            media_type=media_type,
        )
        return payload, response

    def _headers_for(self, url: str) -> dict[str, str]:
        if _same_origin(url, self.spec.url):
            return dict(self.spec.headers)
        # A next link to another host gets no credentials, as browsers and httpx do on redirects.
        dropped = [name for name in self.spec.headers if SECRET_HEADER.search(name)]
        if dropped:
            log.warning("%s is on another host: not sending %s", mask(url), ", ".join(dropped))
        return {k: v for k, v in self.spec.headers.items() if k not in dropped}

    def _count(self, payload: Payload) -> int | None:
        try:
            decoded = self._decode(payload)
        except DecodeError:
            return None
        self._decoded[id(payload)] = (payload, decoded)
        return decoded.rows_in

    # -- decoding and state --------------------------------------------------------------------

    def decode(self, payload: Payload) -> Decoded:
        kept = self._decoded.pop(id(payload), None)
        if kept is not None and kept[0] is payload:
            return kept[1]
        return self._decode(payload)

    def _decode(self, payload: Payload) -> Decoded:
        if not payload.content.strip():
            # 204 No Content, or an empty page ending a feed: no records, not a broken payload.
            return Decoded(table=pa.table({}))
        spec = self.spec
        records_path = spec.records_path if payload.format == "json" else None
        return decode(payload.content, payload.format, payload.origin, records_path,
                      encoding=spec.encoding, duplicates=spec.duplicate_columns)  # fmt: skip

    def state_after_failure(self, payload: Payload) -> dict[str, Any]:
        # The high-water mark never passes a page that did not load: the next run asks for the
        # same window again (the set-aside page itself is recognised and not decoded again).
        self._held = True
        return dict(self._state)

    def state_after(self, payload: Payload, decoded: Decoded) -> dict[str, Any]:
        if self.spec.incremental is None:
            return payload.state
        name = self.event_field
        if name and name in decoded.table.column_names:
            newest, unreadable = column_max(decoded.table.column(name))
            if unreadable:
                log.warning(
                    "%s: %d values of %s are not timestamps", payload.origin, unreadable, name
                )
            self._high = later(self._high, newest)
        if payload is not self._last or self._high is None or self._held:
            return dict(self._state)
        return {**self._state, "since": iso(self._high)}
