"""`make demo`: the sample city is generated, served and ingested by the bundled configs."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from rich.console import Console

from urbanlake.core.settings import load_settings
from urbanlake.demo import generate_files, run_demo
from urbanlake.lakehouse.lake import Lake

ROOT = Path(__file__).resolve().parents[1]


def test_demo_loads_every_dataset_and_ends_with_a_table(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "connectors", tmp_path / "connectors")
    shutil.copytree(ROOT / "quality", tmp_path / "quality")
    shutil.copy(ROOT / "urbanlake.yaml", tmp_path / "urbanlake.yaml")
    settings = load_settings(tmp_path, env={})
    out = io.StringIO()
    code = run_demo(settings, Console(file=out, width=200))
    text = out.getvalue()
    assert code == 0, text
    assert "Loaded datasets" in text and "avg_fill_pct" in text
    expected = generate_files(tmp_path / "check")  # same seed, same counts
    with Lake.open(settings) as lake:
        counts = {s.name: (s.rows, s.quarantined) for s in lake.table_stats()}
    # Three bad lines: an unparsable value, a truncated line and a fill level over 100 %.
    assert counts["waste.bin_fill_levels"] == (expected["waste.bin_fill_levels"] - 3, 3)
    assert counts["energy.meter_readings"] == (expected["energy.meter_readings"], 0)
    assert counts["lighting.streetlights"] == (expected["lighting.streetlights"], 0)
    assert counts["transport.parking_occupancy"] == (384, 0)
    # A second demo run finds nothing new: same files, same API records.
    assert run_demo(settings, Console(file=io.StringIO())) == 0
    with Lake.open(settings) as lake:
        assert {s.name: s.rows for s in lake.table_stats()}["transport.parking_occupancy"] == 384


def test_demo_ends_serving_the_api_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from tests.api.conftest import free_port, new_project

    project = new_project(tmp_path / "city")
    port = free_port()
    env = {**os.environ, "URBANLAKE_API_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "urbanlake", "--project", str(project), "demo"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 300
    for line in process.stdout:
        lines.append(line)
        if "/api/v1/docs" in line or time.monotonic() > deadline:
            break
    assert any("The open-data portal and its API are up" in line for line in lines), "".join(lines)
    for _ in range(100):  # the URLs are printed just before the server binds
        try:
            found = httpx.get(f"http://127.0.0.1:{port}/api/v1/datasets", timeout=5).json()
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    assert found["total"] == 9
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
    assert "API stopped." in rest


def test_demo_in_a_project_without_the_city_says_what_to_do(tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_demo(load_settings(tmp_path, env={}), Console(file=out, width=200))
    assert code == 1
    assert "has none: run it from the UrbanLake checkout (`make demo`)" in out.getvalue()
    assert not (tmp_path / "demo-data").exists()  # nothing generated, nothing started
