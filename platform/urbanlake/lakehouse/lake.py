"""The lakehouse interface the rest of the platform uses: one open lake, its write side
(``LakeWriter``) and its read side (``self.reader``, a ``LakeReader``). DuckDB is touched only
below here.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from urbanlake.core.settings import Settings
from urbanlake.lakehouse.connection import open_connection
from urbanlake.lakehouse.reader import at_clause
from urbanlake.lakehouse.records import TableRef, TableStats
from urbanlake.lakehouse.writer import LakeWriter


class Lake(LakeWriter):
    """One open lakehouse: a DuckDB connection with the DuckLake catalog attached."""

    @classmethod
    def open(cls, settings: Settings) -> Lake:
        lake = cls(settings, open_connection(settings))
        lake._retry(lake._create_platform_tables)
        return lake

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection: every table is ``<domain>.<table>``, the platform's in ``platform``."""
        return self.con

    # The reads the CLI, the pipeline and analysts' scripts use most, kept on the lake itself.

    def query(self, sql: str, parameters: list[Any] | None = None) -> pa.Table:
        return self.reader.query(sql, parameters)

    def read_state(self, connector: str) -> dict[str, Any]:
        return self.reader.read_state(connector)

    def known_payloads(self, connector: str) -> dict[str, str]:
        return self.reader.known_payloads(connector)

    def exists(self, table: TableRef) -> bool:
        return self.reader.exists(table)

    def snapshots(self, table: TableRef | None = None) -> list[dict[str, Any]]:
        return self.reader.snapshots(table)

    def table_names(self) -> list[TableRef]:
        return self.reader.table_names()

    def table_stats(self) -> list[TableStats]:
        return self.reader.table_stats()

    # ``AT (VERSION => n)`` / ``AT (TIMESTAMP => …)`` for an analyst's own time-travel SQL.
    at_clause = staticmethod(at_clause)
