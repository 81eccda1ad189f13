"""The SQL endpoint's DuckDB on every lake kind: it reads the lake's tables at a pinned version
with external access off, its configuration locked and the lake read-only. (Statements other
than a query — DETACH, CREATE in its own memory — are the parse-level allow-list's to refuse:
tests/catalog/test_sql.py.)"""

from __future__ import annotations

import pytest

from tests.conftest import LakeTarget
from urbanlake.lakehouse.lake import Lake
from urbanlake.lakehouse.sql_sandbox import QueryFailed, QueryInterrupted, SqlSandbox


def _lake_with_a_table(target: LakeTarget) -> tuple[int, int]:
    """energy.readings with 1,000 rows, then 100 more: the two snapshot versions."""
    with Lake.open(target.settings()) as lake:
        lake.con.execute("CREATE SCHEMA energy")
        lake.con.execute(
            "CREATE TABLE energy.readings AS SELECT range AS id, range % 7 AS meter FROM range(1000)"
        )
        first = lake.reader.current_snapshot()
        lake.con.execute("INSERT INTO energy.readings SELECT range + 1000, 1 FROM range(100)")
        second = lake.reader.current_snapshot()
    return first, second


def test_reads_pinned_versions_with_external_access_off(lake_target: LakeTarget) -> None:
    first, second = _lake_with_a_table(lake_target)
    sandbox = SqlSandbox.open(lake_target.settings(), "128MB")
    try:
        for version, rows in ((first, 1000), (second, 1100)):
            answer = sandbox.run(
                f"SELECT count(*) AS n FROM lake.energy.readings AT (VERSION => {version})",
                row_cap=10,
                budget=30,
            )
            assert answer.table.to_pylist() == [{"n": rows}]
            assert answer.types == ["BIGINT"] and not answer.truncated
        settings = dict(
            sandbox.run(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('enable_external_access', 'lock_configuration')",
                10,
                30,
            )
            .table.to_pylist()[i]
            .values()
            for i in range(2)
        )
        assert settings == {"enable_external_access": "false", "lock_configuration": "true"}
        for statement in (
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM glob('/etc/*')",
            "COPY (SELECT 1) TO '/tmp/urbanlake-sandbox-escape.csv'",
            "SET enable_external_access = true",
            "ATTACH '/tmp/urbanlake-sandbox-escape.duckdb' AS other",
            "INSTALL spatial",
            "LOAD spatial",
            "INSERT INTO lake.energy.readings VALUES (-1, -1)",
        ):
            with pytest.raises(QueryFailed):
                sandbox.run(statement, 10, 30)
    finally:
        sandbox.close()


def test_a_query_over_budget_is_interrupted_and_a_big_result_is_cut(local_lake: LakeTarget) -> None:
    _lake_with_a_table(local_lake)
    sandbox = SqlSandbox.open(local_lake.settings(), "128MB")
    try:
        with pytest.raises(QueryInterrupted):
            sandbox.run(
                "SELECT count(*) FROM range(1000000) a, range(1000000) b "
                "WHERE (a.range * b.range) % 7 = 3",
                10,
                budget=0.5,
            )
        answer = sandbox.run("SELECT * FROM range(10000000)", row_cap=1234, budget=30)
        assert answer.table.num_rows == 1234 and answer.truncated
        exact = sandbox.run("SELECT * FROM range(1234)", row_cap=1234, budget=30)
        assert exact.table.num_rows == 1234 and not exact.truncated
    finally:
        sandbox.close()
