"""Record reads of one table version: filters, keyset pages, exact counts, facets, aggregates,
streamed exports and the changes between two versions — all SQL built here from typed requests,
every name checked against the table's columns and every value bound as a parameter."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from urbanlake.core.errors import BadQuery
from urbanlake.core.suggest import closest
from urbanlake.lakehouse.connection import load_extension, sql_string
from urbanlake.lakehouse.normalize import quote
from urbanlake.lakehouse.reader import LakeReader, arrow_of, at_clause
from urbanlake.lakehouse.records import TableRef

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "isnull")
COMPARE = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
METRICS = ("count", "sum", "avg", "min", "max")
INTERVAL = re.compile(r"^(\d+)\s*(s|m|h|d|w|mo|y)$")
INTERVAL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks",
                  "mo": "months", "y": "years"}  # fmt: skip
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL",
           "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")  # fmt: skip
TEMPORAL = ("TIMESTAMP", "DATE")


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    value: Any  # text, a list of texts for ``in``, a bool for ``isnull``
    parameter: str = ""  # as the caller wrote it, for error messages


@dataclass(frozen=True)
class Geometry:
    """Where a geographic dataset keeps its positions: two numeric columns or one WKT column."""

    lon: str | None = None
    lat: str | None = None
    wkt: str | None = None


@dataclass
class RecordQuery:
    table: TableRef
    version: int
    types: dict[str, str]  # the version's columns → SQL types
    filters: list[Filter] = field(default_factory=list)
    bbox: tuple[float, float, float, float] | None = None
    geometry: Geometry | None = None
    select: list[str] | None = None
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    not_null: set[str] = field(default_factory=set)  # columns known to hold no null

    @property
    def source(self) -> str:
        return f"{self.table.sql}{at_clause(self.version)}"

    def columns(self) -> list[str]:
        return self.select or list(self.types)


def kind_of(sql_type: str) -> str:
    upper = sql_type.upper()
    if upper.startswith(NUMERIC):
        return "number"
    if upper.startswith(TEMPORAL):
        return "time"
    if upper == "BOOLEAN":
        return "boolean"
    return "text"


def check_column(query: RecordQuery, column: str, parameter: str) -> str:
    if column not in query.types:
        hint = closest(column, list(query.types))
        raise BadQuery(
            f"unknown column '{column}' in {parameter}"
            + (f"; did you mean '{hint}'?" if hint else f"; columns: {', '.join(query.types)}"),
            parameter,
            "unknown_column",
        )
    return quote(column)


def _typed(query: RecordQuery, column: str) -> str:
    return f"CAST(? AS {query.types[column]})"


def where(query: RecordQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (``TRUE`` when nothing filters) and its parameters."""
    parts: list[str] = []
    params: list[Any] = []
    for flt in query.filters:
        name = check_column(query, flt.column, flt.parameter or flt.column)
        if flt.op == "isnull":
            parts.append(f"{name} IS {'' if flt.value else 'NOT '}NULL")
        elif flt.op == "contains":
            parts.append(f"contains(lower(CAST({name} AS VARCHAR)), lower(?))")
            params.append(str(flt.value))
        elif flt.op == "in":
            values = list(flt.value)
            parts.append(f"{name} IN ({', '.join(_typed(query, flt.column) for _ in values)})")
            params.extend(values)
        else:
            parts.append(f"{name} {COMPARE[flt.op]} {_typed(query, flt.column)}")
            params.append(flt.value)
    if query.bbox is not None:
        geometry = query.geometry
        if geometry is None:
            raise BadQuery(
                "bbox works on geographic datasets only; this one has no geometry", "bbox"
            )
        min_lon, min_lat, max_lon, max_lat = query.bbox
        if geometry.wkt:
            parts.append(
                f"ST_Intersects(ST_GeomFromText({quote(geometry.wkt)}), ST_MakeEnvelope(?, ?, ?, ?))"
            )
            params.extend([min_lon, min_lat, max_lon, max_lat])
        else:
            lon, lat = quote(geometry.lon or ""), quote(geometry.lat or "")
            parts.append(f"{lon} BETWEEN ? AND ? AND {lat} BETWEEN ? AND ?")
            params.extend([min_lon, max_lon, min_lat, max_lat])
    return (" AND ".join(parts) or "TRUE"), params


def _after(query: RecordQuery, values: list[Any]) -> tuple[str, list[Any]]:
    """Rows strictly after the cursor's key in the query's order (NULLs sort last).

    Expanded column by column so that NULLs are handled exactly; a redundant range on the first
    column lets file and row-group statistics skip what lies before the cursor.
    """
    order = query.order_by
    alternatives: list[str] = []
    params: list[Any] = []
    for i, (column, descending) in enumerate(order):
        name, value = quote(column), values[i]
        nullable = column not in query.not_null
        if value is None:
            continue  # nothing sorts after NULL in this column; later columns decide
        prefix: list[str] = []
        for j, (earlier, _) in enumerate(order[:i]):
            prefix.append(f"{quote(earlier)} IS NOT DISTINCT FROM {_typed(query, earlier)}")
            params.append(values[j])
        step = f"{name} {'<' if descending else '>'} {_typed(query, column)}"
        params.append(value)
        if nullable:
            step = f"({step} OR {name} IS NULL)"
        alternatives.append("(" + " AND ".join([*prefix, step]) + ")")
    if not alternatives:
        return "FALSE", []
    first, descending = order[0]
    clause = "(" + " OR ".join(alternatives) + ")"
    if values[0] is not None and first in query.not_null:
        clause = (
            f"{quote(first)} {'<=' if descending else '>='} {_typed(query, first)} AND {clause}"
        )
        params.insert(0, values[0])
    return clause, params


def _order_sql(query: RecordQuery) -> str:
    return ", ".join(f"{quote(c)} {'DESC' if d else 'ASC'} NULLS LAST" for c, d in query.order_by)


def _select_sql(query: RecordQuery) -> str:
    return ", ".join(quote(c) for c in query.columns())


class RecordReader:
    """Reads of record queries through one reader (one cursor: one per request thread)."""

    def __init__(self, reader: LakeReader):
        self.reader = reader
        self.con = reader.con
        self._last: RecordQuery | None = None  # the query being answered, to name a bad value

    def _run(self, sql: str, params: list[Any], parameter: str = "filter") -> pa.Table:
        try:
            return arrow_of(self._execute(sql, params, parameter))
        except duckdb.ConversionException:
            raise self._bad_value() from None

    def _execute(self, sql: str, params: list[Any], parameter: str = "filter") -> Any:
        try:
            return self.reader.execute(sql, params)
        except duckdb.ConversionException:
            raise self._bad_value() from None
        except duckdb.BinderException as exc:
            message = str(exc).split("\n")[0]
            raise BadQuery(f"this request cannot be answered: {message}", parameter) from None

    def _bad_value(self) -> BadQuery:
        """Which filter's value does not fit its column (asked one at a time, after the fact)."""
        query = self._last
        if query is None:
            return BadQuery("a value cannot be read as its column's type", "filter", "bad_value")
        for flt in query.filters:
            if flt.op in ("isnull", "contains") or flt.column not in query.types:
                continue
            kind = query.types[flt.column]
            for value in flt.value if isinstance(flt.value, list) else [flt.value]:
                try:
                    self.reader.execute(f"SELECT CAST(? AS {kind})", [value]).fetchone()
                except duckdb.Error:
                    where = flt.parameter or flt.column
                    return BadQuery(
                        f"'{value}' in {where} is not a {kind} value", where, "bad_value"
                    )
        return BadQuery("a value cannot be read as its column's type", "filter", "bad_value")

    def _where(self, query: RecordQuery, spatial: bool = False) -> tuple[str, list[Any]]:
        """The WHERE clause of ``query``, remembered to name a bad value; the spatial extension
        is loaded when a WKT geometry is filtered (or, with ``spatial``, written out)."""
        self._last = query
        if query.geometry is not None and query.geometry.wkt and (spatial or query.bbox):
            load_extension(self.con, "spatial")
        return where(query)

    def page(self, query: RecordQuery, limit: int, after: list[Any] | None = None) -> pa.Table:
        """Up to ``limit`` rows in the query's order, after a cursor's key; the order columns are
        appended (as ``__key_<i>``) so the caller can make the next cursor."""
        condition, params = self._where(query)
        if after is not None:
            if len(after) != len(query.order_by):
                raise BadQuery(
                    "the cursor does not fit this request's order", "cursor", "bad_cursor"
                )
            more, more_params = _after(query, after)
            condition = f"{condition} AND {more}"
            params = params + more_params
        keys = ", ".join(f"{quote(c)} AS __key_{i}" for i, (c, _) in enumerate(query.order_by))
        sql = (
            f"SELECT {_select_sql(query)}, {keys} FROM {query.source} WHERE {condition} "
            f"ORDER BY {_order_sql(query)} LIMIT {int(limit)}"
        )
        return self._run(sql, params)

    def count(self, query: RecordQuery) -> int:
        condition, params = self._where(query)
        table = self._run(f"SELECT count(*) AS n FROM {query.source} WHERE {condition}", params)
        return int(table.column(0)[0].as_py())

    def facet(self, query: RecordQuery, column: str, size: int) -> dict[str, Any]:
        """Exact value counts of ``column`` over the filtered rows, the ``size`` most frequent,
        with the number of distinct values so a cut list says it is cut."""
        name = check_column(query, column, "facet")
        condition, params = self._where(query)
        table = self._run(
            f"SELECT {name} AS value, count(*) AS count, count(*) OVER () AS distinct_values "
            f"FROM {query.source} WHERE {condition} GROUP BY {name} "
            f"ORDER BY count DESC, value NULLS LAST LIMIT {int(size)}",
            params,
        )
        rows = table.to_pylist()
        distinct = rows[0]["distinct_values"] if rows else 0
        return {
            "values": [{"value": r["value"], "count": r["count"]} for r in rows],
            "distinct_values": distinct,
            "complete": distinct <= size,
        }

    def aggregate(
        self,
        query: RecordQuery,
        group_by: list[str],
        bucket: tuple[str, str] | None,
        metrics: list[tuple[str, str | None]],
        max_groups: int,
    ) -> pa.Table:
        """Exact metrics per group; more groups than ``max_groups`` is an error, never a cut."""
        keys: list[str] = []
        for column in group_by:
            keys.append(f"{check_column(query, column, 'group_by')} AS {quote(column)}")
        if bucket is not None:
            column, interval = bucket
            name = check_column(query, column, "bucket")
            if kind_of(query.types[column]) != "time":
                raise BadQuery(
                    f"bucket needs a time column; '{column}' is {query.types[column]}", "bucket"
                )
            keys.append(f"time_bucket({interval_sql(interval)}, {name}) AS {quote(column)}")
        values: list[str] = []
        for metric, target in metrics:
            if metric == "count" or target is None:
                values.append("count(*) AS count")
                continue
            name = check_column(query, target, "metrics")
            if metric in ("sum", "avg") and kind_of(query.types[target]) != "number":
                raise BadQuery(
                    f"{metric} needs a numeric column; '{target}' is {query.types[target]}",
                    "metrics",
                )
            values.append(f"{metric}({name}) AS {quote(f'{metric}_{target}')}")
        condition, params = self._where(query)
        positions = ", ".join(str(i + 1) for i in range(len(keys)))
        group, order = (f"GROUP BY {positions}", f"ORDER BY {positions}") if keys else ("", "")
        sql = (
            f"SELECT {', '.join([*keys, *values])} FROM {query.source} WHERE {condition} "
            f"{group} {order} LIMIT {int(max_groups) + 1}"
        )
        result = self._run(sql, params)
        if result.num_rows > max_groups:
            raise BadQuery(
                f"more than {max_groups:,} groups: narrow the filters or the grouping, or use the export",
                "group_by",
                "too_many_groups",
            )
        return result

    def stream(
        self, query: RecordQuery, expression: str | None = None, batch_rows: int = 32_768
    ) -> Iterator[pa.RecordBatch]:
        """Every filtered row in record batches, in constant memory (DuckDB streams the scan).

        The query runs now, so a bad name or value fails before a response starts; the batches
        are read as the iterator is. ``expression`` replaces the column list (e.g. one JSON text
        per row).
        """
        condition, params = self._where(query, spatial=True)
        select = expression or _select_sql(query)
        order = f" ORDER BY {_order_sql(query)}" if query.order_by else ""
        sql = f"SELECT {select} FROM {query.source} WHERE {condition}{order}"
        reader = self._execute(sql, params).fetch_record_batch(batch_rows)
        # A filter's value is cast when the scan reaches it: read the first batch now.
        try:
            first = reader.read_next_batch()
        except StopIteration:
            return iter(())
        except (duckdb.ConversionException, pa.ArrowInvalid):
            raise self._bad_value() from None

        def rest() -> Iterator[pa.RecordBatch]:
            yield first
            yield from reader

        return rest()

    def changes(
        self, table: TableRef, before: int, after: int, key: list[str], limit: int
    ) -> dict[str, Any]:
        """Rows inserted, updated and deleted from version ``before`` to ``after``, by key.

        Both versions are compared as sets of rows, so the answer is exact whatever happened in
        between (appends, replacements, a model rebuilt); ``limit`` bounds each list, and the
        counts always cover everything.
        """
        old, new = f"{table.sql}{at_clause(before)}", f"{table.sql}{at_clause(after)}"
        keys = ", ".join(quote(k) for k in key)
        join = " AND ".join(f"__old.{quote(k)} IS NOT DISTINCT FROM __new.{quote(k)}" for k in key)
        self.reader.execute(
            f"CREATE OR REPLACE TEMP TABLE __gone AS (SELECT * FROM {old} EXCEPT ALL SELECT * FROM {new})"
        )
        self.reader.execute(
            f"CREATE OR REPLACE TEMP TABLE __came AS (SELECT * FROM {new} EXCEPT ALL SELECT * FROM {old})"
        )
        try:
            parts = {
                "inserted": f"SELECT __new.* FROM __came __new WHERE NOT EXISTS (SELECT 1 FROM __gone __old WHERE {join}) ORDER BY {keys}",
                "deleted": f"SELECT __old.* FROM __gone __old WHERE NOT EXISTS (SELECT 1 FROM __came __new WHERE {join}) ORDER BY {keys}",
                "updated": f"SELECT __old AS before, __new AS after FROM __gone __old JOIN __came __new ON {join} ORDER BY {', '.join('__new.' + quote(k) for k in key)}",
            }
            out: dict[str, Any] = {"counts": {}}
            for name, sql in parts.items():
                count = self.reader.execute(f"SELECT count(*) FROM ({sql})").fetchone()
                out["counts"][name] = int(count[0]) if count else 0
                out[name] = arrow_of(self.reader.execute(f"{sql} LIMIT {int(limit)}"))
            return out
        finally:
            self.reader.execute("DROP TABLE IF EXISTS __gone")
            self.reader.execute("DROP TABLE IF EXISTS __came")


def interval_sql(text: str) -> str:
    match = INTERVAL.match(text.strip())
    if not match:
        raise BadQuery(
            f"'{text}' is not an interval: use a number and s, m, h, d, w, mo or y (e.g. 15m)",
            "bucket",
        )
    return f"INTERVAL '{int(match.group(1))} {INTERVAL_UNITS[match.group(2)]}'"


def copy_version_to_parquet(reader: LakeReader, query: RecordQuery, target: str) -> None:
    """Write a whole version to one Parquet file (row groups of 122,880 rows, zstd)."""
    reader.execute(
        f"COPY (SELECT {_select_sql(query)} FROM {query.source}) TO {sql_string(target)} "
        "(FORMAT parquet, COMPRESSION zstd)"
    )
