"""Published versions of curated datasets: SQL models materialized as lake tables, and each
version's statistics, made once when the version is made and kept in ``platform.dataset_versions``.

Statistics cost what the change costs, not what the table holds: after an append they merge the
previous version's figures with those of the rows inserted since (DuckLake's change feed); only a
first version, a version after deletes or updates, or a rebuilt model reads the whole version.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from urbanlake.core.errors import LakeError
from urbanlake.lakehouse.connection import LAKE, sql_string
from urbanlake.lakehouse.normalize import quote
from urbanlake.lakehouse.reader import at_clause
from urbanlake.lakehouse.records import TableRef
from urbanlake.lakehouse.schema import PLATFORM_TABLES, insert_sql, platform_table

if TYPE_CHECKING:
    from urbanlake.lakehouse.lake import Lake

METADATA = f"__ducklake_metadata_{LAKE}"
# A distinct-count estimate is merged as a lower bound after appends, and made afresh from the
# whole version once the table has grown this much since the last time it was.
DISTINCT_REFRESH_GROWTH = 1.25
ORDERED = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL",
           "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "DATE", "TIME", "TIMESTAMP", "VARCHAR",
           "BOOLEAN")  # fmt: skip


@dataclass
class VersionRecord:
    dataset: str
    version: int
    source_table: str
    inputs: list[dict[str, Any]]
    how: str  # "table" or "model"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _has_order(sql_type: str) -> bool:
    return sql_type.upper().startswith(ORDERED)


def _aggregates(columns: dict[str, str]) -> str:
    parts = ["count(*)"]
    for name, kind in columns.items():
        q = quote(name)
        order = _has_order(kind)
        parts += [
            f"min({q})" if order else "NULL",
            f"max({q})" if order else "NULL",
            f"count(*) - count({q})",
            f"approx_count_distinct({q})" if order else "NULL",
        ]
    return ", ".join(parts)


def _read_stats(row: tuple[Any, ...], columns: dict[str, str]) -> tuple[int, dict[str, Any]]:
    count, values = int(row[0]), row[1:]
    stats = {}
    for i, (name, kind) in enumerate(columns.items()):
        low, high, nulls, distinct = values[4 * i : 4 * i + 4]
        stats[name] = {"type": kind, "min": _jsonable(low), "max": _jsonable(high),
                       "null_count": int(nulls), "distinct_estimate": distinct}  # fmt: skip
    return count, stats


def version_statistics(
    con: duckdb.DuckDBPyConnection,
    table: TableRef,
    version: int,
    previous: dict[str, Any] | None,
) -> tuple[int, dict[str, Any]]:
    """(exact row count, per-column statistics) of ``table`` at ``version``.

    ``previous`` is the last published version's record of the same table; when every change
    since it was an insert, only the inserted rows are read.
    """
    columns = dict(
        con.execute(
            f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {table.sql}{at_clause(version)})"
        ).fetchall()
    )
    prior = previous["statistics"].get("columns") if previous else None
    if previous and prior is not None and set(prior) == set(columns):
        since = int(previous["version"])
        delta = _appended_only(con, table, since, version)
        full_rows = int(previous["statistics"].get("distinct_full_at_rows") or 0)
        if delta is not None:
            count, fresh = _merge(con, table, columns, since, version, previous)
            refresh = count > full_rows * DISTINCT_REFRESH_GROWTH
            if not refresh:
                return count, {"columns": fresh, "distinct_full_at_rows": full_rows,
                               "method": "incremental"}  # fmt: skip
    row = con.execute(
        f"SELECT {_aggregates(columns)} FROM {table.sql}{at_clause(version)}"
    ).fetchone()
    assert row is not None
    count, stats = _read_stats(row, columns)
    return count, {"columns": stats, "distinct_full_at_rows": count, "method": "full"}


def _appended_only(
    con: duckdb.DuckDBPyConnection, table: TableRef, since: int, version: int
) -> int | None:
    """Rows inserted after ``since`` up to ``version`` if nothing was deleted or updated (and the
    table was not replaced) in between; None otherwise."""
    if version <= since:
        return 0
    try:
        row = con.execute(
            f"SELECT count(*) FILTER (WHERE change_type = 'insert'), count(*) FILTER (WHERE change_type <> 'insert') "
            f"FROM ducklake_table_changes('{LAKE}', ?, ?, ?, ?)",
            [table.domain, table.name, since + 1, version],
        ).fetchone()
    except duckdb.Error:
        return None  # the table did not exist as such at ``since``
    if row is None or row[1]:
        return None
    return int(row[0])


def _merge(
    con: duckdb.DuckDBPyConnection,
    table: TableRef,
    columns: dict[str, str],
    since: int,
    version: int,
    previous: dict[str, Any],
) -> tuple[int, dict[str, Any]]:
    inserted = (
        f"(SELECT * FROM ducklake_table_insertions('{LAKE}', {sql_string(table.domain)}, "
        f"{sql_string(table.name)}, {since + 1}, {version}))"
    )
    row = (
        con.execute(f"SELECT {_aggregates(columns)} FROM {inserted}").fetchone()
        if version > since
        else None
    )
    before = previous["statistics"]["columns"]
    count = int(previous["row_count"]) + (int(row[0]) if row else 0)
    if row is None:
        return count, before
    _, delta = _read_stats(row, columns)
    merged = {}
    for name, kind in columns.items():
        old, new = before[name], delta[name]
        low, high = old["min"], old["max"]
        if _has_order(kind):
            pair = con.execute(
                f"SELECT least(CAST(? AS {kind}), CAST(? AS {kind})), greatest(CAST(? AS {kind}), CAST(? AS {kind}))",
                [old["min"], new["min"], old["max"], new["max"]],
            ).fetchone()
            low, high = (_jsonable(pair[0]), _jsonable(pair[1])) if pair else (low, high)
        merged[name] = {"type": kind, "min": low, "max": high,
                        "null_count": old["null_count"] + new["null_count"],
                        "distinct_estimate": max(old["distinct_estimate"] or 0, new["distinct_estimate"] or 0)}  # fmt: skip
    return count, merged


def record_version(
    lake: Lake, record: VersionRecord, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """Compute the version's statistics and add it to ``platform.dataset_versions``."""
    table = TableRef.parse(record.source_table)
    count, stats = version_statistics(lake.con, table, record.version, previous)
    row = {"dataset": record.dataset, "version": record.version, "made_at": datetime.now(UTC),
           "source_table": record.source_table, "row_count": count,
           "inputs": json.dumps(record.inputs), "statistics": json.dumps(stats), "how": record.how}  # fmt: skip
    columns = list(PLATFORM_TABLES["dataset_versions"])
    lake._retry(
        lambda: lake.con.execute(
            insert_sql(platform_table("dataset_versions"), columns), [row[c] for c in columns]
        )
    )
    return {**row, "inputs": record.inputs, "statistics": stats}


def materialize_model(
    lake: Lake, table: TableRef, sql: str, inputs: list[str]
) -> tuple[int, list[dict[str, Any]]]:
    """Rebuild a SQL model's table in one snapshot; returns that snapshot and its ``inputs`` (the
    tables it reads) each with the snapshot of its last change, as the model saw it."""
    tag = f"materialize {table} {uuid.uuid4().hex}"

    def work() -> list[dict[str, Any]]:
        seen = [
            {"table": t, "snapshot": lake.reader.last_change(TableRef.parse(t))} for t in inputs
        ]
        lake.con.execute(f"CREATE SCHEMA IF NOT EXISTS {LAKE}.{quote(table.domain)}")
        lake.con.execute(f"CREATE OR REPLACE TABLE {table.sql} AS {sql}")
        lake.con.execute(f"CALL {LAKE}.set_commit_message('urbanlake', ?)", [tag])
        return seen

    try:
        seen = lake._retry(work)
    except duckdb.Error as exc:
        raise LakeError(f"the SQL model of {table} failed: {exc}") from exc
    found = lake.con.execute(
        f"SELECT snapshot_id FROM {LAKE}.snapshots() WHERE commit_message = ?", [tag]
    ).fetchone()
    if not found:
        raise LakeError(f"the materialization of {table} left no snapshot")
    return int(found[0]), seen


def model_inputs(lake: Lake, sql: str) -> list[str]:
    """The lake tables a SQL model reads, as ``<domain>.<table>``."""
    try:
        names = duckdb.get_table_names(sql, qualified=True)
    except duckdb.Error as exc:
        raise LakeError(f"the SQL model cannot be parsed: {exc}") from exc
    known = {str(t) for t in lake.reader.table_names()}
    found = set()
    for name in names:
        parts = [p.strip('"') for p in name.split(".")]
        candidate = ".".join(parts[-2:])
        if candidate in known:
            found.add(candidate)
    return sorted(found)


def model_columns(lake: Lake, sql: str) -> list[str]:
    """The columns a SQL model gives (without running it)."""
    rows = lake.con.execute(f"DESCRIBE {sql}").fetchall()
    return [r[0] for r in rows]
