"""Ingest bench: one city sensor file into Parquet by several routes, each in its own process.

    .venv/bin/python bench/ingest.py [--rows N] [--keep] [--repeat N] [--formats csv,json,jsonl]

Routes ("tools"):

- floor: pyarrow alone reads the file and writes one Parquet file (the least work possible);
- urbanlake: ``urbanlake --project DIR ingest --all`` on a fresh project whose connector is the
  plain one (no column types declared); afterwards ``urbanlake sql "select count(*) ..."`` must
  count every generated row;
- urbanlake-typed: the same with every column's type declared in the connector;
- dlt: dlt's filesystem destination writing Parquet on local disk, fed as dlt's docs show (CSV
  and JSON Lines through the ``dlt.sources.filesystem`` readers, a JSON array as a resource that
  yields the parsed list). Skipped, saying so, when dlt is not installed
  (``pip install -e '.[bench]'``).

Each run is a fresh child process timed from fork to exit; its peak RSS is that child's own
``ru_maxrss``. Results go to stdout and to bench/results/ingest.json; the exit code is 1 when a
route failed, timed out or produced a wrong row count.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PYTHON,
    URBANLAKE,
    Measurement,
    ProcessRun,
    engine,
    fmt,
    format_table,
    machine,
    parquet_rows,
    prepare_lake,
    ratio,
    run_measured,
    urbanlake_sql,
    write_results,
)

HERE = Path(__file__).resolve()
FORMATS = {"csv": "readings.csv", "json": "readings.json", "jsonl": "readings.jsonl"}
TOOLS = {
    "floor": "floor (pyarrow)",
    "urbanlake": "urbanlake",
    "urbanlake-typed": "urbanlake, types declared",
    "dlt": "dlt",
}
# (ratio name, numerator tool, denominator tool, path) -> (comparison, target)
GOALS = {
    ("urbanlake", "floor", "CSV"): ("<=", 2.0),
    ("dlt", "urbanlake", "JSON"): (">=", 5.0),
}
DECLARED_TYPES = {
    "sensor_id": "string", "ts": "timestamp", "value": "double", "unit": "string",
    "status": "string", "lat": "double", "lon": "double",
}  # fmt: skip


# -- the work done inside a measured child process ------------------------------------------------


def worker(tool: str, fmt_name: str, source: str, out: str) -> None:
    """One run's work; prints ``{"inner_seconds": ...}`` as its last line."""
    started = time.perf_counter()
    if tool == "floor":
        _floor(fmt_name, Path(source), Path(out))
    elif tool == "dlt":
        _dlt(fmt_name, Path(source), Path(out))
    else:
        raise SystemExit(f"unknown worker tool {tool}")
    print(json.dumps({"inner_seconds": round(time.perf_counter() - started, 3)}))


def _floor(fmt_name: str, source: Path, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if fmt_name == "csv":
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(source)  # types ts as timestamp[s, tz=UTC] by itself
    elif fmt_name == "jsonl":
        import pyarrow.json as pajson

        table = pajson.read_json(source)
    else:
        import orjson

        table = pa.Table.from_pylist(orjson.loads(source.read_bytes()))
    if pa.types.is_string(table.schema.field("ts").type):  # JSON has no timestamps: type it
        index = table.schema.get_field_index("ts")
        table = table.set_column(index, "ts", table["ts"].cast(pa.timestamp("us", tz="UTC")))
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "readings.parquet")


def _dlt(fmt_name: str, source: Path, out: Path) -> None:
    import dlt
    from dlt.destinations import filesystem as filesystem_destination

    if fmt_name == "json":
        import orjson

        @dlt.resource(name="readings")
        def readings() -> Any:
            yield orjson.loads(source.read_bytes())

        data: Any = readings()
    else:
        from dlt.sources.filesystem import filesystem, read_csv, read_jsonl

        reader = read_csv() if fmt_name == "csv" else read_jsonl()
        files = filesystem(bucket_url=source.parent.as_uri(), file_glob=source.name)
        data = (files | reader).with_name("readings")

    pipeline = dlt.pipeline(
        pipeline_name=f"bench_ingest_{fmt_name}",
        pipelines_dir=str(out / "pipelines"),
        destination=filesystem_destination(bucket_url=(out / "lake").as_uri()),
        dataset_name="bench",
    )
    info = pipeline.run(data, loader_file_format="parquet")
    info.raise_on_failed_jobs()


# -- the measurements, from the parent ------------------------------------------------------------


class Bench:
    def __init__(self, work: Path, rows: int, repeat: int, dlt_repeat: int, timeout: float):
        self.work, self.rows, self.timeout = work, rows, timeout
        self.repeat, self.dlt_repeat = repeat, dlt_repeat

    def measure(self, tool: str, fmt_name: str, source: Path) -> Measurement:
        m = Measurement(path=fmt_name.upper(), tool=tool, label=TOOLS[tool], rows=self.rows)
        if tool == "dlt" and importlib.util.find_spec("dlt") is None:
            m.status, m.note = "skipped", "dlt is not installed: pip install -e '.[bench]'"
            print(f"  dlt {fmt_name}: SKIPPED - {m.note}", flush=True)
            return m
        runs = self.dlt_repeat if tool == "dlt" else self.repeat
        print(f"{m.path} / {m.label} ({runs} run(s))", flush=True)
        for i in range(runs):
            folder = self.work / f"{tool}-{fmt_name}-{i}"
            label = f"{tool} {fmt_name} #{i + 1}"
            load = round(os.getloadavg()[0], 2)
            if tool.startswith("urbanlake"):
                ok = self._urbanlake(m, folder, source, label, load, typed=tool.endswith("typed"))
            else:
                ok = self._python_worker(m, tool, fmt_name, folder, source, label, load)
            if not ok:
                break
            shutil.rmtree(folder)
        return m

    def _python_worker(
        self,
        m: Measurement,
        tool: str,
        fmt_name: str,
        out: Path,
        source: Path,
        label: str,
        load: float,
    ) -> bool:
        out.mkdir(parents=True)
        env = None
        if tool == "dlt":
            env = {
                **os.environ,
                "DLT_DATA_DIR": str(out / "dlt-data"),  # nothing in ~/.dlt
                "DLT_PROJECT_DIR": str(out),  # no .dlt/config.toml from elsewhere
                "RUNTIME__DLTHUB_TELEMETRY": "false",
            }
        run = run_measured(
            [PYTHON, str(HERE), "_worker", tool, fmt_name, str(source), str(out)],
            timeout=self.timeout,
            env=env,
            cwd=out,
            log=self.work / "logs" / out.name,
        )
        if not _finished(m, run, label, load):
            return False
        found, files, size = parquet_rows(
            out / "lake" / "bench" / "readings" if tool == "dlt" else out
        )
        m.add(
            run,
            load=load,
            inner_seconds=_inner(run),
            rows_out=found,
            parquet_files=files,
            parquet_bytes=size,
        )
        return _verify(m, found, label, out)

    def _urbanlake(
        self, m: Measurement, project: Path, source: Path, label: str, load: float, typed: bool
    ) -> bool:
        make_project(project, source, typed)
        prepare_lake(project)
        run = run_measured(
            [URBANLAKE, "--project", str(project), "ingest", "--all"],
            timeout=self.timeout,
            log=self.work / "logs" / project.name,
        )
        if not _finished(m, run, label, load):
            return False
        # Correctness: every generated row is in the table.
        counted = int(urbanlake_sql(project, "select count(*) from bench.readings")[0][0])
        status, committed, quarantined, duplicate, seconds = urbanlake_sql(
            project,
            "select status, rows_committed, rows_quarantined, rows_duplicate, seconds from platform.runs",
        )[0]
        _, files, size = parquet_rows(project / "lake" / "data")
        m.add(
            run,
            load=load,
            inner_seconds=float(seconds),  # the run as urbanlake times it (no start-up, no exit)
            rows_out=counted,
            run_status=status,
            rows_committed=int(committed),
            rows_quarantined=int(quarantined),
            rows_duplicate=int(duplicate),
            parquet_files=files,
            parquet_bytes=size,
        )
        note = f"{int(quarantined):,} quarantined, {int(duplicate):,} duplicate"
        return _verify(
            m, counted, label, project, note if int(quarantined) or int(duplicate) else ""
        )


def make_project(folder: Path, source: Path, declare_types: bool = False) -> None:
    """A fresh city project with one connector reading ``source``."""
    (folder / "connectors" / "bench").mkdir(parents=True)
    (folder / "urbanlake.yaml").write_text("name: bench\nlake: lake\n")
    config = (
        "name: readings\n"
        "domain: bench\n"
        f"source: {{type: file, url: {json.dumps(str(source))}}}\n"
        "table: {primary_key: [sensor_id, ts], event_time: ts}\n"
    )
    if declare_types:
        config += "columns:\n" + "".join(
            f"  {k}: {{type: {v}}}\n" for k, v in DECLARED_TYPES.items()
        )
    (folder / "connectors" / "bench" / "readings.yaml").write_text(config)


def _finished(m: Measurement, run: ProcessRun, label: str, load: float) -> bool:
    """Record a run that timed out or failed; True when it exited 0."""
    if run.timed_out:
        m.status, m.note = "timeout", f"killed after {run.seconds:.0f} s"
    elif run.returncode != 0:
        last = (run.stderr.strip() or run.stdout.strip() or f"exit {run.returncode}").splitlines()[
            -1
        ]
        m.status, m.note = "failed", f"exit {run.returncode}: {last[:300]}"
    else:
        print(
            f"  {label}: {run.seconds:.2f} s, CPU {run.user_s + run.sys_s:.2f} s, "
            f"peak {run.peak_rss_mb:,.0f} MB (load {load})",
            flush=True,
        )
        return True
    m.add(run, load=load)
    print(f"  {label}: {m.status.upper()} - {m.note}", flush=True)
    return False


def _verify(m: Measurement, found: int, label: str, kept: Path, detail: str = "") -> bool:
    """The row count must be the generated one; a wrong count marks the measurement, loudly."""
    if found == m.rows:
        return True
    m.status = "wrong"
    m.note = f"{found:,} of {m.rows:,} rows in the output" + (f" ({detail})" if detail else "")
    print(f"  {label}: WRONG RESULT - {m.note}; kept at {kept}", flush=True)
    return False


def _inner(run: ProcessRun) -> float | None:
    for line in reversed(run.stdout.splitlines()):
        if line.startswith("{"):
            return float(json.loads(line)["inner_seconds"])
    return None


# -- data, report ---------------------------------------------------------------------------------


def generate(rows: int, seed: int, data: Path, formats: list[str]) -> dict[str, dict[str, Any]]:
    from common import sensor_readings, write_csv, write_json_array, write_jsonl

    writers = {"csv": write_csv, "json": write_json_array, "jsonl": write_jsonl}
    started = time.perf_counter()
    table = sensor_readings(rows, seed=seed)
    print(f"generated {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
    files = {}
    for name in formats:
        path = data / FORMATS[name]
        started = time.perf_counter()
        writers[name](table, path)
        size = path.stat().st_size
        files[name] = {"path": str(path), "name": path.name, "bytes": size}
        took = time.perf_counter() - started
        print(f"  wrote {path.name}: {size / 2**20:,.1f} MiB in {took:.1f} s", flush=True)
    return files


def ratios_of(measurements: list[Measurement]) -> list[dict[str, Any]]:
    by = {(m.path, m.tool): m for m in measurements}
    out = []
    for path in dict.fromkeys(m.path for m in measurements):
        pairs = [
            ("urbanlake", "floor"),
            ("urbanlake-typed", "floor"),
            ("dlt", "urbanlake"),
            ("dlt", "urbanlake-typed"),
        ]
        for top, bottom in pairs:
            if (path, top) not in by or (path, bottom) not in by:
                continue
            goal = GOALS.get((top, bottom, path))
            entry: dict[str, Any] = {
                "name": f"{top}/{bottom} {path}",
                "time": ratio(by[path, top], by[path, bottom]),
                "cpu": ratio(by[path, top], by[path, bottom], "cpu_seconds"),
                "goal": f"{goal[0]} {goal[1]:g}" if goal else None,
                "met": None,
            }
            if goal and entry["time"] is not None:
                op, target = goal
                entry["met"] = entry["time"] <= target if op == "<=" else entry["time"] >= target
            out.append(entry)
    return out


def report(measurements: list[Measurement], ratios: list[dict[str, Any]]) -> str:
    by = {(m.path, m.tool): m for m in measurements}
    rows = []
    for m in measurements:
        floor = by.get((m.path, "floor"))
        vs_floor = ratio(m, floor) if floor is not None and m is not floor else None
        rows.append(
            [
                m.path,
                m.label,
                fmt(m.seconds, ".2f") + ("" if m.status == "ok" else f" {m.status.upper()}"),
                fmt(m.median_seconds, ".2f"),
                fmt(m.cpu_seconds, ".2f"),
                fmt(m.rows_per_s, ",.0f"),
                fmt(m.peak_rss_mb, ",.0f"),
                "-" if vs_floor is None else f"{vs_floor:.2f}x",
            ]
        )
    headers = ["path", "tool", "seconds", "median s", "CPU s", "rows/s", "peak RSS MB", "vs floor"]
    lines = [format_table(headers, rows), "", "ratios (best wall time; CPU time alongside):"]
    for r in ratios:
        verdict = ""
        if r["goal"]:
            state = (
                "n/a (a side failed or was wrong)"
                if r["met"] is None
                else "met"
                if r["met"]
                else "NOT met"
            )
            verdict = f"   goal {r['goal']}x: {state}"
        time_text = "-" if r["time"] is None else f"{r['time']:.2f}x"
        cpu_text = "-" if r["cpu"] is None else f"{r['cpu']:.2f}x"
        lines.append(f"  {r['name']:<28} {time_text:>8}  (CPU {cpu_text}){verdict}")
    problems = [m for m in measurements if m.status != "ok"]
    if problems:
        lines += ["", "problems:"]
        lines += [f"  {m.path} {m.label}: {m.status.upper()} - {m.note}" for m in problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        worker(*argv[1:5])
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows to generate (default 1,000,000)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated data")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of floor and urbanlake (the best counts)"
    )
    parser.add_argument(
        "--dlt-repeat", type=int, default=1, help="runs of dlt, which is slow (the best counts)"
    )
    parser.add_argument(
        "--formats", default="csv,json,jsonl", help="comma-separated: " + ", ".join(FORMATS)
    )
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated: " + ", ".join(TOOLS)
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds before one run is killed"
    )
    parser.add_argument(
        "--results", default="ingest", help="file name in bench/results/, without .json"
    )
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if unknown := set(formats) - set(FORMATS):
        parser.error(f"unknown format(s) {', '.join(sorted(unknown))}; valid: {', '.join(FORMATS)}")
    if unknown := set(tools) - set(TOOLS):
        parser.error(f"unknown tool(s) {', '.join(sorted(unknown))}; valid: {', '.join(TOOLS)}")

    work = Path(tempfile.mkdtemp(prefix="urbanlake-bench-ingest-"))
    (work / "data").mkdir()
    print(f"ingest bench: {args.rows:,} rows, work folder {work}", flush=True)
    print(f"engine: {engine()}", flush=True)
    if "dlt" in tools and importlib.util.find_spec("dlt") is None:
        print("NOTE: dlt is not installed, so it is skipped: pip install -e '.[bench]'", flush=True)
    measurements: list[Measurement] = []
    keep = args.keep
    try:
        files = generate(args.rows, args.seed, work / "data", formats)
        bench = Bench(work, args.rows, args.repeat, args.dlt_repeat, args.timeout)
        for name in formats:
            for tool in tools:
                measurements.append(bench.measure(tool, name, Path(files[name]["path"])))
        ratios = ratios_of(measurements)
        print("\n" + report(measurements, ratios))
        results = {
            "bench": "ingest",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": args.rows,
            "seed": args.seed,
            "repeat": args.repeat,
            "dlt_repeat": args.dlt_repeat,
            "timeout_s": args.timeout,
            "headline": "best wall time of the runs, from fork to exit of a fresh process",
            "machine": machine(),
            "engine": engine(),
            "files": {k: {"name": v["name"], "bytes": v["bytes"]} for k, v in files.items()},
            "measurements": [m.to_dict() for m in measurements],
            "ratios": ratios,
        }
        print(f"\nresults: {write_results(args.results, results)}")
    except BaseException:
        keep = True  # whatever went wrong is left to look at
        raise
    else:
        keep = keep or any(m.status not in ("ok", "skipped") for m in measurements)
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    bad = [m for m in measurements if m.status not in ("ok", "skipped")]
    if bad:
        print(
            "\nBENCH FAILED: " + "; ".join(f"{m.path} {m.label}: {m.status}" for m in bad),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
