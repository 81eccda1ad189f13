"""One GTFS Schedule file as a typed table: the reference's files, keys and column types, service-day times as text and seconds, and every value that does not fit quarantined with its file and line."""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from urbanlake.connectors.base import (
    Decoded,
    TablePart,
)
from urbanlake.core.errors import (
    BadRecord,
    DecodeError,
)

log = logging.getLogger(__name__)


# The files of the GTFS Schedule reference (https://gtfs.org/documentation/schedule/reference/),
# in the reference's order: parts are committed in this order, extra files after them.
STANDARD_FILES = (
    "agency", "stops", "routes", "trips", "stop_times", "calendar", "calendar_dates",
    "fare_attributes", "fare_rules", "timeframes", "rider_categories", "fare_media",
    "fare_products", "fare_leg_rules", "fare_leg_join_rules", "fare_transfer_rules", "areas",
    "stop_areas", "networks", "route_networks", "shapes", "frequencies", "transfers", "pathways",
    "levels", "location_groups", "location_group_stops", "booking_rules", "translations",
    "feed_info", "attributions",
)  # fmt: skip
REQUIRED_FILES = ("agency", "stops", "routes", "trips", "stop_times")
SERVICE_FILES = ("calendar", "calendar_dates")  # a feed needs at least one of the two
PRIMARY_KEYS: dict[str, list[str]] = {
    "agency": ["agency_id"],  # only when every agency has one: a one-agency feed may leave it out
    "stops": ["stop_id"],
    "routes": ["route_id"],
    "trips": ["trip_id"],
    "stop_times": ["trip_id", "stop_sequence"],
    "calendar": ["service_id"],
    "calendar_dates": ["service_id", "date"],
    "shapes": ["shape_id", "shape_pt_sequence"],
}

# Column types by GTFS field name; a name means the same thing in every file that has it.
# Anything not listed (ids, names, colours, URLs, …) stays text.
INTEGER_COLUMNS = frozenset({
    "location_type", "wheelchair_boarding", "route_type", "route_sort_order",
    "continuous_pickup", "continuous_drop_off", "direction_id", "wheelchair_accessible",
    "bikes_allowed", "cars_allowed", "stop_sequence", "pickup_type", "drop_off_type", "timepoint",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "exception_type", "payment_method", "transfers", "transfer_duration", "shape_pt_sequence",
    "headway_secs", "exact_times", "transfer_type", "min_transfer_time", "pathway_mode",
    "is_bidirectional", "traversal_time", "stair_count", "is_producer", "is_operator",
    "is_authority", "fare_media_type", "rule_priority", "transfer_count", "duration_limit",
    "duration_limit_type", "fare_transfer_type", "booking_type", "prior_notice_duration_min",
    "prior_notice_duration_max", "prior_notice_last_day", "prior_notice_start_day",
    "is_default_fare_category", "safe_duration_factor", "mean_duration_factor",
})  # fmt: skip
FLOAT_COLUMNS = frozenset({
    "stop_lat", "stop_lon", "shape_pt_lat", "shape_pt_lon", "shape_dist_traveled", "price",
    "amount", "length", "min_width", "max_slope", "level_index", "mean_duration_offset",
    "safe_duration_offset",
})  # fmt: skip
COORDINATE_LIMITS = {
    "stop_lat": 90.0,
    "stop_lon": 180.0,
    "shape_pt_lat": 90.0,
    "shape_pt_lon": 180.0,
}
DATE_COLUMNS = frozenset({"start_date", "end_date", "date", "feed_start_date", "feed_end_date"})
# Service-day times: "25:10:00" is 1:10 the next morning, so they cannot be SQL times.
TIME_COLUMNS = frozenset({
    "arrival_time", "departure_time", "start_time", "end_time", "start_pickup_drop_off_window",
    "end_pickup_drop_off_window", "prior_notice_last_time", "prior_notice_start_time",
})  # fmt: skip
SECONDS_SUFFIX = "_seconds"

INTEGER_PATTERN = r"^[+-]?[0-9]{1,18}(\.0*)?$"  # "2.0" is the integer 2; "2.5" is not an integer
NUMBER_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,2})?$"  # always finite
DATE_PATTERN = r"^[0-9]{8}$"
TIME_PATTERN = r"^(?P<h>[0-9]{1,3}):(?P<m>[0-5][0-9]):(?P<s>[0-5][0-9])$"

# Foreign keys whose orphans are counted (reported, never fatal): child file, column, parents.
REFERENCES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("trips", "route_id", ("routes",), "route_id"),
    ("trips", "service_id", SERVICE_FILES, "service_id"),
    ("trips", "shape_id", ("shapes",), "shape_id"),
    ("stop_times", "trip_id", ("trips",), "trip_id"),
    ("stop_times", "stop_id", ("stops",), "stop_id"),
)
REFERENCED = {
    f"{child}.{column}": " or ".join(f"{parent}.{key}" for parent in parents)
    for child, column, parents, key in REFERENCES
}
NEWLINE = re.compile(rb"\r\n|\r|\n")
NOT_SPACE = re.compile(rb"\S")
NOT_A_NAME = re.compile(r"[^a-z0-9_]+")

# -- one file ------------------------------------------------------------------------------------


def header_of(content: bytes, file_name: str) -> tuple[list[str], str]:
    """The cleaned column names of a GTFS file and the encoding to read it with."""
    end = NEWLINE.search(content)
    first = content[: end.start()] if end else content
    try:
        line, encoding = first.decode("utf-8-sig"), "utf8"
    except UnicodeDecodeError:
        # GTFS is UTF-8; Latin-1 reads any bytes, so a mis-encoded file loads and can be fixed.
        line, encoding = first.decode("latin-1"), "latin-1"
    names: list[str] = []
    for i, raw in enumerate(next(csv.reader([line]), [])):
        name = wanted = raw.strip() or f"column_{i + 1}"
        copy = 1
        while name in names:
            copy += 1
            name = f"{wanted}_{copy}"
        if name != wanted:
            log.warning("%s: column %s appears again; this one is %s", file_name, wanted, name)
        names.append(name)
    return names, encoding


def read_text_table(
    content: bytes, file_name: str, names: list[str], encoding: str
) -> tuple[pa.Table, list[tuple[int | None, str]], str]:
    """Every value as text (null when empty), the rows with the wrong number of fields, and the
    encoding that read the file."""
    invalid: list[tuple[int | None, str]] = []
    # The header is ours already; pyarrow cannot skip it in a file that is nothing else. The
    # body is a view of the bytes, not a copy: stop_times.txt can be hundreds of megabytes.
    end = NEWLINE.search(content)
    if end is None or not NOT_SPACE.search(content, end.end()):
        return pa.table({name: pa.array([], pa.string()) for name in names}), invalid, encoding
    body = pa.py_buffer(content).slice(end.end())

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    def read(encoding: str) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(column_names=names, encoding=encoding),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                null_values=[""],  # not "NA" or "NULL": those can be real codes and names
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )  # fmt: skip

    try:
        try:
            return read(encoding), invalid, encoding
        except pa.ArrowInvalid as exc:
            if encoding != "utf8" or "utf8" not in str(exc).lower():
                raise
            log.warning("%s is not UTF-8 as GTFS requires; read as Latin-1", file_name)
            invalid.clear()
            return read("latin-1"), invalid, "latin-1"
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise DecodeError(f"{file_name}: not readable as CSV: {exc}") from None


@dataclass
class Misfit:
    """One column's values that do not parse as its GTFS type."""

    column: str
    mask: pa.ChunkedArray  # true where a value is present and does not parse
    explain: str


@dataclass
class TypedColumns:
    columns: dict[str, pa.ChunkedArray] = field(default_factory=dict)
    declared: dict[str, str] = field(default_factory=dict)
    misfits: list[Misfit] = field(default_factory=list)


def _where(mask: Any, values: Any) -> Any:
    return pc.if_else(mask, values, pa.scalar(None, values.type))


def _absent_or(ok: Any, text: pa.ChunkedArray) -> Any:
    """True where the value is empty or fits; false where it is present and does not fit."""
    return pc.or_kleene(pc.is_null(text), pc.fill_null(ok, False))


def type_columns(table: pa.Table, standard: bool) -> TypedColumns:
    """The GTFS types of a text table's columns; extra files' columns all stay text."""
    typed = TypedColumns()
    for name in table.column_names:
        text = table.column(name)
        kind = _kind_of(name) if standard else "text"
        if kind == "text":
            typed.columns[name], typed.declared[name] = text, "VARCHAR"
            continue
        trimmed = pc.utf8_trim_whitespace(text)
        if kind == "integer":
            ok = pc.match_substring_regex(trimmed, INTEGER_PATTERN)
            # Arrow's cast reads neither "+5" nor "2.0".
            digits = pc.replace_substring_regex(_where(ok, trimmed), r"^\+|\.0*$", "")
            typed.columns[name], typed.declared[name] = pc.cast(digits, pa.int64()), "BIGINT"
            typed.misfits.append(Misfit(name, pc.invert(_absent_or(ok, text)), "is not an integer"))
        elif kind == "float":
            ok = pc.match_substring_regex(trimmed, NUMBER_PATTERN)
            number = pc.cast(_where(ok, trimmed), pa.float64())
            limit = COORDINATE_LIMITS.get(name)
            if limit is not None:
                inside = pc.less_equal(pc.abs(number), limit)
                out = pc.and_(pc.fill_null(ok, False), pc.invert(pc.fill_null(inside, True)))
                typed.misfits.append(Misfit(name, out, f"is outside -{limit:g}..{limit:g}"))
                number = _where(pc.fill_null(inside, False), number)
            typed.columns[name], typed.declared[name] = number, "DOUBLE"
            typed.misfits.append(Misfit(name, pc.invert(_absent_or(ok, text)), "is not a number"))
        elif kind == "date":
            ok = pc.match_substring_regex(trimmed, DATE_PATTERN)
            stamp = pc.strptime(_where(ok, trimmed), format="%Y%m%d", unit="s", error_is_null=True)
            # strptime rolls 20230230 over to 2 March: only a date that prints back as given fits.
            ok = pc.equal(pc.strftime(stamp, format="%Y%m%d"), trimmed)
            typed.columns[name] = pc.cast(_where(pc.fill_null(ok, False), stamp), pa.date32())
            typed.declared[name] = "DATE"
            typed.misfits.append(
                Misfit(name, pc.invert(_absent_or(ok, text)), "is not a date (YYYYMMDD)")
            )
        else:  # a service-day time: the text as published, and seconds after midnight beside it
            parts = pc.extract_regex(trimmed, TIME_PATTERN)
            seconds = pc.add(
                pc.add(
                    pc.multiply(pc.cast(pc.struct_field(parts, "h"), pa.int64()), 3600),
                    pc.multiply(pc.cast(pc.struct_field(parts, "m"), pa.int64()), 60),
                ),
                pc.cast(pc.struct_field(parts, "s"), pa.int64()),
            )
            typed.columns[name], typed.declared[name] = text, "VARCHAR"
            seconds_name = name + SECONDS_SUFFIX
            if seconds_name not in table.column_names:
                typed.columns[seconds_name], typed.declared[seconds_name] = seconds, "BIGINT"
            ok = pc.is_valid(seconds)
            typed.misfits.append(
                Misfit(name, pc.invert(_absent_or(ok, text)), "is not a time (H:MM:SS)")
            )
    return typed


def _kind_of(name: str) -> str:
    if name in INTEGER_COLUMNS:
        return "integer"
    if name in FLOAT_COLUMNS:
        return "float"
    if name in DATE_COLUMNS:
        return "date"
    if name in TIME_COLUMNS:
        return "time"
    return "text"


def locate_rows(
    content: bytes, encoding: str, width: int, wanted: set[int]
) -> tuple[dict[int, tuple[int, str]], list[tuple[int, str, int]], int]:
    """Where rows are in the file, as Python's csv module reads it (it counts physical lines).

    Returns, for each data-row index in ``wanted`` (rows of the right width, as pyarrow counts
    them), its first line number and its text; every row of the wrong width as (line, text,
    fields found); and the number of rows of the right width, to check both readers agreed.
    """
    text = content.decode("utf-8-sig" if encoding == "utf8" else encoding)
    pending: list[str] = []

    def lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            pending.append(line)
            yield line

    reader = csv.reader(lines())
    next(reader, None)  # the header
    pending.clear()
    found: dict[int, tuple[int, str]] = {}
    wrong_width: list[tuple[int, str, int]] = []
    index, read_to = 0, reader.line_num
    for row in reader:
        first, read_to = read_to + 1, reader.line_num
        raw = "".join(pending).rstrip("\r\n")
        pending.clear()
        if not row:
            continue  # an empty line: pyarrow skips it too
        if len(row) != width:
            wrong_width.append((first, raw, len(row)))
            continue
        if index in wanted:
            found[index] = (first, raw)
        index += 1
    return found, wrong_width, index


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class GtfsFile:
    """One file of a feed: its typed rows (and quarantined ones), header and column types."""

    decoded: Decoded
    names: list[str]
    declared: dict[str, str]


def read_gtfs_file(content: bytes, file_name: str, standard: bool) -> GtfsFile:
    """One file's typed rows, and the rows quarantined with their line and reason."""
    names, encoding = header_of(content, file_name)
    if not names:
        return GtfsFile(Decoded(table=pa.table({})), [], {})
    text, invalid, encoding = read_text_table(content, file_name, names, encoding)
    typed = type_columns(text, standard)
    table = pa.table(typed.columns)
    misfit = None
    for problem in typed.misfits:
        misfit = problem.mask if misfit is None else pc.or_(misfit, problem.mask)
    bad_rows: list[int] = (
        pc.indices_nonzero(pc.fill_null(misfit, False)).to_pylist() if misfit is not None else []
    )
    bad: list[BadRecord] = []
    if bad_rows or invalid:
        try:
            located, wrong_width, count = locate_rows(content, encoding, len(names), set(bad_rows))
        except csv.Error:  # e.g. a field over the csv module's size limit
            located, wrong_width, count = {}, [], -1
        agreed = count == text.num_rows and len(wrong_width) == len(invalid)
        if agreed:
            bad += [
                BadRecord(
                    raw=raw,
                    reason=f"{file_name} line {line}: expected {len(names)} fields, found {found}",
                    line=line,
                )
                for line, raw, found in wrong_width
            ]
        else:
            # The two readers disagree (odd quoting): no line numbers rather than wrong ones.
            bad += [
                BadRecord(raw=raw, reason=f"{file_name}: expected {len(names)} fields")
                for _, raw in invalid
            ]
        positions = pa.array(bad_rows, pa.int64())
        originals = text.take(positions).to_pylist()
        flags = [(p, pc.take(p.mask, positions).to_pylist()) for p in typed.misfits]
        for i, (row, original) in enumerate(zip(bad_rows, originals, strict=True)):
            reasons = [
                f"{p.column} '{_shown(original[p.column])}' {p.explain}"
                for p, flagged in flags
                if flagged[i]
            ]
            if agreed and row in located:
                line, raw = located[row]
                where = f"{file_name} line {line}"
            else:
                line, raw = None, orjson.dumps(original).decode()
                where = f"{file_name} row {row + 1}"
            bad.append(BadRecord(raw=raw, reason=f"{where}: {'; '.join(reasons)}", line=line))
        if misfit is not None:
            table = table.filter(pc.invert(pc.fill_null(misfit, False)))
    return GtfsFile(Decoded(table=table, bad_records=bad), names, typed.declared)


def gtfs_part(suffix: str, decoded: Decoded, declared: dict[str, str]) -> TablePart:
    key = PRIMARY_KEYS.get(suffix, [])
    if suffix == "agency" and not (
        "agency_id" in decoded.table.column_names
        and decoded.table.column("agency_id").null_count == 0
    ):
        key = []  # agency_id may be absent (or empty) in a feed with one agency
    return TablePart(suffix, decoded, primary_key=key, replace=True, declared=declared)


def empty_part(suffix: str, names: list[str]) -> TablePart:
    """Zero rows with a dropped file's columns: its table is emptied with the rest of the feed."""
    text = pa.table({name: pa.array([], pa.string()) for name in names})
    typed = type_columns(text, suffix in STANDARD_FILES)
    return gtfs_part(suffix, Decoded(table=pa.table(typed.columns)), typed.declared)
