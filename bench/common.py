"""Helpers shared by the benches in this folder: seeded city data, measured child processes,
result tables.

Nothing here imports pyarrow or orjson at module level, so a bench's worker process that
imports this module pays only for what its own measurement needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
URBANLAKE = str(VENV_BIN / "urbanlake") if (VENV_BIN / "urbanlake").exists() else "urbanlake"
RESULTS_DIR = ROOT / "bench" / "results"

# -- seeded city sensor data -----------------------------------------------------------------------

# kind: (unit, mean, spread, low, high); values are drawn around the mean, clipped, 2 decimals.
SENSOR_KINDS = {
    "AQ-PM25": ("ug/m3", 12.0, 8.0, 0.0, 300.0),
    "AQ-NO2": ("ug/m3", 28.0, 14.0, 0.0, 400.0),
    "NOISE": ("dBA", 58.0, 9.0, 25.0, 120.0),
    "TEMP": ("degC", 16.0, 6.0, -20.0, 48.0),
    "HUMID": ("%", 65.0, 15.0, 0.0, 100.0),
    "TRAFFIC": ("veh/h", 420.0, 260.0, 0.0, 4000.0),
}
STATUSES = ("ok", "degraded", "maintenance", "offline")
STATUS_WEIGHTS = (0.965, 0.025, 0.006, 0.004)  # an offline reading has no value
CITY_CENTRE = (38.7223, -9.1393)  # lat, lon
START = "2026-01-01T00:00:00"


def sensor_readings(rows: int, seed: int = 42, sensors: int = 2000, every_s: int = 60) -> Any:
    """``rows`` readings as a pyarrow Table, vectorised with numpy, identical for a given seed.

    Columns: sensor_id (string), ts (ISO-8601 text ending in ``Z``), value (double, null when the
    sensor is offline), unit, status (strings), lat, lon (doubles). Row ``i`` is the reading of
    sensor ``i % sensors`` at step ``i // sensors``, so (sensor_id, ts) is unique and the feed
    arrives in time order, as a city's sensor export does.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    kinds = list(SENSOR_KINDS)
    sensor_kind = rng.integers(0, len(kinds), sensors)
    sensor_ids = np.array([f"{kinds[k]}-{i:05d}" for i, k in enumerate(sensor_kind)], dtype=object)
    # Sensors sit within ~8 km of the centre, each at a fixed place.
    sensor_lat = np.round(CITY_CENTRE[0] + rng.normal(0, 0.035, sensors), 6)
    sensor_lon = np.round(CITY_CENTRE[1] + rng.normal(0, 0.045, sensors), 6)
    sensor_offset = rng.integers(0, every_s, sensors)  # each sensor reports at its own second

    index = np.arange(rows, dtype=np.int64)
    sensor = index % sensors
    step = index // sensors
    seconds = step * every_s + sensor_offset[sensor]
    base = np.datetime64(START, "s")
    ts = pa.array(base + seconds.astype("timedelta64[s]"), pa.timestamp("s", tz="UTC"))
    ts_text = pc.strftime(ts, format="%Y-%m-%dT%H:%M:%SZ")

    kind = sensor_kind[sensor]
    params = np.array([SENSOR_KINDS[k][1:] for k in kinds])  # mean, spread, low, high
    hour = (seconds // 3600) % 24
    daily = np.sin((hour - 8) / 24 * 2 * np.pi)  # busier, louder, warmer in the day
    value = params[kind, 0] + params[kind, 1] * (0.6 * daily + rng.standard_normal(rows))
    value = np.round(np.clip(value, params[kind, 2], params[kind, 3]), 2)
    units = np.array([SENSOR_KINDS[k][0] for k in kinds], dtype=object)

    status_code = rng.choice(len(STATUSES), rows, p=STATUS_WEIGHTS)
    offline = status_code == STATUSES.index("offline")
    return pa.table(
        {
            "sensor_id": pa.array(sensor_ids[sensor], pa.string()),
            "ts": ts_text,
            "value": pa.array(value, pa.float64(), mask=offline),
            "unit": pa.array(units[kind], pa.string()),
            "status": pa.array(np.array(STATUSES, dtype=object)[status_code], pa.string()),
            "lat": pa.array(sensor_lat[sensor], pa.float64()),
            "lon": pa.array(sensor_lon[sensor], pa.float64()),
        }
    )


def write_csv(table: Any, path: Path) -> None:
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(batch_size=64 * 1024))


def _json_chunks(table: Any, chunk: int = 100_000) -> Any:
    """The table's rows as serialised JSON objects, a slice at a time (bounded memory)."""
    import orjson

    for offset in range(0, table.num_rows, chunk):
        yield [orjson.dumps(row) for row in table.slice(offset, chunk).to_pylist()]


def write_json_array(table: Any, path: Path) -> None:
    """A JSON array of objects: ``[{...},\\n{...}]``."""
    with open(path, "wb") as out:
        out.write(b"[")
        first = True
        for rows in _json_chunks(table):
            if rows:
                out.write((b"" if first else b",\n") + b",\n".join(rows))
                first = False
        out.write(b"]\n")


def write_jsonl(table: Any, path: Path) -> None:
    """JSON Lines: one object a line."""
    with open(path, "wb") as out:
        for rows in _json_chunks(table):
            if rows:
                out.write(b"\n".join(rows) + b"\n")


def parquet_rows(folder: Path) -> tuple[int, int, int]:
    """(rows, files, bytes) over every ``*.parquet`` file below ``folder``."""
    import pyarrow.parquet as pq

    rows = files = size = 0
    for path in folder.rglob("*.parquet"):
        rows += pq.read_metadata(path).num_rows
        files += 1
        size += path.stat().st_size
    return rows, files, size


# -- measured child processes ----------------------------------------------------------------------


@dataclass
class ProcessRun:
    """One child process: wall time from fork to exit, and its own resource usage."""

    returncode: int
    seconds: float
    peak_rss_mb: float
    user_s: float
    sys_s: float
    timed_out: bool
    stdout: str
    stderr: str


# Linux keeps the parent's peak RSS in a child's ru_maxrss across fork and exec, so a bench whose
# parent holds a million generated rows would see them in every child. A tiny launcher process
# forks the measured command instead, waits for it with wait4 and writes its rusage as JSON.
LAUNCHER = """
import json, os, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
with open(report, "w") as out:
    json.dump({"seconds": seconds, "maxrss_kb": usage.ru_maxrss, "user_s": usage.ru_utime,
               "sys_s": usage.ru_stime, "returncode": code}, out)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(
    command: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
) -> ProcessRun:
    """Run ``command`` alone and measure it: wall time, peak RSS, CPU time.

    The command runs under a small launcher (see ``LAUNCHER``) so that its ``ru_maxrss`` is its
    own, not inherited from this process. The process group is killed after ``timeout`` seconds.
    Output goes to ``log``.stdout/.stderr (a temporary folder when ``log`` is None).
    """
    log = log or Path(tempfile.mkdtemp(prefix="bench-log-")) / "run"
    log.parent.mkdir(parents=True, exist_ok=True)
    report = log.with_suffix(".rusage.json")
    report.unlink(missing_ok=True)
    with (
        open(log.with_suffix(".stdout"), "w+b") as out,
        open(log.with_suffix(".stderr"), "w+b") as err,
    ):
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", LAUNCHER, str(report), *command],
            stdout=out,
            stderr=err,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            returncode = proc.wait()
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        texts = []
        for handle in (out, err):
            handle.seek(0)
            texts.append(handle.read().decode("utf-8", "replace"))
    usage = json.loads(report.read_text()) if report.exists() else {}
    return ProcessRun(
        returncode=int(usage.get("returncode", returncode)),
        seconds=float(usage.get("seconds", wall)),
        peak_rss_mb=float(usage.get("maxrss_kb", 0)) / 1024,
        user_s=float(usage.get("user_s", 0.0)),
        sys_s=float(usage.get("sys_s", 0.0)),
        timed_out=timed_out.is_set(),
        stdout=texts[0],
        stderr=texts[1],
    )


# -- results ---------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """The repeated runs of one (path, tool) pair.

    The headline time is the best run: on a shared machine other processes only ever add time,
    so the fastest run is the closest to what the tool itself costs. The median and each run's
    CPU time (user + system, all threads) and the load average when it started are kept too.
    """

    path: str
    tool: str
    label: str
    rows: int
    status: str = "ok"  # ok, wrong (finished with a wrong row count), failed, timeout, skipped
    note: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)

    def add(self, run: ProcessRun, **extra: Any) -> None:
        self.runs.append(
            {
                "seconds": round(run.seconds, 3),
                "cpu_s": round(run.user_s + run.sys_s, 2),
                "peak_rss_mb": round(run.peak_rss_mb, 1),
                "user_s": round(run.user_s, 2),
                "sys_s": round(run.sys_s, 2),
                "returncode": run.returncode,
                **extra,
            }
        )

    @property
    def finished(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["returncode"] == 0]

    @property
    def best(self) -> dict[str, Any] | None:
        return min(self.finished, key=lambda r: r["seconds"], default=None)

    @property
    def seconds(self) -> float | None:
        return self.best["seconds"] if self.best else None

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(r["seconds"] for r in self.finished) if self.finished else None

    @property
    def cpu_seconds(self) -> float | None:
        return self.best["cpu_s"] if self.best else None

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.seconds if self.seconds and self.status == "ok" else None

    @property
    def peak_rss_mb(self) -> float | None:
        return max((r["peak_rss_mb"] for r in self.runs), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "seconds": self.seconds,
            "median_seconds": self.median_seconds,
            "cpu_seconds": self.cpu_seconds,
            "rows_per_s": self.rows_per_s,
            "peak_rss_mb": self.peak_rss_mb,
        }


def ratio(
    numerator: Measurement | None, denominator: Measurement | None, what: str = "seconds"
) -> float | None:
    """``what`` (seconds or cpu_seconds) of one over the other; None unless both were right."""
    if numerator is None or denominator is None:
        return None
    if numerator.status != "ok" or denominator.status != "ok":
        return None
    top, bottom = getattr(numerator, what), getattr(denominator, what)
    return top / bottom if top and bottom else None


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain text table, numbers right-aligned."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if c[:1].isdigit() or c[:1] == "-" else c.ljust(w)
            for c, w in zip(cells, widths, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def machine() -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for name in ("urbanlake", "duckdb", "pyarrow", "orjson", "dlt", "pandas"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        memory_gb = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gb": memory_gb,
        "versions": versions,
    }


def engine() -> dict[str, Any]:
    """Which urbanlake the children import, and the repository's commit (engines move fast)."""
    import importlib.util

    spec = importlib.util.find_spec("urbanlake")
    origin = Path(spec.origin).parent if spec and spec.origin else None

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    changed = git("status", "--porcelain", "--", "platform")
    return {
        "module": str(origin) if origin else None,
        "from_this_checkout": bool(origin and ROOT in origin.parents),
        "git_head": git("rev-parse", "--short", "HEAD"),
        "platform_uncommitted_changes": None if changed is None else bool(changed),
    }


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def prepare_lake(project: Path) -> None:
    """Create the project's lake before the clock starts: a city ingests into a lake that exists
    (catalog, platform tables and DuckDB extensions set up once, about 0.7 s)."""
    subprocess.run(
        [URBANLAKE, "--project", str(project), "tables"],
        check=True,
        capture_output=True,
        timeout=120,
    )


def urbanlake_sql(project: Path, query: str) -> list[list[str]]:
    """Rows of ``urbanlake sql QUERY --format csv`` (simple values only: split on commas)."""
    done = subprocess.run(
        [URBANLAKE, "--project", str(project), "sql", query, "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"BENCH FAILED: urbanlake sql {query!r} exited {done.returncode}: {done.stderr.strip()}"
        )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return [[cell.strip('"') for cell in line.split(",")] for line in lines[1:]]
