"""Decoding bytes: a clear error for every malformed file, text in its declared encoding, exact
numbers, and the well-formed oddities (BOM, CRLF, quoted newlines) that must keep working."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from urbanlake.connectors.file import FileSpec
from urbanlake.connectors.formats import decode
from urbanlake.connectors.http import HttpSpec
from urbanlake.core.errors import DecodeError


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@pytest.mark.parametrize(
    ("fmt", "content"),
    [
        ("csv", b""),
        ("csv", b"id,name\n"),
        ("csv", b"\xef\xbb\xbfid,name\r\n"),
        ("json", b""),
        ("json", b"  \n"),
        ("json", b"[]"),
        ("jsonl", b""),
        ("jsonl", b"\n\n"),
        ("parquet", b""),
        ("parquet", parquet(pa.table({"id": pa.array([], pa.int64())}))),
    ],
)
def test_empty_and_header_only_files_are_zero_rows(fmt: str, content: bytes) -> None:
    decoded = decode(content, fmt, f"in/x.{fmt}")
    assert decoded.rows_in == 0 and decoded.bad_records == []


def test_a_repeated_header_name_names_the_file_and_the_column() -> None:
    content = b"id,ts,v,V\n1,2,3,4\n"
    with pytest.raises(DecodeError) as caught:
        decode(content, "csv", "in/readings.csv")
    message = str(caught.value)
    assert message.startswith("in/readings.csv: column 'V' appears twice")
    assert "duplicate_columns: rename" in message
    renamed = decode(content, "csv", "in/readings.csv", duplicates="rename")
    assert renamed.table.column_names == ["id", "ts", "v", "V_2"]
    three = decode(b"v,v,v,v_2\n1,2,3,4\n", "csv", "in/x.csv", duplicates="rename")
    assert three.table.column_names == ["v", "v_3", "v_4", "v_2"]


def test_a_repeated_parquet_column_is_named_too() -> None:
    table = pa.table([pa.array([1]), pa.array([2])], names=["v", "v"])
    with pytest.raises(DecodeError, match="column 'v' appears twice"):
        decode(parquet(table), "parquet", "in/x.parquet")
    assert decode(
        parquet(table), "parquet", "in/x.parquet", duplicates="rename"
    ).table.column_names == [
        "v",
        "v_2",
    ]


def test_bom_crlf_and_quoted_newlines_keep_working() -> None:
    content = b'\xef\xbb\xbfid,note\r\n1,"two\nlines"\r\n2,plain\r\n'
    decoded = decode(content, "csv", "in/x.csv")
    assert decoded.table.to_pylist() == [
        {"id": 1, "note": "two\nlines"},
        {"id": 2, "note": "plain"},
    ]
    assert decode(b'\xef\xbb\xbf[{"id": 1}]', "json", "in/x.json").table.num_rows == 1
    assert (
        decode(b'\xef\xbb\xbf{"id": 1}\r\n{"id": 2}\r\n', "jsonl", "in/x.jsonl").table.num_rows == 2
    )


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_binary_garbage_is_a_clear_error(fmt: str) -> None:
    with pytest.raises(DecodeError, match=r"binary data \(NUL bytes\)"):
        decode(bytes(range(256)) * 8, fmt, f"in/x.{fmt}")


def rows_in(fmt: str, names: list[str]) -> bytes:
    rows = [{"id": i, "name": name} for i, name in enumerate(names)]
    if fmt == "csv":
        return ("id,name\n" + "".join(f"{r['id']},{r['name']}\n" for r in rows)).encode("latin-1")
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False).encode("latin-1")
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode("latin-1")


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_latin1_text_with_and_without_the_encoding(fmt: str) -> None:
    content = rows_in(fmt, ["café", "plain", "Ærø"])
    declared = decode(content, fmt, f"in/x.{fmt}", encoding="latin-1")
    assert declared.table.column("name").to_pylist() == ["café", "plain", "Ærø"]
    assert declared.bad_records == []
    # Read as UTF-8 (the default), the rows holding Latin-1 bytes are quarantined, never escaped.
    default = decode(content, fmt, f"in/x.{fmt}")
    assert default.table.column("name").to_pylist() == ["plain"]
    assert len(default.bad_records) == 2
    reason = default.bad_records[0].reason
    assert "caf\\xe9" in reason and "not valid utf-8" in reason and "source.encoding" in reason


def test_bytes_invalid_in_the_declared_encoding_quarantine_their_row() -> None:
    content = b"id,name\n1,caf\xe9\n2,bad \x81 byte\n"  # 0x81 is not a cp1252 character
    decoded = decode(content, "csv", "in/x.csv", encoding="cp1252")
    assert decoded.table.column("name").to_pylist() == ["café"]
    assert len(decoded.bad_records) == 1 and "not valid cp1252" in decoded.bad_records[0].reason


def test_nan_and_infinity_quarantine_their_record_only() -> None:
    content = b'[{"id": 1, "v": 1.5}, {"id": 2, "v": NaN}, {"id": 3, "v": -Infinity}]'
    decoded = decode(content, "json", "in/x.json")
    assert decoded.table.to_pylist() == [{"id": 1, "v": 1.5}]
    assert [b.reason for b in decoded.bad_records] == [
        "v: NaN is not a JSON number",
        "v: -Infinity is not a JSON number",
    ]


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_a_20_digit_integer_is_never_read_as_a_double(fmt: str) -> None:
    big = 99999999999999999999
    content = {
        "csv": f"id,n\n1,{big}\n2,3\n".encode(),
        "json": f'[{{"id": 1, "n": {big}}}, {{"id": 2, "n": 3}}]'.encode(),
        "jsonl": f'{{"id": 1, "n": {big}}}\n{{"id": 2, "n": 3}}\n'.encode(),
    }[fmt]
    decoded = decode(content, fmt, f"in/x.{fmt}")
    column = decoded.table.column("n")
    assert pa.types.is_string(column.type) and column.to_pylist() == [str(big), "3"]
    assert "n" in decoded.loose_columns  # the lakehouse picks the exact type


def test_errors_never_carry_library_internals() -> None:
    for content, fmt in [(b"PAR1" + bytes(100), "parquet"), (b'{"a": [1, 2', "json")]:
        with pytest.raises(DecodeError) as caught:
            decode(content, fmt, f"in/x.{fmt}")
        message = str(caught.value)
        assert "\n" not in message and "pyarrow" not in message and "Traceback" not in message


def test_the_encoding_must_be_one_python_knows() -> None:
    assert FileSpec(url="in/*.csv", encoding="latin-1").encoding == "latin-1"
    with pytest.raises(ValidationError, match="unknown encoding 'klingon'"):
        FileSpec(url="in/*.csv", encoding="klingon")
    with pytest.raises(ValidationError, match="unknown encoding"):
        HttpSpec(url="https://example.org/x", encoding="klingon")
    with pytest.raises(ValidationError):
        FileSpec(url="in/*.csv", duplicate_columns="keep")  # type: ignore[arg-type]
