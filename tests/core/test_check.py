"""`urbanlake check`: every problem in every file at once, each with file:line and field."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from urbanlake.cli import app
from urbanlake.connectors.registry import load_configs

runner = CliRunner()

BROKEN = """\
domain: transport
title: Vehicle positions
source:
  type: gtfs_realtimee
  url: https://transit.example/vp.pb
schedule: {every: 30 parsecs}
"""


def write(project: Path, relative: str, text: str) -> Path:
    path = project / "connectors" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_check_reports_unknown_type_missing_name_and_bad_schedule_with_lines(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "transport/vp.yaml", BROKEN)
    result = runner.invoke(app, ["--project", str(tmp_path), "check"])
    assert result.exit_code == 1
    out = result.output
    assert f"{path}:1: name: Field required" in out
    assert f"{path}:4: source.type: unknown connector type 'gtfs_realtimee'" in out
    assert "valid types: file, " in out and ", http" in out
    assert f"{path}:6: schedule.every: '30 parsecs' is not a duration" in out


def test_check_reports_every_file_and_every_field(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a/one.yaml",
        "name: One\ndomain: energy\nsource: {type: file}\ntable: {primary_key: id, extra: 1}\n",
    )
    write(
        tmp_path,
        "b/two.yaml",
        "name: two\ndomain: energy\nsource: {type: file, url: x.csv}\nschedule: '*/5 * * *'\n",
    )
    write(tmp_path, "c/three.yaml", "name: [unclosed\n")
    configs, problems = load_configs(tmp_path / "connectors")
    messages = [str(p) for p in problems]
    assert configs == []
    assert any("one.yaml:1: name: 'One' is not a SQL name" in m for m in messages)
    assert any("one.yaml:3: source.url: Field required" in m for m in messages)
    assert any("one.yaml:4: table.extra: unknown field" in m for m in messages)
    assert any("two.yaml:4: schedule.cron:" in m and "5 fields" in m for m in messages)
    assert any("three.yaml:" in m and "not valid YAML" in m for m in messages)


def test_check_passes_on_a_valid_project_and_secrets_need_not_be_set(tmp_path: Path) -> None:
    write(
        tmp_path,
        "w/bins.yaml",
        "name: bins\ndomain: waste\nsource: {type: file, url: '${BINS_FOLDER}/*.csv'}\nschedule: 15m\n",
    )
    result = runner.invoke(app, ["--project", str(tmp_path), "check"])
    assert result.exit_code == 0, result.output
    assert "1 connector config(s) and 0 catalog entries valid" in result.output


def test_two_configs_for_one_table_are_refused(tmp_path: Path) -> None:
    text = "name: bins\ndomain: waste\nsource: {type: file, url: a.csv}\n"
    write(tmp_path, "a.yaml", text)
    write(tmp_path, "b.yaml", text)
    _, problems = load_configs(tmp_path / "connectors")
    assert len(problems) == 1 and "already defined" in problems[0].message


def test_the_demo_city_configs_are_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    configs, problems = load_configs(root / "connectors")
    assert problems == []
    assert {c.domain for c in configs} >= {"waste", "energy", "lighting", "transport"}
