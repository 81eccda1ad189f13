"""GTFS-Realtime feeds built with the official bindings, and a loopback server that publishes them.

The feeds are plain data (``Vehicle``, ``Trip``, ``StopTime``, ``Alert``) turned into
``FeedMessage`` bytes by ``vehicle_positions_feed``, ``trip_updates_feed`` and ``alerts_feed``;
``fleet``, ``trips`` and ``alerts`` make deterministic examples. A test changes one vehicle with
``dataclasses.replace`` and serialises again, as a publisher's next snapshot would.

``GtfsRtServer`` serves the current bytes of each path on ``127.0.0.1`` at a random port, in a
background thread, counts requests per path and can demand a header.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.transit import gtfs_realtime_pb2 as rt

BASE_TIME = 1_714_550_400  # 2024-05-01T08:00:00Z, in POSIX seconds as GTFS-RT writes times


@dataclass(frozen=True)
class Vehicle:
    """One vehicle's position; ``None`` leaves the field out of the protobuf."""

    entity_id: str
    vehicle_id: str | None
    latitude: float
    longitude: float
    timestamp: int | None
    label: str | None = None
    trip_id: str | None = None
    route_id: str | None = None
    direction_id: int | None = None
    bearing: float | None = None
    speed: float | None = None
    stop_id: str | None = None
    current_stop_sequence: int | None = None
    current_status: str | None = None  # VehicleStopStatus name, e.g. STOPPED_AT
    occupancy_status: str | None = None  # OccupancyStatus name, e.g. FEW_SEATS_AVAILABLE


@dataclass(frozen=True)
class StopTime:
    stop_sequence: int | None
    stop_id: str | None
    arrival_time: int | None = None
    arrival_delay: int | None = None
    departure_time: int | None = None
    departure_delay: int | None = None
    schedule_relationship: str | None = None  # SCHEDULED, SKIPPED, NO_DATA


@dataclass(frozen=True)
class Trip:
    entity_id: str
    trip_id: str
    route_id: str | None
    timestamp: int | None
    stops: tuple[StopTime, ...] = ()
    start_date: str | None = None
    schedule_relationship: str | None = None  # SCHEDULED, CANCELED, ADDED
    vehicle_id: str | None = None
    delay: int | None = None


@dataclass(frozen=True)
class Informed:
    """An EntitySelector: which agency, route, trip or stop an alert is about."""

    agency_id: str | None = None
    route_id: str | None = None
    route_type: int | None = None
    trip_id: str | None = None
    stop_id: str | None = None


@dataclass(frozen=True)
class Alert:
    entity_id: str
    informed: tuple[Informed, ...] = ()
    periods: tuple[tuple[int | None, int | None], ...] = ()  # (start, end) in POSIX seconds
    cause: str | None = None  # Cause name, e.g. CONSTRUCTION
    effect: str | None = None  # Effect name, e.g. DETOUR
    header: dict[str, str] = field(default_factory=dict)  # language → text, in order
    description: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    severity_level: str | None = None  # SeverityLevel name, e.g. WARNING


# -- building FeedMessages -----------------------------------------------------------------------


def _set(message: Any, **values: Any) -> None:
    """Set the fields whose value is not None; enum fields take their names."""
    for name, value in values.items():
        if value is None:
            continue
        descriptor = message.DESCRIPTOR.fields_by_name[name]
        if descriptor.enum_type is not None and isinstance(value, str):
            value = descriptor.enum_type.values_by_name[value].number
        setattr(message, name, value)


def _message(timestamp: int | None) -> rt.FeedMessage:
    message = rt.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    message.header.incrementality = rt.FeedHeader.FULL_DATASET
    _set(message.header, timestamp=timestamp)
    return message


def _translate(target: Any, texts: dict[str, str]) -> None:
    for language, text in texts.items():
        translation = target.translation.add()
        translation.text = text
        if language:
            translation.language = language


def vehicle_positions_message(
    vehicles: list[Vehicle], timestamp: int | None = BASE_TIME
) -> rt.FeedMessage:
    message = _message(timestamp)
    for v in vehicles:
        entity = message.entity.add()
        entity.id = v.entity_id
        position = entity.vehicle
        if v.vehicle_id is not None or v.label is not None:
            _set(position.vehicle, id=v.vehicle_id, label=v.label)
        if v.trip_id is not None or v.route_id is not None:
            _set(position.trip, trip_id=v.trip_id, route_id=v.route_id, direction_id=v.direction_id)
        _set(
            position.position,
            latitude=v.latitude,
            longitude=v.longitude,
            bearing=v.bearing,
            speed=v.speed,
        )
        _set(
            position,
            timestamp=v.timestamp,
            stop_id=v.stop_id,
            current_stop_sequence=v.current_stop_sequence,
            current_status=v.current_status,
            occupancy_status=v.occupancy_status,
        )
    return message


def vehicle_positions_feed(vehicles: list[Vehicle], timestamp: int | None = BASE_TIME) -> bytes:
    return vehicle_positions_message(vehicles, timestamp).SerializeToString()


def trip_updates_message(trips_: list[Trip], timestamp: int | None = BASE_TIME) -> rt.FeedMessage:
    message = _message(timestamp)
    for t in trips_:
        entity = message.entity.add()
        entity.id = t.entity_id
        update = entity.trip_update
        _set(
            update.trip,
            trip_id=t.trip_id,
            route_id=t.route_id,
            start_date=t.start_date,
            schedule_relationship=t.schedule_relationship,
        )
        if t.vehicle_id is not None:
            update.vehicle.id = t.vehicle_id
        _set(update, timestamp=t.timestamp, delay=t.delay)
        for s in t.stops:
            stop = update.stop_time_update.add()
            _set(
                stop,
                stop_sequence=s.stop_sequence,
                stop_id=s.stop_id,
                schedule_relationship=s.schedule_relationship,
            )
            if s.arrival_time is not None or s.arrival_delay is not None:
                _set(stop.arrival, time=s.arrival_time, delay=s.arrival_delay)
            if s.departure_time is not None or s.departure_delay is not None:
                _set(stop.departure, time=s.departure_time, delay=s.departure_delay)
    return message


def trip_updates_feed(trips_: list[Trip], timestamp: int | None = BASE_TIME) -> bytes:
    return trip_updates_message(trips_, timestamp).SerializeToString()


def alerts_message(alerts_: list[Alert], timestamp: int | None = BASE_TIME) -> rt.FeedMessage:
    message = _message(timestamp)
    for a in alerts_:
        entity = message.entity.add()
        entity.id = a.entity_id
        alert = entity.alert
        for informed in a.informed:
            selector = alert.informed_entity.add()
            _set(
                selector,
                agency_id=informed.agency_id,
                route_id=informed.route_id,
                route_type=informed.route_type,
                stop_id=informed.stop_id,
            )
            if informed.trip_id is not None:
                selector.trip.trip_id = informed.trip_id
        for start, end in a.periods:
            _set(alert.active_period.add(), start=start, end=end)
        _set(alert, cause=a.cause, effect=a.effect, severity_level=a.severity_level)
        _translate(alert.header_text, a.header)
        _translate(alert.description_text, a.description)
        if a.url is not None:
            _translate(alert.url, {"": a.url})
    return message


def alerts_feed(alerts_: list[Alert], timestamp: int | None = BASE_TIME) -> bytes:
    return alerts_message(alerts_, timestamp).SerializeToString()


def mixed_feed(
    vehicles: list[Vehicle], trips_: list[Trip], alerts_: list[Alert], timestamp: int = BASE_TIME
) -> bytes:
    """One FeedMessage holding alerts, then trip updates, then vehicles (as some agencies do)."""
    message = _message(timestamp)
    for part in (
        alerts_message(alerts_, timestamp),
        trip_updates_message(trips_, timestamp),
        vehicle_positions_message(vehicles, timestamp),
    ):
        message.entity.extend(part.entity)
    return message.SerializeToString()


# -- deterministic examples ----------------------------------------------------------------------


def fleet(count: int, at: int = BASE_TIME) -> list[Vehicle]:
    """``count`` buses on three routes; bus ``n`` reported ``n % 30`` seconds before ``at``.

    Every third bus leaves its label out, every fourth its speed, every fifth its trip.
    """
    statuses = ("IN_TRANSIT_TO", "STOPPED_AT", "INCOMING_AT")
    return [
        Vehicle(
            entity_id=f"veh-{n:03d}",
            vehicle_id=f"bus-{n:03d}",
            label=None if n % 3 == 0 else f"Bus {n}",
            latitude=59.9 + n / 1000,
            longitude=10.75 - n / 1000,
            timestamp=at - n % 30,
            trip_id=None if n % 5 == 0 else f"trip-{n:03d}",
            route_id=None if n % 5 == 0 else f"R{n % 3 + 1}",
            direction_id=None if n % 5 == 0 else n % 2,
            bearing=float(n * 10 % 360),
            speed=None if n % 4 == 0 else 8.5 + n % 5,
            stop_id=f"stop-{n % 7}",
            current_stop_sequence=n % 12 + 1,
            current_status=statuses[n % 3],
            occupancy_status="FEW_SEATS_AVAILABLE" if n % 2 else None,
        )
        for n in range(1, count + 1)
    ]


def trips(count: int, stops_per_trip: int = 4, at: int = BASE_TIME) -> list[Trip]:
    """``count`` trips with ``stops_per_trip`` stop time updates each, then one cancelled trip
    without any (``count * stops_per_trip + 1`` rows)."""
    made = [
        Trip(
            entity_id=f"tu-{n:03d}",
            trip_id=f"trip-{n:03d}",
            route_id=f"R{n % 3 + 1}",
            timestamp=at - 5,
            start_date="20240501",
            schedule_relationship="SCHEDULED",
            vehicle_id=f"bus-{n:03d}",
            stops=tuple(
                StopTime(
                    stop_sequence=k + 1,
                    stop_id=f"stop-{k}",
                    arrival_time=None if k == 0 else at + 120 * k + n,
                    arrival_delay=None if k == 0 else n * 10,
                    departure_time=at + 120 * k + n + 20,
                    schedule_relationship="SKIPPED" if (n, k) == (2, 1) else "SCHEDULED",
                )
                for k in range(stops_per_trip)
            ),
        )
        for n in range(1, count + 1)
    ]
    made.append(
        Trip(
            entity_id="tu-cancelled",
            trip_id="trip-999",
            route_id="R1",
            timestamp=None,  # falls back to the header's time
            schedule_relationship="CANCELED",
            delay=None,
        )
    )
    return made


def alerts(at: int = BASE_TIME) -> list[Alert]:
    """Three alerts: 3 informed entities × 2 periods, 1 × (no period), and (none) × 1 = 8 rows."""
    return [
        Alert(
            entity_id="alert-roadworks",
            informed=(
                Informed(agency_id="city-transit", route_id="R1"),
                Informed(route_id="R2", route_type=3),
                Informed(stop_id="stop-3", trip_id="trip-002"),
            ),
            periods=((at, at + 3600), (at + 86_400, None)),
            cause="CONSTRUCTION",
            effect="DETOUR",
            header={"en": "Detour on Main Street", "nb": "Omkjøring i Storgata"},
            description={"en": "Buses skip stop 3 during roadworks."},
            url="https://transit.example/alerts/roadworks",
            severity_level="WARNING",
        ),
        Alert(
            entity_id="alert-lift",
            informed=(Informed(stop_id="stop-5"),),
            effect="ACCESSIBILITY_ISSUE",
            header={"": "Lift out of service"},
        ),
        Alert(entity_id="alert-bare", periods=((at - 60, at + 60),)),
    ]


# -- serving -------------------------------------------------------------------------------------


class GtfsRtServer:
    """Serves ``feeds[path]`` as ``application/x-protobuf``; use as a context manager.

    ``require_header`` is a ``(name, value)`` pair answered with 401 when missing; a path not in
    ``feeds`` is a 404. ``hits`` counts the requests to each path.
    """

    def __init__(self, feeds: dict[str, bytes] | None = None):
        self.feeds: dict[str, bytes] = dict(feeds or {})
        self.require_header: tuple[str, str] | None = None
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="gtfs-rt-server",
            daemon=True,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def publish(self, path: str, content: bytes) -> None:
        with self._lock:
            self.feeds[path] = content

    def __enter__(self) -> GtfsRtServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, path: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        with self._lock:
            self.hits[path] += 1
            content = self.feeds.get(path)
        if self.require_header is not None:
            name, value = self.require_header
            if headers.get(name.lower()) != value:
                return 401, "text/plain", b"unauthorized"
        if content is None:
            return 404, "text/plain", f"no feed at {path}".encode()
        return 200, "application/x-protobuf", content

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, media_type, body = server._answer(self.path.split("?", 1)[0], headers)
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
