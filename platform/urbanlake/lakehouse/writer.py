"""The write side of the lakehouse: one snapshot per batch with its rows, quarantined rows,
quality evidence and connector state, retried when another writer committed first."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from urbanlake.core.errors import SchemaConflict
from urbanlake.core.settings import Settings
from urbanlake.lakehouse.connection import LAKE, sql_string
from urbanlake.lakehouse.normalize import ROW, Normalized, normalize, quote
from urbanlake.lakehouse.raw import RawStore
from urbanlake.lakehouse.reader import LakeReader, arrow_of
from urbanlake.lakehouse.records import (
    COMMIT_RETRIES,
    KEY_ISSUES,
    CommitRequest,
    CommitResult,
    TableRef,
)
from urbanlake.lakehouse.schema import (
    PLATFORM_TABLES,
    QUARANTINE_TABLE,
    column_list,
    create_platform_tables,
    insert_sql,
    platform_table,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _key_quarantined(issues: pa.Table | None) -> int:
    """Rows the key check quarantines: those with a reason (an exact copy of a key's first row
    has none; it is just a duplicate)."""
    return 0 if issues is None else issues.num_rows - issues.column("reason").null_count


CONFLICTS = (
    "conflict",
    "database is locked",
    "could not serialize",
    # Another process created the same schema first: DuckLake cannot reload its view of the
    # catalog inside the failed commit; the next attempt starts from the new catalog.
    "failed to load ducklake",
)


def _is_conflict(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return any(sign in text for sign in CONFLICTS)


class LakeWriter:
    """Commits to one lake through one DuckDB connection; reads go through ``self.reader``."""

    def __init__(self, settings: Settings, con: duckdb.DuckDBPyConnection):
        self.settings = settings
        self.con = con
        self.raw = RawStore(settings)
        self.reader = LakeReader(con, self.raw)
        # Column types as last seen; refreshed inside every commit, where correctness matters.
        self._types: dict[TableRef, dict[str, str]] = {}
        self._predicted_snapshot: int | None = None

    # -- writing -------------------------------------------------------------------------------

    def _retry(self, work: Any, *args: Any) -> Any:
        """Run ``work`` in a transaction, again when another writer committed first."""
        for attempt in range(COMMIT_RETRIES):
            self.con.execute("BEGIN")
            try:
                result = work(*args)
                self.con.execute("COMMIT")
                return result
            except duckdb.Error as exc:
                self._rollback()
                if not _is_conflict(exc) or attempt == COMMIT_RETRIES - 1:
                    raise
                time.sleep(0.05 * (2**attempt))
            except BaseException:
                self._rollback()
                raise
        raise AssertionError("unreachable")

    def _rollback(self) -> None:
        """Roll back if a transaction is still open (a failed COMMIT has already ended it)."""
        with contextlib.suppress(duckdb.TransactionException):
            self.con.execute("ROLLBACK")

    def _create_platform_tables(self) -> None:
        create_platform_tables(
            self.con,
            self.reader.tables_in("platform"),
            lambda name: self.reader.column_types(TableRef("platform", name)),
        )

    def column_types(self, table: TableRef) -> dict[str, str]:
        return self.reader.column_types(table)

    def prepare_batch(
        self,
        table: TableRef,
        incoming: pa.Table,
        declared: dict[str, str],
        loose: set[str],
        timezone: str,
    ) -> Normalized:
        """Cast a decoded batch to the table's types; raises ``SchemaConflict`` on a type change."""
        if not self._types.get(table):
            self._types[table] = self.column_types(table)
        try:
            return normalize(self.con, incoming, self._types[table], declared, loose, timezone)
        except duckdb.Error as exc:
            # Never DuckDB's dump of the batch at a publisher: the batch goes to quarantine.
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise SchemaConflict(f"the batch's columns could not be typed ({first})") from None

    def commit_batch(self, request: CommitRequest) -> CommitResult:
        """Rows, quarantined rows, connector state and the payload record in one snapshot.

        Rows whose primary key is already in the table are skipped (idempotent replays); the
        look-up is limited to the batch's key (or event-time) range so file statistics prune it.
        """
        return self.commit_batches([request])[0]

    def commit_batches(self, requests: list[CommitRequest]) -> list[CommitResult]:
        """Several tables' batches from one payload (a GTFS zip's files) in one snapshot."""
        views: list[tuple[str, str | None, pa.Table | None]] = []
        try:
            for i, request in enumerate(requests):
                view = f"{ROW}_batch_{i}"
                self.con.register(view, request.rows)
                issues = None
                if request.primary_key and request.rows.num_columns > 1:
                    issues = self._find_key_issues(request, view)
                issues_view = f"{KEY_ISSUES}_{i}" if issues is not None else None
                if issues_view is not None:
                    self.con.register(issues_view, issues)
                views.append((view, issues_view, issues))
            counts = self._retry(self._commit_all, requests, views)
        finally:
            for view, issues_view, _ in views:
                self.con.unregister(view)
                if issues_view is not None:
                    self.con.unregister(issues_view)
        snapshot = self.con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()
        snapshot_id = snapshot[0] if snapshot else 0
        predicted, self._predicted_snapshot = self._predicted_snapshot, None
        if predicted is not None and predicted != snapshot_id:
            for request in requests:
                self._fix_quality_snapshot(request, snapshot_id)
        return [CommitResult(snapshot_id, *c) for c in counts]

    def _commit_all(
        self, requests: list[CommitRequest], views: list[tuple[str, str | None, pa.Table | None]]
    ) -> list[tuple[int, int, int, int]]:
        when = _now()  # one moment for every table of the snapshot
        counts = [
            self._commit(request, *view, when)
            for request, view in zip(requests, views, strict=True)
        ]
        first = requests[0]
        datasets = [str(r.table) for r in requests]
        info = {"run_id": first.run_id, "batch": first.batch, "dataset": datasets[0], "datasets": datasets,
                "inserted": sum(c[0] for c in counts),
                "inserted_by_dataset": {d: c[0] for d, c in zip(datasets, counts, strict=True)}}  # fmt: skip
        self.con.execute(
            f"CALL {LAKE}.set_commit_message('urbanlake', ?, extra_info => ?)",
            [f"{first.connector} run {first.run_id} batch {first.batch}", json.dumps(info)],
        )
        return counts

    def _fix_quality_snapshot(self, request: CommitRequest, snapshot_id: int) -> None:
        """Another writer committed between our read and our commit: point the evidence at ours."""
        self._retry(
            lambda: self.con.execute(
                f"UPDATE {platform_table('quality_results')} SET snapshot_id = ? "
                "WHERE run_id = ? AND batch = ? AND dataset = ?",
                [snapshot_id, request.run_id, request.batch, str(request.table)],
            )
        )

    def _ensure_table(self, table: TableRef, view: str) -> bool:
        """Create the table, or add the batch's new columns; True if it was created now."""
        existing = self.column_types(table)
        created = not existing
        if not existing:
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {LAKE}.{quote(table.domain)}")
            self.con.execute(
                f"CREATE TABLE {table.sql} AS SELECT * EXCLUDE ({ROW}) FROM {view} LIMIT 0"
            )
        else:
            incoming = [
                f.name
                for f in self.con.execute(f"SELECT * EXCLUDE ({ROW}) FROM {view} LIMIT 0")
                .arrow()
                .schema
            ]
            missing = [name for name in incoming if name not in existing]
            if missing:
                kinds = dict(
                    self.con.execute(
                        f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {view})"
                    ).fetchall()
                )
                for name in missing:
                    self.con.execute(
                        f"ALTER TABLE {table.sql} ADD COLUMN {quote(name)} {kinds[name]}"
                    )
                existing = {}
        self._types[table] = existing or self.column_types(table)
        return created

    def _find_key_issues(self, request: CommitRequest, view: str) -> pa.Table | None:
        """Rows with a null key or a repeated key in the batch, found before the transaction.

        Returns (``__row``, ``check_name``, ``reason``, ``raw_record``) for every row that must not
        be inserted; an exact copy of the key's first row has no reason (it is just a duplicate).
        Everything stays in DuckDB and Arrow: a batch of a million repeated keys costs seconds.
        """
        keys = [quote(k) for k in request.primary_key]
        names = [n for n in request.rows.column_names if n != ROW]
        null_key = " OR ".join(f"{k} IS NULL" for k in keys)
        # One cheap pass first: most batches have neither null nor repeated keys.
        nulls, repeats = self.con.execute(
            f"SELECT count(*) FILTER (WHERE {null_key}), count(*) - count(DISTINCT ({', '.join(keys)})) FROM {view}"
        ).fetchone() or (0, 0)
        if not nulls and not repeats:
            return None
        listed = ", ".join(request.primary_key)
        record = (
            "json_object("
            + ", ".join(f"{sql_string(n)}, b.{quote(n)}" for n in names)
            + ")::VARCHAR"
        )
        window = f"PARTITION BY {', '.join(keys)} ORDER BY {ROW}"
        digest = f"hash({', '.join(quote(n) for n in names)})"
        found = self.con.execute(
            f"""SELECT {ROW},
                    CASE WHEN {null_key} THEN 'primary_key_null'
                         WHEN NOT same THEN 'primary_key_duplicate' END AS check_name,
                    CASE WHEN {null_key} THEN {sql_string(f"primary key ({listed}) is null")}
                         WHEN NOT same THEN {sql_string(f"duplicate primary key ({listed}) with different values in the same batch")}
                    END AS reason,
                    CASE WHEN ({null_key}) OR NOT same THEN {record} END AS raw_record
                FROM (SELECT *, row_number() OVER w AS __n, {digest} = first_value({digest}) OVER w AS same
                      FROM {view} WINDOW w AS ({window})) b
                WHERE {null_key} OR __n > 1"""
        )
        return arrow_of(found)

    def _commit(
        self,
        request: CommitRequest,
        view: str,
        issues_view: str | None,
        issues: pa.Table | None,
        when: datetime,
    ) -> tuple[int, int, int, int]:
        table = request.table
        if request.rows.num_columns <= 1 or (not request.rows.num_rows and not request.replace):
            # Nothing but row positions (a batch refused as a whole), or no rows at all (a header-only
            # file): no table is made from it, so its columns' types come from real values later.
            # A replacing part (a feed version's file) still makes or empties its table.
            return self._finish(request, when, 0, 0, issues_view, issues)
        created = self._ensure_table(table, view)
        condition = (
            "TRUE" if issues_view is None else f"{ROW} NOT IN (SELECT {ROW} FROM {issues_view})"
        )
        parameters: list[Any] = []
        if request.replace and not created:
            # The payload is the table's whole content (a new GTFS feed version): one snapshot
            # holds the new rows only; the old ones stay readable through time travel.
            self.con.execute(f"DELETE FROM {table.sql}")
        elif request.primary_key and not created:
            keys = request.primary_key
            matches = " AND ".join(f"e.{quote(k)} = b.{quote(k)}" for k in keys)
            prune = request.event_time if request.event_time in keys else keys[0]
            bounds = self.con.execute(
                f"SELECT min({quote(prune)}), max({quote(prune)}) FROM {view}"
            ).fetchone()
            if bounds is not None and bounds[0] is not None:
                # Constant bounds let DuckLake skip every file whose statistics lie outside them.
                matches += f" AND e.{quote(prune)} BETWEEN ? AND ?"
                parameters = [bounds[0], bounds[1]]
            condition += f" AND NOT EXISTS (SELECT 1 FROM {table.sql} e WHERE {matches})"
        inserted_row = self.con.execute(
            f"INSERT INTO {table.sql} BY NAME SELECT * EXCLUDE ({ROW}) FROM {view} b WHERE {condition}",
            parameters,
        ).fetchone()
        inserted = int(inserted_row[0]) if inserted_row else 0
        return self._finish(
            request,
            when,
            inserted,
            request.rows.num_rows - inserted - _key_quarantined(issues),
            issues_view,
            issues,
        )

    def _finish(
        self,
        request: CommitRequest,
        when: datetime,
        inserted: int,
        duplicate: int,
        issues_view: str | None = None,
        issues: pa.Table | None = None,
    ) -> tuple[int, int, int, int]:
        table = request.table
        total_row = (
            self.con.execute(f"SELECT count(*) FROM {table.sql}").fetchone()
            if self._types.get(table)
            else (0,)
        )
        total = int(total_row[0]) if total_row else 0
        if request.payload_seen:
            # The same bytes were loaded before (a feed polled again): their bad rows are in
            # quarantine already, so here they count as duplicates, like the good rows.
            duplicate += len(request.quarantined) + _key_quarantined(issues)
            quarantined = 0
        else:
            quarantined = self._write_quarantine(request, when, issues_view, issues)
        self._log_commit(request, when, inserted, duplicate, total, quarantined)
        if request.quality_results is not None and request.quality_results.num_rows:
            self._write_quality_results(request, when)
        return inserted, quarantined, duplicate, total

    def _write_quality_results(self, request: CommitRequest, when: datetime) -> None:
        """Quality evidence in the same snapshot as the rows it judged. The snapshot id is the one
        this commit will get unless another writer commits first (``commit_batch`` fixes that)."""
        latest = self.con.execute(f"SELECT max(snapshot_id) FROM {LAKE}.snapshots()").fetchone()
        self._predicted_snapshot = (latest[0] if latest and latest[0] is not None else 0) + 1
        self.con.register("__quality_rows", request.quality_results)
        try:
            judged = ["expectation", "column_name", "kwargs", "success", "row_level",
                      "observed_value", "unexpected_count", "unexpected_percent", "on_failure"]  # fmt: skip
            self.con.execute(
                insert_sql(
                    platform_table("quality_results"),
                    ["dataset", "run_id", "batch", "snapshot_id", "validated_at", *judged, "result_uri"],
                    f"SELECT ?, ?, ?, ?, ?, {', '.join(judged)}, ? FROM __quality_rows",
                ),
                [str(request.table), request.run_id, request.batch, self._predicted_snapshot, when,
                 request.quality_document_uri],
            )  # fmt: skip
        finally:
            self.con.unregister("__quality_rows")

    def _write_quarantine(
        self,
        request: CommitRequest,
        when: datetime,
        issues_view: str | None,
        issues: pa.Table | None,
    ) -> int:
        """Insert the batch's quarantined rows: those given, and the key problems found in SQL."""
        from_keys = _key_quarantined(issues)
        count = len(request.quarantined) + from_keys
        if not count:
            return 0
        target = request.table.quarantine
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {target.sql} ({column_list(QUARANTINE_TABLE)})"
        )
        common = [request.run_id, request.batch, when, request.origin, request.payload_sha256]
        columns = list(QUARANTINE_TABLE)
        if request.quarantined:
            records = pa.table(
                {
                    "line": pa.array([q.line for q in request.quarantined], pa.int64()),
                    "check_name": [q.check_name for q in request.quarantined],
                    "reason": [q.reason for q in request.quarantined],
                    "raw_record": [q.raw_record for q in request.quarantined],
                }
            )
            self.con.register("__quarantine_rows", records)
            try:
                self.con.execute(
                    insert_sql(
                        target.sql,
                        columns,
                        "SELECT ?, ?, ?, ?, ?, line, check_name, "
                        "reason, raw_record FROM __quarantine_rows",
                    ),
                    common,
                )
            finally:
                self.con.unregister("__quarantine_rows")
        if from_keys:
            self.con.execute(
                insert_sql(
                    target.sql,
                    columns,
                    "SELECT ?, ?, ?, ?, ?, NULL, check_name, reason, "
                    f"raw_record FROM {issues_view} WHERE reason IS NOT NULL",
                ),
                common,
            )
        return count

    def _log_commit(
        self,
        request: CommitRequest,
        when: datetime,
        inserted: int,
        duplicate: int,
        total: int,
        quarantined: int,
    ) -> None:
        rows_in = (
            request.rows_in
            if request.rows_in is not None
            else request.rows.num_rows + len(request.quarantined)
        )
        self.con.execute(
            insert_sql(platform_table("commits"), list(PLATFORM_TABLES["commits"])),
            [str(request.table), request.run_id, request.batch, when, rows_in, inserted,
             quarantined, duplicate, total, request.payload_sha256, request.origin],
        )  # fmt: skip
        if request.state is not None:
            self._log_state(request, when, request.state)
        if request.payload_sha256 and request.payload_uri and request.payload_is_new:
            self._log_payload(request.payload_sha256, request.connector, request.payload_uri,
                              request.payload_size, request.origin, request.run_id, when)  # fmt: skip
        elif request.payload_sha256 and request.payload_was_failed:
            # A set-aside payload decoded again (``urbanlake replay``) is loaded now.
            self._set_payload_status(request, when, "loaded", None)

    def _log_state(self, request: CommitRequest, when: datetime, state: dict[str, Any]) -> None:
        self.con.execute(
            insert_sql(platform_table("connector_state"), list(PLATFORM_TABLES["connector_state"])),
            [request.connector, request.run_id, request.batch, when, json.dumps(state)],
        )

    def _set_payload_status(
        self, request: CommitRequest, when: datetime, status: str, error: str | None
    ) -> None:
        self.con.execute(
            f"UPDATE {platform_table('payloads')} SET status = ?, error = ?, status_at = ? "
            "WHERE connector = ? AND sha256 = ?",
            [status, error, when, request.connector, request.payload_sha256],
        )

    def _log_payload(
        self,
        sha: str,
        connector: str,
        uri: str,
        size: int,
        origin: str,
        run_id: str,
        when: datetime,
        status: str = "loaded",
        error: str | None = None,
    ) -> None:
        self.con.execute(
            insert_sql(platform_table("payloads"), list(PLATFORM_TABLES["payloads"])),
            [sha, connector, uri, size, origin, run_id, when, status, error, when],
        )

    def set_aside_payload(
        self,
        request: CommitRequest,
        error: str,
        state: dict[str, Any] | None,
    ) -> None:
        """Record a payload that could not be decoded as ``failed`` with its reason, in one
        snapshot with the connector's state (so a later run does not fetch it again)."""

        def work() -> None:
            when = _now()
            if request.payload_is_new:
                self._log_payload(request.payload_sha256 or "", request.connector,
                                  request.payload_uri or "", request.payload_size, request.origin,
                                  request.run_id, when, "failed", error)  # fmt: skip
            else:
                self._set_payload_status(request, when, "failed", error)
            if state is not None:
                self._log_state(request, when, state)
            self.con.execute(
                f"CALL {LAKE}.set_commit_message('urbanlake', ?, extra_info => ?)",
                [f"{request.connector} run {request.run_id} batch {request.batch} set aside",
                 json.dumps({"run_id": request.run_id, "batch": request.batch, "set_aside": request.payload_sha256})],
            )  # fmt: skip

        self._retry(work)

    def payload_records(
        self,
        connector: str | None = None,
        status: str | None = None,
        sha256: str | None = None,
    ) -> list[dict[str, Any]]:
        """Kept payloads (one row per connector and content), oldest first: ``sha256``,
        ``connector``, ``uri``, ``size``, ``origin``, ``status`` ('loaded' or 'failed'), ``error``."""
        where, parameters = ["TRUE"], []
        if connector is not None:
            where.append("connector = ?")
            parameters.append(connector)
        if status is not None:
            where.append("coalesce(status, 'loaded') = ?")
            parameters.append(status)
        if sha256 is not None:
            where.append("starts_with(sha256, ?)")
            parameters.append(sha256)
        rows = self.con.execute(
            f"""SELECT sha256, connector, any_value(uri), any_value(size), any_value(origin),
                       coalesce(arg_max(status, coalesce(status_at, first_seen)), 'loaded'),
                       arg_max(error, coalesce(status_at, first_seen)), min(first_seen)
                FROM {platform_table("payloads")} WHERE {" AND ".join(where)}
                GROUP BY sha256, connector ORDER BY min(first_seen), any_value(origin)""",
            parameters,
        ).fetchall()
        names = ("sha256", "connector", "uri", "size", "origin", "status", "error", "first_seen")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def failed_payload_counts(self) -> dict[str, int]:
        """connector → how many of its payloads are set aside now."""
        rows = self.con.execute(
            f"SELECT connector, count(DISTINCT sha256) FROM {platform_table('payloads')} "
            "WHERE status = 'failed' GROUP BY connector"
        ).fetchall()
        return {connector: int(count) for connector, count in rows}

    def record_run(
        self, run: dict[str, Any], payloads: list[tuple[str, str, int, str]] | None = None
    ) -> None:
        """Append a finished run to ``platform.runs`` (and payloads no batch recorded, e.g. undecodable)."""

        def work() -> None:
            columns = list(PLATFORM_TABLES["runs"])
            self.con.execute(
                insert_sql(platform_table("runs"), columns),
                [run.get(c) for c in columns],
            )
            for sha, uri, size, origin in payloads or []:
                self._log_payload(sha, run["connector"], uri, size, origin, run["run_id"], _now())

        self._retry(work)

    def keep_document(self, relative: str, content: bytes) -> str:
        """Store a document (e.g. a full validation result) under the lake; returns its URI."""
        return self.raw.put_document(relative, content)
