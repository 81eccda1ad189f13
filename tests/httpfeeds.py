"""A small HTTP API on loopback for connector tests: a dataset paged four ways, failures on demand.

``FeedServer`` serves a generated dataset (or recorded records, e.g. an Open311 response) on
``127.0.0.1`` at a random port, in a background thread, and records every request it answers.

Routes (every one filters by the ``since`` parameter, ``time_field >= since``):

==================  ===========================================================================
``/all``            every record, a JSON list
``/next``           ``{"data": [...], "links": {"next": "/next?cursor=100"}}``; ``next`` is null
                    on the last page; ``per_page`` sets the page size
``/link``           a JSON list with ``Link: <…?page=2&per_page=100>; rel="next"``
``/page``           ``{"items": [...]}`` for ``?page=N&size=M`` (pages from 1)
``/offset``         a JSON list for ``?offset=N&limit=M``
``/csv``            every record as CSV (``text/csv``); ``/jsonl`` as JSON Lines
``/html``           a 200 HTML page: not JSON
``/loop``           a page whose next link is itself
``/slow``           every record, after ``?delay=`` seconds
``/status/<code>``  that status, with a short text body (none for 204)
==================  ===========================================================================

Knobs, settable between requests: ``fail_first`` (answer that many requests with 503),
``rate_limit_once`` (answer the next request with 429 and ``Retry-After: 1``), ``require_header``
(a ``(name, value)`` pair; 401 without it) and ``next_host`` (``/next`` links point to that
``host:port`` instead of a relative URL).
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

BASE_TIME = datetime(2024, 5, 1, tzinfo=UTC)


def generated_records(count: int, first_id: int = 1) -> list[dict[str, Any]]:
    """``{id, name, value, updated_at}`` records; record ``n`` was updated ``n`` minutes after BASE_TIME."""
    return [
        {
            "id": n,
            "name": f"sensor-{n:04d}",
            "value": round(n * 0.5, 1),
            "updated_at": (BASE_TIME + timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
        }
        for n in range(first_id, first_id + count)
    ]


def parse_time(text: str) -> datetime:
    """ISO 8601 or epoch seconds, as an aware datetime (naive means UTC)."""
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Hit:
    """One request as the server saw it."""

    at: float  # time.monotonic()
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int


class FeedServer:
    """The API; use as a context manager, or ``start()`` and ``stop()``."""

    def __init__(
        self,
        records: list[dict[str, Any]] | None = None,
        count: int = 250,
        page_size: int = 100,
        time_field: str = "updated_at",
        since_param: str = "since",
    ):
        self.records = list(records) if records is not None else generated_records(count)
        self.page_size = page_size
        self.time_field = time_field
        self.since_param = since_param
        self.fail_first = 0
        self.rate_limit_once = False
        self.require_header: tuple[str, str] | None = None
        self.next_host: str | None = None
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval: ``shutdown`` waits for the loop's next poll (0.5 s by default).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="feed-server",
            daemon=True,
        )

    # -- life cycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, **query: Any) -> str:
        return self.base_url + path + (f"?{urlencode(query)}" if query else "")

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- data ----------------------------------------------------------------------------------

    def add_records(self, count: int) -> list[dict[str, Any]]:
        """Append ``count`` new generated records, updated after every existing one."""
        with self._lock:
            first = max((int(r["id"]) for r in self.records), default=0) + 1
            new = generated_records(count, first_id=first)
            self.records.extend(new)
        return new

    def hits_to(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]

    def _selected(self, query: dict[str, str]) -> list[dict[str, Any]]:
        with self._lock:
            records = list(self.records)
        since = query.get(self.since_param)
        if since is None:
            return records
        bound = parse_time(since)
        return [
            r
            for r in records
            if r.get(self.time_field) and parse_time(str(r[self.time_field])) >= bound
        ]

    # -- answering -----------------------------------------------------------------------------

    def _answer(
        self, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                return 503, {"Content-Type": "text/plain"}, b"temporarily unavailable"
            if self.rate_limit_once:
                self.rate_limit_once = False
                return 429, {"Retry-After": "1", "Content-Type": "text/plain"}, b"slow down"
        if self.require_header is not None:
            name, value = self.require_header
            if headers.get(name.lower()) != value:
                return 401, {"Content-Type": "application/json"}, b'{"error": "unauthorized"}'
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            return (
                status,
                {"Content-Type": "text/plain"},
                b"" if status in (204, 304) else b"as requested",
            )
        records = self._selected(query)
        if path == "/all":
            return _json(records)
        if path == "/slow":
            time.sleep(float(query.get("delay", "1")))
            return _json(records)
        if path == "/next":
            start = int(query.get("cursor", "0"))
            size = int(query.get("per_page", str(self.page_size)))
            end = start + size
            link = None
            if end < len(records):
                link = f"/next?{urlencode({'cursor': end, 'per_page': size})}"
                if self.next_host:
                    link = f"http://{self.next_host}{link}"
            return _json({"data": records[start:end], "links": {"next": link}})
        if path == "/link":
            page = int(query.get("page", "1"))
            size = int(query.get("per_page", str(self.page_size)))
            start = (page - 1) * size
            status, extra, body = _json(records[start : start + size])
            if start + size < len(records):
                following = urlencode({**query, "page": page + 1})
                extra["Link"] = (
                    f'<{self.base_url}/link?{following}>; rel="next", <{self.base_url}/link>; rel="first"'
                )
            return status, extra, body
        if path == "/page":
            page = int(query.get("page", "1"))
            size = int(query.get("size", str(self.page_size)))
            start = (page - 1) * size
            return _json({"items": records[start : start + size], "page": page})
        if path == "/offset":
            offset = int(query.get("offset", "0"))
            limit = int(query.get("limit", str(self.page_size)))
            return _json(records[offset : offset + limit])
        if path == "/loop":
            return _json({"data": records[:1], "links": {"next": "/loop"}})
        if path == "/csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=list(records[0]) if records else ["id"])
            writer.writeheader()
            writer.writerows(records)
            return 200, {"Content-Type": "text/csv; charset=utf-8"}, out.getvalue().encode()
        if path == "/jsonl":
            lines = "".join(json.dumps(r) + "\n" for r in records)
            return 200, {"Content-Type": "application/x-ndjson"}, lines.encode()
        if path == "/html":
            return (
                200,
                {"Content-Type": "text/html"},
                b"<html><body>Maintenance tonight</body></html>",
            )
        return 404, {"Content-Type": "text/plain"}, f"no route {path}".encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                arrived = time.monotonic()
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra, body = feed._answer(parts.path, query, headers)
                with feed._lock:
                    feed.hits.append(Hit(arrived, parts.path, query, headers, status))
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean; ``feed.hits`` has every request

        return Handler


def _json(document: Any) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(document).encode()
