"""Decoding payload bytes (CSV, JSON, JSON Lines, Parquet) into Arrow, keeping bad records.

A payload that cannot be read at all raises ``DecodeError`` with a reason a publisher can act on
(the pipeline sets it aside); a record that cannot be read becomes a ``BadRecord`` with its reason
(quarantined), and the rest of the payload loads. No message carries Arrow's or DuckDB's internals.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from pydantic import AfterValidator

from urbanlake.connectors.base import Decoded
from urbanlake.core.errors import BadRecord, DecodeError

FORMATS = ("csv", "json", "jsonl", "parquet")
EXTENSIONS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".json": "json", ".geojson": "json",
    ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
}  # fmt: skip
MEDIA_TYPES = {
    "text/csv": "csv", "application/json": "json", "application/geo+json": "json",
    "application/x-ndjson": "jsonl", "application/jsonl": "jsonl", "application/vnd.apache.parquet": "parquet",
}  # fmt: skip
DuplicateColumns = Literal["fail", "rename"]
UTF8_BOM = b"\xef\xbb\xbf"
# 19 digits or more may not fit a 64-bit integer, and JSON parsers and Arrow's CSV reader turn
# such numbers into doubles without a word: where the bytes hold one, numbers are read exactly.
LONG_DIGITS = re.compile(rb"[0-9]{19,}")
ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # an undecodable byte, as ``surrogateescape`` keeps it
MESSAGE_LENGTH = 160


def guess_format(name: str, media_type: str | None = None) -> str | None:
    """The format named by a file extension (``.csv.gz`` counts as ``.csv``) or a media type."""
    lowered = name.lower().split("?", 1)[0]
    for suffix in (".gz", ".zst", ".bz2"):
        lowered = lowered.removesuffix(suffix)
    for ext, fmt in EXTENSIONS.items():
        if lowered.endswith(ext):
            return fmt
    if media_type:
        return MEDIA_TYPES.get(media_type.split(";", 1)[0].strip().lower())
    return None


def check_encoding(value: str) -> str:
    """A text encoding Python knows (``utf-8``, ``latin-1``, ``cp1252``, …); for spec validators."""
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(
            f"unknown encoding '{value}': use a name Python knows, e.g. utf-8, latin-1, cp1252"
        ) from None
    return value


# A spec's ``encoding`` field, checked by every connector type that takes one.
Encoding = Annotated[str, AfterValidator(check_encoding)]


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def _short(exc: BaseException) -> str:
    """The first line of a library's message, cut short: never a dump of its structures."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= MESSAGE_LENGTH else text[:MESSAGE_LENGTH] + " …"


def _as_utf8(content: bytes, encoding: str, origin: str, fmt: str) -> tuple[bytes, bool]:
    """The text as UTF-8 bytes, and whether every byte was valid in ``encoding``.

    Invalid bytes are carried through unchanged (``surrogateescape``) so the records holding them
    can be quarantined one by one, naming the encoding, instead of failing the whole payload.
    """
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    if not wide and b"\x00" in content[:65536]:
        raise DecodeError(
            f"{origin}: binary data (NUL bytes), not {fmt.upper()} text; is it the right file?"
        )
    if _is_utf8(encoding):
        data = content.removeprefix(UTF8_BOM)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return data, False
        return data, True
    try:
        return content.decode(encoding).encode("utf-8"), True
    except UnicodeDecodeError:
        return content.decode(encoding, "surrogateescape").encode("utf-8", "surrogateescape"), False


def _invalid_bytes_reason(column: str | None, value: str, encoding: str) -> str:
    where = f"{column}: " if column else ""
    shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    shown = shown if len(shown) <= 60 else shown[:60] + " …"
    return (
        f"{where}'{shown}' has bytes that are not valid {encoding}; "
        "set source.encoding to the file's encoding"
    )


# -- column names ----------------------------------------------------------------------------------


def unique_columns(table: pa.Table, origin: str, duplicates: DuplicateColumns = "fail") -> pa.Table:
    """``table`` if its column names are unique (as SQL sees them: case-insensitively); with
    ``rename``, later copies of a name become ``name_2``, ``name_3``; else ``DecodeError``."""
    names = table.column_names
    lowered = [n.lower() for n in names]
    if len(set(lowered)) == len(lowered):
        return table
    if duplicates != "rename":
        for i, name in enumerate(lowered):
            if name in lowered[:i]:
                first = lowered.index(name)
                raise DecodeError(
                    f"{origin}: column '{names[i]}' appears twice in the header (columns {first + 1} and "
                    f"{i + 1}); rename one in the file, or set source.duplicate_columns: rename to load "
                    f"the second as {names[i]}_2"
                )
    taken = set(lowered)
    seen: set[str] = set()
    renamed = []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            renamed.append(name)
            continue
        n = 2
        while f"{name}_{n}".lower() in taken:
            n += 1
        taken.add(f"{name}_{n}".lower())
        seen.add(f"{name}_{n}".lower())
        renamed.append(f"{name}_{n}")
    return table.rename_columns(renamed)


# -- CSV -------------------------------------------------------------------------------------------


def _text_of_binary_columns(
    table: pa.Table, bad: list[BadRecord], encoding: str
) -> tuple[pa.Table, set[str]]:
    """Arrow reads a CSV column holding invalid UTF-8 as binary: its valid values become text,
    and each row with an invalid value becomes a bad record naming the column."""
    binary = [
        f.name
        for f in table.schema
        if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
    ]
    if not binary:
        return table, set()
    reasons: dict[int, list[str]] = {}
    texts: dict[str, list[str | None]] = {}
    for name in binary:
        values: list[str | None] = []
        for row, value in enumerate(table.column(name).to_pylist()):
            if value is None:
                values.append(None)
                continue
            try:
                values.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                text = value.decode("utf-8", "surrogateescape")
                reasons.setdefault(row, []).append(_invalid_bytes_reason(name, text, encoding))
                values.append(value.decode("utf-8", "backslashreplace"))  # its row is taken out
        texts[name] = values
    for name, values in texts.items():
        index = table.column_names.index(name)
        table = table.set_column(index, name, pa.array(values, pa.string()))
    if reasons:
        rows = sorted(reasons)
        originals = table.take(pa.array(rows)).to_pylist()
        for row, original in zip(rows, originals, strict=True):
            bad.append(
                BadRecord(
                    raw=orjson.dumps(original, default=str).decode(), reason="; ".join(reasons[row])
                )
            )
        keep = pc.invert(pc.is_in(pa.array(range(table.num_rows)), pa.array(rows)))
        table = table.filter(keep)
    return table, set(binary)


def decode_csv(
    content: bytes,
    origin: str,
    delimiter: str = ",",
    encoding: str = "utf-8",
    duplicates: DuplicateColumns = "fail",
) -> Decoded:
    if not content.strip():
        return Decoded(table=pa.table({}))
    data, _ = _as_utf8(content, encoding, origin, "csv")
    bad: list[BadRecord] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        reason = f"expected {row.expected_columns} columns, found {row.actual_columns}"
        bad.append(BadRecord(raw=row.text, reason=reason, line=row.number))
        return "skip"

    def read(threads: bool, as_text: list[str] | None = None) -> pa.Table:
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(use_threads=threads),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, invalid_row_handler=on_invalid, newlines_in_values=True
            ),
            convert_options=pacsv.ConvertOptions(
                strings_can_be_null=True,
                column_types=dict.fromkeys(as_text or [], pa.string()),
            ),
        )

    try:
        table = read(threads=True)
        as_text: list[str] = []
        if LONG_DIGITS.search(data):
            # A number too long for BIGINT made its column DOUBLE: read those columns as text,
            # so the lakehouse keeps the numbers exactly or quarantines them.
            as_text = [f.name for f in table.schema if pa.types.is_floating(f.type)]
        if bad or as_text:
            # Threaded parsing cannot tell line numbers; read again to name the lines.
            bad.clear()
            table = read(threads=False, as_text=as_text)
    except UnicodeDecodeError:
        raise DecodeError(
            f"{origin}: the header is not valid {encoding} text; set source.encoding to the file's encoding"
        ) from None
    except pa.ArrowInvalid as exc:
        raise DecodeError(f"{origin}: not readable as CSV: {_short(exc)}") from None
    table = unique_columns(table, origin, duplicates)
    table, texts = _text_of_binary_columns(table, bad, encoding)
    return Decoded(table=table, bad_records=bad, loose_columns=set(as_text) | texts)


# -- JSON ------------------------------------------------------------------------------------------


class NonFinite(str):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a JSON text: not JSON, but common in exports."""


def _lenient_loads(data: bytes | str) -> Any:
    """JSON the exact way: integers of any size, ``NaN`` marked, undecodable bytes kept escaped."""
    text = data if isinstance(data, str) else data.decode("utf-8", "surrogateescape")
    return json.loads(text, parse_constant=NonFinite)


def _flaw(value: Any, encoding: str) -> str | None:
    """Why a parsed record cannot be loaded as it is, or None."""
    if isinstance(value, NonFinite):
        return f"{value} is not a JSON number"
    if isinstance(value, str):
        return _invalid_bytes_reason(None, value, encoding) if ESCAPED_BYTE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            why = _flaw(item, encoding) or _flaw(key, encoding)
            if why:
                return f"{key}: {why}" if isinstance(item, NonFinite | str) else why
    elif isinstance(value, list):
        for item in value:
            why = _flaw(item, encoding)
            if why:
                return why
    return None


def _dig(document: Any, path: str | None, origin: str) -> Any:
    if not path:
        return document
    node = document
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise DecodeError(f"{origin}: records path '{path}' not found (stopped at '{part}')")
    return node


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become ``parent_child`` columns; lists are kept as JSON text."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}_"))
        elif isinstance(value, list):
            flat[name] = _dumps(value)
        else:
            flat[name] = value
    return flat


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits: the standard library writes it exactly
        return json.dumps(value)


def _needs_flattening(records: list[dict[str, Any]]) -> bool:
    sample = records[:: max(1, len(records) // 200)]
    return any(isinstance(v, dict | list) for r in sample for v in r.values())


def records_to_table(
    records: Iterable[Any], origin: str, first_line: int = 1, encoding: str | None = None
) -> Decoded:
    """Arrow rows from JSON-like records; non-objects are bad records, mixed-type columns loose.

    With ``encoding`` (records read leniently), records holding ``NaN`` or undecodable bytes are
    bad records too.
    """
    records = records if isinstance(records, list) else list(records)
    bad: list[BadRecord] = []
    objects: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        why = "record is not a JSON object" if type(record) is not dict else None
        if why is None and encoding is not None:
            why = _flaw(record, encoding)
        if why is None:
            objects.append(record)
        else:
            raw = json.dumps(record, default=str) if encoding is not None else _dumps(record)
            bad.append(BadRecord(raw=raw, reason=why, line=first_line + i))
    if objects and _needs_flattening(objects):
        objects = [_flatten(r) for r in objects]
    # Column by column: twice as fast as ``Table.from_pylist`` and it lets one mixed-type
    # column stay text instead of failing the batch. Mixed columns are "loose": the lakehouse
    # picks their type and quarantines the values that do not fit.
    first = list(objects[0]) if objects else []
    others = set().union(*objects).difference(first) if objects else set()
    names = first + sorted(others)
    columns: dict[str, pa.Array] = {}
    loose: set[str] = set()
    for name in names:
        values = [record.get(name) for record in objects]
        try:
            columns[name] = pa.array(values)
            if pa.types.is_nested(columns[name].type):
                raise pa.ArrowInvalid("nested")
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            columns[name] = pa.array(
                [
                    None
                    if v is None
                    else v
                    if isinstance(v, str)
                    else str(v)
                    if isinstance(v, int) and not isinstance(v, bool)
                    else _dumps(v)
                    for v in values
                ],
                type=pa.string(),
            )
            loose.add(name)
    table = pa.table(columns) if columns else pa.table({})
    return Decoded(table=table, bad_records=bad, loose_columns=loose)


def decode_json(
    content: bytes, origin: str, records_path: str | None = None, encoding: str = "utf-8"
) -> Decoded:
    if not content.strip():
        return Decoded(table=pa.table({}))
    data, valid = _as_utf8(content, encoding, origin, "json")
    lenient = not valid or bool(LONG_DIGITS.search(data))
    try:
        document = _lenient_loads(data) if lenient else orjson.loads(data)
    except (orjson.JSONDecodeError, ValueError) as exc:
        try:
            # NaN or Infinity: read it the lenient way, and quarantine the records holding them.
            document, lenient = _lenient_loads(data), True
        except ValueError:
            raise DecodeError(f"{origin}: not valid JSON: {_short(exc)}") from None
    node = _dig(document, records_path, origin)
    if isinstance(node, dict):
        node = [node]
    if not isinstance(node, list):
        raise DecodeError(
            f"{origin}: expected a list of records at '{records_path or '$'}', found {type(node).__name__}"
        )
    return records_to_table(node, origin, encoding=encoding if lenient else None)


def decode_jsonl(content: bytes, origin: str, encoding: str = "utf-8") -> Decoded:
    if not content.strip():
        return Decoded(table=pa.table({}))
    data, valid = _as_utf8(content, encoding, origin, "jsonl")
    long_digits = bool(LONG_DIGITS.search(data))
    if valid and not long_digits:
        try:
            table = pajson.read_json(io.BytesIO(data))
            if not any(pa.types.is_nested(f.type) for f in table.schema):
                return Decoded(table=table)
        except pa.ArrowInvalid:
            pass
    records: list[Any] = []
    bad: list[BadRecord] = []
    lines: list[int] = []
    lenient = not valid or long_digits
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(_lenient_loads(line) if lenient else orjson.loads(line))
            lines.append(number)
            continue
        except (orjson.JSONDecodeError, ValueError) as exc:
            error = exc
        try:
            records.append(_lenient_loads(line))  # NaN, Infinity: quarantined below
            lines.append(number)
            lenient = True
        except ValueError:
            bad.append(
                BadRecord(
                    raw=line.decode("utf-8", "backslashreplace"),
                    reason=f"not valid JSON: {_short(error)}",
                    line=number,
                )
            )
    decoded = records_to_table(records, origin, encoding=encoding if lenient else None)
    for record in decoded.bad_records:
        if record.line is not None:
            record.line = lines[record.line - 1]
    decoded.bad_records = sorted(bad + decoded.bad_records, key=lambda r: r.line or 0)
    return decoded


# -- Parquet ---------------------------------------------------------------------------------------


def decode_parquet(content: bytes, origin: str) -> Decoded:
    if not content:
        return Decoded(table=pa.table({}))
    try:
        # ``ParquetFile`` reads a file with repeated column names; ``read_table`` would fail on it.
        return Decoded(table=pq.ParquetFile(io.BytesIO(content)).read())
    except (pa.ArrowException, OSError) as exc:
        raise DecodeError(
            f"{origin}: not readable as Parquet (truncated, or not a Parquet file): {_short(exc)}"
        ) from None


def decode(
    content: bytes,
    fmt: str,
    origin: str,
    records_path: str | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    duplicates: DuplicateColumns = "fail",
) -> Decoded:
    """Decode ``content`` in format ``fmt``; raises ``DecodeError`` when nothing can be read."""
    if fmt == "csv":
        return decode_csv(content, origin, delimiter, encoding, duplicates)
    if fmt == "json":
        decoded = decode_json(content, origin, records_path, encoding)
    elif fmt == "jsonl":
        decoded = decode_jsonl(content, origin, encoding)
    elif fmt == "parquet":
        decoded = decode_parquet(content, origin)
    else:
        raise DecodeError(f"{origin}: unknown format '{fmt}'; valid: {', '.join(FORMATS)}")
    decoded.table = unique_columns(decoded.table, origin, duplicates)
    return decoded
