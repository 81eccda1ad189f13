"""Giving a decoded batch the table's column types, in DuckDB, value by value.

A value that does not fit its column's type makes its row a quarantined row whose reason names
the column and the value; a column whose every value misfits is a type change, and the batch is
refused as a whole (``SchemaConflict``). Naive timestamps are read in the dataset's time zone and
stored in UTC. A text column new to its table takes the type the clear majority of its values fit
(``MAJORITY``); an integer too long for BIGINT is kept exactly (DECIMAL(38,0)) or quarantined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from urbanlake.core.errors import SchemaConflict
from urbanlake.lakehouse.connection import sql_string

ROW = "__row"
REASON = "__reason"
# Integers too long for BIGINT are kept exactly as DECIMAL(38,0); never rounded into a DOUBLE.
EXACT_INTEGER = "DECIMAL(38,0)"
INFER_ORDER = ("BIGINT", EXACT_INTEGER, "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMPTZ")
# Types are decided by the many: a text column of a new table (or a column new to its table) gets
# the type that at least this share of its non-null values fit; the values that do not fit are
# quarantined. Where no type fits that many, the column stays text.
WHOLE_DECIMAL = re.compile(r"^DECIMAL\(\s*\d+\s*,\s*0\s*\)$")
MAJORITY = 0.9
# A batch of fewer than ten values cannot reach 90 % with one misfit: there, all but one must fit
# (at least three values), so one bad value in a small first file does not make a column text.
SMALL_BATCH = 10
TZ_SUFFIX = r"(Z|z|[+-]\d\d(:?\d\d)?)$"
NESTED = re.compile(r"^(STRUCT|MAP|UNION)\(|\[\d*\]$")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def is_naive_timestamp(sql_type: str) -> bool:
    return sql_type.startswith("TIMESTAMP") and "TIME ZONE" not in sql_type


def canonical(sql_type: str) -> str:
    return "TIMESTAMP WITH TIME ZONE" if sql_type == "TIMESTAMPTZ" else sql_type


@dataclass
class Normalized:
    rows: pa.Table  # typed, with the ``__row`` column giving each row's position in the payload
    bad: list[tuple[int, str, str]] = field(default_factory=list)  # (row, raw JSON, reason)


INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT"}  # fmt: skip
NUMERIC_SOURCES = {"FLOAT", "DOUBLE"}


def _cast_expression(column: str, source: str, target: str, timezone: str) -> str:
    """SQL giving the value in ``target`` type, or NULL where it does not fit *exactly*.

    DuckDB's own casts round ``'1.5'`` to the integer 2 and cut ``'2026-11-01T08:00Z'`` to a
    date; here such values do not fit, so they are quarantined instead of silently changed.
    """
    col = quote(column)
    if target == "TIMESTAMP WITH TIME ZONE":
        if is_naive_timestamp(source):
            return f"timezone({sql_string(timezone)}, {col})"
        if source == "VARCHAR":
            return (
                f"CASE WHEN regexp_matches(trim({col}), {sql_string(TZ_SUFFIX)}) "
                f"THEN TRY_CAST({col} AS TIMESTAMPTZ) "
                f"ELSE timezone({sql_string(timezone)}, TRY_CAST({col} AS TIMESTAMP)) END"
            )
    if target in INTEGER_TYPES:
        if source == "VARCHAR":
            return f"CASE WHEN regexp_full_match(trim({col}), '[+-]?[0-9]+') THEN TRY_CAST(trim({col}) AS {target}) END"
        if source in NUMERIC_SOURCES or source.startswith("DECIMAL"):
            return f"CASE WHEN {col} = trunc({col}) THEN TRY_CAST({col} AS {target}) END"
    if WHOLE_DECIMAL.match(target) and source == "VARCHAR":  # TRY_CAST would round 1.5 to 2
        return f"CASE WHEN regexp_full_match(trim({col}), '[+-]?[0-9]+') THEN TRY_CAST(trim({col}) AS {target}) END"
    if target == "DOUBLE" and source == "VARCHAR":
        # An integer that a DOUBLE cannot hold exactly (beyond 2^53) does not fit.
        text, whole = f"trim({col})", f"TRY_CAST(trim({col}) AS HUGEINT)"
        return (
            f"CASE WHEN regexp_full_match({text}, '[+-]?0*[0-9]{{16,}}') AND ({whole} IS NULL OR "
            f"{whole} <> TRY_CAST(TRY_CAST({text} AS DOUBLE) AS HUGEINT)) THEN NULL "
            f"ELSE TRY_CAST({col} AS DOUBLE) END"
        )
    if target == "DATE" and source == "VARCHAR":
        return f"CASE WHEN regexp_full_match(trim({col}), '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') THEN TRY_CAST(trim({col}) AS DATE) END"
    return f"TRY_CAST({col} AS {target})"


SAMPLE_ROWS = 10_000


def _count_fits(
    con: duckdb.DuckDBPyConnection, source: str, candidates: dict[str, list[str]]
) -> dict[str, tuple[int, int, list[int]]]:
    """Per column: values present, zero-padded values, and how many fit each candidate type."""
    parts = []
    for column, types in candidates.items():
        col = quote(column)
        parts.append(f"count({col})")
        parts.append(f"count(*) FILTER (WHERE regexp_matches({col}, '^[+-]?0[0-9]'))")
        parts.extend(
            f"count({_cast_expression(column, 'VARCHAR', canonical(t), 'UTC')})" for t in types
        )
    row = con.execute(f"SELECT {', '.join(parts)} FROM {source}").fetchone()
    assert row is not None
    out, i = {}, 0
    for column, types in candidates.items():
        out[column] = (row[i], row[i + 1], list(row[i + 2 : i + 2 + len(types)]))
        i += 2 + len(types)
    return out


def _acceptable(sql_type: str, present: int, padded: int, fit: int) -> bool:
    """Whether the clear majority of a column's ``present`` values fit ``sql_type``."""
    if sql_type in ("BIGINT", EXACT_INTEGER, "DOUBLE") and padded:
        return False  # codes such as "007" or postcodes keep their leading zeros
    misfits = present - fit
    if not fit:
        return False
    if present < SMALL_BATCH:
        return misfits == 0 or (misfits == 1 and present >= 3)
    return fit >= present * MAJORITY


def _infer_text_columns(
    con: duckdb.DuckDBPyConnection, view: str, rows: int, columns: list[str], loose: set[str]
) -> dict[str, str]:
    """For new text columns: the type most values fit (the narrowest on a tie), else VARCHAR.

    A sample rules most candidate types out cheaply; only the survivors are counted over the
    whole batch, so a text column costs one pass over a few thousand rows.
    """
    if not columns:
        return {}
    candidates = {c: list(INFER_ORDER) for c in columns}
    if rows > SAMPLE_ROWS:
        sample = _count_fits(con, f"(SELECT * FROM {view} LIMIT {SAMPLE_ROWS})", candidates)
        candidates = {
            c: [
                t
                for t, fit in zip(INFER_ORDER, fits, strict=True)
                if _acceptable(t, present, padded, fit)
            ]
            for c, (present, padded, fits) in sample.items()
        }
        candidates = {c: types for c, types in candidates.items() if types}
    chosen = dict.fromkeys(columns, "VARCHAR")
    if not candidates:
        return chosen
    for column, (present, padded, fits) in _count_fits(con, view, candidates).items():
        if not present:
            continue
        best = 0
        for sql_type, fit in zip(candidates[column], fits, strict=True):
            if fit > best and _acceptable(sql_type, present, padded, fit):
                chosen[column], best = canonical(sql_type), fit
    return chosen


def normalize(
    con: duckdb.DuckDBPyConnection,
    incoming: pa.Table,
    table_types: dict[str, str],
    declared: dict[str, str],
    loose: set[str],
    timezone: str,
) -> Normalized:
    """``incoming`` cast to the table's types (or the declared, or inferred, ones)."""
    incoming = incoming.append_column(ROW, pa.array(range(incoming.num_rows), type=pa.int64()))
    view = f"{ROW}_incoming"
    con.register(view, incoming)
    try:
        source_types = {
            name: kind
            for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {view}").fetchall()
        }
        source_types.pop(ROW)
        targets: dict[str, str] = {}
        to_infer = []
        for column, source in source_types.items():
            if column in table_types:
                targets[column] = table_types[column]
            elif column in declared:
                targets[column] = canonical(declared[column])
            elif is_naive_timestamp(source):
                targets[column] = "TIMESTAMP WITH TIME ZONE"
            elif source == '"NULL"':
                targets[column] = "VARCHAR"
            elif source == "VARCHAR":
                to_infer.append(column)  # a column new to the table: its values decide its type
            else:
                targets[column] = source
        targets.update(_infer_text_columns(con, view, incoming.num_rows, to_infer, loose))

        selects, failures, checks = [f"{ROW}"], [], []
        for column, source in source_types.items():
            target = targets[column]
            col = quote(column)
            if target == source:
                selects.append(col)
                continue
            if bool(NESTED.search(source)) != bool(NESTED.search(target)):
                raise SchemaConflict(
                    f"column {column}: type changed from {target} to {source}; the two cannot be reconciled"
                )
            expression = _cast_expression(column, source, target, timezone)
            selects.append(f"{expression} AS {col}")
            failed = f"({col} IS NOT NULL AND ({expression}) IS NULL)"
            failures.append(
                f"CASE WHEN {failed} THEN {sql_string(column + ': ')} || left({col}::VARCHAR, 80) "
                f"|| {sql_string(' is not ' + target)} END"
            )
            if column in table_types:
                checks.append(
                    (column, target, source, f"count({col})", f"count(*) FILTER (WHERE {failed})")
                )
        if checks:
            row = con.execute(
                f"SELECT {', '.join(p for c in checks for p in c[3:])} FROM {view}"
            ).fetchone()
            assert row is not None
            for i, (column, target, source, *_) in enumerate(checks):
                present, misfits = row[2 * i], row[2 * i + 1]
                if present and misfits == present:
                    raise SchemaConflict(
                        f"column {column}: the table holds {target} but every value in this batch is {source}"
                        " that does not convert; the source changed the column's type"
                    )
        if not failures:  # every column already has its type: no pass over the data at all
            return Normalized(rows=incoming)
        reason = f"NULLIF(concat_ws('; ', {', '.join(failures)}), '')"
        typed = con.execute(
            f"SELECT {', '.join(selects)}, {reason} AS {REASON} FROM {view}"
        ).arrow()
        if hasattr(typed, "read_all"):
            typed = typed.read_all()
    finally:
        con.unregister(view)

    reasons = typed.column(REASON)
    if reasons.null_count == typed.num_rows:
        return Normalized(rows=typed.drop_columns([REASON]))
    bad_mask = pc.is_valid(reasons)
    bad_rows = typed.filter(bad_mask)
    positions = bad_rows.column(ROW).to_pylist()
    originals = incoming.drop_columns([ROW]).take(pa.array(positions)).to_pylist()
    bad = [
        (pos, orjson.dumps(raw, default=str).decode(), why)
        for pos, raw, why in zip(
            positions, originals, bad_rows.column(REASON).to_pylist(), strict=True
        )
    ]
    good = typed.filter(pc.invert(bad_mask)).drop_columns([REASON])
    return Normalized(rows=good, bad=bad)
