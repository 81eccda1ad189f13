"""The read side of the lakehouse: typed reads of tables, snapshots, statistics, quality evidence
and dataset versions, each at the current snapshot or pinned to one.

Every consumer — the CLI's ``tables``/``status``/``history``, the quality report and Data Docs,
the catalog and its API — reads through here; none of them writes SQL of its own.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from urbanlake.core.errors import NotFound
from urbanlake.lakehouse.connection import LAKE, is_locked, sql_string
from urbanlake.lakehouse.raw import RawStore
from urbanlake.lakehouse.records import QUARANTINE_SUFFIX, TableRef, TableStats
from urbanlake.lakehouse.schema import PLATFORM, platform_table

RECENT_BATCHES = 10  # how many recent batches a quality score covers
LOCK_WAIT = 30.0  # seconds a read goes on trying a locked SQLite catalog


def at_clause(version: int | None = None, timestamp: datetime | str | None = None) -> str:
    """``AT (VERSION => n)`` or ``AT (TIMESTAMP => …)`` — empty for the current snapshot."""
    if version is not None:
        return f" AT (VERSION => {int(version)})"
    if timestamp is not None:
        value = timestamp.isoformat() if isinstance(timestamp, datetime) else str(timestamp)
        return f" AT (TIMESTAMP => {sql_string(value)}::TIMESTAMPTZ)"
    return ""


def arrow_of(result: duckdb.DuckDBPyConnection) -> pa.Table:
    table = result.arrow()
    return table.read_all() if hasattr(table, "read_all") else table


class LakeReader:
    """Reads of one lake through one DuckDB connection (or a cursor of it, one per thread)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, raw: RawStore | None = None):
        self.con = con
        self.raw = raw

    def cursor(self) -> LakeReader:
        """A reader on a cursor of the same connection: what each API request thread uses."""
        return LakeReader(self.con.cursor(), self.raw)

    def execute(self, sql: str, parameters: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Run a statement; a SQLite catalog still locked after SQLite's own wait (a long commit
        of another process) is tried again, for up to ``LOCK_WAIT`` seconds in all."""
        waited = 0.0
        while True:
            try:
                return self.con.execute(sql, parameters or [])
            except duckdb.Error as exc:
                if not is_locked(exc) or waited >= LOCK_WAIT:
                    raise
                pause = min(1.0, 0.05 + waited / 2)
                time.sleep(pause)
                waited += pause

    def document(self, uri: str) -> bytes:
        """A payload or document kept in the lake's raw zone."""
        if self.raw is None:
            raise NotFound(f"this reader has no raw zone to read {uri} from")
        return self.raw.get(uri)

    def close(self) -> None:
        self.con.close()

    # -- generic ---------------------------------------------------------------------------------

    def query(self, sql: str, parameters: list[Any] | None = None) -> pa.Table:
        """An analyst's SQL, as Arrow."""
        return arrow_of(self.execute(sql, parameters or []))

    def current_snapshot(self) -> int:
        row = self.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()
        return int(row[0]) if row else 0

    def snapshot_time(self, snapshot: int) -> datetime | None:
        row = self.execute(
            f"SELECT snapshot_time FROM {LAKE}.snapshots() WHERE snapshot_id = ?", [snapshot]
        ).fetchone()
        return row[0] if row else None

    def snapshot_at(self, moment: datetime) -> int | None:
        """The newest snapshot committed at or before ``moment``."""
        row = self.execute(
            f"SELECT max(snapshot_id) FROM {LAKE}.snapshots() WHERE snapshot_time <= ?", [moment]
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    # -- tables ----------------------------------------------------------------------------------

    def table_names(self) -> list[TableRef]:
        rows = self.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1, 2",
            [LAKE],
        ).fetchall()
        return [TableRef(s, t) for s, t in rows]

    def tables_in(self, schema: str) -> set[str]:
        return {t.name for t in self.table_names() if t.domain == schema}

    def column_types(self, table: TableRef, version: int | None = None) -> dict[str, str]:
        """Column name → SQL type (empty if the table does not exist), now or at a version."""
        if version is not None:
            try:
                rows = self.execute(
                    f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {table.sql}{at_clause(version)})"
                ).fetchall()
            except duckdb.CatalogException:
                return {}
            return {name: kind for name, kind in rows}
        rows = self.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = ? AND schema_name = ? AND table_name = ? ORDER BY column_index",
            [LAKE, table.domain, table.name],
        ).fetchall()
        return {name: kind for name, kind in rows}

    def exists(self, table: TableRef) -> bool:
        return bool(self.column_types(table))

    def require(self, table: TableRef) -> None:
        if not self.exists(table):
            raise NotFound(f"no table {table}; `urbanlake tables` lists them")

    def read_table(
        self,
        table: TableRef,
        version: int | None = None,
        timestamp: datetime | str | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """The table as of a snapshot version or a point in time (default: now)."""
        self.require(table)
        sql = f"SELECT * FROM {table.sql}{at_clause(version, timestamp)}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.query(sql)

    def row_count(self, table: TableRef, version: int | None = None) -> int:
        row = self.execute(f"SELECT count(*) FROM {table.sql}{at_clause(version)}").fetchone()
        return int(row[0]) if row else 0

    def snapshots(self, table: TableRef | None = None) -> list[dict[str, Any]]:
        """Snapshots, newest first; with ``table``, only those that changed it, with row counts."""
        rows = self.execute(
            f"SELECT snapshot_id, snapshot_time, changes, commit_message, commit_extra_info "
            f"FROM {LAKE}.snapshots() ORDER BY snapshot_id DESC"
        ).fetchall()
        snapshots = []
        for snapshot_id, when, changes, message, extra in rows:
            info = json.loads(extra) if extra else {}
            if table is not None and str(table) not in info.get("datasets", [info.get("dataset")]):
                created = str(table) in (changes or {}).get("tables_created", [])
                if not created:
                    continue
            if table is not None and "inserted_by_dataset" in info:
                info["inserted"] = info["inserted_by_dataset"].get(str(table), 0)
            snapshots.append(
                {"snapshot_id": snapshot_id, "time": when, "changes": changes, "message": message,
                 **info}
            )  # fmt: skip
        if table is not None:
            for snap in snapshots:
                snap["rows"] = self.row_count(table, int(snap["snapshot_id"]))
        return snapshots

    def last_change(self, table: TableRef, upto: int | None = None) -> int | None:
        """The newest snapshot (up to ``upto``) that changed ``table``'s rows or schema (None: it
        does not exist)."""
        row = self.execute(
            "SELECT table_id FROM __ducklake_metadata_lake.ducklake_table t "
            "JOIN __ducklake_metadata_lake.ducklake_schema s USING (schema_id) "
            "WHERE s.schema_name = ? AND t.table_name = ? AND t.end_snapshot IS NULL",
            [table.domain, table.name],
        ).fetchone()
        if not row:
            return None
        found = self.execute(
            f"SELECT max(snapshot_id) FROM {LAKE}.snapshots() s, "
            "LATERAL (SELECT unnest(map_values(s.changes)) AS touched) "
            "WHERE (list_contains(touched, ?) OR list_contains(touched, ?)) AND snapshot_id <= ?",
            [str(row[0]), str(table), upto if upto is not None else 2**62],
        ).fetchone()
        return int(found[0]) if found and found[0] is not None else None

    def table_stats(self) -> list[TableStats]:
        """Every data table: rows, last commit and quarantined rows."""
        last = {
            dataset: when
            for dataset, when in self.execute(
                f"SELECT dataset, max(committed_at) FROM {platform_table('commits')} GROUP BY dataset"
            ).fetchall()
        }
        names = self.table_names()
        present = {str(t) for t in names}
        stats = []
        for table in names:
            if table.domain == PLATFORM or table.name.endswith(QUARANTINE_SUFFIX):
                continue
            quarantine = table.quarantine
            bad = self.row_count(quarantine) if str(quarantine) in present else 0
            stats.append(
                TableStats(str(table), self.row_count(table), last.get(str(table)), None, bad)
            )
        return stats

    # -- connector state -------------------------------------------------------------------------

    def read_state(self, connector: str) -> dict[str, Any]:
        """The state committed with the connector's latest batch (empty before the first)."""
        row = self.execute(
            f"SELECT state FROM {platform_table('connector_state')} WHERE connector = ? "
            "ORDER BY committed_at DESC, batch DESC LIMIT 1",
            [connector],
        ).fetchone()
        return json.loads(row[0]) if row else {}

    def known_payloads(self, connector: str) -> dict[str, str]:
        """sha256 → raw-zone URI of every payload the connector ever kept."""
        rows = self.execute(
            f"SELECT sha256, any_value(uri) FROM {platform_table('payloads')} WHERE connector = ? GROUP BY sha256",
            [connector],
        ).fetchall()
        return dict(rows)

    # -- quality evidence ------------------------------------------------------------------------

    def quality_scores(
        self, until: datetime | None = None
    ) -> dict[str, tuple[float | None, datetime | None]]:
        """dataset → (share passed over its recent batches, time of the last batch that passed);
        with ``until``, as known at that moment."""
        rows = self.query(
            f"""WITH batches AS (
                SELECT dataset, run_id, batch, max(validated_at) AS checked_at, bool_and(success) AS passed,
                       count(*) FILTER (WHERE success) AS ok, count(*) AS n,
                       row_number() OVER (PARTITION BY dataset ORDER BY max(validated_at) DESC) AS recent
                FROM {platform_table("quality_results")}
                WHERE ?::TIMESTAMPTZ IS NULL OR validated_at <= ?
                GROUP BY dataset, run_id, batch)
            SELECT dataset,
                   sum(ok) FILTER (WHERE recent <= {RECENT_BATCHES}) / sum(n) FILTER (WHERE recent <= {RECENT_BATCHES}) AS score,
                   max(checked_at) FILTER (WHERE passed) AS last_passed
            FROM batches GROUP BY dataset""",
            [until, until],
        ).to_pylist()
        return {r["dataset"]: (r["score"], r["last_passed"]) for r in rows}

    def latest_quality_results(
        self, dataset: str, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The latest result of each expectation of the dataset (validated by ``until``)."""
        return self.query(
            f"""SELECT expectation, column_name, kwargs, success, observed_value, unexpected_count,
                      unexpected_percent, validated_at, run_id, batch, snapshot_id, result_uri
               FROM {platform_table("quality_results")}
               WHERE dataset = ? AND (?::TIMESTAMPTZ IS NULL OR validated_at <= ?)
               QUALIFY row_number() OVER (PARTITION BY expectation, column_name ORDER BY validated_at DESC, batch DESC) = 1
               ORDER BY expectation, column_name""",
            [dataset, until, until],
        ).to_pylist()

    def quality_trend(
        self, dataset: str, runs: int = 10, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Per recent run (up to ``until``): batches validated, expectation results passed and
        failed, rows quarantined."""
        return self.query(
            f"""SELECT q.run_id, min(q.validated_at) AS validated_at, count(DISTINCT q.batch) AS batches,
                      count(*) FILTER (WHERE q.success) AS passed, count(*) FILTER (WHERE NOT q.success) AS failed,
                      any_value(r.rows_quarantined) AS quarantined
               FROM {platform_table("quality_results")} q LEFT JOIN {platform_table("runs")} r USING (run_id)
               WHERE q.dataset = ? AND (?::TIMESTAMPTZ IS NULL OR q.validated_at <= ?)
               GROUP BY q.run_id ORDER BY validated_at DESC LIMIT ?""",
            [dataset, until, until, runs],
        ).to_pylist()

    def stored_quality_results(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` validated batches that kept a GX result document, newest first."""
        return self.query(
            f"""SELECT dataset, run_id, batch, max(validated_at) AS validated_at, result_uri
               FROM {platform_table("quality_results")} WHERE result_uri IS NOT NULL
               GROUP BY dataset, run_id, batch, result_uri
               ORDER BY validated_at DESC, dataset, batch DESC LIMIT ?""",
            [limit],
        ).to_pylist()

    # -- curated dataset versions ----------------------------------------------------------------

    def dataset_versions(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """Published versions, newest first (of one dataset, or of all)."""
        where = "WHERE dataset = ?" if dataset is not None else ""
        rows = self.query(
            f"SELECT * FROM {platform_table('dataset_versions')} {where} ORDER BY version DESC",
            [dataset] if dataset is not None else [],
        ).to_pylist()
        for row in rows:
            row["inputs"] = json.loads(row["inputs"]) if row["inputs"] else []
            row["statistics"] = json.loads(row["statistics"]) if row["statistics"] else {}
        return rows

    def latest_dataset_versions(self) -> dict[str, dict[str, Any]]:
        """dataset → its newest published version."""
        latest: dict[str, dict[str, Any]] = {}
        for row in self.dataset_versions():
            latest.setdefault(row["dataset"], row)
        return latest
