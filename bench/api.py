"""Catalog API bench: UrbanLake's dataset API against Datasette, on the same smart-meter rows.

    .venv/bin/python bench/api.py [--rows 10000000] [--duration 10] [--scenarios a,a2,b,c,d]

The same seeded readings (``--rows``, default 10,000,000; 10,000 meters in 12 districts, one
reading an hour, primary key (meter_id, ts)) are served two ways on 127.0.0.1:

- urbanlake: the rows go into the lake from a Parquet file (``urbanlake ingest``), a catalog
  entry publishes them as the dataset ``smart-meter`` (``urbanlake publish``), and
  ``urbanlake serve`` answers under ``/api/v1/datasets/smart-meter``;
- datasette: one SQLite table built from the same rows in (meter_id, ts) order, so its rowid
  order is the primary key's, with an index on ``district`` and one on ``(district, kwh)`` for
  the group-by; served immutable (``-i``). Datasette is measured in its default mode and in its
  lean mode (``_nocount=1&_nofacet=1&_nosuggest=1``); ratios are taken against the faster.

Scenarios, each driven by the same load generator (wrk, else hey) at the same concurrency for the
same time, after one checked request on every side (the bench exits 1 on a wrong answer):

- (a) the first 100 rows of district=North, with UrbanLake's exact total;
- (a2) the same with the district cycling through all 12 (wrk only: hey cannot vary a URL,
  nor can it for the random deep pages below);
- (b) the first 100 rows, no filter, and a deep page of 100 rows starting at row ``--deep-row``
  (default half the rows): Datasette's ``_next``, UrbanLake's cursor; then deep pages at 10,000
  random rows, none asked twice, so that no answer cache helps;
- (c) count and avg(kwh) by district (Datasette's SQL endpoint);
- (d) one full CSV download from a freshly started server: MB/s and the server's peak RSS;
- (e) (a)'s page with a partner key (key check and quota accounting on every request) against
  the same page asked anonymously, on the same server: the cost of access control;
- (f) (c)'s group-by as SQL: ``POST /api/v1/sql`` against Datasette's ``?sql=``, the same query.

The anonymous quota is off on the bench server (wrk asks far more than any quota allows one
address), so the anonymous pages are the baseline without access control; the partner quota is
on with a limit no run reaches, so every keyed request pays its check and accounting.

The data, the SQLite file and the UrbanLake project are built once into
``bench/results/api-data/`` (git-ignored) and reused; ``--rebuild`` ingests and publishes
again, deleting a folder there rebuilds everything. Results go to stdout and to
``bench/results/api.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import importlib.metadata as md
import io
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CITY_CENTRE,
    RESULTS_DIR,
    URBANLAKE,
    VENV_BIN,
    engine,
    fmt,
    format_table,
    machine,
    urbanlake_sql,
    write_results,
)

DISTRICTS = (
    "North", "South", "East", "West", "Centre", "Harbour",
    "Riverside", "Old Town", "University", "Airport", "Industrial", "Parkside",
)  # fmt: skip
METER_STATUSES = ("ok", "estimated", "error")
METER_STATUS_WEIGHTS = (0.97, 0.025, 0.005)
METERS = 10_000
START = "2026-01-01T00:00:00"
CHUNK = 1_000_000  # rows generated, written and inserted at a time
PAGE = 100
RANDOM_PAGES = 10_000  # distinct deep pages, so that no answer is asked for twice in a run

DATASET = "smart-meter"
TABLE = "energy.smart_meter"
SQLITE_DB = "meters"  # Datasette's database name is the file's stem
SQLITE_TABLE = "smart_meter"
LEAN = {"_nocount": "1", "_nofacet": "1", "_nosuggest": "1"}
# Datasette's limits are raised only where they would cut a request short: a CSV stream would
# stop at 100 MB and a group-by or a count over millions of rows would stop after 1 s.
# max_returned_rows sets the page size of the CSV stream (1,000 by default); pages of 100 ask
# for _size=100 and are not affected.
DATASETTE_SETTINGS = {
    "sql_time_limit_ms": "600000",
    "max_csv_mb": "0",
    "max_returned_rows": "10000",
}
SERVERS = {
    "urbanlake": "urbanlake",
    "urbanlake-key": "urbanlake, partner key",
    "datasette": "datasette, default",
    "datasette-lean": "datasette, lean",
}
PROCESS = {"urbanlake": "urbanlake", "urbanlake-key": "urbanlake",
           "datasette": "datasette", "datasette-lean": "datasette"}  # fmt: skip
SCENARIOS = {
    "a": "(a) district=North, first 100",
    "a2": "(a') 12 districts in turn",
    "b-first": "(b) first 100, no filter",
    "b-deep": "(b) deep page",
    "b-random": "(b) deep pages at random rows",
    "c": "(c) count, avg(kwh) by district",
    "e": "(e) (a) anonymous / with a key",
    "f": "(f) (c) as SQL",
}
GOALS = {
    "a": "urbanlake req/s >= 2x datasette's faster mode",
    "b": "urbanlake deep page p50 <= 1.5x its first page p50",
    "c": "urbanlake >= 10x datasette (req/s)",
    "d": "urbanlake >= 100 MB/s with peak RSS < 500 MB",
    "e": "a partner key costs <= 10 % of the anonymous req/s",
}

WRK_SCRIPT = """
local paths = {%s}
local method, body = %s, %s
local headers = {%s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(method, paths[(counter - 1) %% #paths + 1], headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, ' ..
    '"read": %%d, "write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, ' ..
    '"p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


# -- the data -------------------------------------------------------------------------------------


def meter_chunks(rows: int, seed: int) -> Iterator[Any]:
    """The readings as pyarrow Tables of up to ``CHUNK`` rows, in (meter_id, ts) order.

    Row ``i`` is meter ``i // hours`` at hour ``i % hours``, with ``hours`` = ceil(rows /
    10,000): every meter reports once an hour from 2026-01-01 UTC. A meter's district, place
    and typical load are fixed; each reading's kWh follows the hour of day with noise.
    """
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    hours = -(-rows // METERS)
    district = rng.integers(0, len(DISTRICTS), METERS)
    meter_lat = np.round(CITY_CENTRE[0] + rng.normal(0, 0.035, METERS), 6)
    meter_lon = np.round(CITY_CENTRE[1] + rng.normal(0, 0.045, METERS), 6)
    meter_load = rng.lognormal(-0.9, 0.5, METERS)  # kWh per hour, about 0.45 on average
    names = np.array(DISTRICTS, dtype=object)
    statuses = np.array(METER_STATUSES, dtype=object)
    base = np.datetime64(START, "s")
    for number, offset in enumerate(range(0, rows, CHUNK)):
        part = np.random.default_rng([seed, number])
        index = np.arange(offset, min(offset + CHUNK, rows), dtype=np.int64)
        meter = index // hours
        hour = index % hours
        daily = 1 + 0.5 * np.sin(((hour % 24) - 7) / 24 * 2 * np.pi)
        kwh = meter_load[meter] * daily * part.lognormal(0, 0.25, len(index))
        status = part.choice(len(statuses), len(index), p=METER_STATUS_WEIGHTS)
        ts = base + (hour * 3600).astype("timedelta64[s]")
        yield pa.table(
            {
                "meter_id": pa.array(np.char.add("MTR-", np.char.zfill(meter.astype(str), 6))),
                "district": pa.array(names[district[meter]], pa.string()),
                "ts": pa.array(ts, pa.timestamp("s")).cast(pa.timestamp("us", tz="UTC")),
                "kwh": pa.array(np.round(kwh, 3), pa.float64()),
                "voltage": pa.array(np.round(part.normal(230, 2.5, len(index)), 1), pa.float64()),
                "status": pa.array(statuses[status], pa.string()),
                "lat": pa.array(meter_lat[meter], pa.float64()),
                "lon": pa.array(meter_lon[meter], pa.float64()),
            }
        )


def build_data(folder: Path, rows: int, seed: int) -> None:
    """``smart_meter.parquet`` and the SQLite file ``meters.db``, from the same generated rows."""
    import sqlite3

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parquet, db = folder / "smart_meter.parquet", folder / f"{SQLITE_DB}.db"
    if (folder / "data.json").exists():
        return
    for path in (parquet, db):
        path.unlink(missing_ok=True)
    print(f"building {rows:,} rows into {folder.name}/ (once; reused afterwards)", flush=True)
    started = time.perf_counter()
    con = sqlite3.connect(db)
    con.executescript(
        "pragma journal_mode = off; pragma synchronous = off; pragma page_size = 4096;"
        f"create table {SQLITE_TABLE} (meter_id text, district text, ts text, kwh real,"
        " voltage real, status text, lat real, lon real);"
    )
    insert = f"insert into {SQLITE_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?)"
    writer, done = None, 0
    try:
        for table in meter_chunks(rows, seed):
            if writer is None:
                writer = pq.ParquetWriter(parquet, table.schema)
            writer.write_table(table, row_group_size=CHUNK)
            columns = [c.to_pylist() for c in table.columns]
            columns[2] = pc.strftime(table["ts"], format="%Y-%m-%dT%H:%M:%SZ").to_pylist()
            con.executemany(insert, zip(*columns, strict=True))
            con.commit()
            done += table.num_rows
            print(f"  {done:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        if writer is not None:
            writer.close()
    # rowid order is (meter_id, ts) order, so the deep page needs no index of its own.
    con.executescript(
        f"create index {SQLITE_TABLE}_district on {SQLITE_TABLE} (district);"
        f"create index {SQLITE_TABLE}_district_kwh on {SQLITE_TABLE} (district, kwh);"
        "analyze;"
    )
    con.close()
    took = time.perf_counter() - started
    info = {
        "rows": rows,
        "seed": seed,
        "parquet_bytes": parquet.stat().st_size,
        "sqlite_bytes": db.stat().st_size,
        "seconds": round(took, 1),
    }
    (folder / "data.json").write_text(json.dumps(info, indent=2) + "\n")
    print(
        f"  Parquet {info['parquet_bytes'] / 1e6:,.0f} MB, SQLite {info['sqlite_bytes'] / 1e6:,.0f}"
        f" MB, {took:.0f} s",
        flush=True,
    )


CATALOG_ENTRY = """\
name: smart-meter
domain: energy
title: Smart meter readings (benchmark)
description: Ten million generated readings.
publisher: {name: Bench City Energy, email: energy@bench.example}
license: CC-BY-4.0
access: public
frequency: hourly
primary_key: [meter_id, ts]
geometry: {lon: lon, lat: lat}
source: {table: energy.smart_meter}
"""


def build_project(folder: Path, project: Path, rows: int, rebuild: bool) -> None:
    """The UrbanLake project: the Parquet file ingested into ``energy.smart_meter``, published."""
    if (project / "built.json").exists() and not rebuild:
        return
    shutil.rmtree(project, ignore_errors=True)
    (project / "connectors" / "energy").mkdir(parents=True)
    (project / "catalog" / "energy").mkdir(parents=True)
    (project / "urbanlake.yaml").write_text("name: Bench City\n")
    source = json.dumps(str((folder / "smart_meter.parquet").resolve()))
    (project / "connectors" / "energy" / "smart_meter.yaml").write_text(
        "name: smart_meter\n"
        "domain: energy\n"
        f"source: {{type: file, url: {source}, format: parquet}}\n"
        "table: {primary_key: [meter_id, ts], event_time: ts}\n"
    )
    (project / "catalog" / "energy" / "smart-meter.yaml").write_text(CATALOG_ENTRY)
    steps = {}
    for step in (["ingest", "energy.smart_meter"], ["publish"]):
        started = time.perf_counter()
        done = subprocess.run(
            [URBANLAKE, "--project", str(project), *step],
            capture_output=True,
            text=True,
            timeout=3600,
            env=urbanlake_env(project),
        )
        took = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(
                f"BENCH FAILED: urbanlake {' '.join(step)} exited {done.returncode}:\n"
                f"{(done.stderr or done.stdout).strip()[-2000:]}"
            )
        steps[step[0]] = round(took, 1)
        print(f"  urbanlake {' '.join(step)}: {took:.1f} s", flush=True)
    found = int(urbanlake_sql(project, f"select count(*) from {TABLE}")[0][0])
    if found != rows:
        raise SystemExit(f"BENCH FAILED: {TABLE} holds {found:,} rows, expected {rows:,}")
    (project / "built.json").write_text(json.dumps({"rows": rows, "seconds": steps}) + "\n")


# wrk asks far more than any quota allows one address: the anonymous quota is off (the baseline
# without access control), the partner one on with a limit no run reaches (every keyed request
# pays its check and accounting, as in production).
BENCH_QUOTAS = {"URBANLAKE_QUOTA_PUBLIC": "",
                "URBANLAKE_QUOTA_PARTNER": "1000000000/minute"}  # fmt: skip


def urbanlake_env(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        **BENCH_QUOTAS,
        "URBANLAKE_PROJECT": str(project),
        "URBANLAKE_LAKE": "lake",
    }


@dataclass
class Expected:
    """What every answer must say, computed with DuckDB from the Parquet file."""

    rows: int
    totals: dict[str, int]  # district -> rows
    averages: dict[str, float]  # district -> avg(kwh)
    first_north: list[tuple[str, str, float]]  # (meter_id, ts, kwh) of the first page
    first: list[tuple[str, str, float]]
    deep: list[tuple[str, str, float]]
    deep_after: tuple[Any, ...]  # the (meter_id, ts) key of the row just before the deep page
    random_rows: list[int]  # rows the random deep pages start at, in the order they are asked
    random_after: list[tuple[Any, ...]]  # the key of the row before each
    random_first: list[tuple[str, str, float]]  # the first random page's rows


def expected_answers(parquet: Path, deep_row: int, seed: int) -> Expected:
    import duckdb
    import numpy as np

    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"create view p as select * from read_parquet({str(parquet)!r})")

    def page(where: str = "", offset: int = 0) -> list[tuple[str, str, float]]:
        rows = con.execute(
            f"select meter_id, strftime(ts, '%Y-%m-%dT%H:%M:%S'), kwh from p {where} "
            f"order by meter_id, ts limit {PAGE} offset {offset}"
        ).fetchall()
        return [(m, t, k) for m, t, k in rows]

    groups = con.execute("select district, count(*), avg(kwh) from p group by district").fetchall()
    after = con.execute(
        f"select meter_id, ts from p order by meter_id, ts limit 1 offset {deep_row - 1}"
    ).fetchone()
    assert after is not None
    total = sum(n for _, n, _ in groups)
    count = min(RANDOM_PAGES, total - PAGE)
    starts = np.random.default_rng([seed, 1]).choice(np.arange(1, total - PAGE), count, False)
    con.execute("create temp table wanted as select unnest(?::BIGINT[]) as i", [starts.tolist()])
    keys = dict(
        (i + 1, (m, t))
        for i, m, t in con.execute(
            "select i, meter_id, ts from (select meter_id, ts, "
            "row_number() over (order by meter_id, ts) - 1 as i from p) "
            "where i in (select i - 1 from wanted)"
        ).fetchall()
    )
    return Expected(
        rows=sum(n for _, n, _ in groups),
        totals={d: n for d, n, _ in groups},
        averages={d: a for d, _, a in groups},
        first_north=page("where district = 'North'"),
        first=page(),
        deep=page(offset=deep_row),
        deep_after=tuple(after),
        random_rows=[int(i) for i in starts],
        random_after=[keys[int(i)] for i in starts],
        random_first=page(offset=int(starts[0])),
    )


# -- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(
    port: int, path: str, timeout: float = 600, request: Request | None = None
) -> tuple[int, bytes, float]:
    """(status, body, seconds) of one request on 127.0.0.1 (http.client: no proxy is ever used);
    a GET unless ``request`` gives a method, body and headers."""
    started = time.perf_counter()
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if request is None:
            con.request("GET", path)
        else:
            con.request(request.method, path, body=request.body, headers=request.headers)
        response = con.getresponse()
        return response.status, response.read(), time.perf_counter() - started
    finally:
        con.close()


class Server:
    """A server process of its own session, so that it and its workers stop together."""

    def __init__(self, name: str, command: list[str], port: int, health: str, log: Path, env: Any):
        self.name, self.command, self.port, self.health = name, command, port, health
        self.log, self.env = log, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 300) -> float:
        """Start and wait for the health path to answer 200; the seconds that took."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command, stdout=out, stderr=out, env=self.env, start_new_session=True
            )
        while time.perf_counter() - started < timeout:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace").strip().splitlines()[-15:]
                raise RuntimeError(
                    f"{self.name} exited {self.proc.returncode} on start:\n" + "\n".join(tail)
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                if get(self.port, self.health, timeout=5)[0] == 200:
                    return time.perf_counter() - started
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.health} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
                return

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server's processes so far."""
        ticks = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, timeout: float = 300, step: float = 0.5) -> None:
        """Wait until the server uses under 5 % of a core (at most ``timeout`` seconds)."""
        started, last = time.perf_counter(), self.cpu_seconds()
        while time.perf_counter() - started < timeout:
            time.sleep(step)
            now = self.cpu_seconds()
            if now - last < 0.05 * step:
                return
            last = now

    def pids(self) -> list[int]:
        """The server's process and every descendant (uvicorn's workers)."""
        assert self.proc is not None
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = (entry / "stat").read_text()
                    ppid = int(stat.rsplit(")", 1)[1].split()[1])
                    parents.setdefault(ppid, []).append(int(entry.name))
        tree, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(parents.get(pid, []))
        return tree


def memory_kb(pid: int, key: str) -> int:
    """``key`` (VmRSS, VmHWM) from /proc/<pid>/status, in kB; 0 once the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def urbanlake_server(project: Path, port: int, workers: int, logs: Path) -> Server:
    command = [URBANLAKE, "--project", str(project), "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port)] + (["--workers", str(workers)] if workers > 1 else [])
    return Server(
        "urbanlake", command, port, "/healthz", logs / "urbanlake.log", urbanlake_env(project)
    )


def datasette_server(db: Path, port: int, logs: Path) -> Server:
    datasette = VENV_BIN / "datasette"
    command = [str(datasette if datasette.exists() else "datasette"), "serve", "-i", str(db)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    for name, value in DATASETTE_SETTINGS.items():
        command += ["--setting", name, value]
    return Server("datasette", command, port, "/-/versions.json", logs / "datasette.log", None)


# -- requests and their checks --------------------------------------------------------------------


def ul_records(**params: str) -> str:
    return f"/api/v1/datasets/{DATASET}/records?" + urlencode({**params, "limit": str(PAGE)})


def ds_table(lean: bool, **params: str) -> str:
    query = {**params, "_size": str(PAGE), **(LEAN if lean else {})}
    return f"/{SQLITE_DB}/{SQLITE_TABLE}.json?" + urlencode(query)


DS_GROUP_BY = f"/{SQLITE_DB}.json?" + urlencode(
    {
        "sql": f"select district, count(*), avg(kwh) from {SQLITE_TABLE} group by district",
        "_shape": "array",
    }
)
UL_GROUP_BY = f"/api/v1/datasets/{DATASET}/aggregate?group_by=district&metrics=count,avg:kwh"
UL_SQL = f'select district, count(*), avg(kwh) from "{DATASET}" group by district'
UL_EXPORT = f"/api/v1/datasets/{DATASET}/export?format=csv"
DS_EXPORT = f"/{SQLITE_DB}/{SQLITE_TABLE}.csv?_stream=on&_size=max"


class WrongAnswer(Exception):
    pass


def page_rows(doc: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(meter_id, ts to the second, kwh) of each row, whether rows are objects or arrays."""
    rows = doc.get("rows")
    if not isinstance(rows, list):
        raise WrongAnswer(f"no rows list in the answer (keys: {sorted(doc)[:12]})")
    if rows and isinstance(rows[0], list):
        rows = [dict(zip(doc["columns"], r, strict=True)) for r in rows]
    return [(r["meter_id"], str(r["ts"]).replace(" ", "T")[:19], r["kwh"]) for r in rows]


def same_rows(got: list[tuple[str, str, float]], want: list[tuple[str, str, float]]) -> None:
    if len(got) != len(want):
        raise WrongAnswer(f"{len(got)} rows, expected {len(want)}")
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g[:2] != w[:2] or not math.isclose(float(g[2]), w[2], rel_tol=1e-12):
            raise WrongAnswer(f"row {i} is {g}, expected {w}")


def check_page(
    server: str, body: bytes, want: list[tuple[str, str, float]], total: int | None
) -> str:
    doc = json.loads(body)
    same_rows(page_rows(doc), want)
    if server == "urbanlake":
        if total is not None and doc.get("total") != total:
            raise WrongAnswer(f"total {doc.get('total')}, expected {total:,}")
        return f"{len(want)} rows right" + (f", total {doc['total']:,}" if total else "")
    if server == "datasette" and total is not None:
        count = doc.get("filtered_table_rows_count")
        if count != total:
            raise WrongAnswer(f"filtered_table_rows_count {count}, expected {total:,}")
        return f"{len(want)} rows right, count {count:,}"
    return f"{len(want)} rows right"


def check_groups(body: bytes, expected: Expected) -> str:
    doc = json.loads(body)
    rows = doc if isinstance(doc, list) else doc.get("rows", doc.get("groups"))
    if not isinstance(rows, list):
        raise WrongAnswer(f"no list of groups in the answer: {str(doc)[:300]}")
    found: dict[str, tuple[int, float]] = {}
    for row in rows:
        values = list(row.values()) if isinstance(row, dict) else list(row)
        district = next(v for v in values if isinstance(v, str))
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        counts = [v for v in numbers if isinstance(v, int)]
        averages = [v for v in numbers if isinstance(v, float)]
        if not counts or not averages:
            raise WrongAnswer(f"group {row} has no count or no average")
        found[district] = (counts[0], averages[0])
    if set(found) != set(expected.totals):
        raise WrongAnswer(f"groups {sorted(found)}, expected {sorted(expected.totals)}")
    for district, (count, average) in found.items():
        if count != expected.totals[district]:
            raise WrongAnswer(f"{district}: count {count}, expected {expected.totals[district]}")
        if not math.isclose(average, expected.averages[district], rel_tol=1e-9):
            raise WrongAnswer(f"{district}: avg {average}, expected {expected.averages[district]}")
    return f"{len(found)} groups right"


@dataclass
class Request:
    """One scenario on one server: the URLs driven in turn and the check of each answer."""

    paths: list[str]
    check: Callable[[bytes], str]
    method: str = "GET"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def scenario_requests(
    expected: Expected, cursors: list[str] | None, deep_row: int, key: str | None
) -> dict[str, dict[str, Request | None]]:
    def ul_page(path: str, want: list[Any], total: int | None) -> Request:
        return Request([path], lambda body: check_page("urbanlake", body, want, total))

    def ds_page(path: str, want: list[Any], total: int | None, lean: bool) -> Request:
        server = "datasette-lean" if lean else "datasette"
        return Request([path], lambda body: check_page(server, body, want, total))

    north = expected.totals["North"]
    out: dict[str, dict[str, Request | None]] = {}
    out["a"] = {
        "urbanlake": ul_page(ul_records(district="North"), expected.first_north, north),
        "datasette": ds_page(ds_table(False, district="North"), expected.first_north, north, False),
        "datasette-lean": ds_page(
            ds_table(True, district="North"), expected.first_north, None, True
        ),
    }
    # (a'): every district's first page; the check covers each district's total once.
    out["a2"] = {
        "urbanlake": Request([ul_records(district=d) for d in DISTRICTS], lambda body: ""),
        "datasette": Request([ds_table(False, district=d) for d in DISTRICTS], lambda body: ""),
        "datasette-lean": Request([ds_table(True, district=d) for d in DISTRICTS], lambda body: ""),
    }
    out["b-first"] = {
        "urbanlake": ul_page(ul_records(), expected.first, expected.rows),
        "datasette": ds_page(ds_table(False), expected.first, None, False),
        "datasette-lean": ds_page(ds_table(True), expected.first, None, True),
    }

    def after(cursor: str) -> str:
        return f"/api/v1/datasets/{DATASET}/records?" + urlencode(
            {"limit": str(PAGE), "cursor": cursor}
        )

    out["b-deep"] = {
        "urbanlake": None if cursors is None else ul_page(after(cursors[0]), expected.deep, None),
        # Datasette's _next for a rowid table is the last rowid seen: rows after deep_row.
        "datasette": ds_page(ds_table(False, _next=str(deep_row)), expected.deep, None, False),
        "datasette-lean": ds_page(ds_table(True, _next=str(deep_row)), expected.deep, None, True),
    }
    # The same at RANDOM_PAGES different rows: no page is asked twice, so no answer cache helps.
    # The first page is checked; the others count as errors unless they answer 200.
    want = expected.random_first
    random: dict[str, Request | None] = {"urbanlake": None}
    if cursors is not None:
        random["urbanlake"] = Request(
            [after(c) for c in cursors[1:]],
            lambda body: check_page("urbanlake", body, want, None),
        )
    for server, lean in (("datasette", False), ("datasette-lean", True)):
        random[server] = Request(
            [ds_table(lean, _next=str(r)) for r in expected.random_rows],
            lambda body, server=server: check_page(server, body, want, None),
        )
    out["b-random"] = random
    out["c"] = {
        "urbanlake": Request([UL_GROUP_BY], lambda body: check_groups(body, expected)),
        "datasette": Request([DS_GROUP_BY], lambda body: check_groups(body, expected)),
    }
    keyed = ul_page(ul_records(district="North"), expected.first_north, north)
    keyed.headers = {"X-API-Key": key} if key else {}
    out["e"] = {
        "urbanlake": ul_page(ul_records(district="North"), expected.first_north, north),
        "urbanlake-key": keyed if key else None,
    }
    out["f"] = {
        "urbanlake": Request(["/api/v1/sql"], lambda body: check_groups(body, expected), "POST",
                             json.dumps({"sql": UL_SQL}).encode(),
                             {"Content-Type": "application/json"}),
        "datasette": Request([DS_GROUP_BY], lambda body: check_groups(body, expected)),
    }  # fmt: skip
    return out


def check_districts(
    server: str, port: int, paths: list[str], expected: Expected
) -> tuple[str, float]:
    """(a'): each district's first page must hold its own rows and, where given, its total."""
    seconds = []
    for district, path in zip(DISTRICTS, paths, strict=True):
        status, body, took = get(port, path)
        seconds.append(took)
        if status != 200:
            raise WrongAnswer(f"{district}: HTTP {status}: {body[:300]!r}")
        doc = json.loads(body)
        rows = page_rows(doc)
        if len(rows) != min(PAGE, expected.totals[district]):
            raise WrongAnswer(f"{district}: {len(rows)} rows")
        total = doc.get("total" if server == "urbanlake" else "filtered_table_rows_count")
        if server != "datasette-lean" and total != expected.totals[district]:
            raise WrongAnswer(f"{district}: total {total}, expected {expected.totals[district]}")
    return "12 districts right", max(seconds)


def make_cursors(port: int, expected: Expected) -> tuple[list[str] | None, str]:
    """UrbanLake's cursors for the deep page (after row ``deep_row - 1`` in primary-key order),
    then for each random deep page.

    The version comes from the dataset's metadata. A cursor also carries a digest of its query,
    taken from the API's own ``next`` link of the unfiltered first page, so the made cursor
    continues exactly the query that link continues.
    """
    status, body, _ = get(port, f"/api/v1/datasets/{DATASET}")
    if status != 200:
        return None, f"GET /api/v1/datasets/{DATASET}: HTTP {status}"
    version = json.loads(body).get("version")
    try:
        from urbanlake.catalog.cursor import decode_cursor, encode_cursor
    except ImportError as e:
        return None, f"no urbanlake.catalog.cursor ({e})"
    digest, note = "", f"version {version}"
    # limit=1: the digest covers filters and order only, and (b)'s first page stays unasked.
    status, body, _ = get(port, f"/api/v1/datasets/{DATASET}/records?limit=1")
    link = json.loads(body).get("next") if status == 200 else None
    if link:
        token = parse_qs(urlsplit(link).query).get("cursor", [""])[0]
        position = decode_cursor(token)
        linked_version, digest = position.version, position.digest
        if linked_version != version:
            note += f" (the first page's next link says version {linked_version})"
    keys = [expected.deep_after, *expected.random_after]
    return [encode_cursor(version, list(k), digest) for k in keys], note


def partner_key(project: Path) -> tuple[str | None, str]:
    """A new partner key from ``urbanlake keys create`` (a new name each run), and a note."""
    name = f"bench-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    done = subprocess.run(
        [URBANLAKE, "--project", str(project), "keys", "create", "--name", name, "--tier",
         "partner"], capture_output=True, text=True, env=urbanlake_env(project), timeout=120,
    )  # fmt: skip
    key = next((w for w in done.stdout.split() if w.startswith("ul_")), None)
    if done.returncode != 0 or key is None:
        return None, f"urbanlake keys create failed: {(done.stderr or done.stdout).strip()[-300:]}"
    return key, f"key {name}"


# -- the load generator ---------------------------------------------------------------------------


@dataclass
class Load:
    """One scenario on one server under the load generator."""

    scenario: str
    server: str
    status: str = "ok"  # ok, wrong, failed, skipped, incomplete (no request finished)
    note: str = ""
    check: str = ""
    check_seconds: float | None = None
    seconds: float | None = None
    requests: int = 0
    errors: int = 0
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    loadavg: float | None = None  # the 1-minute load average when the timed run started
    extra: dict[str, Any] = field(default_factory=dict)


def load_tool() -> str | None:
    for name in ("wrk", "hey"):
        if shutil.which(name):
            return name
    return None


def lua(value: str | bytes | None) -> str:
    """A Lua string literal (JSON's escapes are Lua's for what the bench sends), or nil."""
    if value is None:
        return "nil"
    return json.dumps(value.decode() if isinstance(value, bytes) else value)


def drive(
    tool: str,
    port: int,
    request: Request,
    seconds: float,
    connections: int,
    threads: int,
    work: Path,
) -> dict[str, Any]:
    """Run the load generator against the request's paths in turn; requests, req/s, p50 and p99
    in ms."""
    paths = request.paths
    if tool == "wrk":
        script = work / "wrk-paths.lua"
        headers = ", ".join(f"[{lua(k)}] = {lua(v)}" for k, v in request.headers.items())
        script.write_text(WRK_SCRIPT % (", ".join(lua(p) for p in paths), lua(request.method),
                                        lua(request.body), headers))  # fmt: skip
        command = [
            "wrk", "-t", str(min(threads, connections)), "-c", str(connections),
            "-d", f"{seconds:.0f}s", "--timeout", f"{seconds + 60:.0f}s", "-s", str(script),
            f"http://127.0.0.1:{port}/",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 300)
        line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed: {(done.stderr or done.stdout).strip()[-500:]}")
        r = json.loads(line.removeprefix("WRK_RESULT "))
        errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
        took = r["duration_us"] / 1e6
        return {
            "requests": r["requests"],
            "errors": errors,
            "seconds": took,
            "rps": r["requests"] / took if took else None,
            "p50_ms": r["p50_us"] / 1000 if r["requests"] else None,
            "p99_ms": r["p99_us"] / 1000 if r["requests"] else None,
            "detail": r,
        }
    if len(paths) != 1:
        raise RuntimeError("hey sends one URL only; this scenario needs wrk")
    command = ["hey", "-z", f"{seconds:.0f}s", "-c", str(connections), "-o", "csv"]
    command += ["-m", request.method] + [
        f for k, v in request.headers.items() for f in ("-H", f"{k}: {v}")
    ]
    command += ["-d", request.body.decode()] if request.body else []
    command += ["-t", f"{seconds + 60:.0f}", f"http://127.0.0.1:{port}{paths[0]}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 300)
    if done.returncode != 0:
        raise RuntimeError(f"hey failed: {(done.stderr or done.stdout).strip()[-500:]}")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    ok = [float(r["response-time"]) for r in rows if r["status-code"] == "200"]
    latencies = sorted(ok)
    return {
        "requests": len(rows),
        "errors": len(rows) - len(ok),
        "seconds": seconds,
        "rps": len(rows) / seconds,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)]
        if latencies
        else None,
        "detail": {},
    }


def run_scenario(
    scenario: str,
    server: str,
    process: Server,
    request: Request | None,
    expected: Expected,
    args: argparse.Namespace,
    tool: str,
    work: Path,
) -> Load:
    load = Load(scenario, server)
    label = f"{SCENARIOS[scenario]} / {SERVERS[server]}"
    port = process.port
    if request is None:
        load.status, load.note = "skipped", "no request (see above)"
        print(f"  {label}: SKIPPED", flush=True)
        return load
    # Requests the load generator abandons at the end of a run may still be computing in the
    # server; each check and each run starts once the server has gone quiet.
    process.wait_idle()
    try:
        if scenario == "a2":
            load.check, load.check_seconds = check_districts(server, port, request.paths, expected)
        else:
            status, body, took = get(port, request.paths[0], request=request)
            load.check_seconds = took
            if status != 200:
                raise WrongAnswer(f"HTTP {status}: {body[:300]!r}")
            load.check = request.check(body)
    except (WrongAnswer, ValueError, KeyError, TypeError, StopIteration) as e:
        load.status, load.note = "wrong", f"{type(e).__name__}: {e}"
        print(f"  {label}: WRONG ANSWER - {load.note}", flush=True)
        return load
    except OSError as e:
        load.status, load.note = "failed", f"{type(e).__name__}: {e}"
        print(f"  {label}: FAILED - {load.note}", flush=True)
        return load
    if len(request.paths) > 1 and tool != "wrk":
        load.status, load.note = "skipped", "hey cannot cycle URLs; install wrk"
        print(f"  {label}: {load.check}; SKIPPED under load ({load.note})", flush=True)
        return load
    # A slow request gets a longer run (20 times its first request, up to --max-duration), so
    # that enough finish: the requests still in flight at the end are not counted.
    assert load.check_seconds is not None
    seconds = min(
        max(args.duration, 20 * load.check_seconds), max(args.duration, args.max_duration)
    )
    try:
        if args.warmup > 0:
            drive(tool, port, request, args.warmup, args.connections, args.threads, work)
            process.wait_idle()
        load.loadavg = round(os.getloadavg()[0], 2)
        result = drive(tool, port, request, seconds, args.connections, args.threads, work)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        load.status, load.note = "failed", str(e)
        print(f"  {label}: FAILED - {load.note}", flush=True)
        return load
    load.seconds, load.requests, load.errors = (
        result["seconds"],
        result["requests"],
        result["errors"],
    )
    load.rps, load.p50_ms, load.p99_ms = result["rps"], result["p50_ms"], result["p99_ms"]
    load.extra = result["detail"]
    if load.errors:
        load.note = f"{load.errors:,} errors (non-2xx, timeouts or socket errors)"
    if not load.requests:
        load.status, load.rps = "incomplete", None
        load.note = f"no request finished in {seconds:.0f} s (raise --max-duration)"
    print(
        f"  {label}: {load.check} in {1000 * load.check_seconds:.1f} ms; "
        f"{fmt(load.rps, ',.1f')} req/s, p50 {fmt(load.p50_ms, ',.1f')} ms, "
        f"p99 {fmt(load.p99_ms, ',.1f')} ms ({load.requests:,} requests in {load.seconds:.0f} s,"
        f" load {load.loadavg}"
        f"{', ' + load.note if load.note else ''})",
        flush=True,
    )
    return load


# -- (d) one full CSV download --------------------------------------------------------------------


@dataclass
class Export:
    server: str
    status: str = "ok"
    note: str = ""
    bytes: int = 0
    rows: int = 0
    seconds: float | None = None
    mb_per_s: float | None = None
    rss_start_mb: float | None = None
    rss_peak_mb: float | None = None  # highest sampled VmRSS over the server's processes
    hwm_mb: float | None = None  # VmHWM summed over the server's processes, after the download


def download(port: int, path: str, timeout: float) -> tuple[int, int]:
    """(body bytes, newlines in the body) of one GET, read straight off the socket.

    The request is HTTP/1.0, so the body comes unframed until the server closes. http.client's
    chunk decoding cost about 10 % of the throughput on 2 cores, where the client shares the
    CPU with the server; this reader keeps pace with curl.
    """
    started = time.perf_counter()
    buffer = bytearray(4 << 20)
    head, size, lines = b"", 0, 0
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        while n := sock.recv_into(buffer):
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"still downloading after {timeout:.0f} s")
            if head is None:
                size += n
                lines += buffer.count(b"\n", 0, n)
                continue
            head += bytes(buffer[:n])
            if b"\r\n\r\n" in head:
                header, _, body = head.partition(b"\r\n\r\n")
                status = header.split(b"\r\n", 1)[0].decode("latin-1")
                if status.split()[1:2] != ["200"]:
                    raise WrongAnswer(f"{status}: {body[:300]!r}")
                if b"transfer-encoding: chunked" in header.lower():
                    raise WrongAnswer("the server chunked its answer to an HTTP/1.0 request")
                size, lines, head = len(body), body.count(b"\n"), None
    if head is not None:
        raise WrongAnswer(f"the connection closed inside the headers: {head[:300]!r}")
    return size, lines


def export_once(server: Server, path: str, rows: int, timeout: float) -> Export:
    """One full download from a freshly started server, while a thread samples its memory."""
    result = Export(server.name)
    try:
        server.start()
        pids = server.pids()
        result.rss_start_mb = sum(memory_kb(p, "VmRSS") for p in pids) / 1024
        peak, stop = [0], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], sum(memory_kb(p, "VmRSS") for p in pids))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        try:
            result.bytes, lines = download(server.port, path, timeout)
            result.seconds = time.perf_counter() - started
        finally:
            stop.set()
            sampler.join()
        result.rss_peak_mb = peak[0] / 1024
        result.hwm_mb = sum(memory_kb(p, "VmHWM") for p in pids) / 1024
        result.rows = lines - 1  # the header
        result.mb_per_s = result.bytes / 1e6 / result.seconds
        if result.rows != rows:
            raise WrongAnswer(f"{result.rows:,} data lines, expected {rows:,}")
    except WrongAnswer as e:
        result.status, result.note = "wrong", str(e)
    except (OSError, RuntimeError, http.client.HTTPException) as e:
        result.status, result.note = "failed", f"{type(e).__name__}: {e}"
    finally:
        server.stop()
    state = "" if result.status == "ok" else f" {result.status.upper()} - {result.note}"
    print(
        f"  (d) CSV export / {server.name}: {result.bytes / 1e6:,.1f} MB, {result.rows:,} rows in "
        f"{fmt(result.seconds, '.1f')} s = {fmt(result.mb_per_s, ',.1f')} MB/s; RSS "
        f"{fmt(result.rss_start_mb, ',.0f')} MB at start, peak {fmt(result.rss_peak_mb, ',.0f')}"
        f" MB sampled, VmHWM {fmt(result.hwm_mb, ',.0f')} MB{state}",
        flush=True,
    )
    return result


# -- report ---------------------------------------------------------------------------------------


def faster(loads: dict[str, Load], scenario: str) -> Load | None:
    """Datasette's faster mode (more req/s) in ``scenario``, of those that ran right."""
    candidates = [
        loads[(scenario, s)]  # type: ignore[index]
        for s in ("datasette", "datasette-lean")
        if (scenario, s) in loads and loads[(scenario, s)].rps  # type: ignore[index]
    ]
    return max(candidates, key=lambda x: x.rps or 0, default=None)


def ratios_of(loads: dict[Any, Load], exports: dict[str, Export]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def ok(load: Load | None) -> bool:
        return load is not None and load.status == "ok" and bool(load.rps)

    def add(
        name: str, value: float | None, goal: str | None, met: bool | None, note: str = ""
    ) -> None:
        out.append({"name": name, "value": value, "goal": goal, "met": met, "note": note})

    for scenario in ("a", "a2", "b-first", "b-deep", "b-random", "c"):
        ours, theirs = loads.get((scenario, "urbanlake")), faster(loads, scenario)
        if not (ok(ours) and ok(theirs)):
            if (scenario, "urbanlake") in loads:
                add(f"{scenario}: urbanlake/datasette req/s", None, None, None, "a side is missing")
            continue
        assert ours is not None and theirs is not None and ours.rps and theirs.rps
        value = ours.rps / theirs.rps
        goal = {"a": 2.0, "a2": 2.0, "c": 10.0}.get(scenario)
        add(
            f"{scenario}: urbanlake/datasette req/s",
            value,
            f">= {goal:g}x" if goal else None,
            value >= goal if goal else None,
            f"vs {SERVERS[theirs.server]}; p50 {ours.p50_ms:,.1f} ms vs {theirs.p50_ms:,.1f} ms",
        )
    anonymous, keyed = loads.get(("e", "urbanlake")), loads.get(("e", "urbanlake-key"))
    if ok(anonymous) and ok(keyed):
        assert anonymous is not None and keyed is not None and anonymous.rps and keyed.rps
        cost = 1 - keyed.rps / anonymous.rps
        add("e: cost of a partner key (1 - key/anon req/s)", 100 * cost, "<= 10 %",
            cost <= 0.10, f"{keyed.rps:,.1f} vs {anonymous.rps:,.1f} req/s; p50 "
            f"{keyed.p50_ms:,.2f} ms vs {anonymous.p50_ms:,.2f} ms")  # fmt: skip
    ours, theirs = loads.get(("f", "urbanlake")), faster(loads, "f")
    if ok(ours) and ok(theirs):
        assert ours is not None and theirs is not None and ours.rps and theirs.rps
        add("f: urbanlake SQL/datasette SQL req/s", ours.rps / theirs.rps, None, None,
            f"p50 {ours.p50_ms:,.1f} ms vs {theirs.p50_ms:,.1f} ms; first request "
            f"{1000 * (ours.check_seconds or 0):,.1f} ms vs "
            f"{1000 * (theirs.check_seconds or 0):,.1f} ms")  # fmt: skip
    # UrbanLake keeps each version's aggregates, so under load (c) measures that cache; the
    # scenario's first request, one on each side, is the uncached cost.
    ours, theirs = loads.get(("c", "urbanlake")), loads.get(("c", "datasette"))
    if ours and theirs and ours.check_seconds and theirs.check_seconds and ours.check:
        add(
            "c, first request alone: datasette/urbanlake",
            theirs.check_seconds / ours.check_seconds,
            None,
            None,
            f"{1000 * theirs.check_seconds:,.1f} ms vs {1000 * ours.check_seconds:,.1f} ms,"
            " one request each, before urbanlake's answer cache holds it",
        )
    deep, first, north = (loads.get((s, "urbanlake")) for s in ("b-deep", "b-first", "a"))
    if ok(deep) and ok(first):
        assert deep is not None and first is not None and deep.p50_ms and first.p50_ms
        value = deep.p50_ms / first.p50_ms
        note = ""
        if ok(north) and north is not None and north.p50_ms:
            note = f"vs (a)'s district=North first page: {deep.p50_ms / north.p50_ms:.2f}x"
        add("b: urbanlake deep p50 / first page p50", value, "<= 1.5x", value <= 1.5, note)
    scattered = loads.get(("b-random", "urbanlake"))
    if ok(scattered) and ok(first):
        assert scattered is not None and first is not None
        if scattered.p50_ms and first.p50_ms:
            add(
                "b: random deep pages p50 / first page p50",
                scattered.p50_ms / first.p50_ms,
                None,
                None,
                "urbanlake; every page a different one, so none comes from its answer cache",
            )
    ul = exports.get("urbanlake")
    if ul is not None:
        met = None
        if ul.status == "ok" and ul.mb_per_s and ul.rss_peak_mb is not None:
            met = ul.mb_per_s >= 100 and max(ul.rss_peak_mb, ul.hwm_mb or 0) < 500
        ds = exports.get("datasette")
        note = ""
        if ds is not None and ds.mb_per_s and ul.mb_per_s:
            note = f"{ul.mb_per_s / ds.mb_per_s:.1f}x datasette's MB/s"
        add("d: urbanlake CSV MB/s", ul.mb_per_s, ">= 100 MB/s, RSS < 500 MB", met, note)
    return out


def report(loads: dict[Any, Load], exports: dict[str, Export], ratios: list[dict[str, Any]]) -> str:
    rows = []
    for (scenario, server), load in loads.items():
        rows.append(
            [
                SCENARIOS[scenario],
                SERVERS[server],
                fmt(load.rps, ",.1f") + ("" if load.status == "ok" else f" {load.status.upper()}"),
                fmt(load.p50_ms, ",.1f"),
                fmt(load.p99_ms, ",.1f"),
                fmt(None if load.check_seconds is None else 1000 * load.check_seconds, ",.1f"),
                f"{load.requests:,}",
                f"{load.errors:,}",
                fmt(load.loadavg, ".1f"),
            ]
        )
    headers = ["scenario", "server", "req/s", "p50 ms", "p99 ms", "first ms", "requests",
               "errors", "load"]  # fmt: skip
    lines = [format_table(headers, rows)] if rows else []
    if exports:
        rows = [
            [
                "(d) CSV export",
                e.server,
                fmt(e.mb_per_s, ",.1f") + ("" if e.status == "ok" else f" {e.status.upper()}"),
                fmt(e.seconds, ",.1f"),
                f"{e.bytes / 1e6:,.0f}",
                fmt(e.rss_start_mb, ",.0f"),
                fmt(e.rss_peak_mb, ",.0f"),
                fmt(e.hwm_mb, ",.0f"),
            ]
            for e in exports.values()
        ]
        headers = ["scenario", "server", "MB/s", "seconds", "MB", "RSS start", "RSS peak", "VmHWM"]
        lines += ["", format_table(headers, rows)]
    if loads:
        lines += [
            "",
            "first ms: the scenario's first request, alone (the checked one; for (a'), the"
            " slowest of the 12). load: the 1-minute load average at the start of the run.",
        ]
    lines += ["", "ratios and goals:"]
    for r in ratios:
        value = (
            "-"
            if r["value"] is None
            else f"{r['value']:,.2f}"
            + (" %" if "cost" in r["name"] else "" if "MB/s" in r["name"] else "x")
        )
        verdict = ""
        if r["goal"]:
            state = "n/a" if r["met"] is None else "met" if r["met"] else "NOT met"
            verdict = f"   goal {r['goal']}: {state}"
        note = f"   ({r['note']})" if r["note"] else ""
        lines.append(f"  {r['name']:<42} {value:>9}{verdict}{note}")
    problems = [x for x in [*loads.values(), *exports.values()] if x.status not in ("ok",)]
    if problems:
        lines += ["", "problems:"]
        for x in problems:
            what = (
                f"{SCENARIOS[x.scenario]} / {SERVERS[x.server]}"
                if isinstance(x, Load)
                else f"(d) {x.server}"
            )
            lines.append(f"  {what}: {x.status.upper()} - {x.note}")
    return "\n".join(lines)


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("datasette", "fastapi", "uvicorn", "duckdb", "pyarrow"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    for tool, flag in (("wrk", "-v"), ("hey", "-h")):
        if shutil.which(tool):
            done = subprocess.run([tool, flag], capture_output=True, text=True)
            out[tool] = (
                (done.stdout or done.stderr).splitlines()[0][:80] if tool == "wrk" else "present"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows (default 10,000,000)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated rows")
    parser.add_argument("--duration", type=float, default=10, help="seconds of load per scenario")
    parser.add_argument(
        "--max-duration", type=float, default=60,
        help="longest run of a slow scenario (20 times its first request's latency)",
    )  # fmt: skip
    parser.add_argument("--warmup", type=float, default=2, help="seconds of untimed load first")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="urbanlake serve --workers")
    parser.add_argument("--deep-row", type=int, help="row the deep page starts at (default half)")
    parser.add_argument(
        "--scenarios", default="a,a2,b,c,d,e,f", help="comma-separated: a, a2, b, c, d, e, f"
    )
    parser.add_argument(
        "--servers", default="urbanlake,datasette", help="comma-separated: urbanlake, datasette"
    )
    parser.add_argument("--rebuild", action="store_true", help="ingest and publish again")
    parser.add_argument("--export-timeout", type=float, default=1800, help="seconds for (d)")
    parser.add_argument("--results", default="api", help="file name in bench/results/, no .json")
    args = parser.parse_args(argv)
    chosen = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    servers = {s.strip() for s in args.servers.split(",") if s.strip()}
    if unknown := chosen - {"a", "a2", "b", "c", "d", "e", "f"}:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}")
    if unknown := servers - {"urbanlake", "datasette"}:
        parser.error(f"unknown server(s) {', '.join(sorted(unknown))}")
    deep_row = args.deep_row or args.rows // 2
    if not 0 < deep_row < args.rows:
        parser.error("--deep-row must be inside the rows")

    tool = load_tool()
    if tool is None and chosen - {"d"}:
        print(
            "BENCH FAILED: neither wrk nor hey is installed; the load scenarios need one of them "
            "(Debian: apt-get install wrk). wrk is preferred: hey cannot cycle URLs for (a').",
            file=sys.stderr,
        )
        return 2
    if tool == "hey":
        print(
            "NOTE: wrk is not installed, so hey drives the load; (a') and the random deep pages"
            " are skipped",
            flush=True,
        )
    datasette = VENV_BIN / "datasette"
    if "datasette" in servers and not datasette.exists() and shutil.which("datasette") is None:
        print(
            "BENCH FAILED: datasette is not installed: pip install -e '.[bench]'", file=sys.stderr
        )
        return 2

    folder = RESULTS_DIR / "api-data" / f"rows-{args.rows}-seed-{args.seed}"
    folder.mkdir(parents=True, exist_ok=True)
    project, logs, work = folder / "project", folder / "logs", folder / "work"
    for path in (logs, work):
        path.mkdir(exist_ok=True)
    print(f"api bench: {args.rows:,} rows, data in {folder.relative_to(RESULTS_DIR.parent.parent)}")
    print(f"engine: {engine()}", flush=True)
    print(
        f"load: {tool}, {args.connections} connections, {args.duration:g} s a scenario", flush=True
    )
    build_data(folder, args.rows, args.seed)
    if "urbanlake" in servers:
        build_project(folder, project, args.rows, args.rebuild)
    expected = expected_answers(folder / "smart_meter.parquet", deep_row, args.seed)
    if expected.rows != args.rows:
        raise SystemExit(f"BENCH FAILED: the Parquet file holds {expected.rows:,} rows")

    ports = {"urbanlake": free_port(), "datasette": free_port()}
    running: dict[str, Server] = {}
    if "urbanlake" in servers:
        running["urbanlake"] = urbanlake_server(project, ports["urbanlake"], args.workers, logs)
    if "datasette" in servers:
        running["datasette"] = datasette_server(
            folder / f"{SQLITE_DB}.db", ports["datasette"], logs
        )

    loads: dict[Any, Load] = {}
    exports: dict[str, Export] = {}
    notes: list[str] = []
    try:
        load_scenarios = [
            s
            for s in ("a", "a2", "b-first", "b-deep", "b-random", "c", "e", "f")
            if s.split("-")[0] in chosen
        ]
        if load_scenarios:
            for name, server in running.items():
                print(f"starting {name}: {server.start():.1f} s", flush=True)
            cursors = None
            if "urbanlake" in running and "b" in chosen:
                cursors, note = make_cursors(ports["urbanlake"], expected)
                print(f"urbanlake cursors for the deep pages: {note}", flush=True)
                if cursors is None:
                    notes.append(f"(b) deep page, urbanlake: {note}")
            key = None
            if "urbanlake" in running and "e" in chosen:
                key, note = partner_key(project)
                print(f"urbanlake partner key for (e): {note}", flush=True)
                if key is None:
                    notes.append(f"(e) with a key: {note}")
            requests = scenario_requests(expected, cursors, deep_row, key)
            for scenario in load_scenarios:
                print(SCENARIOS[scenario], flush=True)
                for server in SERVERS:
                    process = PROCESS[server]
                    if process not in running or server not in requests[scenario]:
                        continue
                    loads[(scenario, server)] = run_scenario(
                        scenario, server, running[process], requests[scenario][server],
                        expected, args, tool or "", work,
                    )  # fmt: skip
            for server in running.values():
                server.stop()
        if "d" in chosen:
            print("(d) CSV export, one download from a fresh server", flush=True)
            for name, server in running.items():
                path = UL_EXPORT if name == "urbanlake" else DS_EXPORT
                exports[name] = export_once(server, path, args.rows, args.export_timeout)
    finally:
        for server in running.values():
            server.stop()

    ratios = ratios_of(loads, exports)
    print("\n" + report(loads, exports, ratios))
    for note in notes:
        print(f"note: {note}")
    results = {
        "bench": "api",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "seed": args.seed,
        "deep_row": deep_row,
        "load_tool": tool,
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "workers": args.workers,
        "datasette_settings": DATASETTE_SETTINGS,
        "datasette_lean": LEAN,
        "goals": GOALS,
        "machine": machine(),
        "versions": versions(),
        "engine": engine(),
        "loadavg": os.getloadavg(),
        "loads": [asdict(x) for x in loads.values()],
        "exports": [asdict(x) for x in exports.values()],
        "ratios": ratios,
        "notes": notes,
    }
    print(f"\nresults: {write_results(args.results, results)}")
    bad = [x for x in [*loads.values(), *exports.values()] if x.status in ("wrong", "failed")]
    if bad:
        print(f"\nBENCH FAILED: {len(bad)} wrong or failed measurement(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
