"""The SQL endpoint's parse-level allow-list and its rewriting of dataset names to pinned lake
tables (the sandbox and the endpoint are tested in tests/lakehouse/test_sql_sandbox.py and
tests/api/test_sql.py)."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from urbanlake.catalog.sql import (
    SqlRefused,
    check,
    ctes_in_scope,
    dataset_names,
    dataset_references,
    rewrite,
    verify,
)
from urbanlake.lakehouse.records import TableRef

PINS = {
    "vehicle-positions": (TableRef("transport", "vehicle_positions"), 38),
    "parking-occupancy": (TableRef("transport", "parking_occupancy"), 37),
}
NAMES = {"vehicle-positions": "vehicle-positions", "vehicle_positions": "vehicle-positions",
         "parking-occupancy": "parking-occupancy", "parking_occupancy": "parking-occupancy"}  # fmt: skip


def pinned(sql: str) -> str:
    tree = check(sql)
    statement = rewrite(tree, NAMES, PINS)
    verify(statement, PINS)
    return statement


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "table function read_csv is not allowed"),
        ("SELECT * FROM read_csv_auto('x.csv')", "table function read_csv_auto"),
        ("SELECT * FROM 'data.csv'", "files and URLs cannot be read ('data.csv')"),
        ('SELECT * FROM "s3://bucket/x.parquet"', "files and URLs cannot be read"),
        ("SELECT * FROM glob('*')", "table function glob"),
        ("SELECT * FROM json_each('{}')", "only range, generate_series and unnest are"),
        ("SELECT getenv('HOME')", "function getenv is not allowed"),
        ("SELECT 'HOME'.getenv()", "function getenv is not allowed"),
        ("SELECT main.current_setting('memory_limit')", "function current_setting"),
        ("SELECT * FROM duckdb_settings()", "table function duckdb_settings"),
        ("SELECT * FROM pragma_table_info('x')", "table function pragma_table_info"),
        ("SELECT * FROM lake.snapshots()", "table function snapshots"),
        ("SELECT * FROM system.main.duckdb_tables()", "table function duckdb_tables"),
        ("SELECT * FROM lake.transport.vehicle_positions", "the lake's own tables"),
        ("SELECT * FROM __ducklake_metadata_lake.ducklake_table", "the lake's own tables"),
        ("SELECT * FROM information_schema.tables", "system catalogs are not available"),
        ("SELECT * FROM memory.main.x", "system catalogs are not available"),
        ("SELECT * FROM other.x", "qualified names are not allowed (other.x)"),
        ('SELECT * FROM "vehicle-positions" AT (VERSION => 1)', "AT (VERSION => …)"),
        ("SELECT 1; SELECT 2", "only one statement is run; this holds 2 (SELECT, SELECT)"),
        ("SELECT 1 -- c\n; DROP TABLE x", "this holds 2 (SELECT, DROP)"),
        ("SELECT 1 /* ; */; ATTACH 'x' AS y", "this holds 2 (SELECT, ATTACH)"),
        ("COPY (SELECT 1) TO 'x.csv'", "COPY is not allowed"),
        ("EXPORT DATABASE 'x'", "EXPORT is not allowed"),
        ("CALL pragma_version()", "CALL is not allowed"),
        ("LOAD httpfs", "LOAD is not allowed"),
        ("RESET memory_limit", "RESET is not allowed"),
        ("CHECKPOINT", "CHECKPOINT is not allowed"),
        (
            "WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x",
            "INSERT is not allowed",
        ),
        ("SELECT repeat('x', 2000000000)", "function repeat takes a literal size of at most"),
        ("SELECT lpad('x', n, ' ') FROM range(3) t(n)", "function lpad takes a literal size"),
        ("SELECT FROM WHERE", "cannot parse the statement at line 1, column 17"),
        ("", "no statement"),
        (" ; ", "no statement"),
    ],
)
def test_refused_with_what_was_refused(sql: str, refused: str) -> None:
    with pytest.raises(SqlRefused) as caught:
        check(sql)
    assert refused in str(caught.value)
    assert caught.value.code == "sql_refused" and caught.value.status == 400


def test_dataset_references_are_pinned_under_the_name_they_were_written_with() -> None:
    statement = pinned(
        'SELECT "vehicle-positions".route_id, p.free FROM "vehicle-positions" '
        "JOIN parking_occupancy p ON TRUE -- a comment is dropped"
    )
    assert statement == (
        'SELECT "vehicle-positions".route_id, p.free FROM lake."transport"."vehicle_positions" '
        'AS "vehicle-positions" AT (VERSION => 38) JOIN lake."transport"."parking_occupancy" AS p '
        "AT (VERSION => 37) ON TRUE"
    )


def test_ctes_shadow_datasets_only_where_they_are_in_scope() -> None:
    # In the body the CTE is meant; inside its own (non-recursive) definition, the dataset.
    statement = pinned(
        'WITH "vehicle-positions" AS (SELECT route_id FROM "vehicle-positions") '
        'SELECT * FROM "vehicle-positions"'
    )
    assert statement.count("lake.") == 1
    assert statement.endswith('SELECT * FROM "vehicle-positions"')
    recursive = pinned(
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT * FROM t"
    )
    assert "lake." not in recursive
    # A later CTE is not in scope of an earlier one: ``b`` there is a table, and no dataset.
    tree = check("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a")
    assert [t.name for t in dataset_references(tree)] == ["b"]
    inner = sqlglot.parse_one(
        "SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x), x", read="duckdb"
    )
    scopes = {id(t): ctes_in_scope(t) for t in inner.find_all(exp.Table)}
    assert sorted(map(sorted, scopes.values())) == [[], ["x"]]


def test_names_with_underscores_alias_the_dashed_ones_unless_taken() -> None:
    class Entry:
        def __init__(self, name: str):
            self.name = name

    names = dataset_names([Entry("a-b"), Entry("a_b"), Entry("c-d")])  # type: ignore[list-item]
    assert names == {"a-b": "a-b", "a_b": "a_b", "c-d": "c-d", "c_d": "c-d"}


def test_verify_refuses_a_table_that_was_not_pinned() -> None:
    with pytest.raises(SqlRefused, match="is not allowed"):
        verify('SELECT * FROM lake."energy"."meter_readings" AT (VERSION => 33)', PINS)
    with pytest.raises(SqlRefused, match="is not allowed"):
        verify("SELECT * FROM meter_readings", PINS)
    verify('SELECT * FROM lake."transport"."vehicle_positions" AS v AT (VERSION => 38)', PINS)


def test_allowed_shapes_of_a_query() -> None:
    for sql in (
        "SELECT 1",
        "(SELECT 1)",
        "FROM vehicle_positions SELECT count(*)",
        "SELECT * FROM range(10) UNION ALL SELECT * FROM generate_series(1, 3)",
        "SELECT * FROM unnest([1, 2])",
        'PIVOT "vehicle-positions" ON route_id USING count(*)',
        "SELECT repeat('ab', 3), lpad('7', 3, '0')",
    ):
        pinned(sql)
