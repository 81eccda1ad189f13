"""The DuckDB that runs the public SQL endpoint's queries: its own in-memory database (never the
catalog's connection), the lake attached read-only, then external access switched off and the
configuration locked, so that a statement that got past the parse-level allow-list still cannot
read a file or URL, attach, install, load or change a setting.

DuckLake reads its Parquet files through DuckDB's file system, which external access guards too:
the lake's data folder (a local folder or ``s3://bucket/prefix/data/``) is the one place left
readable, through ``allowed_directories`` set before the lock. The catalog database (SQLite or
PostgreSQL) is attached before the switch and stays open.

Each query runs on a cursor of its own, with a watchdog that interrupts it when its time budget
is spent, and streams at most ``row_cap + 1`` rows, so a huge result is cut, not built.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from urbanlake.core.errors import LakeError, UrbanLakeError
from urbanlake.core.secrets import mask
from urbanlake.core.settings import Settings
from urbanlake.lakehouse.connection import (
    LAKE,
    catalog_attach_uri,
    configure_s3,
    data_path,
    load_extensions,
    needed_extensions,
    sql_string,
)

BATCH_ROWS = 10_000  # rows per streamed batch: the cut lands at most this far past the cap
SPILL_LIMIT = "4GB"  # disk a query may spill to before it fails: a public query cannot fill it
STOP_AGAIN = 0.1  # seconds between interrupts once a budget is spent, until the query yields


class QueryInterrupted(UrbanLakeError):
    """The query ran past its time budget and was stopped."""


class QueryFailed(UrbanLakeError):
    """DuckDB refused or could not finish the query; the message is DuckDB's, first part only."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind  # DuckDB's error class: "Binder", "Conversion", "OutOfMemory", …


@dataclass
class SandboxAnswer:
    table: pa.Table  # at most the row cap
    types: list[str]  # DuckDB's type of each column
    truncated: bool  # more rows than the cap were there


class SqlSandbox:
    """One locked-down DuckDB for untrusted read-only SQL; a cursor per query."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    @classmethod
    def open(cls, settings: Settings, memory_limit: str) -> SqlSandbox:
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            load_extensions(
                con, settings.state_dir / "duckdb_extensions", needed_extensions(settings)
            )
            if settings.is_remote:
                configure_s3(con, settings)
            data = data_path(settings)
            con.execute(
                f"ATTACH {sql_string(catalog_attach_uri(settings))} AS {LAKE} "
                f"(DATA_PATH {sql_string(data)}, READ_ONLY)"
            )
            spill = settings.state_dir / "duckdb_sql_spill"
            spill.mkdir(parents=True, exist_ok=True)
            for statement in (
                f"SET memory_limit = {sql_string(memory_limit)}",
                f"SET temp_directory = {sql_string(spill.as_posix())}",
                f"SET max_temp_directory_size = {sql_string(SPILL_LIMIT)}",
                f"SET allowed_directories = [{sql_string(data)}]",
                "SET autoinstall_known_extensions = false",
                "SET autoload_known_extensions = false",
                # A name the query leaves unknown must never become a Python variable of ours.
                "SET python_enable_replacements = false",
                "SET enable_external_access = false",
                "SET lock_configuration = true",
            ):
                con.execute(statement)
        except duckdb.Error as exc:
            con.close()
            raise LakeError(
                mask(
                    f"cannot open the SQL endpoint's view of the lake at {settings.lake_uri}: {exc}"
                )
            ) from exc
        return cls(con)

    def close(self) -> None:
        self.con.close()

    def run(self, sql: str, row_cap: int, budget: float) -> SandboxAnswer:
        """Run one read-only statement within ``budget`` seconds; at most ``row_cap`` rows."""
        cursor = self.con.cursor()
        done = threading.Event()
        spent = threading.Event()

        def watchdog() -> None:
            # After the budget, interrupt again and again: an interrupt that lands between two
            # steps of the query (before it started, between batches) must not be lost.
            wait = budget
            while not done.wait(wait):
                spent.set()
                cursor.interrupt()
                wait = STOP_AGAIN

        guard = threading.Thread(target=watchdog, name="sql-budget", daemon=True)
        guard.start()
        try:
            result = cursor.execute(sql)
            types = [str(column[1]) for column in result.description or []]
            reader = result.to_arrow_reader(BATCH_ROWS)
            batches: list[pa.RecordBatch] = []
            rows = 0
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows > row_cap:
                    break
            table = pa.Table.from_batches(batches, schema=reader.schema)
        except duckdb.InterruptException as exc:
            raise QueryInterrupted("interrupted") from exc
        except duckdb.Error as exc:
            if spent.is_set():
                raise QueryInterrupted("interrupted") from exc
            raise QueryFailed(*describe(exc)) from exc
        finally:
            done.set()
            guard.join()
            cursor.close()
        return SandboxAnswer(table.slice(0, row_cap), types, table.num_rows > row_cap)


def describe(exc: duckdb.Error) -> tuple[str, str]:
    """DuckDB's message without the echo of the statement (``LINE 1: …``) or its advice on
    settings the caller cannot change, and its kind."""
    text = str(exc).split("\nLINE ")[0].split("\n\n")[0].strip()
    kind, sep, rest = text.partition(" Error: ")
    if not sep:
        return text, type(exc).__name__
    return rest.strip(), kind.strip()
