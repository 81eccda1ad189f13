"""Typing a decoded batch: exact casts only, inference that keeps meaning, misfits named."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from urbanlake.core.errors import SchemaConflict
from urbanlake.lakehouse.normalize import ROW, normalize


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    return connection


def types_of(table: pa.Table) -> dict[str, str]:
    return {f.name: str(f.type) for f in table.schema if f.name != ROW}


def test_text_columns_of_a_new_table_get_the_type_their_values_have(
    con: duckdb.DuckDBPyConnection,
) -> None:
    n = 30
    batch = pa.table(
        {
            "count": [str(i) for i in range(n)],
            "ratio": [f"{i}.5" for i in range(n)],
            "day": ["2026-11-01"] * n,
            "at": ["2026-11-01T08:15:00Z"] * n,
            "local": ["2026-11-01 08:15:00"] * n,
            "code": [f"00{i % 10}" for i in range(n)],
            "name": [f"stop {i}" for i in range(n)],
        }
    )
    result = normalize(con, batch, {}, {}, set(), "Europe/Oslo")
    assert result.bad == []
    assert types_of(result.rows) == {
        "count": "int64",
        "ratio": "double",
        "day": "date32[day]",
        "at": "timestamp[us, tz=UTC]",
        "local": "timestamp[us, tz=UTC]",
        "code": "string",
        "name": "string",
    }
    row = result.rows.slice(1, 1).to_pylist()[0]
    assert (
        row["ratio"] == 1.5 and row["at"].hour == 8 and row["local"].hour == 7
    )  # Oslo is UTC+1 in November


def test_existing_types_win_and_inexact_values_are_quarantined(
    con: duckdb.DuckDBPyConnection,
) -> None:
    table_types = {"id": "BIGINT", "day": "DATE", "value": "BIGINT"}
    batch = pa.table(
        {
            "id": ["1", "2", "3", "4"],
            "day": ["2026-01-01", "2026-01-02T10:00:00Z", None, "x"],
            "value": [1.0, 1.5, 2.0, 3.0],
        }
    )
    result = normalize(con, batch, table_types, {}, set(), "UTC")
    assert result.rows.column("id").to_pylist() == [1, 3]
    reasons = {pos: why for pos, _, why in result.bad}
    assert set(reasons) == {1, 3}
    assert (
        "day: 2026-01-02T10:00:00Z is not DATE" in reasons[1]
        and "value: 1.5 is not BIGINT" in reasons[1]
    )
    assert "day: x is not DATE" in reasons[3]


def test_declared_types_win_over_inference(con: duckdb.DuckDBPyConnection) -> None:
    batch = pa.table({"code": ["1", "2", "3"], "level": ["1", "2", "x"]})
    result = normalize(con, batch, {}, {"code": "VARCHAR", "level": "DOUBLE"}, set(), "UTC")
    assert types_of(result.rows) == {"code": "string", "level": "double"}
    assert [pos for pos, _, _ in result.bad] == [2]


def test_loose_json_column_takes_the_majority_type(con: duckdb.DuckDBPyConnection) -> None:
    batch = pa.table({"watts": ["35", "50", "broken", "70"]})
    result = normalize(con, batch, {}, {}, {"watts"}, "UTC")
    assert types_of(result.rows) == {"watts": "int64"} and len(result.bad) == 1


def test_a_column_that_no_longer_fits_at_all_is_a_schema_conflict(
    con: duckdb.DuckDBPyConnection,
) -> None:
    with pytest.raises(SchemaConflict, match="speed"):
        normalize(con, pa.table({"speed": ["fast", "slow"]}), {"speed": "DOUBLE"}, {}, set(), "UTC")
    with pytest.raises(SchemaConflict, match="cannot be reconciled"):
        normalize(con, pa.table({"speed": [{"a": 1}]}), {"speed": "DOUBLE"}, {}, set(), "UTC")


def _typed(con: duckdb.DuckDBPyConnection, values: list[str | None]) -> tuple[str, int]:
    result = normalize(con, pa.table({"v": pa.array(values, pa.string())}), {}, {}, set(), "UTC")
    return types_of(result.rows)["v"], len(result.bad)


def test_the_many_decide_an_undeclared_columns_type(con: duckdb.DuckDBPyConnection) -> None:
    # At least 90 % of the non-null values must fit; the misfits are quarantined.
    assert _typed(con, [str(i) for i in range(18)] + ["abc", "n/a"]) == ("int64", 2)
    assert _typed(con, [str(i) for i in range(17)] + ["abc", "n/a", "x"]) == ("string", 0)
    assert _typed(con, [str(i) for i in range(18)] + [None, None, "abc"]) == ("int64", 1)
    # Fewer than ten values: all but one, out of at least three.
    assert _typed(con, ["1", "2", "abc"]) == ("int64", 1)
    assert _typed(con, ["1", "abc"]) == ("string", 0)
    # The type most values fit wins, the narrowest on a tie: 1, 2 and 3.5 are all DOUBLE.
    assert _typed(con, ["1", "2", "3.5"]) == ("double", 0)
    assert _typed(con, ["2026-01-01", "2026-01-02T10:00:00Z", "2026-01-03T00:00:00Z"])[0] == (
        "timestamp[us, tz=UTC]"
    )


def test_integers_beyond_bigint_are_kept_exactly(con: duckdb.DuckDBPyConnection) -> None:
    big = ["99999999999999999999", "12345678901234567890123", "1"]
    result = normalize(con, pa.table({"v": big}), {}, {}, set(), "UTC")
    assert types_of(result.rows) == {"v": "decimal128(38, 0)"} and result.bad == []
    assert [str(v) for v in result.rows.column("v").to_pylist()] == [
        "99999999999999999999",
        "12345678901234567890123",
        "1",
    ]
    # Beyond 38 digits there is no exact number type: with BIGINT for the rest, it is quarantined.
    huge = "9" * 40
    kind, bad = _typed(con, [str(i) for i in range(12)] + [huge])
    assert (kind, bad) == ("int64", 1)


def test_an_integer_a_double_cannot_hold_is_not_rounded_into_it(
    con: duckdb.DuckDBPyConnection,
) -> None:
    batch = pa.table({"v": ["1.5", "99999999999999999999", "9007199254740993", "9007199254740992"]})
    result = normalize(con, batch, {"v": "DOUBLE"}, {}, set(), "UTC")
    assert result.rows.column("v").to_pylist() == [1.5, 9007199254740992.0]
    assert sorted(why for _, _, why in result.bad) == [
        "v: 9007199254740993 is not DOUBLE",
        "v: 99999999999999999999 is not DOUBLE",
    ]


def test_a_new_column_of_an_existing_table_is_typed_by_its_values(
    con: duckdb.DuckDBPyConnection,
) -> None:
    batch = pa.table({"id": [1, 2, 3], "extra": ["1", "2", "x"]})
    result = normalize(con, batch, {"id": "BIGINT"}, {}, set(), "UTC")
    assert types_of(result.rows)["extra"] == "int64" and len(result.bad) == 1
