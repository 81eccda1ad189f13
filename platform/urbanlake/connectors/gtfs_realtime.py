"""``gtfs_realtime``: GTFS-Realtime vehicle positions, trip updates or alerts, one snapshot per poll.

Each fetch is one payload: the protobuf bytes as received, from an HTTP(S) URL (through the shared
retrying client) or a file. They become rows of one of three fixed Arrow schemas, one per feed
type, declared here (and to the lake, so that no type is guessed from the first values) so that an
empty feed or a publisher that leaves optional fields out yields the same columns and types.
Absent optional fields are null (never 0 or ""). The state remembers
the feed header's timestamp, so polling a feed that has not been republished costs one request
and commits nothing; rows seen before are dropped by the table's primary key.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import pyarrow as pa
from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message
from google.transit import gtfs_realtime_pb2 as rt
from pydantic import Field, model_validator

from urbanlake.connectors.base import (
    ConnectorContext,
    Decoded,
    Payload,
    TablePart,
)
from urbanlake.connectors.remote import (
    RemoteConnector,
    RemoteSpecChecks,
    is_remote,
)
from urbanlake.core.errors import (
    BadRecord,
    DecodeError,
)
from urbanlake.core.spec import ConnectorConfig

log = logging.getLogger(__name__)

FeedType = Literal["vehicle_positions", "trip_updates", "alerts"]
FEED_TYPES: tuple[FeedType, ...] = ("vehicle_positions", "trip_updates", "alerts")
# Which FeedEntity field holds each feed type's message.
ENTITY_FIELD: dict[FeedType, str] = {
    "vehicle_positions": "vehicle",
    "trip_updates": "trip_update",
    "alerts": "alert",
}
# Keys that drop a re-polled snapshot's rows and never hold null (the lake quarantines a row
# with a null key); the docs recommend them, a test keeps the two in step.
RECOMMENDED_PRIMARY_KEYS: dict[FeedType, list[str]] = {
    "vehicle_positions": ["entity_id", "timestamp"],
    "trip_updates": ["entity_id", "timestamp", "stop_time_update_index"],
    "alerts": ["entity_id", "informed_entity_index", "active_period_index"],
}
RECOMMENDED_EVENT_TIME: dict[FeedType, str] = {
    "vehicle_positions": "timestamp",
    "trip_updates": "timestamp",
    "alerts": "feed_timestamp",
}
GZIP_MAGIC = b"\x1f\x8b"
# GTFS-RT times are POSIX seconds; beyond 9999-12-31 a value is milliseconds or garbage.
MAX_POSIX_SECONDS = 253_402_300_799

TIME = pa.timestamp("us", tz="UTC")
TEXT, INT32, INT64, FLOAT = pa.string(), pa.int32(), pa.int64(), pa.float64()

SCHEMAS: dict[FeedType, pa.Schema] = {
    "vehicle_positions": pa.schema(
        [
            ("entity_id", TEXT), ("vehicle_id", TEXT), ("vehicle_label", TEXT),
            ("license_plate", TEXT), ("trip_id", TEXT), ("route_id", TEXT),
            ("direction_id", INT64), ("start_date", TEXT), ("start_time", TEXT),
            ("schedule_relationship", TEXT), ("latitude", FLOAT), ("longitude", FLOAT),
            ("bearing", FLOAT), ("speed", FLOAT), ("odometer", FLOAT),
            ("current_stop_sequence", INT64), ("stop_id", TEXT), ("current_status", TEXT),
            ("congestion_level", TEXT), ("occupancy_status", TEXT),
            ("occupancy_percentage", INT64), ("timestamp", TIME), ("feed_timestamp", TIME),
        ]
    ),
    "trip_updates": pa.schema(
        [
            ("entity_id", TEXT), ("trip_id", TEXT), ("route_id", TEXT), ("direction_id", INT64),
            ("start_date", TEXT), ("start_time", TEXT), ("trip_schedule_relationship", TEXT),
            ("vehicle_id", TEXT), ("vehicle_label", TEXT), ("stop_time_update_index", INT32),
            ("stop_sequence", INT64), ("stop_id", TEXT), ("arrival_delay", INT32),
            ("arrival_time", TIME), ("departure_delay", INT32), ("departure_time", TIME),
            ("stop_schedule_relationship", TEXT), ("timestamp", TIME), ("feed_timestamp", TIME),
            ("delay", INT32),
        ]
    ),
    "alerts": pa.schema(
        [
            ("entity_id", TEXT), ("informed_entity_index", INT32), ("agency_id", TEXT),
            ("route_id", TEXT), ("route_type", INT32), ("trip_id", TEXT), ("stop_id", TEXT),
            ("active_period_index", INT32), ("active_start", TIME), ("active_end", TIME),
            ("cause", TEXT), ("effect", TEXT), ("header_text", TEXT),
            ("header_text_translations", TEXT), ("description_text", TEXT), ("url", TEXT),
            ("severity_level", TEXT), ("feed_timestamp", TIME),
        ]
    ),
}  # fmt: skip
SQL_TYPES = {
    TEXT: "VARCHAR",
    INT32: "INTEGER",
    INT64: "BIGINT",
    FLOAT: "DOUBLE",
    TIME: "TIMESTAMPTZ",
}


def declared_types(feed_type: FeedType) -> dict[str, str]:
    """SQL types of a feed type's columns, so that the lake types them as declared rather than by
    their first values (Caltrain's trip_id "124" is text, not a number)."""
    return {f.name: SQL_TYPES[f.type] for f in SCHEMAS[feed_type]}


# -- the spec ------------------------------------------------------------------------------------


class GtfsRealtimeSpec(RemoteSpecChecks):
    type: Literal["gtfs_realtime"] = "gtfs_realtime"
    url: str = Field(
        description="http(s):// URL, file:// URL or a path relative to the project; "
        "may hold ${ENV} references"
    )
    feed_type: Literal["vehicle_positions", "trip_updates", "alerts", "auto"] = Field(
        default="auto",
        description="auto: from the first entity holding a vehicle, trip_update or alert",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="request headers for http(s) URLs; secrets as ${ENV}"
    )

    @model_validator(mode="after")
    def headers_need_http(self) -> GtfsRealtimeSpec:
        if self.headers and not is_remote(self.url):
            raise ValueError("headers apply to http:// and https:// URLs only")
        return self


# -- reading protobuf ----------------------------------------------------------------------------


def parse_feed(content: bytes, origin: str) -> rt.FeedMessage:
    """The ``FeedMessage`` in ``content`` (gzip is unpacked); ``DecodeError`` if it is not one."""
    if content[:2] == GZIP_MAGIC:  # cannot start a FeedMessage: field 3, wire type 7 is invalid
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError) as exc:
            raise DecodeError(f"{origin}: broken gzip data: {exc}") from None
    message = rt.FeedMessage()
    try:
        message.ParseFromString(content)
    except ProtobufDecodeError:
        raise DecodeError(
            f"{origin}: not a GTFS-Realtime feed: {len(content)} bytes that do not parse as a "
            "protobuf FeedMessage (truncated, or not protobuf at all)"
        ) from None
    if not message.HasField("header"):
        what = "an empty body" if not content else "protobuf of another kind, or garbage"
        raise DecodeError(
            f"{origin}: not a GTFS-Realtime feed: no FeedHeader in {len(content)} bytes ({what})"
        )
    return message


def detect_feed_type(message: rt.FeedMessage) -> FeedType | None:
    """The type of the first entity that holds a vehicle, trip update or alert."""
    for entity in message.entity:
        for kind, name in ENTITY_FIELD.items():
            if entity.HasField(name):
                return kind
    return None


class BadTime(ValueError):
    """A time field that is not POSIX seconds: its entity is quarantined with this reason."""


def micros(seconds: int | None, where: str) -> int | None:
    """POSIX seconds as microseconds for a ``timestamp[us, UTC]`` column."""
    if seconds is None:
        return None
    if not 0 <= seconds <= MAX_POSIX_SECONDS:
        hint = " (milliseconds?)" if seconds > MAX_POSIX_SECONDS else ""
        raise BadTime(f"{where} {seconds} is not a time in POSIX seconds{hint}")
    return seconds * 1_000_000


def shortest_float32(value: float) -> float:
    """A float32 field as the shortest decimal that reads back as the same float32.

    Protobuf hands float32 values over as doubles (37.370460510253906); the publisher meant
    37.37046, and that double still converts back to the exact float32 sent.
    """
    if not math.isfinite(value):
        return value
    for digits in range(6, 10):
        short = float(f"{value:.{digits}g}")
        try:
            if struct.unpack("f", struct.pack("f", short))[0] == value:
                return short
        except OverflowError:
            continue
    return value


def _present(message: Message | None, name: str) -> bool:
    return message is not None and message.HasField(name)


def _sub(message: Message | None, name: str) -> Any:
    """A sub-message, or None when absent: its fields then read as null."""
    return getattr(message, name) if _present(message, name) else None


def _text(message: Message | None, name: str) -> str | None:
    # Publishers fill optional strings with "" (Caltrain's label and license_plate): also null.
    value = getattr(message, name) if _present(message, name) else None
    return value or None


def _number(message: Message | None, name: str) -> Any:
    return getattr(message, name) if _present(message, name) else None


def _float32(message: Message | None, name: str) -> float | None:
    return shortest_float32(getattr(message, name)) if _present(message, name) else None


def _enum(message: Message | None, name: str) -> str | None:
    if message is None or not message.HasField(name):
        return None
    number = getattr(message, name)
    value = message.DESCRIPTOR.fields_by_name[name].enum_type.values_by_number.get(number)
    return value.name if value is not None else str(number)


def _first_translation(text: Message | None) -> str | None:
    if text is None or not text.translation:
        return None
    return str(text.translation[0].text) or None


def _translations_json(text: Message | None) -> str | None:
    if text is None or not text.translation:
        return None
    by_language: dict[str, str] = {}
    for translation in text.translation:
        by_language.setdefault(translation.language, translation.text)
    return orjson.dumps(by_language).decode()


def _trip_columns(trip: Message | None, relationship: str) -> dict[str, Any]:
    return {
        "trip_id": _text(trip, "trip_id"),
        "route_id": _text(trip, "route_id"),
        "direction_id": _number(trip, "direction_id"),
        "start_date": _text(trip, "start_date"),
        "start_time": _text(trip, "start_time"),
        relationship: _enum(trip, "schedule_relationship"),
    }


@dataclass
class Rows:
    """Rows for one feed type's schema, and the entities that could not become rows."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)

    def add(self, entity: rt.FeedEntity, build: Callable[[], list[dict[str, Any]]]) -> None:
        try:
            self.rows.extend(build())
        except BadTime as exc:
            raw = json_format.MessageToJson(entity, indent=None, preserving_proto_field_name=True)
            self.bad.append(BadRecord(raw=raw, reason=f"entity {entity.id}: {exc}"))


def vehicle_position_rows(message: rt.FeedMessage) -> Rows:
    header_time = _number(message.header, "timestamp")
    out = Rows()
    for entity in message.entity:
        if not entity.HasField("vehicle"):
            continue

        def build(entity: rt.FeedEntity = entity) -> list[dict[str, Any]]:
            vehicle = entity.vehicle
            descriptor, position = _sub(vehicle, "vehicle"), _sub(vehicle, "position")
            when = _number(vehicle, "timestamp")
            return [
                {
                    "entity_id": entity.id or None,
                    "vehicle_id": _text(descriptor, "id"),
                    "vehicle_label": _text(descriptor, "label"),
                    "license_plate": _text(descriptor, "license_plate"),
                    **_trip_columns(_sub(vehicle, "trip"), "schedule_relationship"),
                    "latitude": _float32(position, "latitude"),
                    "longitude": _float32(position, "longitude"),
                    "bearing": _float32(position, "bearing"),
                    "speed": _float32(position, "speed"),
                    "odometer": _number(position, "odometer"),
                    "current_stop_sequence": _number(vehicle, "current_stop_sequence"),
                    "stop_id": _text(vehicle, "stop_id"),
                    "current_status": _enum(vehicle, "current_status"),
                    "congestion_level": _enum(vehicle, "congestion_level"),
                    "occupancy_status": _enum(vehicle, "occupancy_status"),
                    "occupancy_percentage": _number(vehicle, "occupancy_percentage"),
                    "timestamp": micros(
                        when if when is not None else header_time, "vehicle.timestamp"
                    ),
                    "feed_timestamp": micros(header_time, "header.timestamp"),
                }
            ]

        out.add(entity, build)
    return out


def trip_update_rows(message: rt.FeedMessage) -> Rows:
    header_time = _number(message.header, "timestamp")
    out = Rows()
    for entity in message.entity:
        if not entity.HasField("trip_update"):
            continue

        def build(entity: rt.FeedEntity = entity) -> list[dict[str, Any]]:
            update = entity.trip_update
            descriptor = _sub(update, "vehicle")
            when = _number(update, "timestamp")
            trip = {
                "entity_id": entity.id or None,
                **_trip_columns(_sub(update, "trip"), "trip_schedule_relationship"),
                "vehicle_id": _text(descriptor, "id"),
                "vehicle_label": _text(descriptor, "label"),
            }
            tail = {
                "timestamp": micros(
                    when if when is not None else header_time, "trip_update.timestamp"
                ),
                "feed_timestamp": micros(header_time, "header.timestamp"),
                "delay": _number(update, "delay"),
            }
            if not update.stop_time_update:
                # A cancelled trip often has no stop times: still one row, stop fields null.
                return [{**trip, "stop_time_update_index": 0, **tail}]
            rows = []
            for index, stop in enumerate(update.stop_time_update):
                arrival, departure = _sub(stop, "arrival"), _sub(stop, "departure")
                rows.append(
                    {
                        **trip,
                        "stop_time_update_index": index,
                        "stop_sequence": _number(stop, "stop_sequence"),
                        "stop_id": _text(stop, "stop_id"),
                        "arrival_delay": _number(arrival, "delay"),
                        "arrival_time": micros(_number(arrival, "time"), "arrival.time"),
                        "departure_delay": _number(departure, "delay"),
                        "departure_time": micros(_number(departure, "time"), "departure.time"),
                        "stop_schedule_relationship": _enum(stop, "schedule_relationship"),
                        **tail,
                    }
                )
            return rows

        out.add(entity, build)
    return out


def alert_rows(message: rt.FeedMessage) -> Rows:
    feed_time = micros(_number(message.header, "timestamp"), "header.timestamp")
    out = Rows()
    for entity in message.entity:
        if not entity.HasField("alert"):
            continue

        def build(entity: rt.FeedEntity = entity) -> list[dict[str, Any]]:
            alert = entity.alert
            header_text = _sub(alert, "header_text")
            common = {
                "cause": _enum(alert, "cause"),
                "effect": _enum(alert, "effect"),
                "header_text": _first_translation(header_text),
                "header_text_translations": _translations_json(header_text),
                "description_text": _first_translation(_sub(alert, "description_text")),
                "url": _first_translation(_sub(alert, "url")),
                "severity_level": _enum(alert, "severity_level"),
                "feed_timestamp": feed_time,
            }
            # A missing list counts as one null element, so every alert gives at least one row.
            informed: list[Any] = list(alert.informed_entity) or [None]
            periods: list[Any] = list(alert.active_period) or [None]
            rows = []
            for i, selector in enumerate(informed):
                for p, period in enumerate(periods):
                    rows.append(
                        {
                            "entity_id": entity.id or None,
                            "informed_entity_index": i,
                            "agency_id": _text(selector, "agency_id"),
                            "route_id": _text(selector, "route_id"),
                            "route_type": _number(selector, "route_type"),
                            "trip_id": _text(_sub(selector, "trip"), "trip_id"),
                            "stop_id": _text(selector, "stop_id"),
                            "active_period_index": p,
                            "active_start": micros(_number(period, "start"), "active_period.start"),
                            "active_end": micros(_number(period, "end"), "active_period.end"),
                            **common,
                        }
                    )
            return rows

        out.add(entity, build)
    return out


ROW_BUILDERS: dict[FeedType, Callable[[rt.FeedMessage], Rows]] = {
    "vehicle_positions": vehicle_position_rows,
    "trip_updates": trip_update_rows,
    "alerts": alert_rows,
}


def feed_table(message: rt.FeedMessage, feed_type: FeedType, origin: str) -> Decoded:
    """One feed type's rows of ``message`` in that type's schema; other entities are ignored."""
    header_time = _number(message.header, "timestamp")
    try:
        micros(header_time, "header.timestamp")
    except BadTime as exc:
        raise DecodeError(f"{origin}: {exc}") from None
    built = ROW_BUILDERS[feed_type](message)
    if message.entity and not built.rows and not built.bad:
        log.warning(
            "%s: none of its %d entities has the `%s` field: is feed_type %s right?",
            origin, len(message.entity), ENTITY_FIELD[feed_type], feed_type,
        )  # fmt: skip
    table = pa.Table.from_pylist(built.rows, schema=SCHEMAS[feed_type])
    return Decoded(table=table, bad_records=built.bad)


# -- the connector -------------------------------------------------------------------------------


class GtfsRealtimeConnector(RemoteConnector[GtfsRealtimeSpec]):
    """A GTFS-Realtime feed: one payload per poll, skipped when its header time has not moved."""

    type_name = "gtfs_realtime"
    spec_model = GtfsRealtimeSpec
    example = {
        "type": "gtfs_realtime",
        "url": "https://transit.example/gtfs-rt/vehicle-positions.pb",
        "feed_type": "vehicle_positions",
    }

    def __init__(self, spec: GtfsRealtimeSpec, config: ConnectorConfig, context: ConnectorContext):
        super().__init__(spec, config, context)
        # The message parsed in ``fetch`` (to read its header), kept for ``decode``.
        self._parsed: tuple[Payload, rt.FeedMessage] | None = None

    def fetch(self, state: dict[str, Any]) -> Iterator[Payload]:
        content, origin, media_type = self._read()
        payload = Payload(
            content=content,
            origin=origin,
            format="pb",
            state=dict(state),
            media_type=media_type,
            sha256=hashlib.sha256(content).hexdigest(),
        )
        try:
            message = parse_feed(content, origin)
        except DecodeError:
            yield payload  # ``decode`` raises: the payload is set aside, bytes kept
            return
        published = _number(message.header, "timestamp")
        last = state.get("feed_timestamp")
        if published is not None and isinstance(last, int) and published <= last:
            # Not republished since the last commit: nothing to load, nothing to record.
            level = logging.INFO if published == last else logging.WARNING
            log.log(level, "%s: feed timestamp %d is not newer than %d; skipped",
                    origin, published, last)  # fmt: skip
            return
        if published is not None:
            payload.state["feed_timestamp"] = published
        if self.spec.feed_type == "auto" and "feed_type" not in state:
            detected = detect_feed_type(message)
            if detected is not None:
                # Kept, so that a later empty feed still has this type's columns and a mixed
                # feed does not switch schemas from one poll to the next.
                payload.state["feed_type"] = detected
        self._parsed = (payload, message)
        yield payload

    def _read(self) -> tuple[bytes, str, str | None]:
        return self.read_location(self.spec.url, "feed file")

    def feed_type_of(self, message: rt.FeedMessage, state: dict[str, Any]) -> FeedType | None:
        """The configured type; for ``auto`` the one kept in state, else the first entity's."""
        if self.spec.feed_type != "auto":
            return self.spec.feed_type
        kept = state.get("feed_type")
        return kept if kept in FEED_TYPES else detect_feed_type(message)

    def decode(self, payload: Payload) -> Decoded:
        if self._parsed is not None and self._parsed[0] is payload:
            message = self._parsed[1]
            self._parsed = None
        else:
            message = parse_feed(payload.content, payload.origin)
        feed_type = self.feed_type_of(message, payload.state)
        if feed_type is None:
            # ``auto`` and nothing to tell the type by (an empty feed before any other): no rows.
            return Decoded(table=pa.table({}))
        table = self.config.table
        part = TablePart(
            suffix="",  # the connector's own table
            decoded=feed_table(message, feed_type, payload.origin),
            primary_key=list(table.primary_key),
            event_time=table.event_time,
            declared=declared_types(feed_type),
        )
        return Decoded(table=pa.table({}), parts=[part])
