"""Set-aside payloads on the command line (`ingest`, `status`, `replay`) and in lakes made before
payloads had a status."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import LakeTarget
from tests.pipeline.corpus import INTERNALS, write_corpus
from tests.pipeline.test_bad_input import file_config
from urbanlake.cli import app
from urbanlake.core.settings import load_settings
from urbanlake.lakehouse.lake import Lake
from urbanlake.pipeline.run import ingest

runner = CliRunner()

CONNECTOR = """\
name: readings
domain: city
source:
  type: file
  url: drop
{extra}table:
  primary_key: [id]
  event_time: ts
columns:
  level: {{type: double}}
"""


def invoke(project: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["--project", str(project), *args])
    assert result.exit_code == code, result.output + repr(result.exception)
    for internal in INTERNALS:
        assert internal not in result.output, internal
    return result.output


def set_aside_in_status(project: Path) -> str:
    """The `set aside` cell of city.readings in `urbanlake status` (the table's last column)."""
    status = invoke(project, "status")
    assert "set aside" in status
    row = next(x for x in status.splitlines() if "city.readings" in x)
    return row.strip().rstrip("│ ").split()[-1]


def test_ingest_status_and_replay_on_the_command_line(tmp_path: Path) -> None:
    project = tmp_path / "city"
    assert runner.invoke(app, ["init", str(project)]).exit_code == 0
    cases = write_corpus(project / "drop", "csv", start=100)
    config = project / "connectors" / "city" / "readings.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(CONNECTOR.format(extra=""))

    out = invoke(project, "ingest", "city.readings", code=1)
    # The run goes on past the bad files and names each one on a line of its own.
    for case in cases:
        if case.set_aside:
            line = next(x for x in out.splitlines() if f"{case.name}.csv" in x)
            assert "set aside" in line and case.set_aside in out
    assert "binary data" in out and "column 'level' appears twice" in out

    assert set_aside_in_status(project) == "2"

    # A second run fetches nothing: the set-aside files are not read again.
    again = invoke(project, "ingest", "city.readings")
    assert "succeeded" in again

    assert "--payload ID or --failed" in invoke(project, "replay", code=1)
    assert "no kept payload ffff" in invoke(project, "replay", "--payload", "ffff", code=1)

    config.write_text(CONNECTOR.format(extra="  duplicate_columns: rename\n"))
    out = invoke(project, "replay", "--failed", code=1)  # the random bytes stay unreadable
    assert "Replay summary" in out and "e_random.csv" in out and "g_repeated_header" not in out
    with Lake.open(load_settings(project)) as lake:
        records = lake.payload_records("city.readings")
        assert {
            r["origin"].rsplit("/", 1)[-1]: r["status"] for r in records if r["status"] == "failed"
        } == {"e_random.csv": "failed"}
        loaded = lake.query("SELECT count(*) AS n FROM city.readings WHERE level_2 = 7").to_pylist()
        assert loaded == [{"n": 3}]
        random_sha = next(r["sha256"] for r in records if r["status"] == "failed")
    out = invoke(project, "replay", "--payload", random_sha[:10], code=1)
    assert "binary data" in out
    assert set_aside_in_status(project) == "1"

    # Every kept payload of a connector with a key: the rows are already there (duplicates).
    config.write_text(CONNECTOR.format(extra="  duplicate_columns: rename\n"))
    out = invoke(project, "replay", "city.readings", code=1)
    with Lake.open(load_settings(project)) as lake:
        runs = lake.query(
            "SELECT rows_committed FROM platform.runs ORDER BY started_at DESC LIMIT 1"
        ).to_pylist()
        assert runs == [{"rows_committed": 0}]


def test_a_lake_made_before_payloads_had_a_status_is_migrated(local_lake: LakeTarget) -> None:
    settings = local_lake.settings()
    with Lake.open(settings) as lake:
        con = lake.connection()
        for column in ("status", "error", "status_at"):
            con.execute(f"ALTER TABLE platform.payloads DROP COLUMN {column}")
        con.execute("ALTER TABLE platform.runs DROP COLUMN payloads_failed")
        con.execute(
            "INSERT INTO platform.payloads VALUES ('abc', 'city.readings_csv', 'file:///x.csv', 1, "
            "'x.csv', 'old-run', now())"
        )
    write_corpus(local_lake.project / "in" / "csv", "csv", start=300)
    with Lake.open(settings) as lake:
        assert [r["status"] for r in lake.payload_records("city.readings_csv")] == ["loaded"]
        summary = ingest(lake, file_config("csv"), settings)
        assert summary.payloads_failed == 2 and summary.rows_committed > 0
        assert lake.failed_payload_counts() == {"city.readings_csv": 2}
        run = lake.query("SELECT payloads_failed FROM platform.runs").to_pylist()
        assert run == [{"payloads_failed": 2}]
