"""A corpus of good and malformed files in every file format, with what each must become.

Every folder (one per format) holds a first file whose batch has a bad value in a declared, a key,
an undeclared and the event-time column, then good files and every kind of malformed file. Each
``Case`` says which rows must load (by ``sensor``), which must be quarantined (with a reason that
contains the given text) and whether the whole file must be set aside.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = ("csv", "json", "jsonl", "parquet")
COLUMNS = ("id", "ts", "sensor", "level", "n")
BIG = "99999999999999999999"  # 20 digits: beyond BIGINT
# Internal structures that must never reach a message: Arrow schemas and tables, DuckDB's
# error classes and batch dumps.
INTERNALS = ("pyarrow.Table", "----", "FieldRef", "__fragment_index", "Binder Error",
             "Conversion Error", "Invalid Input Error", "ArrowInvalid", "Traceback", "child 0")  # fmt: skip


@dataclass
class Case:
    name: str
    content: bytes
    good: list[str] = field(default_factory=list)  # sensors of the rows that must load
    bad: list[str] = field(default_factory=list)  # a text each quarantined row's reason holds
    set_aside: str | None = None  # a text the set-aside reason holds
    after_fix: list[str] = field(default_factory=list)  # sensors that load on replay after the fix


def record(i: int, **values: Any) -> dict[str, Any]:
    base = {"id": i, "ts": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "sensor": f"s{i}", "level": i + 0.5, "n": i}  # fmt: skip
    return base | values


def encode(fmt: str, rows: list[dict[str, Any]], as_text: bool = False) -> bytes:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().encode()
    if fmt == "json":
        return json.dumps(rows).encode()
    if fmt == "jsonl":
        return "\n".join(json.dumps(r) for r in rows).encode() + b"\n"
    names = list(rows[0])
    if as_text:
        columns = {k: pa.array([None if r[k] is None else str(r[k]) for r in rows]) for k in names}
    else:
        columns = {k: pa.array([r[k] for r in rows]) for k in names}
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def corpus(fmt: str, start: int) -> list[Case]:
    """Every case for one format; ids from ``start`` so formats never share a key."""
    i = start
    cases: list[Case] = []

    def ids(count: int) -> list[int]:
        nonlocal i
        i += count
        return list(range(i - count, i))

    # 1. The first batch: one bad value in the declared (level), the key (id), an undeclared (n)
    #    and the event-time (ts) column, among twelve rows; the many decide the types.
    first = [record(k) for k in ids(12)]
    first[2]["level"] = "abc"
    first[4]["id"] = "x"
    first[6]["n"] = "oops"
    first[8]["ts"] = "not-a-time"
    bad_rows = {2: "level: abc is not DOUBLE", 4: "id: x is not BIGINT", 6: "n: oops is not BIGINT",
                8: "ts: not-a-time is not TIMESTAMP WITH TIME ZONE"}  # fmt: skip
    cases.append(Case("a_first", encode(fmt, first, as_text=True),
                      good=[r["sensor"] for k, r in enumerate(first) if k not in bad_rows],
                      bad=list(bad_rows.values())))  # fmt: skip

    # 2. Mixed timestamp spellings and offsets, all one instant each.
    spelled = ["2026-01-01 00:00:01+00", "2026-01-01T00:00:05Z", "2026-01-01T02:00:06+02:00",
               "2026-01-01T00:00:07.250Z", "2026-01-01 01:00:08+0100"]  # fmt: skip
    mixed = [record(k, ts=t) for k, t in zip(ids(5), spelled, strict=True)]
    content = encode(fmt, mixed)
    if fmt == "csv":  # a BOM, CRLF line ends and a quoted newline keep working
        mixed[0]["sensor"] = "s-two\nlines"
        content = b"\xef\xbb\xbf" + encode(fmt, mixed).replace(b"\n", b"\r\n")
        content = content.replace(b"s-two\r\nlines", b"s-two\nlines")
    cases.append(Case("b_timestamps", content, good=[r["sensor"] for r in mixed]))

    # 3. Empty and header-only: zero rows, not an error.
    cases.append(Case("c_empty", b""))
    header_only = {"csv": b"id,ts,sensor,level,n\n", "json": b"[]", "jsonl": b"\n"}.get(fmt)
    if header_only is None:
        sink = io.BytesIO()
        pq.write_table(pa.table({c: pa.array([], pa.string()) for c in COLUMNS}), sink)
        header_only = sink.getvalue()
    cases.append(Case("d_header_only", header_only))

    # 4. Binary garbage: set aside.
    noise = random.Random(14).randbytes(3072)
    reason = {"csv": "binary data", "json": "binary data", "jsonl": "binary data",
              "parquet": "not readable as Parquet"}[fmt]  # fmt: skip
    cases.append(Case("e_random", noise, set_aside=reason))

    # 5. Truncated: JSON and Parquet cannot be read (set aside); a CSV or JSON Lines file loses
    #    its last line only (quarantined).
    rows = [record(k) for k in ids(4)]
    whole = encode(fmt, rows)
    if fmt in ("csv", "jsonl"):
        cut = whole[: whole.rindex(b"s" + str(rows[-1]["id"]).encode()) + 2]
        text = "expected 5 columns" if fmt == "csv" else "not valid JSON"
        cases.append(Case("f_truncated", cut, good=[r["sensor"] for r in rows[:-1]], bad=[text]))
    else:
        reason = "not valid JSON" if fmt == "json" else "not readable as Parquet"
        cases.append(Case("f_truncated", whole[: len(whole) * 2 // 3], set_aside=reason))

    # 6. Repeated column names (CSV and Parquet): set aside, naming the file and the column;
    #    loaded as level, level_2 once the publisher opts in.
    if fmt in ("csv", "parquet"):
        rows = [record(k) for k in ids(3)]
        if fmt == "csv":
            content = b"id,ts,sensor,level,level\n" + b"".join(
                f"{r['id']},{r['ts']},{r['sensor']},{r['level']},7\n".encode() for r in rows
            )
        else:
            table = pa.table([pa.array([r[c] for r in rows]) for c in COLUMNS[:4]]
                             + [pa.array([7.0] * 3)], names=[*COLUMNS[:4], "level"])  # fmt: skip
            sink = io.BytesIO()
            pq.write_table(table, sink)
            content = sink.getvalue()
        cases.append(Case("g_repeated_header", content, set_aside="column 'level' appears twice",
                          after_fix=[r["sensor"] for r in rows]))  # fmt: skip

    # 7. Ragged rows (CSV: quarantined by line); records of different shapes (JSON: nulls).
    rows = [record(k) for k in ids(4)]
    if fmt == "csv":
        lines = encode(fmt, rows).decode().splitlines()
        lines[2] += ",extra"
        content = ("\n".join(lines) + "\n").encode()
        cases.append(Case("h_ragged", content, good=[r["sensor"] for k, r in enumerate(rows) if k != 1],
                          bad=["expected 5 columns, found 6"]))  # fmt: skip
    elif fmt in ("json", "jsonl"):
        del rows[1]["n"]
        cases.append(Case("h_ragged", encode(fmt, rows), good=[r["sensor"] for r in rows]))

    # 8. Latin-1 bytes where UTF-8 is declared (the default): that row is quarantined.
    if fmt != "parquet":
        rows = [record(k) for k in ids(3)]
        rows[1]["sensor"] = "caf\u00e9"
        content = encode(fmt, rows).replace("caf\u00e9".encode(), b"caf\xe9")
        if fmt == "json":
            content = json.dumps(rows, ensure_ascii=False).encode("latin-1")
        elif fmt == "jsonl":
            content = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode("latin-1")
        cases.append(Case("i_latin1", content, good=[rows[0]["sensor"], rows[2]["sensor"]],
                          bad=["not valid utf-8"]))  # fmt: skip

    # 9. A 20-digit integer: kept exactly in a new column (DECIMAL(38,0)); quarantined in a
    #    BIGINT column.
    rows = [record(k, serial=BIG[:-1] + str(k % 10)) for k in ids(3)]
    rows[2]["n"] = BIG
    if fmt in ("json", "jsonl"):
        lines = [_numbers(json.dumps(r)) for r in rows]  # the long digits as JSON numbers
        text = ("[" + ", ".join(lines) + "]") if fmt == "json" else "\n".join(lines)
        content = text.encode()
    elif fmt == "csv":
        content = encode(fmt, rows)
    else:
        table = pa.table({"id": [r["id"] for r in rows], "ts": [r["ts"] for r in rows],
                          "sensor": [r["sensor"] for r in rows], "level": [r["level"] for r in rows],
                          "n": [str(r["n"]) for r in rows],
                          "serial": pa.array([int(r["serial"]) for r in rows], pa.decimal128(38, 0))})  # fmt: skip
        sink = io.BytesIO()
        pq.write_table(table, sink)
        content = sink.getvalue()
    cases.append(Case("j_big_integer", content, good=[r["sensor"] for r in rows[:2]],
                      bad=[f"n: {BIG} is not BIGINT"]))  # fmt: skip

    # 10. JSON only: NaN and Infinity, and records that are not objects.
    if fmt in ("json", "jsonl"):
        rows = [record(k) for k in ids(4)]
        lines = [json.dumps(r) for r in rows]
        lines[1] = lines[1].replace(str(rows[1]["level"]), "NaN")
        lines[2] = lines[2].replace(str(rows[2]["level"]), "Infinity")
        lines.insert(3, "[1, 2]")
        lines.insert(3, "42")
        content = ("[" + ", ".join(lines) + "]") if fmt == "json" else "\n".join(lines)
        cases.append(Case("k_nan_and_non_objects", content.encode(),
                          good=[rows[0]["sensor"], rows[3]["sensor"]],
                          bad=["level: NaN is not a JSON number", "level: Infinity is not a JSON number",
                               "not a JSON object", "not a JSON object"]))  # fmt: skip

    # 11. A good file after all of them.
    rows = [record(k) for k in ids(5)]
    cases.append(Case("z_good", encode(fmt, rows), good=[r["sensor"] for r in rows]))
    return cases


def _numbers(line: str) -> str:
    """Long digit strings as JSON numbers (json.dumps of a Python int would do, but keep it plain)."""
    for digits in {BIG, *(BIG[:-1] + str(d) for d in range(10))}:
        line = line.replace(f'"{digits}"', digits)
    return line


def write_corpus(folder: Path, fmt: str, start: int) -> list[Case]:
    folder.mkdir(parents=True, exist_ok=True)
    cases = corpus(fmt, start)
    for case in cases:
        (folder / f"{case.name}.{fmt}").write_bytes(case.content)
    return cases
