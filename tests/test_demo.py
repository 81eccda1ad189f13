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
