"""``gbfs``: shared bikes, scooters and cars (GBFS 1.x, 2.x and 3.0), one table per feed.

The connector reads the auto-discovery file ``gbfs.json``, then each feed it lists that has a
table here. Each feed file fetched is one payload, kept as received, whose rows fill one table
``<name>_<feed>``. GBFS versions differ in names (``free_bike_status``/``vehicle_status``,
``num_bikes_available``/``num_vehicles_available``), in time formats (POSIX seconds or RFC 3339),
in booleans (``1``/``0`` in 1.0) and in text (plain or localized lists in 3.0): every version
gives the same columns with the same types, declared below.

Polling follows the publisher's ``ttl``: the state keeps each feed's ``last_updated`` and ``ttl``,
so a feed is not requested again before it can have changed, and a feed whose ``last_updated``
has not moved commits nothing.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from pydantic import Field, field_validator, model_validator

from urbanlake.connectors.base import (
    ConnectorContext,
    Decoded,
    Payload,
)
from urbanlake.connectors.credentials import SECRET_HEADER
from urbanlake.connectors.gbfs_documents import (
    TABLE_OF_FEED,
    TABLES,
    FeedName,
    Table,
    discovered_feeds,
    feed_decoded,
    last_updated,
    parse_document,
    table_of_document,
    ttl_seconds,
)
from urbanlake.connectors.http import with_params
from urbanlake.connectors.remote import (
    RemoteConnector,
    RemoteSpecChecks,
    check_location,
    is_remote,
    query_params,
)
from urbanlake.core.errors import (
    DecodeError,
    FatalSourceError,
)
from urbanlake.core.secrets import mask
from urbanlake.core.spec import ConnectorConfig

log = logging.getLogger(__name__)

# -- the spec ------------------------------------------------------------------------------------


class GbfsSpec(RemoteSpecChecks):
    type: Literal["gbfs"] = "gbfs"
    url: str = Field(
        description="the auto-discovery gbfs.json: http(s):// URL, file:// URL or a path "
        "relative to the project; may hold ${ENV} references"
    )
    language: str | None = Field(
        default=None,
        description="language of the v1/v2 discovery and of v3 localized texts; default: the first",
    )
    feeds: list[FeedName] | None = Field(
        default=None, description="load only these feeds; default: every feed with a table"
    )
    feeds_base: str | None = Field(
        default=None,
        description="read feed <name> from <feeds_base>/<name>.json instead of the listed URL; "
        "default for a local gbfs.json: its folder",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="request headers for http(s) URLs; secrets as ${ENV}"
    )

    @field_validator("feeds_base")
    @classmethod
    def check_feeds_base(cls, value: str | None) -> str | None:
        return None if value is None else check_location(value)

    @field_validator("feeds")
    @classmethod
    def some_feeds(cls, value: list[FeedName] | None) -> list[FeedName] | None:
        if value is not None and not value:
            raise ValueError("must name at least one feed; leave it out to load every feed")
        return value

    @model_validator(mode="after")
    def headers_need_http(self) -> GbfsSpec:
        if self.headers and not (is_remote(self.url) or is_remote(self.feeds_base or "")):
            raise ValueError("headers apply to http:// and https:// URLs only")
        return self

    @property
    def tables(self) -> list[Table]:
        """The tables to fill, in loading order."""
        wanted = {TABLE_OF_FEED[name] for name in self.feeds} if self.feeds else set(TABLES)
        return [table for table in TABLES if table in wanted]


# -- the connector -------------------------------------------------------------------------------


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def _same_origin(a: str, b: str) -> bool:
    x, y = httpx.URL(a), httpx.URL(b)
    return (x.scheme, x.host, x.port) == (y.scheme, y.host, y.port)


def _time_or_none(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def next_due(kept: dict[str, Any]) -> datetime | None:
    """When a feed kept in the state can have changed: its ``last_updated`` plus ``ttl``.

    A publisher's clock running ahead would put that far in the future; the time we fetched it
    bounds it, so a wrong clock costs at most one ``ttl`` of staleness.
    """
    updated, fetched = (
        _time_or_none(kept.get("last_updated")),
        _time_or_none(kept.get("fetched_at")),
    )
    if updated is None:
        return None
    start = min(updated, fetched) if fetched is not None else updated
    return start + timedelta(seconds=int(kept.get("ttl") or 0))


class GbfsConnector(RemoteConnector[GbfsSpec]):
    """A GBFS system: one payload per feed file fetched, each filling its own table."""

    type_name = "gbfs"
    url_fields = ("url", "feeds_base")
    spec_model = GbfsSpec
    example = {"type": "gbfs", "url": "https://gbfs.bikes.example/gbfs.json", "language": "en"}

    def __init__(self, spec: GbfsSpec, config: ConnectorConfig, context: ConnectorContext):
        super().__init__(spec, config, context)
        self._state: dict[str, Any] = {}
        # Documents parsed in ``fetch`` (to read their envelope), kept for ``decode`` with the
        # payload itself, so that its id cannot be reused while the entry lives.
        self._parsed: dict[int, tuple[Payload, Table, dict[str, Any]]] = {}

    # -- fetching ------------------------------------------------------------------------------

    def fetch(self, state: dict[str, Any]) -> Iterator[Payload]:
        self._state = copy.deepcopy(state)
        self._parsed.clear()
        now = datetime.now(UTC)
        listed = self._discover(now)
        kept_feeds: dict[str, Any] = self._state.setdefault("feeds", {})
        for table in self.spec.tables:
            names = [n for n, t in TABLE_OF_FEED.items() if t == table and n in listed]
            if not names:
                if self.spec.feeds:
                    log.warning("%s lists no %s feed", mask(self.spec.url), table)
                continue
            kept = kept_feeds.get(table) or {}
            due = next_due(kept)
            if due is not None and due > now:
                log.debug("%s: not due before %s (ttl); not fetched", table, _iso(due))
                continue
            payload = self._fetch_feed(table, names[0], listed[names[0]], kept, now)
            if payload is not None:
                yield payload

    def _fetch_feed(
        self, table: Table, name: str, listed_url: str, kept: dict[str, Any], now: datetime
    ) -> Payload | None:
        content, url, media_type = self._read(self._location(name, listed_url))
        origin = mask(url)
        payload = Payload(
            content=content,
            origin=origin,
            format="json",
            state=copy.deepcopy(self._state),
            media_type=media_type,
            sha256=hashlib.sha256(content).hexdigest(),
        )
        try:
            document = parse_document(content, origin)
            published = last_updated(document, origin)
        except DecodeError:
            return payload  # ``decode`` raises: the payload is set aside, bytes kept
        previous = _time_or_none(kept.get("last_updated"))
        if previous is not None and published <= previous:
            level = logging.INFO if published == previous else logging.WARNING
            log.log(level, "%s: last_updated %s is not newer than %s; skipped",
                    origin, _iso(published), _iso(previous))  # fmt: skip
            return None
        self._state["feeds"][table] = {
            "last_updated": _iso(published),
            "ttl": ttl_seconds(document),
            "fetched_at": _iso(now),
        }
        payload.state = copy.deepcopy(self._state)
        self._parsed[id(payload)] = (payload, table, document)
        return payload

    def _discover(self, now: datetime) -> dict[str, str]:
        """Feed name → URL from ``gbfs.json``, or from the state while its ``ttl`` runs."""
        cached = self._state.get("discovery") or {}
        due = next_due(cached)
        if (
            cached.get("url") == mask(self.spec.url)
            and (self.spec.language is None or cached.get("language") == self.spec.language)
            and isinstance(cached.get("feeds"), dict)
            and due is not None
            and due > now
        ):
            return dict(cached["feeds"])
        content, url, _ = self._read(self.spec.url)
        origin = mask(url)
        try:
            document = parse_document(content, origin)
            published = last_updated(document, origin)
        except DecodeError as exc:
            raise FatalSourceError(f"not a GBFS auto-discovery file (gbfs.json): {exc}") from None
        language, listed = discovered_feeds(document, self.spec.language, origin)
        for name in sorted(set(listed) - set(TABLE_OF_FEED)):
            log.debug("%s: feed %s has no table here; not loaded", origin, name)
        feeds = {
            name: urljoin(url, link) if is_remote(url) else link
            for name, link in listed.items()
            if name in TABLE_OF_FEED
        }
        self._state.pop("discovery", None)
        if all(mask(link) == link for link in feeds.values()):
            # Kept only when no listed URL holds a secret: the state is stored in clear.
            self._state["discovery"] = {
                "url": mask(self.spec.url),
                "language": language,
                "feeds": feeds,
                "last_updated": _iso(published),
                "ttl": ttl_seconds(document),
                "fetched_at": _iso(now),
            }
        return feeds

    def _location(self, name: str, listed_url: str) -> str:
        """Where feed ``name`` is read: from ``feeds_base``, beside a local gbfs.json, or its URL."""
        base = self.spec.feeds_base
        if base is None and not is_remote(self.spec.url):
            # A local gbfs.json is a snapshot folder: its listed URLs are the publisher's.
            return str(self._path(self.spec.url).parent / f"{name}.json")
        if base is None:
            location = listed_url
        elif is_remote(base):
            parts = urlsplit(base)
            folder = parts._replace(path=parts.path.rstrip("/") + "/", query="").geturl()
            location = with_params(urljoin(folder, f"{name}.json"), query_params(base))
        else:
            return str(self._path(base) / f"{name}.json")
        if is_remote(location) and _same_origin(location, self.spec.url):
            # Parameters of the discovery URL (an API key) that a feed URL leaves out.
            present = query_params(location)
            missing = {k: v for k, v in query_params(self.spec.url).items() if k not in present}
            location = with_params(location, missing)
        return location

    def _path(self, location: str) -> Path:
        path = Path(unquote(urlsplit(location).path) if location.startswith("file:") else location)
        return path if path.is_absolute() else self.context.settings.project_dir / path

    def _read(self, location: str) -> tuple[bytes, str, str | None]:
        """A file's bytes, its URL or path (secrets not masked) and its media type."""
        if is_remote(location):
            response = self.client.get(location, headers=self._headers_for(location))
            return response.content, str(response.url), response.headers.get("Content-Type")
        path = self._path(location)
        try:
            return path.read_bytes(), str(path), None
        except FileNotFoundError:
            raise FatalSourceError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise FatalSourceError(f"{path}: is a folder, not a GBFS file") from None

    def _headers_for(self, url: str) -> dict[str, str]:
        configured = [u for u in (self.spec.url, self.spec.feeds_base) if u and is_remote(u)]
        if any(_same_origin(url, u) for u in configured):
            return dict(self.spec.headers)
        # A feed on another host gets no credentials, as browsers and httpx do on redirects.
        dropped = [name for name in self.spec.headers if SECRET_HEADER.search(name)]
        if dropped:
            log.warning("%s is on another host: not sending %s", mask(url), ", ".join(dropped))
        return {k: v for k, v in self.spec.headers.items() if k not in dropped}

    # -- decoding ------------------------------------------------------------------------------

    def decode(self, payload: Payload) -> Decoded:
        kept = self._parsed.pop(id(payload), None)
        if kept is not None and kept[0] is payload:
            _, table, document = kept
        else:
            document = parse_document(payload.content, payload.origin)
            found = table_of_document(document)
            if found is None:
                raise DecodeError(f"{payload.origin}: not a GBFS feed this connector loads")
            table = found
        return feed_decoded(table, document, payload.origin, self.spec.language)
