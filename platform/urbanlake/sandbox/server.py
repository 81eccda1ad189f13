"""The sandbox's HTTP server: the city's feeds at fixed paths, with switchable faults.

``SandboxServer(seed=..., clock=...)`` serves on 127.0.0.1 (port 0 picks a free one) in a
background thread. Every answer is computed from the city and ``clock()`` at request time, so a
test that moves its clock sees vehicles move. Faults are switched on for the whole server
(``faults={"http503": 3, "truncated_pb": 0}``) or for one request (``?fault=truncated_pb``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from urbanlake.sandbox import feeds
from urbanlake.sandbox.city import DEFAULT_SEED, City

FAULTS = {
    "http503": "answer 503 Service Unavailable (for the next N requests when set on the server)",
    "truncated_pb": "cut GTFS-Realtime protobufs in the middle of a message",
    "duplicate_entities": "repeat every GTFS-RT entity, GBFS station status and speed record",
    "impossible_position": "put a vehicle at latitude 91 and one in the North Sea",
}
DEFAULT_503_COUNT = 3
PATHS = {
    "/gtfs/schedule.zip": "GTFS Schedule zip",
    "/gtfs-rt/vehicle-positions.pb": "GTFS-Realtime vehicle positions",
    "/gtfs-rt/trip-updates.pb": "GTFS-Realtime trip updates",
    "/gtfs-rt/alerts.pb": "GTFS-Realtime service alerts",
    "/gbfs/2.3/gbfs.json": "GBFS 2.3 auto-discovery",
    "/gbfs/3.0/gbfs.json": "GBFS 3.0 auto-discovery",
    "/traffic/speeds.json": "road-segment speeds",
}


def parse_faults(specs: Iterable[str]) -> dict[str, int]:
    """``["http503:2", "truncated_pb"]`` → ``{"http503": 2, "truncated_pb": 0}``.

    The number counts requests for ``http503`` (default 3); other faults stay on.
    """
    faults: dict[str, int] = {}
    for spec in specs:
        name, _, count = spec.partition(":")
        if name not in FAULTS:
            raise ValueError(f"unknown fault '{name}'; known: {', '.join(FAULTS)}")
        if count and not count.isdigit():
            raise ValueError(f"fault '{spec}': the count after ':' must be a whole number")
        faults[name] = int(count) if count else (DEFAULT_503_COUNT if name == "http503" else 0)
    return faults


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SandboxServer:
    """The sandbox city on ``host``:``port``; use as a context manager or ``start``/``stop``."""

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        clock: Callable[[], datetime] = _utc_now,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: dict[str, int] | None = None,
    ):
        self.city = City.build(seed)
        self.clock = clock
        self.faults: dict[str, int] = dict(faults or {})
        self.requests = 0
        self._lock = threading.Lock()
        self._schedule = feeds.schedule_zip(self.city)  # the timetable does not move with time
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="urbanlake-sandbox",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SandboxServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's way)."""
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_fault(self, name: str, count: int = 0) -> None:
        """Switch a fault on for the server (``count``: requests, for ``http503``)."""
        self.faults.update(parse_faults([f"{name}:{count}" if count else name]))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _active_faults(self, requested: list[str]) -> set[str]:
        """The faults for this request; takes one from a server-wide ``http503`` count."""
        active = set(parse_faults(requested))
        with self._lock:
            self.requests += 1
            for name, count in list(self.faults.items()):
                if name == "http503":
                    if count > 0:
                        active.add(name)
                        self.faults[name] = count - 1
                    if self.faults[name] <= 0:
                        del self.faults[name]
                else:
                    active.add(name)
        return active

    def respond(self, path: str, query: dict[str, list[str]], host: str) -> tuple[int, bytes, str]:
        """Status, body and media type for one GET (the handler's logic, callable without HTTP)."""
        requested = [f for value in query.get("fault", []) for f in value.split(",") if f]
        try:
            active = self._active_faults(requested)
        except ValueError as exc:
            return _json(400, {"error": {"type": "bad_request", "message": str(exc)}})
        if "http503" in active:
            return _json(
                503, {"error": {"type": "unavailable", "message": "sandbox fault http503"}}
            )
        now = self.clock()
        city = self.city
        duplicate = "duplicate_entities" in active
        impossible = "impossible_position" in active
        pb = "application/x-protobuf"
        body: bytes
        if path == "/gtfs/schedule.zip":
            return 200, self._schedule, "application/zip"
        if path == "/gtfs-rt/vehicle-positions.pb":
            body = feeds.vehicle_positions(city, now, duplicate, impossible)
        elif path == "/gtfs-rt/trip-updates.pb":
            body = feeds.trip_updates(city, now, duplicate)
        elif path == "/gtfs-rt/alerts.pb":
            body = feeds.alerts(city, now, duplicate)
        elif path.startswith("/gbfs/") and path.count("/") == 3:
            _, _, version, name = path.split("/")
            if version not in feeds.GBFS_FEEDS:
                return _json(404, {"error": {"type": "not_found", "message": f"no GBFS {version}"}})
            base = f"http://{host}/gbfs/{version}"
            documents = feeds.gbfs_documents(city, now, version, base, duplicate, impossible)
            if name not in documents:
                return _json(404, {"error": {"type": "not_found", "message": f"no feed {name}"}})
            return _json(200, documents[name])
        elif path == "/traffic/speeds.json":
            return _json(200, feeds.traffic_speeds(city, now, duplicate))
        elif path in ("/", ""):
            return _json(200, {"city": "Fjordvik", "seed": city.seed, "feeds": PATHS,
                               "faults": FAULTS})  # fmt: skip
        else:
            return _json(404, {"error": {"type": "not_found", "message": f"no feed at {path}"}})
        if "truncated_pb" in active:
            body = feeds.truncate(body)
        return 200, body, pb

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                host = self.headers.get("Host") or sandbox.url.removeprefix("http://")
                status, body, media_type = sandbox.respond(url.path, parse_qs(url.query), host)
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                if status == 503:
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _json(status: int, document: Any) -> tuple[int, bytes, str]:
    return status, json.dumps(document, ensure_ascii=False).encode(), "application/json"
