"""`urbanlake.quality.gx_runner`: real Great Expectations over small Arrow batches with known
faults. GX is imported once for the whole session (about 3 s) and its context reused."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json

import pyarrow as pa
import pytest

from urbanlake.quality.gx_runner import (
    SuiteOutcome,
    closest_names,
    expectation_names,
    required_arguments,
    validate,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("great_expectations") is None,
    reason="great-expectations is not installed",
)

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FUTURE = dt.datetime(2031, 1, 1, tzinfo=UTC)

# Row ids are not positions: they show the runner reports ids, not where a row sits.
ROW_IDS = [100, 110, 120, 130, 140, 150, 160, 170]


def readings() -> pa.Table:
    """Eight readings, each fault in exactly one row (noted on the right)."""
    return pa.table(
        {
            "sensor_id": ["S-1", None, "S-3", "S-4", "S-5", "S-6", "S-7", "S-8"],  # 110 null key
            "reading_id": [1, 2, 3, 4, 4, 6, 7, 8],  # 130 and 140 share an id
            "value": [1.5, 2.0, 450.0, None, 3.0, 4.0, 5.0, 6.0],  # 120 out of range, 130 null
            "status": ["ok", "ok", "ok", "ok", "ok", "broken", None, "ok"],  # 150 not in set
            "ts": pa.array(
                [NOW] * 6 + [FUTURE, NOW], pa.timestamp("us", tz="UTC")
            ),  # 160 in the future
            "__row": pa.array(ROW_IDS, pa.int64()),
        }
    )


SUITE: list[tuple[str, dict]] = [
    ("expect_column_values_to_not_be_null", {"column": "sensor_id"}),
    ("expect_column_values_to_be_between", {"column": "value", "min_value": 0, "max_value": 100}),
    ("expect_column_values_to_be_in_set", {"column": "status", "value_set": ["ok", "degraded"]}),
    ("expect_column_values_to_be_unique", {"column": "reading_id"}),
    ("expect_column_max_to_be_between", {"column": "ts", "max_value": NOW}),
    ("expect_column_values_to_be_between", {"column": "ts", "max_value": NOW}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["sensor_id", "reading_id"]}),
    ("expect_table_row_count_to_be_between", {"min_value": 1, "max_value": 1000}),
    (
        "expect_table_columns_to_match_set",
        {"column_set": ["sensor_id", "reading_id", "value", "status", "ts"]},
    ),
]


@pytest.fixture(scope="module")
def checked() -> SuiteOutcome:
    return validate(readings(), SUITE)


def test_each_expectation_lists_exactly_its_failing_row_ids(checked: SuiteOutcome) -> None:
    assert [o.expectation for o in checked.outcomes] == [name for name, _ in SUITE]
    failing = [sorted(o.unexpected_rows) for o in checked.outcomes]
    assert failing == [
        [110],  # the null key
        [120],  # out of range; the null value of row 130 is not judged
        [150],  # not in the set; the null status of row 160 is not judged
        [130, 140],  # both rows of the duplicate id
        [],  # column max: judged on the batch, no rows
        [160],  # the future timestamp, as a row-level check
        [],  # (sensor_id, reading_id) pairs are unique
        [],
        [],
    ]
    assert [o.success for o in checked.outcomes] == [
        False,
        False,
        False,
        False,
        False,
        False,
        True,
        True,
        True,  # the row-id column is not one of the batch's columns to GX
    ]
    assert not checked.success
    assert checked.seconds > 0


def test_row_level_outcomes_carry_counts_and_batch_level_ones_an_observed_value(
    checked: SuiteOutcome,
) -> None:
    not_null, between, *_ = checked.outcomes
    assert (not_null.row_level, not_null.unexpected_count) == (True, 1)
    assert not_null.unexpected_percent == pytest.approx(100 / 8)
    # GX's percentage of a column map expectation is over the non-null values.
    assert between.unexpected_percent == pytest.approx(100 / 7)
    column_max = checked.outcomes[4]
    assert column_max.row_level is False
    assert column_max.observed_value == "2031-01-01T00:00:00+00:00"
    assert column_max.unexpected_count is None and column_max.unexpected_rows == []
    row_count = checked.outcomes[7]
    assert (row_count.row_level, row_count.observed_value) == (False, 8)


def test_kwargs_come_back_as_given_and_everything_is_json(checked: SuiteOutcome) -> None:
    between = checked.outcomes[1]
    assert between.kwargs == {"column": "value", "min_value": 0, "max_value": 100}
    assert between.raw["expectation_config"]["type"] == "expect_column_values_to_be_between"
    assert "urbanlake_position" not in between.raw["expectation_config"]["meta"]
    json.dumps(checked.raw)
    for outcome in checked.outcomes:
        json.dumps([outcome.raw, outcome.observed_value])


def test_mostly_is_judged_on_non_null_values() -> None:
    # 100 rows: 3 out of range, and in the second column also 10 nulls.
    values = [1.0] * 97 + [500.0] * 3
    table = pa.table(
        {
            "value": values,
            "gappy": [None] * 10 + values[10:],
            "__row": pa.array(range(100), pa.int64()),
        }
    )
    between = {"min_value": 0, "max_value": 100, "mostly": 0.97}
    out = validate(
        table,
        [
            ("expect_column_values_to_be_between", {"column": "value", **between}),
            ("expect_column_values_to_be_between", {"column": "value", **between, "mostly": 0.98}),
            ("expect_column_values_to_be_between", {"column": "gappy", **between}),
        ],
    )
    exactly, too_strict, gappy = out.outcomes
    assert exactly.success and exactly.unexpected_rows == [97, 98, 99]  # 97/100 >= 0.97
    assert not too_strict.success and too_strict.unexpected_rows == [97, 98, 99]
    assert not gappy.success and gappy.unexpected_rows == [97, 98, 99]  # 87/90 < 0.97
    assert not out.success


def test_every_failing_row_is_listed_not_a_sample() -> None:
    rows = 60_000
    ids = [7 + 3 * i for i in range(rows)]
    table = pa.table(
        {
            "value": [None if i % 6 else 1.0 for i in range(rows)],  # 50,000 nulls
            "level": [-1.0 if i % 6 else 1.0 for i in range(rows)],  # 50,000 out of range
            "__row": pa.array(ids, pa.int64()),
        }
    )
    expected = [row for i, row in enumerate(ids) if i % 6]
    out = validate(
        table,
        [
            ("expect_column_values_to_not_be_null", {"column": "value"}),
            ("expect_column_values_to_be_between", {"column": "level", "min_value": 0}),
        ],
    )
    for outcome in out.outcomes:
        assert outcome.unexpected_count == 50_000
        assert sorted(outcome.unexpected_rows) == expected


def test_without_a_row_column_rows_are_named_by_position() -> None:
    table = pa.table({"value": [1, -1, 2, -3]})
    out = validate(
        table, [("expect_column_values_to_be_between", {"column": "value", "min_value": 0})]
    )
    assert out.outcomes[0].unexpected_rows == [1, 3]


def test_an_expectation_gx_cannot_evaluate_fails_with_its_reason() -> None:
    out = validate(
        readings(),
        [
            ("expect_column_values_to_not_be_null", {"column": "no_such_column"}),
            ("expect_column_values_to_not_be_null", {"column": "sensor_id"}),
        ],
    )
    missing, present = out.outcomes
    assert not missing.success and missing.unexpected_rows == []
    assert missing.error and "no_such_column" in missing.error
    assert present.error is None and present.unexpected_rows == [110]


def test_expectation_names_lists_gx_core_expectations() -> None:
    names = expectation_names()
    for name in (
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
        "expect_table_row_count_to_be_between",
        "expect_table_columns_to_match_set",
        "expect_column_max_to_be_between",
    ):
        assert isinstance(names[name], type), name
    assert names["expect_column_values_to_be_between"].__name__ == "ExpectColumnValuesToBeBetween"


def test_required_arguments_leave_out_gx_housekeeping() -> None:
    assert required_arguments("expect_column_values_to_be_between") == ["column"]
    assert required_arguments("expect_column_values_to_be_in_set") == ["column", "value_set"]
    assert required_arguments("expect_compound_columns_to_be_unique") == ["column_list"]
    assert required_arguments("expect_table_row_count_to_be_between") == []
    with pytest.raises(ValueError, match="expect_column_values_to_not_be_null"):
        required_arguments("expect_column_value_to_not_be_null")


def test_closest_names_suggest_the_real_name() -> None:
    assert closest_names("expect_column_value_to_not_be_null")[0] == (
        "expect_column_values_to_not_be_null"
    )
    assert len(closest_names("expect_column_values_to_be", n=2)) == 2
    assert closest_names("zzz") == []


@pytest.mark.parametrize(
    ("name", "kwargs", "words"),
    [
        (
            "expect_column_values_to_be_between",
            {"column": "value", "min_val": 0},
            ["expect_column_values_to_be_between", "'min_val'", "did you mean 'min_value'"],
        ),
        (
            "expect_column_values_to_be_in_set",
            {"value_set": ["ok"]},
            ["expect_column_values_to_be_in_set", "'column'", "field required"],
        ),
        (
            "expect_column_values_to_be_between",
            {"column": "value", "min_value": "low"},
            ["expect_column_values_to_be_between", "'min_value' = 'low'", "not a valid float"],
        ),
        (
            "expect_column_values_to_be_between",
            {"column": "value"},
            ["expect_column_values_to_be_between", "min_value and max_value cannot both be None"],
        ),
        (
            "expect_column_values_to_not_be_null",
            {"column": "value", "result_format": "SUMMARY"},
            ["expect_column_values_to_not_be_null", "'result_format'", "set by the runner"],
        ),
        (
            "expect_column_value_to_not_be_null",
            {"column": "value"},
            ["unknown expectation", "did you mean expect_column_values_to_not_be_null"],
        ),
    ],
)
def test_wrong_arguments_raise_a_value_error_naming_expectation_and_argument(
    name: str, kwargs: dict, words: list[str]
) -> None:
    with pytest.raises(ValueError) as raised:
        validate(
            readings(), [("expect_table_row_count_to_be_between", {"min_value": 1}), (name, kwargs)]
        )
    for word in words:
        assert word in str(raised.value)


def test_consecutive_batches_do_not_see_each_other() -> None:
    # One GX context and asset serve every call: nothing of one batch may leak into the next.
    suite = [
        ("expect_column_values_to_be_between", {"column": "v", "min_value": 0}),
        ("expect_column_max_to_be_between", {"column": "v", "max_value": 5}),
        ("expect_table_row_count_to_equal", {"value": 3}),
    ]
    good, bad = pa.table({"v": [1, 2, 3]}), pa.table({"v": [-1, 9, 3, 4]})
    verdicts = []
    for table in (good, bad, good):
        out = validate(table, suite)
        verdicts.append([(o.success, o.unexpected_rows, o.observed_value) for o in out.outcomes])
    assert verdicts[0] == verdicts[2] == [(True, [], None), (True, [], 3), (True, [], 3)]
    assert verdicts[1] == [(False, [0], None), (False, [], 9), (False, [], 4)]
