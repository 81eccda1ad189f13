"""SIGKILL an ingest at 20 random moments of a multi-batch run: the table only ever holds whole
batches with unique keys, and a re-run ends with exactly the rows of an uninterrupted run."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import LakeTarget, _target
from urbanlake.lakehouse.lake import Lake
from urbanlake.lakehouse.records import TableRef

READINGS = TableRef("environment", "readings")
FILES, ROWS_PER_FILE, KILLS = 16, 200, 20
CONFIG = """\
name: readings
domain: environment
source: {type: file, url: data/*.csv}
table: {primary_key: [sensor_id, ts], event_time: ts}
"""


def make_project(target: LakeTarget) -> None:
    (target.project / "connectors").mkdir(exist_ok=True)
    (target.project / "connectors" / "readings.yaml").write_text(CONFIG)
    data = target.project / "data"
    data.mkdir(exist_ok=True)
    for f in range(FILES):
        lines = ["sensor_id,ts,value,file_no"]
        lines += [
            f"s{r % 50:02d},2026-01-{f % 28 + 1:02d}T{r // 50:02d}:{f % 60:02d}:00Z,{r * 0.5},{f}"
            for r in range(ROWS_PER_FILE)
        ]
        (data / f"part-{f:03d}.csv").write_text("\n".join(lines) + "\n")


def start_ingest(target: LakeTarget) -> subprocess.Popen[bytes]:
    env = {**os.environ, **target.env}
    return subprocess.Popen(
        [sys.executable, "-m", "urbanlake", "--project", str(target.project), "ingest", "--all"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def table_rows(target: LakeTarget) -> list[tuple[object, ...]]:
    with Lake.open(target.settings()) as lake:
        if not lake.column_types(READINGS):
            return []
        result = lake.query(
            "SELECT sensor_id, ts, value, file_no FROM environment.readings ORDER BY ALL"
        )
        return [tuple(r.values()) for r in result.to_pylist()]


def assert_whole_batches(target: LakeTarget) -> int:
    with Lake.open(target.settings()) as lake:
        if not lake.column_types(READINGS):
            return 0
        total, distinct = (
            lake.query("SELECT count(*), count(DISTINCT (sensor_id, ts)) FROM environment.readings")
            .to_pylist()[0]
            .values()
        )
        assert total == distinct, "duplicate primary keys after a kill"
        partial = lake.query(
            f"SELECT file_no, count(*) AS n FROM environment.readings GROUP BY file_no HAVING n <> {ROWS_PER_FILE}"
        ).to_pylist()
        assert partial == [], f"half-committed batches after a kill: {partial}"
        files_in_state = len(lake.read_state("environment.readings").get("files", {}))
        assert files_in_state * ROWS_PER_FILE == total, "connector state and data disagree"
        return int(total)


def reset(target: LakeTarget) -> None:
    """Empty the lake (data folder and catalog) so that the next run starts from nothing."""
    catalog = target.env.get("URBANLAKE_CATALOG")
    if catalog:
        import psycopg

        with psycopg.connect(catalog, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    shutil.rmtree(target.project / "lake", ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["local-sqlite", "local-postgres"])
def test_sigkill_at_random_moments_loses_nothing_and_duplicates_nothing(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (tmp_path / "baseline").mkdir()
    baseline = _target("local-sqlite", tmp_path / "baseline", request)
    make_project(baseline)
    began = time.monotonic()
    assert start_ingest(baseline).wait(timeout=300) == 0
    duration = time.monotonic() - began
    expected = table_rows(baseline)
    assert len(expected) == FILES * ROWS_PER_FILE

    (tmp_path / "crash").mkdir()
    target = _target(kind, tmp_path / "crash", request)
    make_project(target)
    # How long a whole run takes on this lake kind, on this machine now: the kills land within it.
    began = time.monotonic()
    assert start_ingest(target).wait(timeout=300) == 0
    duration = time.monotonic() - began
    assert table_rows(target) == expected
    reset(target)
    rng = random.Random(20261128)
    kills_mid_run = 0
    for _ in range(KILLS):
        process = start_ingest(target)
        time.sleep(rng.uniform(0.6, duration))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills_mid_run += 1
        process.wait(timeout=60)
        loaded = assert_whole_batches(target)
        if loaded == FILES * ROWS_PER_FILE:
            # This run finished before the kill: start the lake again so the next kill lands mid-run.
            assert table_rows(target) == expected
            reset(target)
    assert kills_mid_run >= KILLS // 2, f"only {kills_mid_run} of {KILLS} kills landed during a run"

    assert start_ingest(target).wait(timeout=300) == 0
    assert table_rows(target) == expected
