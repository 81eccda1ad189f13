"""The platform's own tables (``platform.*``): their columns, their creation and migration, and
inserts that always name their columns, so adding a column never shifts another one's values."""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from urbanlake.lakehouse.connection import LAKE

PLATFORM = "platform"

# Table → column → SQL type. New columns go at the end; `create_platform_tables` adds them to
# lakes made by an older version.
PLATFORM_TABLES: dict[str, dict[str, str]] = {
    "runs": {
        "run_id": "VARCHAR", "connector": "VARCHAR", "status": "VARCHAR",
        "started_at": "TIMESTAMPTZ", "finished_at": "TIMESTAMPTZ", "payloads": "BIGINT",
        "rows_in": "BIGINT", "rows_committed": "BIGINT", "rows_quarantined": "BIGINT",
        "rows_duplicate": "BIGINT", "bytes": "BIGINT", "seconds": "DOUBLE", "error": "VARCHAR",
        "quality_failures": "BIGINT", "payloads_failed": "BIGINT",
    },
    "commits": {
        "dataset": "VARCHAR", "run_id": "VARCHAR", "batch": "INTEGER", "committed_at": "TIMESTAMPTZ",
        "rows_in": "BIGINT", "rows_inserted": "BIGINT", "rows_quarantined": "BIGINT",
        "rows_duplicate": "BIGINT", "rows_total": "BIGINT", "payload_sha256": "VARCHAR",
        "origin": "VARCHAR",
    },
    "connector_state": {
        "connector": "VARCHAR", "run_id": "VARCHAR", "batch": "INTEGER",
        "committed_at": "TIMESTAMPTZ", "state": "VARCHAR",
    },
    "payloads": {
        "sha256": "VARCHAR", "connector": "VARCHAR", "uri": "VARCHAR", "size": "BIGINT",
        "origin": "VARCHAR", "run_id": "VARCHAR", "first_seen": "TIMESTAMPTZ",
        # 'loaded', or 'failed' (set aside: not decodable; `urbanlake replay` decodes it again).
        # NULL in lakes older than the column: those payloads were loaded.
        "status": "VARCHAR", "error": "VARCHAR", "status_at": "TIMESTAMPTZ",
    },
    "quality_results": {
        "dataset": "VARCHAR", "run_id": "VARCHAR", "batch": "INTEGER", "snapshot_id": "BIGINT",
        "validated_at": "TIMESTAMPTZ", "expectation": "VARCHAR", "column_name": "VARCHAR",
        "kwargs": "VARCHAR", "success": "BOOLEAN", "row_level": "BOOLEAN",
        "observed_value": "VARCHAR", "unexpected_count": "BIGINT", "unexpected_percent": "DOUBLE",
        "on_failure": "VARCHAR", "result_uri": "VARCHAR",
    },
    # One row per published version of a curated dataset: what it was made from (lineage) and
    # its statistics, made once when the version is made.
    "dataset_versions": {
        "dataset": "VARCHAR", "version": "BIGINT", "made_at": "TIMESTAMPTZ",
        "source_table": "VARCHAR", "row_count": "BIGINT", "inputs": "VARCHAR",
        "statistics": "VARCHAR", "how": "VARCHAR",
    },
    # The catalog API's requests per minute, caller, dataset, endpoint and status: each API
    # worker counts in memory and appends its counts in batches (one row per worker and group).
    "api_usage": {
        "minute": "TIMESTAMPTZ", "key": "VARCHAR", "tier": "VARCHAR", "address": "VARCHAR",
        "dataset": "VARCHAR", "endpoint": "VARCHAR", "method": "VARCHAR", "status": "INTEGER",
        "requests": "BIGINT", "bytes": "BIGINT", "worker": "VARCHAR",
    },
}  # fmt: skip

QUARANTINE_TABLE: dict[str, str] = {
    "run_id": "VARCHAR", "batch": "INTEGER", "quarantined_at": "TIMESTAMPTZ", "origin": "VARCHAR",
    "payload_sha256": "VARCHAR", "line": "BIGINT", "check_name": "VARCHAR", "reason": "VARCHAR",
    "raw_record": "VARCHAR",
}  # fmt: skip


def column_list(columns: dict[str, str]) -> str:
    """``name TYPE, …`` for a CREATE TABLE."""
    return ", ".join(f"{name} {kind}" for name, kind in columns.items())


def insert_sql(target: str, columns: list[str], select: str | None = None) -> str:
    """``INSERT INTO target (c1, c2) VALUES (?, ?)`` — or ``… SELECT …`` — with named columns."""
    named = ", ".join(columns)
    if select is None:
        return f"INSERT INTO {target} ({named}) VALUES ({', '.join('?' * len(columns))})"
    return f"INSERT INTO {target} ({named}) {select}"


def platform_table(name: str) -> str:
    """The qualified SQL name of a platform table."""
    if name not in PLATFORM_TABLES:
        raise KeyError(f"no platform table {name}")
    return f"{LAKE}.{PLATFORM}.{name}"


def create_platform_tables(
    con: duckdb.DuckDBPyConnection,
    existing_tables: set[str],
    column_types: Callable[[str], dict[str, str]],
) -> None:
    """Create the platform's tables, and add the columns a newer version introduced."""
    if not existing_tables:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {LAKE}.{PLATFORM}")
    for name, columns in PLATFORM_TABLES.items():
        if name not in existing_tables:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {platform_table(name)} ({column_list(columns)})"
            )
            continue
        have = column_types(name)
        for column, kind in columns.items():
            if column not in have:
                con.execute(f"ALTER TABLE {platform_table(name)} ADD COLUMN {column} {kind}")
