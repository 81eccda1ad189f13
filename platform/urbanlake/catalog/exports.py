"""Streamed exports of a pinned version — CSV, JSON Lines, GeoJSON, Parquet — in constant memory,
and each version's stable Parquet file (written once, then served with Range requests)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from urbanlake.catalog.actions import Pinned, pin, stream_query, stream_records
from urbanlake.catalog.params import RecordParams
from urbanlake.catalog.service import Caller, Catalog
from urbanlake.core.errors import BadQuery
from urbanlake.core.storage import filesystem_for
from urbanlake.lakehouse.connection import sql_string
from urbanlake.lakehouse.normalize import quote
from urbanlake.lakehouse.record_query import copy_version_to_parquet

FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "jsonl": ("application/x-ndjson", "jsonl"),
    "geojson": ("application/geo+json", "geojson"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
}
_file_locks: dict[str, threading.Lock] = {}
_file_locks_lock = threading.Lock()


def _as_text(column: str, sql_type: str) -> str:
    """Timestamps as ISO 8601 in text formats, spelt as in JSON answers
    (``2026-11-01T08:00:00+00:00``: the API's session is UTC); the rest as is."""
    upper = sql_type.upper()
    if upper.startswith("TIMESTAMP WITH TIME ZONE") or upper == "TIMESTAMPTZ":
        return f"replace(CAST({quote(column)} AS VARCHAR), ' ', 'T') || ':00'"
    if upper.startswith("TIMESTAMP"):
        return f"replace(CAST({quote(column)} AS VARCHAR), ' ', 'T')"
    return quote(column)


def _text_columns(columns: list[str], types: dict[str, str]) -> str:
    return ", ".join(f"{_as_text(c, types[c])} AS {quote(c)}" for c in columns)


def _json_object(columns: list[str], types: dict[str, str]) -> str:
    pairs = ", ".join(f"{sql_string(c)}, {_as_text(c, types[c])}" for c in columns)
    return f"json_object({pairs})"


def _geometry_json(pinned: Pinned) -> str:
    g = pinned.entry.geometry
    if g is None:
        raise BadQuery(
            f"dataset '{pinned.entry.name}' has no geometry: GeoJSON needs one", "format"
        )
    if g.wkt:
        return f"CAST(ST_AsGeoJSON(ST_GeomFromText({quote(g.wkt)})) AS JSON)"
    lon, lat = quote(g.lon or ""), quote(g.lat or "")
    return (f"CASE WHEN {lon} IS NULL OR {lat} IS NULL THEN NULL ELSE "
            f"json_object('type', 'Point', 'coordinates', json_array({lon}, {lat})) END")  # fmt: skip


def _lines(batches: Iterator[pa.RecordBatch], separator: bytes) -> Iterator[bytes]:
    first = True
    for batch in batches:
        if not batch.num_rows:
            continue
        text = separator.join(v.encode() for v in batch.column(0).to_pylist())
        yield (b"" if first else separator) + text
        first = False


def export(
    catalog: Catalog, caller: Caller, name: str, fmt: str, params: RecordParams
) -> tuple[Pinned, str, Iterator[bytes]]:
    """(pinned version, media type, the body's chunks) of an export."""
    if fmt not in FORMATS:
        raise BadQuery(
            f"unknown format '{fmt}'; valid: {', '.join(FORMATS)}", "format", "unknown_format"
        )
    media = FORMATS[fmt][0]
    pinned = pin(catalog, caller, name, params)
    query = stream_query(pinned, params)  # checked once, before streaming, then run as is
    columns = params.select or list(pinned.types)
    if fmt == "jsonl":
        expression = f"{_json_object(columns, pinned.types)}::VARCHAR"
        return pinned, media, _jsonl(stream_records(catalog, query, expression))
    if fmt == "geojson":
        geometry = _geometry_json(pinned)
        feature = (f"json_object('type', 'Feature', 'geometry', {geometry}, "
                   f"'properties', {_json_object(columns, pinned.types)})::VARCHAR")  # fmt: skip
        return pinned, media, _geojson(stream_records(catalog, query, feature))
    if fmt == "csv":
        text = _text_columns(columns, pinned.types)
        return pinned, media, _csv(stream_records(catalog, query, text))
    return pinned, media, _parquet(stream_records(catalog, query))


def _jsonl(batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    wrote = False
    for chunk in _lines(batches, b"\n"):
        wrote = True
        yield chunk
    if wrote:
        yield b"\n"


def _geojson(batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    yield b'{"type": "FeatureCollection", "features": [\n'
    yield from _lines(batches, b",\n")
    yield b"\n]}\n"


def _csv(batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    header = True
    for batch in batches:
        sink = io.BytesIO()
        pacsv.write_csv(
            pa.Table.from_batches([batch]), sink, pacsv.WriteOptions(include_header=header)
        )
        header = False
        yield sink.getvalue()


class _Chunks(io.RawIOBase):
    """A write-only file that hands what was written to the next ``take()``."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def _parquet(batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    sink = _Chunks()
    writer: pq.ParquetWriter | None = None
    for batch in batches:
        if writer is None:
            writer = pq.ParquetWriter(sink, batch.schema, compression="zstd")
        writer.write_batch(batch)
        yield sink.take()
    if writer is not None:
        writer.close()
    yield sink.take()


@dataclass
class VersionFile:
    fs: pafs.FileSystem
    path: str
    size: int
    etag: str
    filename: str


def version_file(catalog: Catalog, caller: Caller, name: str, version: int) -> VersionFile:
    """A version's one Parquet file, written on first request; its URL never changes."""
    params = RecordParams(version=version)
    pinned = pin(catalog, caller, name, params)
    uri = f"{catalog.settings.lake_uri}/exports/{name}/{pinned.number}.parquet"
    fs, path = filesystem_for(uri, catalog.settings.s3)
    with _file_locks_lock:
        lock = _file_locks.setdefault(uri, threading.Lock())
    with lock:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            local = isinstance(fs, pafs.LocalFileSystem)
            target = f"{path}.part" if local else uri
            reader = catalog.reader()
            try:
                copy_version_to_parquet(reader, pinned.query(), target)
            finally:
                reader.close()
            if local:
                fs.move(target, path)
            info = fs.get_file_info(path)
    return VersionFile(fs, path, int(info.size or 0), f'"{name}-{pinned.number}"',
                       f"{name}-v{pinned.number}.parquet")  # fmt: skip
