"""How fast can Great Expectations check one batch? GX's pandas engine, its SQL engine on DuckDB,
and the same checks as one DuckDB query, at 1,000,000 and 10,000 rows.

    .venv/bin/python bench/gx_paths.py                 # 1M, 1M with 5% bad values, 10k: ~40 s
    .venv/bin/python bench/gx_paths.py --rows 10000    # one size
    .venv/bin/pip install duckdb-engine                # for GX's SQL path (else it is left out)

Every path runs in this one process after a warm-up run, so a figure is the per-batch cost of a
long-running worker: GX's import and context (about 3 s) are paid once and printed apart. Each
figure is the best of --repeat runs (other processes only ever add time on a shared machine),
with the process CPU time of that run beside it.

The data are the city readings of ``common.sensor_readings`` with ``ts`` as timestamp[us, UTC],
an int64 ``reading_id`` for the uniqueness check and the platform's ``__row`` ids, and faults
injected at fixed rates (nulls, out-of-range values, unknown statuses, malformed ids,
duplicates) so that every row-level check has failing rows to list. Every path's failing row ids
are checked against the DuckDB reference; a path that disagrees is marked WRONG.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fmt, format_table, machine, sensor_readings, write_results

os.environ["GX_ANALYTICS_ENABLED"] = "false"

STATUSES = ["ok", "degraded", "maintenance", "offline"]
SENSOR_ID = r"^[A-Z0-9]+(?:-[A-Z0-9]+)?-\d{5}$"


def batch(rows: int, seed: int = 42, bad_values: float = 0.005) -> Any:
    """The readings with faults injected at fixed rates, as the ingest hands them over.

    ``bad_values`` is the share of out-of-range values: 0.5% passes the suite's ``mostly``
    (0.99), 5% fails it with about 50,000 failing rows at 1M.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    table = sensor_readings(rows, seed=seed)
    rng = np.random.default_rng(seed + 1)

    def pick(rate: float) -> Any:
        return np.zeros(rows, bool) if rate == 0 else rng.random(rows) < rate

    sensor_id = pc.if_else(pa.array(pick(0.001)), pa.scalar("bad id!"), table["sensor_id"])
    sensor_id = pc.if_else(pa.array(pick(0.001)), pa.scalar(None, pa.string()), sensor_id)
    ts = pc.strptime(table["ts"], format="%Y-%m-%dT%H:%M:%SZ", unit="us").cast(
        pa.timestamp("us", tz="UTC")
    )
    ts = pc.if_else(pa.array(pick(0.0005)), pa.scalar(None, ts.type), ts)
    value = pc.if_else(pa.array(pick(bad_values)), pa.scalar(9999.0), table["value"])
    status = pc.if_else(pa.array(pick(0.001)), pa.scalar("unknown"), table["status"])
    lat = pc.if_else(pa.array(pick(0.0001)), pa.scalar(0.0), table["lat"])
    reading_id = np.arange(rows, dtype=np.int64) + 1_000_000_000
    duplicates = rng.choice(rows, size=max(1, rows // 10_000), replace=False)
    reading_id[duplicates] = reading_id[(duplicates + 1) % rows]
    return pa.table(
        {
            "sensor_id": sensor_id,
            "ts": ts,
            "value": value,
            "unit": table["unit"],
            "status": status,
            "lat": lat,
            "lon": table["lon"],
            "reading_id": pa.array(reading_id),
            "__row": pa.array(np.arange(rows, dtype=np.int64)),
        }
    )


def suite(columns: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The acceptance suite: 10 expectations, 8 of them row-level."""
    return [
        ("expect_column_values_to_not_be_null", {"column": "sensor_id"}),
        ("expect_column_values_to_not_be_null", {"column": "ts"}),
        (
            "expect_column_values_to_be_between",
            {"column": "value", "min_value": -50, "max_value": 5000, "mostly": 0.99},
        ),
        ("expect_column_values_to_be_between", {"column": "lat", "min_value": 38, "max_value": 40}),
        (
            "expect_column_values_to_be_between",
            {"column": "lon", "min_value": -10, "max_value": -8},
        ),
        ("expect_column_values_to_be_in_set", {"column": "status", "value_set": STATUSES}),
        ("expect_column_values_to_match_regex", {"column": "sensor_id", "regex": SENSOR_ID}),
        ("expect_column_values_to_be_unique", {"column": "reading_id"}),
        ("expect_table_row_count_to_be_between", {"min_value": 1, "max_value": 5_000_000}),
        ("expect_table_columns_to_match_set", {"column_set": columns}),
    ]


def data_columns(table: Any) -> list[str]:
    return [c for c in table.column_names if c != "__row"]


# -- the paths -------------------------------------------------------------------------------------

Rows = list[list[int] | None]  # per expectation: failing row ids, None for batch-level ones
Path_ = Callable[[Any], tuple[bool, Rows, str]]  # table -> (suite success, rows, note)


def gx_runner_path(table: Any) -> tuple[bool, Rows, str]:
    """urbanlake.quality.gx_runner.validate: GX pandas engine, numpy dtypes, one batch load."""
    from urbanlake.quality import gx_runner

    out = gx_runner.validate(table, suite(data_columns(table)))
    errors = [o.error for o in out.outcomes if o.error]
    rows = [o.unexpected_rows if o.row_level else None for o in out.outcomes]
    return out.success, rows, "; ".join(errors)


@contextlib.contextmanager
def arrow_dtypes() -> Iterator[None]:
    """The runner with pandas' ArrowDtype columns (zero-copy from Arrow) instead of numpy."""
    import pandas as pd

    from urbanlake.quality import gx_runner

    original = gx_runner._frame

    def frame(table: Any, row_column: str) -> Any:
        return table.to_pandas(types_mapper=pd.ArrowDtype).set_index(row_column)

    gx_runner._frame = frame
    try:
        yield
    finally:
        gx_runner._frame = original


def gx_arrow_dtype_path(table: Any) -> tuple[bool, Rows, str]:
    with arrow_dtypes():
        return gx_runner_path(table)


def gx_public_api_path(table: Any) -> tuple[bool, Rows, str]:
    """The documented way: batch_definition.get_batch(dataframe) then Batch.validate(suite).

    Batch.validate builds its own validator, which loads the frame again: GX fingerprints
    (hashes) the whole frame on each load.
    """
    import great_expectations as gx

    from urbanlake.quality import gx_runner

    runtime = gx_runner._gx_runtime()
    expectations = [
        gx_runner._build(i, name, kwargs)
        for i, (name, kwargs) in enumerate(suite(data_columns(table)))
    ]
    frame = gx_runner._frame(table, "__row")
    result = runtime.batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        gx.ExpectationSuite(name="bench", expectations=expectations),
        result_format={**gx_runner._RESULT_FORMAT, "unexpected_index_column_names": ["__row"]},
    )
    return result.success, _rows_from_gx(result.to_json_dict(), "__row"), ""


def _rows_from_gx(raw: dict[str, Any], row_column: str) -> Rows:
    from urbanlake.quality import gx_runner

    rows: Rows = [None] * len(raw["results"])
    for item in raw["results"]:
        position = item["expectation_config"]["meta"]["urbanlake_position"]
        name = item["expectation_config"]["type"]
        if gx_runner._is_row_level(gx_runner._expectation_class(name)):
            rows[position] = gx_runner._row_ids(
                item["result"].get("unexpected_index_list"), row_column
            )
    return rows


class GxDuckDB:
    """GX's SQL engine (SQLAlchemy + duckdb-engine) on an in-process DuckDB database.

    GX 1.24 has no DuckDB support of its own. Two things are patched here, in this bench only,
    to get figures at all:

    - duckdb-engine hands SQLAlchemy the DuckDB connection itself as the cursor. GX closes its
      SQLAlchemy connection before it fetches a result, SQLAlchemy rolls the connection back on
      close, and the ROLLBACK replaces the pending result: every metric query comes back empty
      and every expectation fails with "list index out of range" (GX issues #10738, #11579).
      With ``patched=True`` BEGIN and ROLLBACK become no-ops (the checks only read).
    - GX builds no regex for an unknown dialect: match_regex fails with "Regex is not supported
      for dialect duckdb". Not patched. (DuckDB's ``~``, which GX uses for PostgreSQL, would
      also be wrong: in DuckDB it is a full match, in PostgreSQL a search.)

    The Arrow batch is registered (zero-copy) on every pooled connection as it is checked out,
    under a named in-memory database so that GX's two engines (data source and execution
    engine) reach the same one.
    """

    def __init__(self, patched: bool) -> None:
        import duckdb_engine
        import sqlalchemy as sa

        from urbanlake.quality import gx_runner

        self.original = (duckdb_engine.Dialect.do_begin, duckdb_engine.Dialect.do_rollback)
        self.patched = patched
        self.table: Any = None
        with self.dialect_patch():
            context = gx_runner._gx_runtime().context  # progress bars off
            name = f"duckdb-{'patched' if patched else 'plain'}"
            source = context.data_sources.add_sql(
                name, connection_string=f"duckdb:///:memory:{name}"
            )
            for engine in (source.get_engine(), source.get_execution_engine().engine):
                sa.event.listen(engine, "checkout", self.register)
            self.table = batch(10)  # GX queries the table when the asset is added
            asset = source.add_table_asset("batch", table_name="batch")
            self.batch_definition = asset.add_batch_definition_whole_table("whole")

    def register(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        dbapi_connection.register("batch", self.table)

    @contextlib.contextmanager
    def dialect_patch(self) -> Iterator[None]:
        import duckdb_engine

        if self.patched:
            duckdb_engine.Dialect.do_begin = lambda self, connection: None
            duckdb_engine.Dialect.do_rollback = lambda self, connection: None
        try:
            yield
        finally:
            duckdb_engine.Dialect.do_begin, duckdb_engine.Dialect.do_rollback = self.original

    def __call__(self, table: Any) -> tuple[bool, Rows, str]:
        import great_expectations as gx
        from great_expectations.validator.v1_validator import Validator

        from urbanlake.quality import gx_runner

        self.table = table
        # The row ids are a plain column here, so the table-level checks see it too.
        expectations = [
            gx_runner._build(i, name, kwargs)
            for i, (name, kwargs) in enumerate(suite(table.column_names))
        ]
        with self.dialect_patch():
            result = Validator(
                batch_definition=self.batch_definition,
                result_format={
                    **gx_runner._RESULT_FORMAT,
                    "unexpected_index_column_names": ["__row"],
                    # GX's SQL engine stops the failing-row list at partial_unexpected_count
                    # (default 20) even under COMPLETE.
                    "partial_unexpected_count": max(table.num_rows, 1),
                },
            ).validate_expectation_suite(
                gx.ExpectationSuite(name="bench", expectations=expectations)
            )
        raw = result.to_json_dict()
        errors = {gx_runner._error(item.get("exception_info")) for item in raw["results"]}
        failed = sum(1 for item in raw["results"] if gx_runner._error(item.get("exception_info")))
        note = f"{failed}/{len(raw['results'])} expectations errored: " if failed else ""
        note += "; ".join(sorted(e.splitlines()[0][:90] for e in errors if e))
        return result.success, _rows_from_gx(raw, "__row"), note


class DuckDBQuery:
    """The reference: the same checks as one DuckDB query over the registered Arrow batch.

    Each row-level check is a predicate; the query returns, per check, the list of failing row
    ids (``list(__row) FILTER (WHERE ...)``) and, for ``mostly``, the non-null count. Nulls are
    skipped as GX skips them (a comparison with NULL is never true). The column set is compared
    with the Arrow schema.
    """

    def __init__(self) -> None:
        import duckdb

        self.connection = duckdb.connect()

    def __call__(self, table: Any) -> tuple[bool, Rows, str]:
        self.connection.register("batch", table)
        statuses = ", ".join(f"'{s}'" for s in STATUSES)
        query = f"""
            WITH duplicated AS (
                SELECT reading_id FROM batch GROUP BY reading_id HAVING count(*) > 1
            )
            SELECT
                list(__row) FILTER (WHERE sensor_id IS NULL),
                list(__row) FILTER (WHERE ts IS NULL),
                list(__row) FILTER (WHERE NOT value BETWEEN -50 AND 5000),
                count(value),
                list(__row) FILTER (WHERE NOT lat BETWEEN 38 AND 40),
                list(__row) FILTER (WHERE NOT lon BETWEEN -10 AND -8),
                list(__row) FILTER (WHERE status NOT IN ({statuses})),
                list(__row) FILTER (
                    WHERE NOT regexp_matches(sensor_id, '{SENSOR_ID}')
                ),
                list(__row) FILTER (
                    WHERE reading_id IN (SELECT reading_id FROM duplicated)
                ),
                count(*)
            FROM batch
        """
        row = self.connection.execute(query).fetchone()
        assert row is not None
        self.connection.unregister("batch")
        ids = [sorted(x or []) if isinstance(x, list | None) else [] for x in row]
        value_rows, value_nonnull, total = ids[2], row[3], row[9]
        rows: Rows = [ids[0], ids[1], ids[2], ids[4], ids[5], ids[6], ids[7], ids[8], None, None]
        value_ok = not value_nonnull or 1 - len(value_rows) / value_nonnull >= 0.99
        others_ok = all(not r for i, r in enumerate(rows) if r is not None and i != 2)
        column_set = suite(data_columns(table))[9][1]["column_set"]
        shape_ok = 1 <= total <= 5_000_000 and set(data_columns(table)) == set(column_set)
        return value_ok and others_ok and shape_ok, rows, ""


# -- measuring -------------------------------------------------------------------------------------


def measure(path: Path_, table: Any, repeat: int) -> dict[str, Any]:
    """A warm-up run, then the best of ``repeat`` runs (wall and process CPU seconds)."""
    runs = []
    result = None
    for attempt in range(repeat + 1):
        started, cpu = time.perf_counter(), time.process_time()
        result = path(table)
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        if attempt:  # the first is the warm-up
            runs.append((seconds, cpu_s))
    assert result is not None
    best = min(runs)
    return {
        "seconds": best[0],
        "cpu_s": best[1],
        "runs": [round(s, 3) for s, _ in runs],
        "success": result[0],
        "rows": result[1],
        "note": result[2],
    }


def agreement(rows: Rows, reference: Rows) -> str:
    """'ok', or which expectations' failing row ids differ from the reference."""
    wrong = [
        f"#{i} {len(r or [])} vs {len(ref or [])} rows"
        for i, (r, ref) in enumerate(zip(rows, reference, strict=True))
        if ref is not None and sorted(r or []) != ref
    ]
    return "ok" if not wrong else "WRONG " + ", ".join(wrong)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="batch sizes (default 1M, 10k)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-sql", action="store_true", help="leave out GX's SQL engine")
    parser.add_argument("--skip-arrow-dtype", action="store_true", help="(slow: ~4-8 s at 1M)")
    parser.add_argument("--skip-heavy", action="store_true", help="no 5%%-bad-values batch")
    args = parser.parse_args()
    sizes = args.rows or [1_000_000, 10_000]
    # (rows, share of bad values, every path or only the main ones)
    scenarios = [(rows, 0.005, True) for rows in sizes]
    if not args.skip_heavy:
        scenarios.insert(1, (max(sizes), 0.05, False))

    started = time.perf_counter()
    from urbanlake.quality import gx_runner

    gx_runner._gx_runtime()
    gx_seconds = time.perf_counter() - started
    print(f"GX import + ephemeral context, once per process: {gx_seconds:.2f} s")

    main_paths: list[tuple[str, Path_]] = [
        ("duckdb: one SQL query (reference)", DuckDBQuery()),
        ("gx pandas, numpy dtypes (gx_runner)", gx_runner_path),
    ]
    other_paths: list[tuple[str, Path_]] = [
        ("gx pandas, numpy dtypes, Batch.validate", gx_public_api_path),
    ]
    if not args.skip_arrow_dtype:
        other_paths.append(("gx pandas, ArrowDtype", gx_arrow_dtype_path))
    if not args.skip_sql:
        try:
            import duckdb_engine  # noqa: F401
        except ImportError:
            print("duckdb-engine is not installed: GX's SQL path is left out")
        else:
            other_paths.append(("gx sql, duckdb-engine as is", GxDuckDB(patched=False)))
            main_paths.append(("gx sql, duckdb-engine patched", GxDuckDB(patched=True)))

    results: list[dict[str, Any]] = []
    for rows, bad_values, every_path in scenarios:
        table = batch(rows, bad_values=bad_values)
        conversion = min(_timed(table.to_pandas) for _ in range(3))
        scenario = f"{rows:,} rows, {bad_values:.1%} bad values"
        print(f"\n{scenario}: Arrow -> pandas (numpy dtypes) alone {conversion:.3f} s")
        reference: Rows | None = None
        for label, path in main_paths + (other_paths if every_path else []):
            slow = "ArrowDtype" in label and rows >= 100_000
            measured = measure(path, table, 1 if slow else args.repeat)
            if reference is None:
                reference = measured["rows"]
            measured.update(
                rows_in_batch=rows,
                bad_values=bad_values,
                path=label,
                agrees=agreement(measured["rows"], reference),
                failing=sum(len(r) for r in measured["rows"] if r),
            )
            del measured["rows"]
            results.append(measured)
            print(
                f"  {label:42} {measured['seconds']:7.3f} s  cpu {measured['cpu_s']:6.2f} s  "
                f"{measured['agrees']}  {measured['note'][:110]}"
            )

    print()
    headers = [
        "rows",
        "bad",
        "path",
        "best s",
        "cpu s",
        "runs",
        "suite",
        "failing ids",
        "vs duckdb",
    ]
    table_rows = [
        [
            f"{r['rows_in_batch']:,}",
            f"{r['bad_values']:.1%}",
            r["path"],
            fmt(r["seconds"], ".3f"),
            fmt(r["cpu_s"], ".2f"),
            " ".join(f"{s:.2f}" for s in r["runs"]),
            "pass" if r["success"] else "fail",
            f"{r['failing']:,}",
            r["agrees"][:40],
        ]
        for r in results
    ]
    print(format_table(headers, table_rows))
    path = write_results(
        "gx_paths", {"machine": machine(), "gx_import_s": gx_seconds, "results": results}
    )
    print(f"\nwritten to {path}")
    return 0


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
