"""The command line end to end, in-process: init, ingest, sql in every format, tables, history."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

import urbanlake
from urbanlake.cli import app

runner = CliRunner()


def invoke(project: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["--project", str(project), *args])
    assert result.exit_code == code, result.output + repr(result.exception)
    return result.output


def test_init_ingest_query_tables_history(tmp_path: Path) -> None:
    project = tmp_path / "city"
    assert "Project ready" in runner.invoke(app, ["init", str(project)]).output
    assert "1 connector config(s) and 1 catalog entry valid" in invoke(project, "check")
    out = invoke(project, "ingest", "--all")
    assert "Ingest summary" in out and "waste.bin_fill_levels" in out and "succeeded" in out

    csv_out = invoke(
        project,
        "sql",
        "SELECT bin_id, fill_level FROM waste.bin_fill_levels ORDER BY 1",
        "--format",
        "csv",
    )
    assert csv_out.splitlines()[:2] == ['"bin_id","fill_level"', '"bin-001",42.5']
    records = json.loads(
        invoke(project, "sql", "SELECT count(*) AS n FROM waste.bin_fill_levels", "-f", "json")
    )
    assert records == [{"n": 2}]
    target = tmp_path / "out.parquet"
    invoke(
        project, "sql", "SELECT * FROM waste.bin_fill_levels", "-f", "parquet", "-o", str(target)
    )
    assert pq.read_table(target).num_rows == 2
    table_out = invoke(project, "sql", "SELECT * FROM platform.runs")
    assert "1 row(s)" in table_out

    tables = invoke(project, "tables")
    assert "waste.bin_fill_levels" in tables and "ago" in tables
    history = invoke(project, "history", "waste.bin_fill_levels")
    assert "AT (VERSION => n)" in history

    con = urbanlake.connect(str(project))
    assert con.sql("SELECT count(*) FROM waste.bin_fill_levels").fetchone() == (2,)


def test_clear_errors(tmp_path: Path) -> None:
    project = tmp_path / "city"
    runner.invoke(app, ["init", str(project)])
    assert "no connector 'nope'" in invoke(project, "ingest", "nope", code=1)
    assert "query failed" in invoke(project, "sql", "SELECT * FROM missing.table", code=1)
    assert "unknown format" in invoke(project, "sql", "SELECT 1", "--format", "xml", code=1)
    assert "no table waste.nothing" in invoke(project, "history", "waste.nothing", code=1)
    assert "already exists" in runner.invoke(app, ["init", str(project)]).output


def test_failed_run_exits_non_zero_and_says_why(tmp_path: Path) -> None:
    project = tmp_path / "city"
    runner.invoke(app, ["init", str(project)])
    config = project / "connectors" / "waste" / "bin_fill_levels.yaml"
    config.write_text(config.read_text().replace("data/bins/*.csv", "data/bins/missing.csv"))
    out = invoke(project, "ingest", "waste.bin_fill_levels", code=1)
    assert "failed" in out and "missing.csv: no such file" in out
