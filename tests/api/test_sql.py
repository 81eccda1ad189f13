"""POST /api/v1/sql over HTTP on the demo city: a corpus of hostile statements, each refused with
a message naming what was refused (or stopped by its time budget), the server answering the next
query every time; and the answers to good queries, held against the other endpoints and the lake."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from tests.api.conftest import ApiServer, sql, start_server

HIDDEN = "meter-readings"  # the demo's partner-only dataset
GOOD = 'SELECT count(*) AS n FROM "vehicle-positions"'
TIGHT = {"URBANLAKE_SQL_PUBLIC_TIMEOUT": "1", "URBANLAKE_SQL_PUBLIC_ROW_CAP": "1000"}


def post(server: ApiServer, statement: str, fmt: str | None = None) -> httpx.Response:
    params = {"format": fmt} if fmt else {}
    return httpx.post(f"{server.api}/sql", params=params, json={"sql": statement}, timeout=120)


def answer(server: ApiServer, statement: str) -> dict[str, Any]:
    response = post(server, statement)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def tight_api(demo_project: Path) -> Iterator[ApiServer]:
    """A second server on the demo city whose public tier has a 1 s budget and a 1,000-row cap."""
    server = start_server(demo_project, env=TIGHT)
    yield server
    server.stop()


def still_answers(server: ApiServer) -> None:
    """After a hostile statement the server, and its SQL sandbox, answer a good query."""
    assert server.get(f"{server.url}/healthz").status_code == 200
    body = answer(server, GOOD)
    assert body["rows"][0][0] > 0


# (id, statement, what the refusal's message names)
HOSTILE = [
    ("read_csv", "SELECT * FROM read_csv('/etc/passwd')", "table function read_csv is not allowed"),
    ("read_csv_auto", "SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto"),
    ("read_parquet_s3", "SELECT * FROM read_parquet('s3://bucket/x.parquet')", "read_parquet"),
    ("read_json_url", "SELECT * FROM read_json('https://example.com/x.json')", "read_json"),
    ("read_text", "SELECT * FROM read_text('/etc/hostname')", "read_text"),
    ("read_blob", "SELECT * FROM read_blob('/etc/hostname')", "read_blob"),
    ("parquet_scan", "SELECT * FROM parquet_scan('lake/data/**/*.parquet')", "parquet_scan"),
    ("sniff_csv", "SELECT * FROM sniff_csv('/etc/passwd')", "sniff_csv"),
    ("glob", "SELECT * FROM glob('*')", "table function glob"),
    ("file_as_table", "SELECT * FROM '/etc/passwd'", "files and URLs cannot be read"),
    ("from_first_file", "FROM 'lake/catalog.sqlite'", "files and URLs cannot be read"),
    ("url_as_table", 'SELECT * FROM "https://example.com/data.csv"', "files and URLs"),
    (
        "sqlite_scan",
        "SELECT * FROM sqlite_scan('lake/catalog.sqlite', 'ducklake_table')",
        "sqlite_scan",
    ),
    (
        "postgres_scan",
        "SELECT * FROM postgres_scan('host=127.0.0.1', 'public', 't')",
        "postgres_scan",
    ),
    ("iceberg_scan", "SELECT * FROM iceberg_scan('s3://bucket/table')", "iceberg_scan"),
    ("query_fn", "SELECT * FROM query('SELECT * FROM lake.energy.meter_readings')", "query"),
    ("copy_to", "COPY (SELECT 1) TO '/tmp/urbanlake-escape.csv'", "COPY is not allowed"),
    ("copy_dataset", "COPY \"vehicle-positions\" TO '/tmp/urbanlake-escape.parquet'", "COPY"),
    ("export_database", "EXPORT DATABASE '/tmp/urbanlake-escape'", "EXPORT is not allowed"),
    ("attach_file", "ATTACH '/tmp/urbanlake-escape.duckdb' AS other", "ATTACH is not allowed"),
    ("attach_memory", "ATTACH ':memory:' AS scratch", "ATTACH is not allowed"),
    ("detach_lake", "DETACH lake", "DETACH is not allowed"),
    ("install", "INSTALL httpfs", "INSTALL is not allowed"),
    ("load", "LOAD httpfs", "LOAD is not allowed"),
    ("set", "SET enable_external_access = true", "SET is not allowed"),
    ("reset", "RESET lock_configuration", "RESET is not allowed"),
    ("pragma", "PRAGMA database_list", "PRAGMA is not allowed"),
    ("call", "CALL duckdb_secrets()", "CALL is not allowed"),
    ("checkpoint", "CHECKPOINT", "CHECKPOINT is not allowed"),
    ("create", "CREATE TABLE scratch AS SELECT 1", "CREATE is not allowed"),
    (
        "insert_in_cte",
        "WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x",
        "INSERT is not allowed",
    ),
    ("drop", "DROP TABLE lake.energy.meter_readings", "DROP is not allowed"),
    ("describe", f'DESCRIBE "{HIDDEN}"', "DESCRIBE is not allowed"),
    ("duckdb_settings", "SELECT * FROM duckdb_settings()", "table function duckdb_settings"),
    ("duckdb_tables", "SELECT * FROM duckdb_tables()", "table function duckdb_tables"),
    ("duckdb_secrets", "SELECT * FROM duckdb_secrets()", "table function duckdb_secrets"),
    ("pragma_function", "SELECT * FROM pragma_table_info('x')", "pragma_table_info"),
    ("current_setting", "SELECT current_setting('allowed_directories')", "current_setting"),
    ("getenv", "SELECT getenv('HOME')", "function getenv is not allowed"),
    ("getenv_method", "SELECT 'HOME'.getenv()", "function getenv is not allowed"),
    ("which_secret", "SELECT which_secret('s3://bucket/x', 's3')", "which_secret"),
    (
        "ducklake_catalog_table",
        "SELECT * FROM __ducklake_metadata_lake.ducklake_table",
        "the lake's own tables are not available",
    ),
    ("ducklake_snapshots", "SELECT * FROM ducklake_snapshots('lake')", "ducklake_snapshots"),
    ("lake_snapshots", "SELECT * FROM lake.snapshots()", "table function snapshots"),
    ("lake_table", "SELECT * FROM lake.energy.meter_readings", "the lake's own tables"),
    ("information_schema", "SELECT * FROM information_schema.tables", "system catalogs"),
    ("pg_catalog", "SELECT * FROM pg_catalog.pg_tables", "system catalogs"),
    ("other_tier_by_name", "SELECT * FROM meter_readings", "no dataset 'meter_readings'"),
    ("other_tier_quoted", f'SELECT * FROM "{HIDDEN}"', f"no dataset '{HIDDEN}'"),
    ("other_tier_upper", 'SELECT * FROM "METER-READINGS"', "no dataset 'METER-READINGS'"),
    (
        "other_tier_cte",
        f'WITH m AS (SELECT * FROM "{HIDDEN}") SELECT * FROM m',
        f"no dataset '{HIDDEN}'",
    ),
    ("other_tier_subquery", f'SELECT * FROM (SELECT * FROM "{HIDDEN}")', f"no dataset '{HIDDEN}'"),
    (
        "other_tier_in_where",
        f'SELECT * FROM "vehicle-positions" WHERE vehicle_id IN (SELECT meter_id FROM "{HIDDEN}")',
        f"no dataset '{HIDDEN}'",
    ),
    ("time_travel", 'SELECT * FROM "vehicle-positions" AT (VERSION => 1)', "AT (VERSION => …)"),
    ("chained", "SELECT 1; DROP TABLE lake.energy.meter_readings", "only one statement"),
    ("chained_selects", f'SELECT 1; SELECT * FROM "{HIDDEN}"', "only one statement"),
    (
        "line_comment_hides",
        "SELECT 1 -- nothing here\n; DELETE FROM lake.energy.meter_readings",
        "only one statement",
    ),
    ("block_comment_hides", "SELECT 1 /* ; */ ; ATTACH '/tmp/x.duckdb' AS x", "only one statement"),
    # The line comment really is one: a good query that reads no file.
    ("comment_ends_early", "SELECT 1 -- */ FROM read_csv('/etc/passwd') /*\n, 2", None),
    ("huge_string", "SELECT repeat('x', 2000000000) FROM range(100)", "repeat"),
    ("unparsable", "SELEKT * FROM everything", "cannot parse the statement"),
]


@pytest.mark.parametrize(("statement", "refused"), [h[1:] for h in HOSTILE],
                         ids=[h[0] for h in HOSTILE])  # fmt: skip
def test_hostile_statement_is_refused_and_says_what(
    demo_api: ApiServer, statement: str, refused: str | None
) -> None:
    response = post(demo_api, statement)
    if refused is None:
        assert response.status_code == 200 and response.json()["rows"] == [[1, 2]]
    else:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "sql_refused"
        assert refused in error["message"]
        # Nothing of the lake's inside shows: no internal table or path, no DuckDB hint.
        for leak in ('meter_readings"', "energy.", "Did you mean", "/tmp/pytest", "catalog.sqlite"):
            assert leak not in error["message"] or leak in statement
    still_answers(demo_api)


def test_a_hidden_dataset_is_refused_exactly_as_a_missing_one(demo_api: ApiServer) -> None:
    for shape in ('SELECT * FROM "{}"', 'WITH x AS (SELECT * FROM "{}") SELECT * FROM x',
                  'SELECT * FROM "vehicle-positions" JOIN "{}" ON TRUE'):  # fmt: skip
        hidden = post(demo_api, shape.format(HIDDEN))
        missing = post(demo_api, shape.format("meter-readingz"))
        assert hidden.status_code == missing.status_code == 400
        assert hidden.json() == {
            **missing.json(),
            "error": {
                **missing.json()["error"],
                "message": missing.json()["error"]["message"].replace("meter-readingz", HIDDEN),
            },
        }


def test_a_cross_join_that_would_run_for_minutes_is_stopped_by_the_budget(
    tight_api: ApiServer,
) -> None:
    response = post(
        tight_api,
        "SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE (a.range * b.range) % 7 = 3",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "query_timeout"
    assert "public tier's time budget of 1 s" in error["message"]
    still_answers(tight_api)


def test_an_endless_recursive_query_is_stopped_by_the_budget(tight_api: ApiServer) -> None:
    response = post(
        tight_api,
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "query_timeout"
    still_answers(tight_api)


def test_ten_million_rows_are_cut_at_the_row_cap_and_say_so(
    demo_api: ApiServer, tight_api: ApiServer
) -> None:
    body = answer(demo_api, "SELECT * FROM range(10000000)")
    assert body["truncated"] is True and body["row_cap"] == 10_000 and len(body["rows"]) == 10_000
    assert body["rows"][:3] == [[0], [1], [2]]
    tight = answer(tight_api, "SELECT * FROM range(10000000)")
    assert tight["truncated"] is True and tight["row_cap"] == 1000 and len(tight["rows"]) == 1000
    exact = answer(tight_api, "SELECT * FROM range(1000)")
    assert exact["truncated"] is False and len(exact["rows"]) == 1000
    still_answers(demo_api)


def test_a_group_by_matches_the_aggregate_endpoint(demo_api: ApiServer) -> None:
    body = answer(
        demo_api,
        'SELECT route_id, count(*) AS count FROM "vehicle-positions" GROUP BY route_id',
    )
    assert body["columns"] == ["route_id", "count"] and body["types"] == ["VARCHAR", "BIGINT"]
    version = demo_api.get("/datasets/vehicle-positions").json()["version"]
    assert body["datasets"] == {"vehicle-positions": version} and body["truncated"] is False
    aggregate = demo_api.get(
        "/datasets/vehicle-positions/aggregate", params={"group_by": "route_id"}
    ).json()
    assert {r[0]: r[1] for r in body["rows"]} == {
        r["route_id"]: r["count"] for r in aggregate["rows"]
    }
    assert (
        sum(r[1] for r in body["rows"])
        == sql(
            demo_api.project,
            f"SELECT count(*) AS n FROM transport.vehicle_positions AT (VERSION => {version})",
        )[0]["n"]
    )


def test_quoted_names_underscore_aliases_ctes_and_joins(demo_api: ApiServer) -> None:
    quoted = answer(demo_api, 'SELECT count(*) FROM "bin-fill-levels"')["rows"]
    alias = answer(demo_api, "SELECT count(*) FROM bin_fill_levels")["rows"]
    cte = answer(
        demo_api,
        'WITH latest AS (SELECT * FROM "bins-above-80") SELECT count(*) FROM latest',
    )["rows"]
    assert quoted == alias and quoted[0][0] > 0 and cte[0][0] > 0
    joined = answer(
        demo_api,
        'SELECT a.bin_id, a.fill_level, count(*) AS readings FROM "bins-above-80" a '
        'JOIN "bin-fill-levels" USING (bin_id) GROUP BY ALL ORDER BY a.bin_id',
    )
    assert len(joined["rows"]) == cte[0][0]
    assert set(joined["datasets"]) == {"bins-above-80", "bin-fill-levels"}
    # A column qualified with the dataset's own name binds.
    qualified = answer(
        demo_api, 'SELECT "vehicle-positions".route_id FROM "vehicle-positions" LIMIT 1'
    )
    assert qualified["columns"] == ["route_id"]


def test_csv_and_parquet_answers_carry_the_cap_in_headers(demo_api: ApiServer) -> None:
    statement = 'SELECT route_id, vehicle_id, "timestamp" FROM "vehicle-positions" ORDER BY ALL'
    body = answer(demo_api, statement)
    as_csv = post(demo_api, statement, "csv")
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["x-row-cap"] == "10000" and as_csv.headers["x-truncated"] == "false"
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["route_id", "vehicle_id", "timestamp"] and len(rows) == len(body["rows"]) + 1
    assert rows[1][:2] == body["rows"][0][:2]
    assert rows[1][2] == body["rows"][0][2]  # timestamps in ISO 8601 in both
    as_parquet = post(demo_api, statement, "parquet")
    assert as_parquet.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(as_parquet.content))
    assert table.column_names == body["columns"] and table.num_rows == len(body["rows"])
    cut = post(demo_api, "SELECT * FROM range(20000)", "csv")
    assert cut.headers["x-truncated"] == "true" and cut.text.count("\n") == 10_001


def test_duckdb_errors_are_a_400_in_the_error_shape(demo_api: ApiServer) -> None:
    response = post(demo_api, 'SELECT no_such_column FROM "vehicle-positions"')
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "sql_error" and "no_such_column" in error["message"]
    assert "lake." not in error["message"] and "LINE 1" not in error["message"]
    bad_format = post(demo_api, GOOD, "xlsx")
    assert bad_format.status_code == 400
    no_body = httpx.post(f"{demo_api.api}/sql", json={}, timeout=30)
    assert no_body.status_code == 400 and no_body.json()["error"]["code"] == "invalid_parameter"
    still_answers(demo_api)


def test_every_duckdb_type_is_answered_in_every_format(demo_api: ApiServer) -> None:
    statement = (
        "SELECT INTERVAL 90 MINUTE AS i, 'ab'::BLOB AS b, union_value(k := 1) AS u, "
        "MAP {'a': 1} AS m, {'x': [1, 2]} AS s, 12.50::DECIMAL(10, 2) AS d, "
        "TIMESTAMPTZ '2026-01-01 10:00:00+00' AS t, NULL AS n"
    )
    body = answer(demo_api, statement)
    assert body["rows"] == [["PT1H30M", "6162", 1, [["a", 1]], {"x": [1, 2]}, "12.50",
                             "2026-01-01T10:00:00+00:00", None]]  # fmt: skip
    as_csv = post(demo_api, statement, "csv")
    assert as_csv.status_code == 200
    assert list(csv.reader(io.StringIO(as_csv.text)))[1][:2] == ["PT1H30M", "6162"]
    as_parquet = post(demo_api, statement, "parquet")
    assert as_parquet.status_code == 200
    table = pq.read_table(io.BytesIO(as_parquet.content))
    assert table.column("i").to_pylist() == ["PT1H30M"] and table.column("d").to_pylist()[0] == 12.5


def test_a_partner_key_reads_partner_datasets_with_the_partner_budget(demo_api: ApiServer) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "urbanlake", "--project", str(demo_api.project), "keys", "create",
         "--name", "sql-test-partner", "--tier", "partner"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    key = next(line.strip() for line in made.stdout.splitlines() if line.startswith("ul_"))
    response = httpx.post(
        f"{demo_api.api}/sql",
        json={"sql": f'SELECT count(*) AS n FROM "{HIDDEN}" JOIN "daily-energy-per-meter" USING '
              "(meter_id)"},
        headers={"X-API-Key": key},
        timeout=120,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["row_cap"] == 100_000 and body["rows"][0][0] > 0
    assert set(body["datasets"]) == {HIDDEN, "daily-energy-per-meter"}
    # The same statement without the key: the partner dataset is not there.
    anonymous = post(demo_api, f'SELECT count(*) FROM "{HIDDEN}"')
    assert anonymous.status_code == 400
    assert anonymous.json()["error"]["message"] == f"no dataset '{HIDDEN}'"
