"""Two ingest workers sharing one PostgreSQL catalog and data path commit side by side."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _target
from urbanlake.lakehouse.lake import Lake

CONFIG = """\
name: {name}
domain: energy
source: {{type: file, url: data/{name}/*.csv}}
table: {{primary_key: [meter_id, ts], event_time: ts}}
"""


@pytest.mark.parametrize("kind", ["local-postgres", "s3-postgres"])
def test_two_workers_commit_concurrently(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    target = _target(kind, tmp_path, request)
    for name in ("meters_a", "meters_b"):
        (target.project / "connectors").mkdir(exist_ok=True)
        (target.project / "connectors" / f"{name}.yaml").write_text(CONFIG.format(name=name))
        folder = target.project / "data" / name
        folder.mkdir(parents=True)
        for f in range(8):
            rows = [f"m{r % 20},2026-02-{f + 1:02d}T{r // 20:02d}:00:00Z,{r}" for r in range(200)]
            (folder / f"{f}.csv").write_text("meter_id,ts,kwh\n" + "\n".join(rows) + "\n")
    with Lake.open(target.settings()):
        pass  # create the platform tables once, as a deployment's first start would
    env = {**os.environ, **target.env}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "urbanlake", "--project", str(target.project), "ingest", name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("energy.meters_a", "energy.meters_b")
    ]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(outputs)
    with Lake.open(target.settings()) as lake:
        for name in ("meters_a", "meters_b"):
            assert lake.query(f"SELECT count(*) FROM energy.{name}").column(0)[0].as_py() == 1600
        runs = lake.query(
            "SELECT connector, status FROM platform.runs ORDER BY connector"
        ).to_pylist()
        assert [(r["connector"], r["status"]) for r in runs] == [
            ("energy.meters_a", "succeeded"),
            ("energy.meters_b", "succeeded"),
        ]
