"""Quality gate bench: what does the Great Expectations gate add to one ingest of 1M readings?

    .venv/bin/python bench/quality.py [--rows N] [--repeat N] [--keep] [--no-profile]

One CSV of city sensor readings (seeded, with about 0.5% row-level faults injected at fixed
rates) and a 10-expectation suite. Measured in this one long-lived process, as a worker runs:

- (a) ``ingest`` of the file by a connector without ``quality:`` (no gate);
- (b) ``ingest`` of the same file by a connector with ``quality: {suite: bench/readings}``;
- (c) the gate alone: ``check_batch(suite, typed_rows, settings)`` on the batch already typed.

Each is run ``--repeat`` times (default 3), (a) and (b) on a fresh project and lake each time
(opening the lake is not timed). The headline is the best run: on a shared machine other
processes only ever add time. Great Expectations' import and context creation (about 3 s) are
paid once, in a warm-up before any timed run, and excluded; they are measured apart in fresh
child processes and reported as a one-time cost.

Correctness: for (a) every row is committed; for (b) rows committed + rows quarantined == rows in
and the quarantined rows are exactly the rows with an injected fault; for (c) GX's unexpected
count per expectation equals the number injected. A mismatch marks the run WRONG and the bench
exits 1. When the gate overhead misses its goal, a cProfile of (c) is printed and stored.
Results go to bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PYTHON,
    STATUSES,
    engine,
    fmt,
    format_table,
    machine,
    run_measured,
    sensor_readings,
    write_csv,
    write_results,
)

# Before anything imports GX: it reads this when its module loads.
os.environ["GX_ANALYTICS_ENABLED"] = "false"

import pyarrow as pa

import urbanlake.pipeline.run as pipeline_run
from urbanlake.connectors.base import ConnectorContext
from urbanlake.connectors.registry import build_connector, load_configs
from urbanlake.core.settings import Settings, load_settings
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.lake import Lake, TableRef
from urbanlake.quality import gx_runner
from urbanlake.quality.gate import GateResult, check_batch
from urbanlake.quality.suite import Suite, check_suites, suite_for

GOAL_OVERHEAD = 0.30  # (b - a) / a
COLUMNS = ["reading_id", "sensor_id", "ts", "value", "unit", "status", "lat", "lon"]
SENSOR_ID = r"^[A-Z0-9]+(?:-[A-Z0-9]+)?-\d{5}$"
# Share of rows given each row-level fault; with the repeated reading ids (1 in 10,000 rows
# copies its neighbour's id, which makes 2 failing rows) the faulty rows are ~0.5% of the batch.
FAULT_RATES = {
    "sensor_id null": 0.0005,
    "sensor_id malformed": 0.0005,
    "ts null": 0.0005,
    "value out of range": 0.002,  # 0.2% of values: under the suite's mostly (0.99), so it passes
    "lat out of range": 0.0003,
    "lon out of range": 0.0003,
    "status unknown": 0.0005,
}
REPEATED_IDS_EVERY = 10_000
QUARANTINE = TableRef("bench", "readings").quarantine

SUITE_YAML = f"""\
# The bench's suite: 10 expectations, 8 of them row-level.
expectations:
  - expect_column_values_to_not_be_null: {{column: sensor_id}}
  - expect_column_values_to_not_be_null: {{column: ts}}
  - expect_column_values_to_be_between: {{column: value, min_value: -50, max_value: 5000, mostly: 0.99}}
  - expect_column_values_to_be_between: {{column: lat, min_value: 38, max_value: 40}}
  - expect_column_values_to_be_between: {{column: lon, min_value: -10, max_value: -8}}
  - expect_column_values_to_be_in_set: {{column: status, value_set: [{", ".join(STATUSES)}]}}
  - expect_column_values_to_match_regex: {{column: sensor_id, regex: '{SENSOR_ID}'}}
  - expect_column_values_to_be_unique: {{column: reading_id}}
  - expect_table_row_count_to_be_between: {{min_value: 1, max_value: 100000000}}
  - expect_table_columns_to_match_set: {{column_set: [{", ".join(COLUMNS)}]}}
on_failure: quarantine
"""


# -- data -----------------------------------------------------------------------------------------


@dataclass
class Faults:
    """What the generator injected: the gate's expected verdicts."""

    rows: int
    # (expectation, column) -> the unexpected_count GX must report
    by_expectation: dict[tuple[str, str], int]
    bad_rows: int  # distinct rows with at least one row-level fault: the rows to quarantine

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "bad_rows": self.bad_rows,
            "bad_share": self.bad_rows / self.rows,
            "by_expectation": {f"{e}({c})": n for (e, c), n in self.by_expectation.items()},
        }


def readings_with_faults(rows: int, seed: int) -> tuple[pa.Table, Faults]:
    """``common.sensor_readings`` plus a unique ``reading_id``, with faults at FAULT_RATES.

    The clean readings pass every expectation (values are clipped to their kind's range, the
    sensors stand within ~8 km of Lisbon's centre), so the expected verdicts follow from the
    injection masks alone.
    """
    import numpy as np
    import pyarrow.compute as pc

    table = sensor_readings(rows, seed=seed)
    rng = np.random.default_rng(seed + 1)

    def pick(what: str) -> Any:
        return rng.random(rows) < FAULT_RATES[what]

    def where(mask: Any, value: Any, column: Any) -> Any:
        return pc.if_else(pa.array(mask), value, column)

    null_sensor = pick("sensor_id null")
    malformed = pick("sensor_id malformed") & ~null_sensor  # a null is not matched by a regex
    sensor_id = where(malformed, pa.scalar("bad id!"), table["sensor_id"])
    sensor_id = where(null_sensor, pa.scalar(None, pa.string()), sensor_id)
    null_ts = pick("ts null")
    ts = where(null_ts, pa.scalar(None, pa.string()), table["ts"])
    bad_value = pick("value out of range")
    value = where(bad_value, pa.scalar(9999.0), table["value"])
    bad_lat, bad_lon = pick("lat out of range"), pick("lon out of range")
    lat = where(bad_lat, pa.scalar(0.0), table["lat"])
    lon = where(bad_lon, pa.scalar(0.0), table["lon"])
    bad_status = pick("status unknown")
    status = where(bad_status, pa.scalar("unknown"), table["status"])

    reading_id = np.arange(rows, dtype=np.int64) + 1_000_000_000
    copies = rng.choice(rows, size=max(1, rows // REPEATED_IDS_EVERY), replace=False)
    reading_id[copies] = reading_id[(copies + 1) % rows]
    _, inverse, counts = np.unique(reading_id, return_inverse=True, return_counts=True)
    repeated = counts[inverse] > 1  # GX's unique marks every row of a repeated value

    faulty = null_sensor | malformed | null_ts | bad_value | bad_lat | bad_lon | bad_status
    faulty |= repeated
    faults = Faults(
        rows=rows,
        by_expectation={
            ("expect_column_values_to_not_be_null", "sensor_id"): int(null_sensor.sum()),
            ("expect_column_values_to_not_be_null", "ts"): int(null_ts.sum()),
            ("expect_column_values_to_be_between", "value"): int(bad_value.sum()),
            ("expect_column_values_to_be_between", "lat"): int(bad_lat.sum()),
            ("expect_column_values_to_be_between", "lon"): int(bad_lon.sum()),
            ("expect_column_values_to_be_in_set", "status"): int(bad_status.sum()),
            ("expect_column_values_to_match_regex", "sensor_id"): int(malformed.sum()),
            ("expect_column_values_to_be_unique", "reading_id"): int(repeated.sum()),
        },
        bad_rows=int(faulty.sum()),
    )
    out = pa.table(
        {
            "reading_id": pa.array(reading_id),
            "sensor_id": sensor_id,
            "ts": ts,
            "value": value,
            "unit": table["unit"],
            "status": status,
            "lat": lat,
            "lon": lon,
        }
    )
    return out, faults


# -- projects -------------------------------------------------------------------------------------


class Projects:
    """Fresh city projects in the work folder, all reading one CSV file."""

    def __init__(self, work: Path, source: Path, keep: bool):
        self.work, self.source, self.keep = work, source, keep
        # One DuckDB extension folder for every project: copying the extensions out of their
        # wheels costs ~0.5 s and ~68 MB per project, and it is not what this bench measures.
        self.extensions = work / "duckdb_extensions"
        self.extensions.mkdir(exist_ok=True)
        self.count = 0

    def new(self, label: str, gate: bool) -> tuple[ConnectorConfig, Settings]:
        """(ConnectorConfig, Settings) of a new project; the connector has the suite if ``gate``."""
        self.count += 1
        folder = self.work / f"{self.count:02d}-{label}"
        (folder / "connectors" / "bench").mkdir(parents=True)
        (folder / "quality" / "bench").mkdir(parents=True)
        (folder / ".urbanlake").mkdir()
        (folder / ".urbanlake" / "duckdb_extensions").symlink_to(self.extensions)
        (folder / "urbanlake.yaml").write_text("name: bench\nlake: lake\n")
        (folder / "quality" / "bench" / "readings.yaml").write_text(SUITE_YAML)
        # No primary key: key checks would cost (a) a pass that (b)'s gate spares it (the gate
        # quarantines both rows of a repeated id first), which would flatter the gate.
        config = (
            "name: readings\n"
            "domain: bench\n"
            f"source: {{type: file, url: {json.dumps(str(self.source))}}}\n"
            "table: {event_time: ts}\n"
        )
        if gate:
            config += "quality: {suite: bench/readings}\n"
        (folder / "connectors" / "bench" / "readings.yaml").write_text(config)
        configs, problems = load_configs(folder / "connectors")
        if problems or len(configs) != 1:
            raise SystemExit(f"BENCH FAILED: the bench's connector is not valid: {problems}")
        # env={}: the machine's URBANLAKE_* variables must not point the bench at another lake.
        return configs[0], load_settings(folder, env={})

    def done(self, settings: Settings) -> None:
        if not self.keep:
            shutil.rmtree(settings.project_dir, ignore_errors=True)


def check_suite_names(settings: Settings) -> None:
    """Every expectation of the suite is one GX knows, with its required arguments."""
    configs, _ = load_configs(settings.project_dir / "connectors")
    problems = check_suites(settings, configs)
    if problems:
        raise SystemExit(f"BENCH FAILED: the bench's suite has problems: {problems}")


# -- timing ---------------------------------------------------------------------------------------


@dataclass
class Timing:
    """The repeated runs of one measurement; the best (fastest) run is the headline."""

    key: str
    label: str
    rows: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    @property
    def best(self) -> dict[str, Any]:
        return min(self.runs, key=lambda r: r["seconds"])

    @property
    def seconds(self) -> float:
        return float(self.best["seconds"])

    @property
    def median(self) -> float:
        return statistics.median(r["seconds"] for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "rows": self.rows,
            "seconds": self.seconds,
            "median_seconds": self.median,
            "cpu_seconds": self.best["cpu_s"],
            "rows_per_s": self.rows / self.seconds,
            "status": "wrong" if self.wrong else "ok",
            "wrong": self.wrong,
            "runs": self.runs,
        }


class Phases:
    """Wall time spent in named engine calls during one ingest (a timing wrapper, no change).

    The wrappers call straight through; they exist so that (b) - (a) can be split into the
    gate, GX's result document, and the commit (which for (b) also writes the quarantine and
    ``platform.quality_results``).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.missing: list[str] = []  # engine calls not found (then not timed)

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        # (owner, phase, names): the first name the engine has is wrapped. The engine moves
        # (commit_batch became a wrapper of commit_batches), and wrapping both would count twice.
        targets: list[tuple[Any, str, tuple[str, ...]]] = [
            (pipeline_run, "gate", ("check_batch",)),
            (pipeline_run, "document", ("document_bytes",)),
            (Lake, "document", ("keep_document",)),
            (Lake, "type", ("prepare_batch",)),
            (Lake, "commit", ("commit_batches", "commit_batch")),
        ]
        originals = []
        for owner, phase, names in targets:
            name = next((n for n in names if hasattr(owner, n)), None)
            if name is None:
                self.missing.append(f"{phase}: {'/'.join(names)}")
                continue
            original = getattr(owner, name)
            originals.append((owner, name, original))
            setattr(owner, name, self._timed(original, phase))
        try:
            yield
        finally:
            for owner, name, original in originals:
                setattr(owner, name, original)

    def _timed(self, original: Callable[..., Any], phase: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self.seconds[phase] = self.seconds.get(phase, 0.0) + elapsed

        return timed


def timed(work: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    gc.collect()
    load = round(os.getloadavg()[0], 2)
    started, cpu = time.perf_counter(), time.process_time()
    result = work()
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    return result, {"seconds": round(seconds, 4), "cpu_s": round(cpu_s, 3), "load": load}


def run_ingest(projects: Projects, gate: bool, faults: Faults, timing: Timing) -> None:
    """One timed ``ingest`` on a fresh lake, then its correctness checks."""
    config, settings = projects.new(timing.key, gate)
    phases = Phases()
    with Lake.open(settings) as lake:
        with phases.recording():
            summary, run = timed(lambda: pipeline_run.ingest(lake, config, settings))

        def count(sql: str) -> int:
            return int(lake.query(sql).column(0)[0].as_py())

        committed = count("SELECT count(*) FROM bench.readings")
        quarantine_rows = (
            count("SELECT count(*) FROM bench.readings__quarantine")
            if lake.exists(QUARANTINE)
            else 0
        )
        results = count("SELECT count(*) FROM platform.quality_results")
    expected_quarantined = faults.bad_rows if gate else 0
    problems = []
    if summary.status != "succeeded":
        problems.append(f"run {summary.status}: {summary.error}")
    if summary.rows_in != faults.rows:
        problems.append(f"rows in {summary.rows_in:,} != {faults.rows:,} generated")
    if summary.rows_committed + summary.rows_quarantined != summary.rows_in:
        problems.append(
            f"committed {summary.rows_committed:,} + quarantined {summary.rows_quarantined:,}"
            f" != rows in {summary.rows_in:,}"
        )
    if summary.rows_quarantined != expected_quarantined:
        problems.append(
            f"quarantined {summary.rows_quarantined:,} != {expected_quarantined:,} injected faulty rows"
        )
    if committed != faults.rows - expected_quarantined or quarantine_rows != expected_quarantined:
        problems.append(f"table has {committed:,} rows and quarantine {quarantine_rows:,}")
    if results != (10 if gate else 0):
        problems.append(f"{results} rows in platform.quality_results")
    timing.wrong += problems
    timing.runs.append(
        {
            **run,
            "run_seconds": summary.seconds,  # the run as the engine times it itself
            "phases": {k: round(v, 4) for k, v in sorted(phases.seconds.items())},
            "phases_not_found": phases.missing,
            "rows_in": summary.rows_in,
            "rows_committed": summary.rows_committed,
            "rows_quarantined": summary.rows_quarantined,
            "rows_duplicate": summary.rows_duplicate,
            "quality_failures": summary.quality_failures,
            "ok": not problems,
        }
    )
    projects.done(settings)
    mark = "ok" if not problems else "WRONG: " + "; ".join(problems)
    split = ", ".join(f"{k} {v:.2f}" for k, v in sorted(phases.seconds.items()))
    print(
        f"  {timing.label}: {run['seconds']:.2f} s (cpu {run['cpu_s']:.2f}, load {run['load']};"
        f" {split}) committed {summary.rows_committed:,}, quarantined"
        f" {summary.rows_quarantined:,}: {mark}",
        flush=True,
    )


def typed_batch(projects: Projects) -> tuple[pa.Table, Suite, Settings]:
    """(typed rows, suite, settings): the batch as the gate receives it inside ``ingest``.

    The same engine calls as ``Ingestion._ingest_payload`` up to the gate: fetch, decode,
    ``Lake.prepare_batch`` on a fresh lake.
    """
    config, settings = projects.new("typed", gate=True)
    connector = build_connector(config, ConnectorContext(settings, "bench"))
    try:
        payload = next(iter(connector.fetch({})))
        decoded = connector.decode(payload)
    finally:
        connector.close()
    with Lake.open(settings) as lake:
        prepared = lake.prepare_batch(
            TableRef(config.domain, config.name),
            decoded.table,
            config.declared_types,
            decoded.loose_columns,
            config.table.timezone or settings.defaults.timezone,
        )
    if prepared.bad:
        raise SystemExit(f"BENCH FAILED: {len(prepared.bad)} rows did not type")
    suite = suite_for(config, settings)
    check_suite_names(settings)
    projects.done(settings)
    return prepared.rows, suite, settings


def run_gate(
    rows: pa.Table, suite: Suite, settings: Settings, faults: Faults, timing: Timing
) -> GateResult:
    """One timed ``check_batch`` on the typed batch, then its correctness checks."""
    gate, run = timed(lambda: check_batch(suite, rows, settings))
    problems = []
    if gate.rejected:
        problems.append(f"batch rejected: {gate.rejected}")
    if gate.rows.num_rows + len(gate.quarantined) != faults.rows:
        problems.append(f"{gate.rows.num_rows:,} passed + {len(gate.quarantined):,} quarantined")
    if len(gate.quarantined) != faults.bad_rows:
        problems.append(
            f"quarantined {len(gate.quarantined):,} != {faults.bad_rows:,} injected faulty rows"
        )
    counts = {
        (r["expectation"], r["column_name"]): r["unexpected_count"]
        for r in gate.results.to_pylist()
        if r["row_level"]
    }
    for key, expected in faults.by_expectation.items():
        if counts.get(key) != expected:
            problems.append(f"{key[0]}({key[1]}): GX found {counts.get(key)}, injected {expected}")
    timing.wrong += problems
    timing.runs.append({**run, "quarantined": len(gate.quarantined), "ok": not problems})
    mark = "ok" if not problems else "WRONG: " + "; ".join(problems)
    print(
        f"  {timing.label}: {run['seconds']:.2f} s (cpu {run['cpu_s']:.2f}, load {run['load']})"
        f" quarantined {len(gate.quarantined):,}, {len(gate.failures)} expectations failed: {mark}",
        flush=True,
    )
    return gate


# -- the one-time cost of GX ----------------------------------------------------------------------

GX_CHILD = """
import json, os, time
os.environ["GX_ANALYTICS_ENABLED"] = "false"
started = time.perf_counter()
from urbanlake.quality import gx_runner
imported_runner = time.perf_counter()
gx_runner.expectation_names()      # imports great_expectations and its expectations
imported_gx = time.perf_counter()
gx_runner._gx_runtime()            # the ephemeral context and its pandas asset
ready = time.perf_counter()
print(json.dumps({"runner_import_s": imported_runner - started,
                  "gx_import_s": imported_gx - imported_runner,
                  "context_s": ready - imported_gx}))
"""


def gx_one_time_cost(repeat: int, work: Path) -> dict[str, Any]:
    """GX's import and context in fresh processes: fork to exit, and the parts timed inside."""
    runs = []
    for attempt in range(repeat):
        run = run_measured(
            [PYTHON, "-c", GX_CHILD], timeout=300, log=work / "logs" / f"gx-{attempt}"
        )
        if run.returncode != 0:
            raise SystemExit(f"BENCH FAILED: the GX import child failed: {run.stderr[-2000:]}")
        inner = json.loads(run.stdout.strip().splitlines()[-1])
        runs.append(
            {
                "process_s": round(run.seconds, 3),
                "cpu_s": round(run.user_s + run.sys_s, 2),
                "peak_rss_mb": round(run.peak_rss_mb, 1),
                **{k: round(v, 3) for k, v in inner.items()},
            }
        )
    baseline = run_measured([PYTHON, "-c", "pass"], timeout=60, log=work / "logs" / "python")
    best = min(runs, key=lambda r: r["process_s"])
    return {
        "command": "python -c 'gx_runner.expectation_names(); gx_runner._gx_runtime()'",
        "best": best,
        "import_and_context_s": round(best["gx_import_s"] + best["context_s"], 3),
        "python_alone_s": round(baseline.seconds, 3),
        "runs": runs,
    }


# -- profile --------------------------------------------------------------------------------------


def profile_gate(rows: pa.Table, suite: Suite, settings: Settings, top: int = 30) -> dict[str, Any]:
    """cProfile of one ``check_batch``: the top functions by cumulative and by own time."""
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    check_batch(suite, rows, settings)
    profiler.disable()
    seconds = time.perf_counter() - started
    texts = {}
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(order).print_stats(top)
        # Drop pstats' preamble up to the column header.
        text = out.getvalue()
        text = text[text.find("   ncalls") :].rstrip()
        for prefix in sorted({str(Path(p)) + os.sep for p in sys.path if p}, key=len, reverse=True):
            text = text.replace(prefix, "")  # paths relative to site-packages or platform/
        texts[order] = text
    return {"seconds_under_profile": round(seconds, 3), **texts}


# -- report ---------------------------------------------------------------------------------------


def report(timings: dict[str, Timing], gx: dict[str, Any], rows: int) -> tuple[str, dict[str, Any]]:
    a, b, c = timings["a"], timings["b"], timings["c"]
    overhead = (b.seconds - a.seconds) / a.seconds
    gate_share = c.seconds / a.seconds
    cpu_overhead = (b.best["cpu_s"] - a.best["cpu_s"]) / a.best["cpu_s"]
    met = overhead <= GOAL_OVERHEAD
    headers = ["measurement", "seconds (best)", "median s", "CPU s", "rows/s", "runs (s)", ""]
    table = [
        [
            t.label,
            f"{t.seconds:.3f}",
            f"{t.median:.3f}",
            f"{t.best['cpu_s']:.2f}",
            f"{rows / t.seconds:,.0f}",
            " ".join(f"{r['seconds']:.2f}" for r in t.runs),
            "WRONG" if t.wrong else "ok",
        ]
        for t in (a, b, c)
    ]
    lines = [format_table(headers, table), ""]
    ratio_rows = [
        [
            "gate overhead (b-a)/a",
            f"{overhead:.1%}",
            f"{cpu_overhead:.1%}",
            f"<= {GOAL_OVERHEAD:.0%}: " + ("met" if met else "NOT MET"),
        ],
        ["gate alone (c)/(a)", f"{gate_share:.1%}", "", ""],
    ]
    lines += [format_table(["ratio", "wall", "CPU", "goal"], ratio_rows), ""]
    phases_a, phases_b = a.best.get("phases", {}), b.best.get("phases", {})
    names = sorted(set(phases_a) | set(phases_b))
    phase_rows = [
        [
            name,
            fmt(phases_a.get(name), ".3f"),
            fmt(phases_b.get(name), ".3f"),
            fmt(phases_b.get(name, 0.0) - phases_a.get(name, 0.0), "+.3f"),
        ]
        for name in names
    ]
    rest_a = a.seconds - sum(phases_a.values())
    rest_b = b.seconds - sum(phases_b.values())
    phase_rows.append(["(rest of ingest)", f"{rest_a:.3f}", f"{rest_b:.3f}", ""])
    lines += [
        "inside the best runs of (a) and (b), seconds (timing wrappers on engine calls):",
        format_table(["phase", "(a)", "(b)", "(b)-(a)"], phase_rows),
        "",
        "one-time, not in the figures above: Great Expectations' import + ephemeral context,"
        f" {gx['import_and_context_s']:.2f} s (import {gx['best']['gx_import_s']:.2f} s,"
        f" context {gx['best']['context_s']:.2f} s); a fresh process running only that takes"
        f" {gx['best']['process_s']:.2f} s fork to exit (python alone {gx['python_alone_s']:.2f} s),"
        f" best of {len(gx['runs'])}",
    ]
    ratios = {
        "gate_overhead": overhead,
        "gate_overhead_cpu": cpu_overhead,
        "goal": f"<= {GOAL_OVERHEAD:.0%}",
        "goal_met": met,
        "gate_alone_over_ingest": gate_share,
    }
    return "\n".join(lines), ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated data")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a), (b), (c); best counts")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and projects")
    parser.add_argument(
        "--no-profile", action="store_true", help="no cProfile of the gate, even if the goal fails"
    )
    parser.add_argument("--results", default="quality", help="file name in bench/results/")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="urbanlake-bench-quality-"))
    print(f"quality bench: {args.rows:,} rows, work folder {work}", flush=True)
    keep = args.keep
    try:
        # In child processes: a fresh interpreter, as a worker starts.
        print("GX import + context in fresh processes ...", flush=True)
        gx = gx_one_time_cost(args.repeat, work)
        print(f"  best: {json.dumps(gx['best'])}", flush=True)

        started = time.perf_counter()
        table, faults = readings_with_faults(args.rows, args.seed)
        source = work / "readings.csv"
        write_csv(table.select(COLUMNS), source)
        del table
        print(
            f"generated {args.rows:,} rows with {faults.bad_rows:,} faulty rows"
            f" ({faults.bad_rows / args.rows:.2%}) in {time.perf_counter() - started:.1f} s:"
            f" {source.stat().st_size / 2**20:.1f} MiB",
            flush=True,
        )

        projects = Projects(work, source, keep)
        # Warm-up, untimed: GX's import and context, then one ingest each way on the full batch
        # (first calls import pandas' and GX's execution modules, DuckLake's first writes).
        started = time.perf_counter()
        gx_runner._gx_runtime()
        warm_gx = time.perf_counter() - started
        print(f"warm-up: GX import + context in this process {warm_gx:.2f} s", flush=True)
        warm = {k: Timing(k, f"warm-up {k}", args.rows) for k in ("a", "b")}
        run_ingest(projects, False, faults, warm["a"])
        run_ingest(projects, True, faults, warm["b"])
        rows, suite, settings = typed_batch(projects)

        timings = {
            "a": Timing("a", "(a) ingest, no gate", args.rows),
            "b": Timing("b", "(b) ingest, with gate", args.rows),
            "c": Timing("c", "(c) gate alone (check_batch)", args.rows),
        }
        # Interleaved, so that a burst of load on the shared machine hits all three alike.
        for attempt in range(args.repeat):
            print(f"round {attempt + 1} of {args.repeat}", flush=True)
            run_ingest(projects, False, faults, timings["a"])
            run_ingest(projects, True, faults, timings["b"])
            run_gate(rows, suite, settings, faults, timings["c"])

        text, ratios = report(timings, gx, args.rows)
        print("\n" + text)
        profile = None
        if not ratios["goal_met"] and not args.no_profile:
            profile = profile_gate(rows, suite, settings)
            print(
                f"\nthe goal is not met: cProfile of one check_batch"
                f" ({profile['seconds_under_profile']:.2f} s under the profiler),"
                f" top functions by cumulative time:\n{profile['cumulative']}"
                f"\n\nby own time:\n{profile['tottime']}"
            )
        wrong = [t for t in (*warm.values(), *timings.values()) if t.wrong]
        results = {
            "bench": "quality",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": args.rows,
            "seed": args.seed,
            "repeat": args.repeat,
            "headline": "best wall time of the runs, in one long-lived process, GX already imported",
            "machine": machine(),
            "engine": engine(),
            "csv_bytes": source.stat().st_size,
            "faults": faults.to_dict(),
            "fault_rates": FAULT_RATES,
            "suite": SUITE_YAML,
            "gx_one_time": {**gx, "in_this_process_s": round(warm_gx, 3)},
            "warm_up": [t.to_dict() for t in warm.values()],
            "measurements": [t.to_dict() for t in timings.values()],
            "ratios": ratios,
            "profile": profile,
        }
        print(f"\nresults: {write_results(args.results, results)}")
    except BaseException:
        keep = True  # whatever went wrong is left to look at
        raise
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if wrong:
        print(
            "\nBENCH FAILED: wrong results in " + ", ".join(t.label for t in wrong),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
