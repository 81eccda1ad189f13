"""GBFS feed documents as rows: the version-independent tables, value conversions (booleans as true or 1, times as POSIX or RFC 3339, localized texts) and discovery."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import orjson
import pyarrow as pa

from urbanlake.connectors.base import (
    Decoded,
    TablePart,
)
from urbanlake.core.errors import (
    BadRecord,
    DecodeError,
    FatalSourceError,
)

# The tables, in the order their feeds are loaded: descriptions before the status that refers
# to them. A feed's table is named by the suffix; v1/v2 ``free_bike_status`` is ``vehicle_status``.
Table = Literal[
    "system_information", "vehicle_types", "station_information", "station_status", "vehicle_status"
]
TABLES: tuple[Table, ...] = (
    "system_information",
    "vehicle_types",
    "station_information",
    "station_status",
    "vehicle_status",
)
FeedName = Literal[
    "system_information",
    "vehicle_types",
    "station_information",
    "station_status",
    "vehicle_status",
    "free_bike_status",
]
TABLE_OF_FEED: dict[str, Table] = {**{t: t for t in TABLES}, "free_bike_status": "vehicle_status"}
# Where each feed keeps its records, and the primary key that tells one row from another.
RECORDS_KEY: dict[Table, str | None] = {
    "system_information": None,  # ``data`` is the one record
    "vehicle_types": "vehicle_types",
    "station_information": "stations",
    "station_status": "stations",
    "vehicle_status": "vehicles",  # ``bikes`` in v1/v2
}
PRIMARY_KEYS: dict[Table, list[str]] = {
    "system_information": ["system_id"],
    "vehicle_types": ["vehicle_type_id"],
    "station_information": ["station_id"],
    "station_status": ["station_id", "last_reported"],
    "vehicle_status": ["vehicle_id", "last_reported"],
}
# Descriptions are the system's whole current content; status feeds accumulate over time.
REPLACES: dict[Table, bool] = {t: t not in ("station_status", "vehicle_status") for t in TABLES}
EVENT_TIME: dict[Table, str | None] = {
    t: "last_reported" if t in ("station_status", "vehicle_status") else None for t in TABLES
}
# A number this large is an epoch in milliseconds: as seconds it would be after the year 5000.
EPOCH_MS_THRESHOLD = 100_000_000_000
MAX_POSIX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TIME = pa.timestamp("us", tz="UTC")
TEXT, INT, FLOAT, BOOL, DATE = pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.date32()

Kind = Literal["text", "localized", "int", "float", "bool", "time", "date", "json", "capacity"]
ARROW_TYPE: dict[Kind, pa.DataType] = {
    "text": TEXT, "localized": TEXT, "int": INT, "float": FLOAT, "bool": BOOL, "time": TIME,
    "date": DATE, "json": TEXT, "capacity": TEXT,
}  # fmt: skip
SQL_TYPE: dict[pa.DataType, str] = {
    TEXT: "VARCHAR", INT: "BIGINT", FLOAT: "DOUBLE", BOOL: "BOOLEAN",
    TIME: "TIMESTAMP WITH TIME ZONE", DATE: "DATE",
}  # fmt: skip


@dataclass(frozen=True)
class Column:
    """One column: its kind, and the record fields it is read from (the first one present wins)."""

    name: str
    kind: Kind
    sources: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return self.sources or (self.name,)


def _columns(*specs: tuple[str, Kind] | tuple[str, Kind, tuple[str, ...]]) -> list[Column]:
    return [Column(*spec) for spec in specs]


# The older or draft names come after the current one in ``sources``.
COLUMNS: dict[Table, list[Column]] = {
    "system_information": _columns(
        ("system_id", "text"), ("language", "text"), ("languages", "json"),
        ("name", "localized"), ("short_name", "localized"), ("operator", "localized"),
        ("url", "text"), ("purchase_url", "text"), ("start_date", "date"),
        ("termination_date", "date"), ("phone_number", "text"), ("email", "text"),
        ("feed_contact_email", "text"), ("timezone", "text"), ("opening_hours", "text"),
        ("license_id", "text"), ("license_url", "text"),
        ("attribution_organization_name", "localized"), ("attribution_url", "text"),
        ("terms_url", "localized"), ("terms_last_updated", "date"),
        ("privacy_url", "localized"), ("privacy_last_updated", "date"),
        ("manifest_url", "text"), ("rental_apps", "json"), ("brand_assets", "json"),
    ),
    "vehicle_types": _columns(
        ("vehicle_type_id", "text"), ("form_factor", "text"), ("propulsion_type", "text"),
        ("name", "localized"), ("description", "localized"), ("max_range_meters", "float"),
        ("rider_capacity", "int"), ("cargo_volume_capacity", "int"),
        ("cargo_load_capacity", "int"), ("wheel_count", "int"), ("max_permitted_speed", "int"),
        ("rated_power", "int"), ("default_reserve_time", "int"), ("return_constraint", "text"),
        ("make", "localized"), ("model", "localized"), ("color", "text"),
        ("g_co2_km", "int", ("g_CO2_km", "g_co2_km")), ("vehicle_image", "text"),
        ("eco_labels", "json", ("eco_labels", "eco_label")), ("vehicle_accessories", "json"),
        ("vehicle_assets", "json"), ("default_pricing_plan_id", "text"),
        ("pricing_plan_ids", "json"),
    ),
    "station_information": _columns(
        ("station_id", "text"), ("name", "localized"), ("short_name", "localized"),
        ("lat", "float"), ("lon", "float"), ("address", "text"), ("cross_street", "text"),
        ("region_id", "text"), ("post_code", "text"), ("station_opening_hours", "text"),
        ("rental_methods", "json"), ("is_virtual_station", "bool"), ("station_area", "json"),
        ("parking_type", "text"), ("parking_hoop", "bool"), ("contact_phone", "text"),
        ("capacity", "int"),
        # v2.1+ objects keyed by vehicle type; 3.0 lists; the 3.0 drafts' names last.
        ("vehicle_types_capacity", "capacity",
         ("vehicle_types_capacity", "vehicle_capacity", "vehicle_type_area_capacity")),
        ("vehicle_docks_capacity", "capacity",
         ("vehicle_docks_capacity", "vehicle_type_capacity", "vehicle_type_dock_capacity")),
        ("is_valet_station", "bool"), ("is_charging_station", "bool"), ("rental_uris", "json"),
    ),
    "station_status": _columns(
        ("station_id", "text"),
        ("num_vehicles_available", "int", ("num_vehicles_available", "num_bikes_available")),
        ("num_vehicles_disabled", "int", ("num_vehicles_disabled", "num_bikes_disabled")),
        ("num_docks_available", "int"), ("num_docks_disabled", "int"),
        ("is_installed", "bool", ("is_installed", "installed")), ("is_renting", "bool"),
        ("is_returning", "bool"), ("last_reported", "time"),
        ("vehicle_types_available", "json"), ("vehicle_docks_available", "json"),
    ),
    "vehicle_status": _columns(
        ("vehicle_id", "text", ("vehicle_id", "bike_id")), ("lat", "float"), ("lon", "float"),
        ("is_reserved", "bool"), ("is_disabled", "bool"), ("vehicle_type_id", "text"),
        ("last_reported", "time"), ("current_range_meters", "float"),
        ("current_fuel_percent", "float"), ("station_id", "text"), ("home_station_id", "text"),
        ("pricing_plan_id", "text"), ("available_until", "time"),
        ("vehicle_equipment", "json"), ("rental_uris", "json"),
    ),
}  # fmt: skip
SCHEMAS: dict[Table, pa.Schema] = {
    table: pa.schema(
        [(c.name, ARROW_TYPE[c.kind]) for c in columns] + [("feed_last_updated", TIME)]
    )
    for table, columns in COLUMNS.items()
}


def declared_types(table: Table) -> dict[str, str]:
    """SQL types of a table's columns: text stays text (``"0042"`` is an id, not a number)."""
    return {f.name: SQL_TYPE[f.type] for f in SCHEMAS[table]}


# -- values --------------------------------------------------------------------------------------


class BadValue(ValueError):
    """A field whose value is not of its type: the record is quarantined with this reason."""


def _shown(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_time(value: Any) -> datetime:
    """A GBFS time: POSIX seconds (1.x/2.x; milliseconds are recognised) or RFC 3339 (3.0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise BadValue(f"{_shown(value)} is not a time")
        in_millis = abs(seconds) >= EPOCH_MS_THRESHOLD
        if not 0 <= (seconds / 1000 if in_millis else seconds) <= MAX_POSIX_SECONDS:
            raise BadValue(f"{_shown(value)} is not a time in POSIX seconds")
        micros = round(value * 1000) if in_millis else round(value * 1_000_000)
        return EPOCH + timedelta(microseconds=micros)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
            return as_time(float(text) if "." in text else int(text))
        try:
            parsed = datetime.fromisoformat(text.upper())
        except ValueError:
            raise BadValue(f"{_shown(value)} is neither RFC 3339 nor POSIX seconds") from None
        if parsed.tzinfo is None:
            # RFC 3339 requires an offset; guessing a zone would silently shift the time.
            raise BadValue(f"{_shown(value)} has no UTC offset (RFC 3339 requires one)")
        return parsed.astimezone(UTC)
    raise BadValue(f"{_shown(value)} is not a time")


def as_bool(value: Any) -> bool:
    """``true``/``false``, or GBFS 1.0's ``1``/``0`` (also as text, as some publishers send)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise BadValue(f"{_shown(value)} is not a boolean")


def as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise BadValue(f"{_shown(value)} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise BadValue(f"{_shown(value)} is not an integer")


def as_float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value):
            return float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    raise BadValue(f"{_shown(value)} is not a number")


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    # Ids sent as numbers (``"station_id": 72`` in older feeds) are the same ids as text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise BadValue(f"{_shown(value)} is not text")


def as_date(value: Any) -> date:
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise BadValue(f"{_shown(value)} is not a date (YYYY-MM-DD)")


def best_language(tags: list[str], language: str | None) -> int:
    """Position of the tag that matches ``language`` (``en`` matches ``en-GB`` and the other way
    round); the first when none does: a name in another language is better than none."""
    if language:
        wanted = language.lower()
        for same in (
            lambda tag: tag == wanted,
            lambda tag: tag.split("-")[0] == wanted.split("-")[0],
        ):
            for position, tag in enumerate(tags):
                if same(tag.lower()):
                    return position
    return 0


def localized(value: Any, language: str | None) -> str:
    """Plain text (1.x/2.x), or from a 3.0 list of ``{text, language}`` the one in ``language``."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        raise BadValue(f"{_shown(value)} is neither text nor a list of localized texts")
    entries: list[tuple[str, str]] = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            raise BadValue(f"{_shown(value)} is not a list of {{text, language}}")
        entries.append((entry["text"], str(entry.get("language") or "")))
    return entries[best_language([tag for _, tag in entries], language)][0]


def capacity_list(value: Any) -> list[dict[str, Any]]:
    """Per-vehicle-type capacities in the 3.0 shape, ``[{vehicle_type_ids: [...], count}]``."""
    if isinstance(value, dict):  # 2.1–2.3: {"<vehicle_type_id>": count}
        return [{"vehicle_type_ids": [str(k)], "count": as_int(v)} for k, v in value.items()]
    if isinstance(value, list):
        out = []
        for entry in value:
            if not isinstance(entry, dict) or "count" not in entry:
                raise BadValue(f"{_shown(value)} is not a list of {{vehicle_type_ids, count}}")
            if "vehicle_type_ids" in entry:
                ids = [as_text(i) for i in entry["vehicle_type_ids"] or []]
            elif "vehicle_type_id" in entry:  # the 3.0 release candidates' shape
                ids = [as_text(entry["vehicle_type_id"])]
            else:
                raise BadValue(f"{_shown(entry)} names no vehicle_type_ids")
            out.append({"vehicle_type_ids": ids, "count": as_int(entry["count"])})
        return out
    raise BadValue(f"{_shown(value)} is not a capacity by vehicle type")


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


CONVERTERS: dict[Kind, Callable[[Any, str | None], Any]] = {
    "text": lambda v, _: as_text(v),
    "localized": localized,
    "int": lambda v, _: as_int(v),
    "float": lambda v, _: as_float(v),
    "bool": lambda v, _: as_bool(v),
    "time": lambda v, _: as_time(v),
    "date": lambda v, _: as_date(v),
    "json": lambda v, _: _json_text(v),
    "capacity": lambda v, _: _json_text(capacity_list(v)),
}


# -- feed documents ------------------------------------------------------------------------------


def parse_document(content: bytes, origin: str) -> dict[str, Any]:
    """A GBFS file's JSON object; ``DecodeError`` when it is not one."""
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"{origin}: not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise DecodeError(f"{origin}: not a GBFS file: no 'data' object at the top level")
    return document


def last_updated(document: dict[str, Any], origin: str) -> datetime:
    """The envelope's ``last_updated``, required by every GBFS version."""
    if "last_updated" not in document:
        raise DecodeError(f"{origin}: the GBFS envelope has no last_updated")
    try:
        return as_time(document["last_updated"])
    except BadValue as exc:
        raise DecodeError(f"{origin}: last_updated {exc}") from None


def ttl_seconds(document: dict[str, Any]) -> int:
    try:
        return max(0, as_int(document.get("ttl", 0)))
    except BadValue:
        return 0  # an unreadable ttl: fetch on every poll rather than miss updates


def table_of_document(document: dict[str, Any]) -> Table | None:
    """Which table a feed's document fills, by its shape (for a payload not read by ``fetch``)."""
    data = document["data"]
    if "system_id" in data:
        return "system_information"
    if "vehicle_types" in data:
        return "vehicle_types"
    if "bikes" in data or "vehicles" in data:
        return "vehicle_status"
    stations = data.get("stations")
    if isinstance(stations, list):
        first = stations[0] if stations and isinstance(stations[0], dict) else {}
        status = {"last_reported", "is_renting", "num_bikes_available", "num_vehicles_available"}
        return "station_status" if status & set(first) else "station_information"
    return None


def feed_rows(table: Table, document: dict[str, Any], origin: str, language: str | None) -> Decoded:
    """One feed's records as rows of its table's schema; misfit records become ``BadRecord``."""
    data = document["data"]
    published = last_updated(document, origin)
    key = RECORDS_KEY[table]
    if key is None:
        records: list[Any] = [data]
        where = "data"
    else:
        if table == "vehicle_status" and key not in data:
            key = "bikes"  # v1/v2 free_bike_status
        if key not in data:
            raise DecodeError(f"{origin}: not a {table} feed: data.{key} is missing")
        records = data[key]
        if not isinstance(records, list):
            raise DecodeError(f"{origin}: data.{key} is not a list")
        where = key
    if table == "system_information":
        # The language the texts are in: v1/v2 say it, v3 lists several and one is chosen.
        languages = data.get("languages")
        if isinstance(languages, list) and languages:
            language = str(languages[best_language([str(t) for t in languages], language)])
            records = [{**data, "language": language}]
        elif isinstance(data.get("language"), str):
            records = [{**data, "languages": [data["language"]]}]
    rows: list[dict[str, Any]] = []
    bad: list[BadRecord] = []
    columns = COLUMNS[table]
    for index, record in enumerate(records):
        label = where if key is None else f"{where}[{index}]"
        if not isinstance(record, dict):
            bad.append(BadRecord(_json_text(record), f"{label}: not an object"))
            continue
        row: dict[str, Any] = {"feed_last_updated": published}
        problems = []
        for column in columns:
            field, value = next(
                ((f, record[f]) for f in column.fields if record.get(f) is not None), ("", None)
            )
            if value is None:
                row[column.name] = None
                continue
            try:
                row[column.name] = CONVERTERS[column.kind](value, language)
            except BadValue as exc:
                problems.append(f"{field} {exc}")
        if table == "vehicle_status" and row.get("last_reported") is None:
            # Optional before 3.0: the feed's time is when the vehicle was seen there.
            row["last_reported"] = published
        if problems:
            bad.append(BadRecord(_json_text(record), f"{label}: " + "; ".join(problems)))
        else:
            rows.append(row)
    return Decoded(table=pa.Table.from_pylist(rows, schema=SCHEMAS[table]), bad_records=bad)


def feed_decoded(
    table: Table, document: dict[str, Any], origin: str, language: str | None
) -> Decoded:
    """The payload's rows as the one part of a multi-table source."""
    part = TablePart(
        suffix=table,
        decoded=feed_rows(table, document, origin, language),
        primary_key=list(PRIMARY_KEYS[table]),
        event_time=EVENT_TIME[table],
        replace=REPLACES[table],
        declared=declared_types(table),
    )
    return Decoded(table=pa.table({}), parts=[part])


def discovered_feeds(
    document: dict[str, Any], language: str | None, origin: str
) -> tuple[str | None, dict[str, str]]:
    """(language, {feed name: URL}) from ``gbfs.json``: 3.0's ``data.feeds`` or v1/v2's by language."""
    data = document["data"]
    if isinstance(data.get("feeds"), list):
        chosen, listed = language, data["feeds"]
    else:
        available = [k for k, v in data.items() if isinstance(v, dict)]
        if not available:
            raise FatalSourceError(
                f"{origin}: gbfs.json lists no feeds (no data.feeds, no language)"
            )
        if language is None:
            chosen = available[0]
        elif language in available:
            chosen = language
        else:
            raise FatalSourceError(
                f"{origin}: gbfs.json has no feeds in language '{language}' (source.language); "
                f"it has {', '.join(available)}"
            )
        listed = data[chosen].get("feeds")
        if not isinstance(listed, list):
            raise FatalSourceError(f"{origin}: data.{chosen}.feeds is not a list")
    feeds = {
        str(feed["name"]): str(feed["url"])
        for feed in listed
        if isinstance(feed, dict) and feed.get("name") and feed.get("url")
    }
    return chosen, feeds
