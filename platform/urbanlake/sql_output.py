"""Rendering query results for people and files (table, CSV, JSON, Parquet) and the SQL shell."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

MAX_SCREEN_ROWS = 1000


def to_rich(result: pa.Table) -> Table:
    table = Table(show_lines=False)
    for name in result.column_names:
        table.add_column(name)
    for row in result.slice(0, MAX_SCREEN_ROWS).to_pylist():
        table.add_row(*("NULL" if v is None else str(v) for v in row.values()))
    if result.num_rows > MAX_SCREEN_ROWS:
        table.caption = f"{MAX_SCREEN_ROWS:,} of {result.num_rows:,} rows shown; use --format csv -o FILE for all"
    else:
        table.caption = f"{result.num_rows:,} row(s)"
    return table


def render(result: pa.Table, fmt: str, output: Path | None, console: Console) -> None:
    """Write ``result`` in ``fmt`` to ``output`` (or standard output). No row is ever cut from a file."""
    if fmt == "table" and output is None:
        console.print(to_rich(result))
        return
    buffer = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(result, buffer)
    elif fmt == "json":
        buffer.write(orjson.dumps(result.to_pylist(), default=str, option=orjson.OPT_INDENT_2))
        buffer.write(b"\n")
    elif fmt == "parquet":
        if output is None and sys.stdout.isatty():
            raise SystemExit("parquet is binary: give --output FILE")
        pq.write_table(result, buffer)
    else:  # table into a file: a plain-text rendering
        Console(
            file=io.TextIOWrapper(buffer, encoding="utf-8", write_through=True), width=200
        ).print(to_rich(result))
    data = buffer.getvalue()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        console.print(f"wrote {result.num_rows:,} row(s) to {output}", highlight=False)


def shell(lake: Any, console: Console) -> None:
    """A small interactive SQL shell: statements end with ';', .tables lists tables, .quit leaves."""
    console.print(
        "UrbanLake SQL — tables are <domain>.<table>; end statements with ';'. .tables, .quit"
    )
    buffer: list[str] = []
    while True:
        try:
            line = input("urbanlake> " if not buffer else "      ...> ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        stripped = line.strip()
        if not buffer and stripped in (".quit", ".exit", "\\q"):
            return
        if not buffer and stripped == ".tables":
            console.print("\n".join(str(t) for t in lake.table_names()))
            continue
        buffer.append(line)
        if not stripped.endswith(";"):
            continue
        statement = "\n".join(buffer)
        buffer.clear()
        try:
            console.print(to_rich(lake.query(statement)))
        except Exception as exc:
            console.print(f"[red]error:[/red] {exc}")
