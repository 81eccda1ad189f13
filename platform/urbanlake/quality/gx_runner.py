"""Run Great Expectations 1.x over one batch of rows and say which rows failed which expectation.

GX is imported on first use (2.5-3 s: pay it once per worker process, not once per batch) into one
ephemeral context that every call reuses. The batch goes through GX's pandas engine, which
``bench/gx_paths.py`` measured at about 0.55 s for 1,000,000 rows and a 10-expectation suite, and
0.07 s for 10,000 rows. GX's SQL engine cannot run on DuckDB in GX 1.24 (see the bench).

What a caller must know, GX's semantics kept as GX has them:

- Row-level ("map") expectations judge each row and give the row ids of every failing row
  (``ExpectationOutcome.unexpected_rows``): ``expect_column_values_*``, ``expect_column_value_*``,
  ``expect_column_pair_values_*``, ``expect_compound_columns_to_be_unique``,
  ``expect_multicolumn_*`` and ``expect_select_column_values_to_be_unique_within_record``.
  All other expectations judge the batch as a whole and have no failing rows.
- Column map expectations skip nulls, except ``expect_column_values_to_not_be_null`` (and
  ``..._to_be_null``). ``unexpected_percent`` is over the non-null rows, and ``mostly`` is
  checked against that percentage. Column-pair and multicolumn ones judge rows with some nulls
  (see their ``ignore_row_if``).
- ``success`` honours ``mostly``: an expectation can succeed and still list failing rows.
- The row-id column becomes the frame's index: expectations cannot name it, and table-level
  ones (``expect_table_columns_to_match_set``) do not see it. Without it, row ids are positions.
- GX reorders results by column; outcomes come back in the order the expectations were given.
- An expectation that GX could not evaluate (a missing column, a type GX cannot compare) fails,
  with GX's message in ``ExpectationOutcome.error``.
- Runs are serialised within a process (one GX asset; see ``_Runtime.lock``), and the last
  batch's frame stays referenced by GX until the next run replaces it.
"""

from __future__ import annotations

import difflib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.expectations.expectation import Expectation

ROW_COLUMN = "__row"

# Fields every GX expectation model has that configure the run or the rendering, not the check.
HOUSEKEEPING_FIELDS = frozenset(
    {
        "id",
        "meta",
        "notes",
        "result_format",
        "description",
        "catch_exceptions",
        "rendered_content",
        "severity",
        "windows",
        "batch_id",
    }
)
# Housekeeping that ``validate`` sets itself: row ids need result_format COMPLETE on every
# expectation, and batch_id is GX's own.
RESERVED_ARGUMENTS = frozenset({"result_format", "catch_exceptions", "batch_id", "id"})

# Tags each expectation with its position in the caller's list, because GX returns results
# grouped by column rather than in suite order.
_POSITION_KEY = "urbanlake_position"

# COMPLETE is the only format in which GX's pandas engine lists every failing row (the others stop
# at partial_unexpected_count, at most 200). exclude_unexpected_values makes GX give the ids as
# one {row_column: [ids]} dict rather than one dict per row with the row's values.
# partial_unexpected_count=0 drops the "partial" lists, which would repeat every id (GX slices
# that one dict), and return_unexpected_index_query=False a pandas expression repeating them as
# text: at 50,000 failing rows that halves the result and saves 0.13 s of GX's JSON conversion.
_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "exclude_unexpected_values": True,
    "partial_unexpected_count": 0,
    "return_unexpected_index_query": False,
}


@dataclass
class ExpectationOutcome:
    """One expectation's verdict on one batch."""

    expectation: str  # snake_case GX name, e.g. "expect_column_values_to_not_be_null"
    kwargs: dict[str, Any]  # the arguments as given
    success: bool
    row_level: bool  # the expectation judges individual rows (map expectations)
    observed_value: Any  # JSON-serialisable, None when GX gives none
    unexpected_count: int | None
    unexpected_percent: float | None
    unexpected_rows: list[int]  # row ids of every failing row; [] for batch-level expectations
    raw: dict[str, Any]  # GX's result for this expectation, as JSON-able dict
    error: str | None = None  # why GX could not evaluate it (then success is False)


@dataclass
class SuiteOutcome:
    """Every expectation's verdict on one batch, in the order they were given."""

    success: bool
    outcomes: list[ExpectationOutcome]
    raw: dict[str, Any]  # the whole GX validation result, as JSON-able dict
    seconds: float


@dataclass
class _Runtime:
    """GX, imported and set up once per process."""

    context: AbstractDataContext
    batch_definition: BatchDefinition
    # GX's execution engine keeps the loaded frame under the batch id, which is the same for every
    # run of the one asset: two runs at once would read each other's rows.
    lock: threading.Lock


_runtime: _Runtime | None = None
_runtime_lock = threading.Lock()
_names: dict[str, type[Expectation]] | None = None


def _gx_runtime() -> _Runtime:
    """Import GX and build the ephemeral context and its one pandas asset, on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            # Before the import: GX reads it when the module loads.
            os.environ["GX_ANALYTICS_ENABLED"] = "false"
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            # GX logs a warning for every expectation it cannot run on an engine; those reach
            # the caller as ExpectationOutcome.error instead.
            logging.getLogger("great_expectations").setLevel(logging.ERROR)
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            asset = context.data_sources.add_pandas("urbanlake").add_dataframe_asset("batch")
            _runtime = _Runtime(
                context=context,
                batch_definition=asset.add_batch_definition_whole_dataframe("whole"),
                lock=threading.Lock(),
            )
        return _runtime


def warm_up() -> None:
    """Import GX and build its context now, e.g. in a thread while a run fetches and decodes."""
    _gx_runtime()


def _expectation_classes() -> dict[str, type[Expectation]]:
    global _names
    if _names is None:
        os.environ["GX_ANALYTICS_ENABLED"] = "false"
        import great_expectations.expectations.core as core
        from great_expectations.expectations.expectation import Expectation

        # An abstract class (e.g. the deprecated ExpectMulticolumnValuesToBeUnique) has an
        # empty expectation_type and cannot run.
        _names = {
            cls.expectation_type: cls
            for cls in vars(core).values()
            if isinstance(cls, type) and issubclass(cls, Expectation) and cls.expectation_type
        }
    return _names


def expectation_names() -> dict[str, type]:
    """Every GX core expectation: snake_case name -> class."""
    return dict(sorted(_expectation_classes().items()))


def closest_names(name: str, n: int = 3) -> list[str]:
    """The expectation names nearest to ``name``, best first (for "did you mean")."""
    return difflib.get_close_matches(name, list(_expectation_classes()), n=n, cutoff=0.6)


def _expectation_class(name: str) -> type[Expectation]:
    cls = _expectation_classes().get(name)
    if cls is None:
        suggestions = closest_names(name)
        hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else ""
        raise ValueError(f"unknown expectation {name!r}{hint}")
    return cls


def required_arguments(name: str) -> list[str]:
    """The arguments ``name`` cannot do without, e.g. ``["column"]``, GX housekeeping left out.

    Some expectations also need one of a group (``expect_column_values_to_be_between`` needs
    ``min_value`` or ``max_value``); GX checks that when the expectation is built.
    """
    fields = _expectation_class(name).__fields__
    return [
        field
        for field, info in fields.items()
        if info.required and field not in HOUSEKEEPING_FIELDS
    ]


def _is_row_level(cls: type[Expectation]) -> bool:
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    return issubclass(
        cls, ColumnMapExpectation | ColumnPairMapExpectation | MulticolumnMapExpectation
    )


def _build(position: int, name: str, kwargs: dict[str, Any]) -> Expectation:
    """The GX expectation for (name, kwargs); a ValueError names the expectation and argument."""
    from great_expectations.compatibility.pydantic import ValidationError

    cls = _expectation_class(name)
    reserved = sorted(RESERVED_ARGUMENTS.intersection(kwargs))
    if reserved:
        raise ValueError(
            f"{name}: argument {reserved[0]!r} is set by the runner and cannot be given"
        )
    meta = {**(kwargs.get("meta") or {}), _POSITION_KEY: position}
    try:
        return cls(**{**kwargs, "meta": meta})
    except ValidationError as error:
        raise ValueError(_kwargs_problem(name, cls, kwargs, error)) from error


def _kwargs_problem(name: str, cls: type[Expectation], kwargs: dict[str, Any], error: Any) -> str:
    # pydantic reports a union-typed argument once per member type; one line per argument.
    problems: dict[str, list[str]] = {}
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        problems.setdefault(where, []).append(item["msg"])
    allowed = sorted(set(cls.__fields__) - HOUSEKEEPING_FIELDS)
    lines = []
    for where, messages in problems.items():
        text = " / ".join(dict.fromkeys(messages))
        if where == "__root__":
            lines.append(text)
        elif "extra fields not permitted" in messages:
            near = difflib.get_close_matches(where, allowed, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            lines.append(f"argument {where!r} is not one it takes{hint}; it takes {allowed}")
        else:
            value = f" = {kwargs[where]!r}" if where in kwargs else ""
            lines.append(f"argument {where!r}{value}: {text}")
    return f"{name}: " + "; ".join(lines)


def _frame(table: pa.Table, row_column: str) -> pd.DataFrame:
    """The batch as pandas with numpy-backed dtypes, indexed by the row ids.

    With the row ids as a named index, GX lists failing rows straight from the index instead of
    looking each one up, and the id column is not seen by table-level expectations such as
    expect_table_columns_to_match_set. ``types_mapper=pd.ArrowDtype`` measured 7x slower at 1M
    rows: GX fingerprints timestamps and compares values for "between" one Python object at a
    time on those columns.
    """
    frame = table.to_pandas()
    if row_column in frame.columns:
        return frame.set_index(row_column)
    frame.index.name = row_column  # no id column: the rows' positions stand in
    return frame


def validate(
    table: pa.Table,
    expectations: Sequence[tuple[str, dict[str, Any]]],
    row_column: str = ROW_COLUMN,
) -> SuiteOutcome:
    """Run ``expectations`` (GX name, arguments) over ``table`` and say which rows failed each.

    Raises ValueError, before touching the data, for an unknown name or wrong arguments.
    """
    started = time.perf_counter()
    built = [_build(i, name, dict(kwargs)) for i, (name, kwargs) in enumerate(expectations)]
    runtime = _gx_runtime()
    from great_expectations import ExpectationSuite
    from great_expectations.validator.v1_validator import Validator

    suite = ExpectationSuite(name="urbanlake-batch", expectations=built)
    frame = _frame(table, row_column)
    result_format = {**_RESULT_FORMAT, "unexpected_index_column_names": [row_column]}
    with runtime.lock:
        # What Batch.validate() runs, minus its first load of the frame: it builds a batch, then
        # a validator that loads the frame again, and GX fingerprints (hashes) the whole frame
        # on every load: 0.08 s per 1M rows saved.
        validator = Validator(
            batch_definition=runtime.batch_definition,
            batch_parameters={"dataframe": frame},
            result_format=result_format,
        )
        result = validator.validate_expectation_suite(suite)
    raw = result.to_json_dict()
    by_position = {}
    for item in raw["results"]:
        meta = item["expectation_config"]["meta"]
        by_position[meta.pop(_POSITION_KEY)] = item
    outcomes = [
        _outcome(name, dict(kwargs), by_position[i], row_column)
        for i, (name, kwargs) in enumerate(expectations)
    ]
    return SuiteOutcome(
        success=bool(raw["success"]),
        outcomes=outcomes,
        raw=raw,
        seconds=time.perf_counter() - started,
    )


def _outcome(
    name: str, kwargs: dict[str, Any], raw: dict[str, Any], row_column: str
) -> ExpectationOutcome:
    result = raw.get("result") or {}
    row_level = _is_row_level(_expectation_class(name))
    count = result.get("unexpected_count")
    percent = result.get("unexpected_percent")
    return ExpectationOutcome(
        expectation=name,
        kwargs=kwargs,
        success=bool(raw["success"]),
        row_level=row_level,
        observed_value=result.get("observed_value"),
        unexpected_count=None if count is None else int(count),
        unexpected_percent=None if percent is None else float(percent),
        unexpected_rows=_row_ids(result.get("unexpected_index_list"), row_column)
        if row_level
        else [],
        raw=raw,
        error=_error(raw.get("exception_info")),
    )


def _row_ids(index_list: list[Any] | None, row_column: str) -> list[int]:
    """Row ids from GX's unexpected_index_list, in whichever of its shapes it comes.

    With exclude_unexpected_values it is ``[{row_column: [ids]}]``; otherwise one dict per row
    (``{column: value, row_column: id}``); with no named index, bare positions.
    """
    ids: list[int] = []
    for item in index_list or []:
        value = item.get(row_column) if isinstance(item, dict) else item
        if isinstance(value, list):
            ids.extend(int(v) for v in value)
        elif value is not None:
            ids.append(int(value))
    return ids


def _error(info: Any) -> str | None:
    """GX's exception message, from either shape of ``exception_info``."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info["raised_exception"] else None
    messages = [
        str(item.get("exception_message"))
        for item in info.values()
        if isinstance(item, dict) and item.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(messages)) or None
