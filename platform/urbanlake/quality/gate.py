"""The quality gate between typing and committing: a dataset's suite run over every batch.

Rows that fail a row-level expectation are quarantined with the names of the expectations they
failed. Batch-level failures (row counts, column sets, ``mostly`` thresholds, schema rules)
follow the suite's ``on_failure``: ``quarantine`` keeps the good rows and records the failure,
``reject_batch`` sends the whole batch to quarantine and leaves the table unchanged, ``warn``
commits everything and records the failures. Every row ends in the table or in quarantine.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from urbanlake.core.settings import Settings
from urbanlake.core.spec import parse_duration
from urbanlake.lakehouse.records import QuarantineRecord
from urbanlake.quality.suite import Suite

ROW = "__row"
NOW = re.compile(r"^now\s*(?:([+-])\s*(.+))?$")
RESULT_COLUMNS = {
    "expectation": pa.string(), "column_name": pa.string(), "kwargs": pa.string(), "success": pa.bool_(),
    "row_level": pa.bool_(), "observed_value": pa.string(), "unexpected_count": pa.int64(),
    "unexpected_percent": pa.float64(), "on_failure": pa.string(),
}  # fmt: skip


@dataclass
class GateResult:
    """What the gate lets through, what it quarantines, whether it refuses the batch, and why."""

    rows: pa.Table
    quarantined: list[QuarantineRecord] = field(default_factory=list)
    rejected: str | None = None
    results: pa.Table | None = None  # one row per expectation, for ``platform.quality_results``
    document: dict[str, Any] | None = None  # GX's full validation result
    failures: list[str] = field(default_factory=list)  # failed expectations, for the run's record


def resolve_relative_times(kwargs: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``now``, ``now-1d``, ``now+5m`` in an argument become that moment (timestamps not in the future)."""
    out = {}
    for key, value in kwargs.items():
        match = NOW.match(value.strip()) if isinstance(value, str) else None
        if match:
            sign, amount = match.groups()
            delta = parse_duration(amount) if amount else parse_duration(0)
            value = now + delta if sign != "-" else now - delta
        out[key] = value
    return out


def _schema_failures(suite: Suite, columns: list[str]) -> list[str]:
    rule = suite.schema_
    if rule is None:
        return []
    failures = [
        f"schema: required column '{c}' is missing" for c in rule.require if c not in columns
    ]
    if not rule.allow_extra and rule.require:
        extra = [c for c in columns if c not in rule.require and c != ROW]
        failures += [f"schema: column '{c}' is not allowed (allow_extra: false)" for c in extra]
    return failures


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()


def check_batch(suite: Suite | None, rows: pa.Table, settings: Settings) -> GateResult:
    """Run the dataset's suite over one typed batch (no suite: everything passes)."""
    if suite is None or rows.num_columns <= 1:
        return GateResult(rows=rows)
    on_failure = suite.on_failure or settings.defaults.on_failure
    now = datetime.now(UTC)
    batch_failures = _schema_failures(suite, rows.column_names)
    result_rows: list[dict[str, Any]] = [
        {"expectation": "schema", "column_name": None, "kwargs": _json_text(suite.schema_.model_dump() if suite.schema_ else {}),
         "success": False, "row_level": False, "observed_value": _json_text(f), "unexpected_count": None,
         "unexpected_percent": None, "on_failure": on_failure}
        for f in batch_failures
    ]  # fmt: skip
    failed_by_row: dict[int, list[str]] = {}
    document: dict[str, Any] | None = None
    if suite.expectations and not batch_failures:
        from urbanlake.quality.gx_runner import validate

        outcome = validate(
            rows, [(name, resolve_relative_times(kwargs, now)) for name, kwargs in suite.items]
        )
        document = outcome.raw
        for result in outcome.outcomes:
            label = result.expectation + (
                f"({result.kwargs['column']})" if "column" in result.kwargs else ""
            )
            for row in result.unexpected_rows:
                failed_by_row.setdefault(row, []).append(label)
            if not result.success:
                batch_failures.append(label)
            result_rows.append({
                "expectation": result.expectation, "column_name": result.kwargs.get("column"),
                "kwargs": _json_text(result.kwargs), "success": result.success, "row_level": result.row_level,
                "observed_value": _json_text(result.observed_value), "unexpected_count": result.unexpected_count,
                "unexpected_percent": result.unexpected_percent, "on_failure": on_failure,
            })  # fmt: skip
    results = (
        pa.Table.from_pylist(result_rows, schema=pa.schema(RESULT_COLUMNS)) if result_rows else None
    )
    gate = GateResult(rows=rows, results=results, document=document, failures=batch_failures)
    if on_failure == "warn" or (not failed_by_row and not batch_failures):
        return gate
    if on_failure == "reject_batch" and (batch_failures or failed_by_row):
        why = f"batch rejected by the quality suite: {'; '.join(batch_failures or sorted({n for v in failed_by_row.values() for n in v}))}"
        gate.rejected = why
        gate.quarantined = [
            QuarantineRecord(
                raw_record=_json_text(r) or "{}", reason=why, check_name="reject_batch"
            )
            for r in rows.drop_columns([ROW]).to_pylist()
        ]
        gate.rows = rows.slice(0, 0)
        return gate
    # on_failure == quarantine: the failing rows leave, the batch-level failures are recorded.
    if failed_by_row:
        positions = rows.column(ROW)
        failing = pa.array(sorted(failed_by_row), pa.int64())
        is_bad = pc.is_in(positions, value_set=failing)
        bad_rows = rows.filter(is_bad)
        for record in bad_rows.to_pylist():
            names = failed_by_row[record.pop(ROW)]
            gate.quarantined.append(
                QuarantineRecord(raw_record=_json_text(record) or "{}", reason="failed " + ", ".join(names),
                                 check_name=",".join(n.split("(")[0] for n in names))
            )  # fmt: skip
        gate.rows = rows.filter(pc.invert(is_bad))
    return gate


def document_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, default=str, indent=1).encode()
