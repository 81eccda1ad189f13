"""The quality gate in real runs: faults quarantined by the expectation that caught them,
on_failure semantics, results as data, freshness and `check` on suites."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import LakeTarget
from urbanlake.cli import app
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.lake import Lake
from urbanlake.pipeline.run import ingest

runner = CliRunner()

SUITE = """\
expectations:
  - expect_column_values_to_not_be_null: {column: vehicle_id}
  - expect_column_values_to_be_between: {column: speed, min_value: 0, max_value: 120}
  - expect_column_values_to_be_between: {column: ts, max_value: now+5m}
  - expect_column_values_to_be_unique: {column: report_id}
  - expect_column_values_to_be_in_set: {column: status, value_set: [in_service, depot, out_of_service]}
freshness: {max_age: 1h}
on_failure: %s
"""


def project_with_suite(
    target: LakeTarget, on_failure: str = "quarantine", max_age: str = "1h"
) -> ConnectorConfig:
    (target.project / "quality" / "transport").mkdir(parents=True, exist_ok=True)
    (target.project / "quality" / "transport" / "vehicles.yaml").write_text(
        (SUITE % on_failure).replace("max_age: 1h", f"max_age: {max_age}")
    )
    config_text = (
        "name: vehicles\ndomain: transport\nsource: {type: file, url: data/*.csv}\n"
        "table: {event_time: ts}\nquality: {suite: transport/vehicles}\n"
    )
    (target.project / "connectors").mkdir(exist_ok=True)
    (target.project / "connectors" / "vehicles.yaml").write_text(config_text)
    return ConnectorConfig.model_validate(
        {"name": "vehicles", "domain": "transport", "source": {"type": "file", "url": "data/*.csv"},
         "table": {"event_time": "ts"}, "quality": {"suite": "transport/vehicles"},
         "path": target.project / "connectors" / "vehicles.yaml"}
    )  # fmt: skip


def write_batch(target: LakeTarget, name: str, faults: bool = True) -> int:
    lines = ["report_id,vehicle_id,speed,ts,status"]
    for i in range(40):
        lines.append(
            f"r{name}{i:03d},bus-{i % 7},{20 + i % 30},2026-11-01T08:{i % 60:02d}:00Z,in_service"
        )
    if faults:
        lines += [
            f"r{name}900,,30,2026-11-01T09:00:00Z,in_service",  # null key
            f"r{name}901,bus-1,250,2026-11-01T09:00:00Z,in_service",  # out of range
            f"r{name}902,bus-2,30,2099-01-01T09:00:00Z,in_service",  # future timestamp
            f"r{name}000,bus-3,30,2026-11-01T09:01:00Z,in_service",  # duplicate key of the first row
            f"r{name}904,bus-4,30,2026-11-01T09:02:00Z,flying",  # unknown category
        ]
    path = target.project / "data" / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def test_each_fault_is_quarantined_by_the_expectation_that_caught_it(
    lake_target: LakeTarget,
) -> None:
    config = project_with_suite(lake_target)
    total = write_batch(lake_target, "a")
    settings = lake_target.settings()
    with Lake.open(settings) as lake:
        summary = ingest(lake, config, settings)
        assert summary.status == "succeeded", summary.error
        assert summary.rows_in == total == summary.rows_committed + summary.rows_quarantined
        bad = {
            r["report"]: r["check_name"]
            for r in lake.query(
                "SELECT json_extract_string(raw_record, '$.report_id') AS report, check_name "
                "FROM transport.vehicles__quarantine"
            ).to_pylist()
        }
        assert bad == {
            "ra900": "expect_column_values_to_not_be_null",
            "ra901": "expect_column_values_to_be_between",
            "ra902": "expect_column_values_to_be_between",
            "ra000": "expect_column_values_to_be_unique",  # both rows of the repeated id
            "ra904": "expect_column_values_to_be_in_set",
        }
        reasons = (
            lake.query("SELECT reason FROM transport.vehicles__quarantine").column(0).to_pylist()
        )
        assert any("expect_column_values_to_be_between(speed)" in r for r in reasons)
        assert any("expect_column_values_to_be_between(ts)" in r for r in reasons)
        committed = lake.query("SELECT count(*) FROM transport.vehicles").column(0)[0].as_py()
        assert (
            committed == summary.rows_committed == 39
        )  # 40 clean rows less the first of the repeated id
        results = lake.query(
            "SELECT expectation, column_name, success, unexpected_count, snapshot_id, result_uri "
            "FROM platform.quality_results ORDER BY expectation, column_name"
        ).to_pylist()
        assert len(results) == 5 and all(not r["success"] for r in results)
        assert {r["snapshot_id"] for r in results} == {summary.snapshot_id}
        assert lake.raw.get(results[0]["result_uri"]).startswith(b"{")


def test_reject_batch_leaves_the_table_unchanged_and_says_why(local_lake: LakeTarget) -> None:
    config = project_with_suite(local_lake, on_failure="reject_batch")
    settings = local_lake.settings()
    write_batch(local_lake, "a", faults=False)
    with Lake.open(settings) as lake:
        assert ingest(lake, config, settings).rows_committed == 40
        write_batch(local_lake, "b")
        summary = ingest(lake, config, settings)
        assert summary.status == "failed" and "batch rejected by the quality suite" in (
            summary.error or ""
        )
        assert lake.query("SELECT count(*) FROM transport.vehicles").column(0)[0].as_py() == 40
        assert summary.rows_quarantined == 45
        run = lake.query(
            "SELECT error FROM platform.runs WHERE run_id = ?", [summary.run_id]
        ).to_pylist()[0]
        assert "expect_column_values_to_be_in_set" in run["error"]


def test_warn_commits_everything_and_records_the_failures(local_lake: LakeTarget) -> None:
    config = project_with_suite(local_lake, on_failure="warn")
    settings = local_lake.settings()
    total = write_batch(local_lake, "a")
    with Lake.open(settings) as lake:
        summary = ingest(lake, config, settings)
        assert summary.status == "succeeded" and summary.rows_committed == total
        failed = lake.query(
            "SELECT count(*) FROM platform.quality_results WHERE NOT success"
        ).column(0)[0]
        assert failed.as_py() == 5


def test_which_datasets_failed_which_expectation_in_the_last_day(local_lake: LakeTarget) -> None:
    config = project_with_suite(local_lake)
    settings = local_lake.settings()
    write_batch(local_lake, "a")
    with Lake.open(settings) as lake:
        ingest(lake, config, settings)
        answer = lake.query(
            """SELECT dataset, expectation, column_name, sum(unexpected_count) AS bad_rows
               FROM platform.quality_results
               WHERE NOT success AND validated_at > now() - INTERVAL 1 DAY
               GROUP BY ALL ORDER BY ALL"""
        ).to_pylist()
    assert ("transport.vehicles", "expect_column_values_to_be_in_set", "status", 1) in [
        tuple(r.values()) for r in answer
    ]


def test_status_flags_a_stale_dataset_and_quality_shows_results(local_lake: LakeTarget) -> None:
    config = project_with_suite(local_lake, max_age="2s")
    settings = local_lake.settings()
    write_batch(local_lake, "a")
    with Lake.open(settings) as lake:
        ingest(lake, config, settings)
    fresh = runner.invoke(app, ["--project", str(local_lake.project), "status"])
    assert fresh.exit_code == 0, fresh.output
    assert "transport.vehicles" in fresh.output and "STALE" not in fresh.output
    time.sleep(2.5)
    stale = runner.invoke(app, ["--project", str(local_lake.project), "status"])
    assert "STALE" in stale.output
    shown = runner.invoke(
        app, ["--project", str(local_lake.project), "quality", "transport.vehicles"]
    )
    assert shown.exit_code == 0, shown.output
    assert "expect_column_values_to_be_in_set" in shown.output and "FAIL" in shown.output
    assert "Trend over recent runs" in shown.output


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "expect_column_value_to_not_be_null: {column: x}",
            "did you mean expect_column_values_to_not_be_null",
        ),
        (
            "expect_column_values_to_be_between: {min_value: 1}",
            "missing required argument 'column'",
        ),
    ],
)
def test_check_names_a_misspelled_expectation_and_a_missing_argument(
    tmp_path: Path, entry: str, message: str
) -> None:
    (tmp_path / "quality" / "waste").mkdir(parents=True)
    suite = tmp_path / "quality" / "waste" / "bins.yaml"
    suite.write_text(
        f"expectations:\n  - expect_table_row_count_to_be_between: {{min_value: 1}}\n  - {entry}\n"
    )
    result = runner.invoke(app, ["--project", str(tmp_path), "check"])
    assert result.exit_code == 1
    assert f"{suite}:3:" in result.output and message in result.output


def test_inline_suite_in_the_connector(local_lake: LakeTarget) -> None:
    settings = local_lake.settings()
    write_batch(local_lake, "a")
    inline: dict[str, Any] = {
        "expectations": [
            {"expect_column_values_to_be_in_set": {"column": "status", "value_set": ["in_service"]}}
        ],
        "on_failure": "quarantine",
    }
    config = ConnectorConfig.model_validate(
        {
            "name": "vehicles",
            "domain": "transport",
            "source": {"type": "file", "url": "data/*.csv"},
            "quality": inline,
        }
    )
    with Lake.open(settings) as lake:
        summary = ingest(lake, config, settings)
        assert summary.rows_quarantined == 1
