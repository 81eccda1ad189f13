"""Read-only SQL over the curated datasets a caller may see (``POST /api/v1/sql``).

Two layers. Here, a parse-level allow-list (``sqlglot``, DuckDB dialect): exactly one query
(``SELECT``, ``WITH``, set operations, ``PIVOT``); no statement of any other kind, no table
function but ``range``/``generate_series``/``unnest``, no function that reads files, settings,
secrets or DuckDB's own catalogs, and no table but a dataset the caller may see. Every dataset
reference is rewritten to its lake table pinned at the version the caller reads
(``lake."<domain>"."<table>" AS "<name>" AT (VERSION => n)``) and the query that runs is the one
generated from the checked tree, comments dropped: nothing the checks did not see reaches
DuckDB, and a name that is not a visible dataset never does, so neither do DuckDB's "did you
mean" hints about hidden tables. Below, the sandbox (``lakehouse.sql_sandbox``): its own DuckDB
with external access off and its configuration locked.

A dataset is named as in the catalog, quoted where it holds a ``-`` (``"vehicle-positions"``),
or with ``_`` for ``-`` (``vehicle_positions``). A hidden dataset and a missing one are refused
with the same words.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from urbanlake.catalog.actions import NotPublished, pin
from urbanlake.catalog.entry import DatasetEntry
from urbanlake.catalog.service import Caller, Catalog
from urbanlake.core.errors import BadQuery, NotFound
from urbanlake.core.secrets import mask
from urbanlake.lakehouse.connection import LAKE
from urbanlake.lakehouse.records import TableRef
from urbanlake.lakehouse.sql_sandbox import QueryFailed, QueryInterrupted

DIALECT = "duckdb"
# sqlglot warns on its logger for every statement it keeps as a bare command (CALL, LOAD…):
# those are refused here anyway, and each one would otherwise be a line in the server's log.
logging.getLogger("sqlglot").setLevel(logging.ERROR)
FORMATS = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
MAX_SQL = 100_000  # characters of one statement
# Row sources a query may call: they read nothing, and the time budget and row cap bound them.
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "explode"})
# Functions that read files, URLs, settings, secrets, the environment or DuckDB's catalogs.
DENIED_PREFIXES = ("duckdb_", "pragma_", "ducklake_", "read_", "parquet_", "sqlite_", "postgres_",
                   "mysql_", "iceberg_", "delta_", "json_execute", "pg_", "icu_")  # fmt: skip
DENIED_FUNCTIONS = frozenset({
    "getenv", "current_setting", "set_config", "which_secret", "glob", "query", "query_table",
    "sniff_csv", "load_aws_credentials", "checkpoint", "force_checkpoint", "nextval", "currval",
    "sql_auto_complete", "summary", "enable_profiling", "disable_profiling", "enable_logging",
    "disable_logging", "truncate_duckdb_logs", "st_read", "st_read_meta", "st_drivers",
    "current_database", "current_catalog", "current_schema", "current_schemas", "snapshots",
    "table_info", "table_changes", "table_insertions", "table_deletions", "set_commit_message",
})  # fmt: skip
SIZED_FUNCTIONS = frozenset({"repeat", "pad", "lpad", "rpad", "list_resize", "array_resize"})
MAX_SIZED = 1_000_000
SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "system", "temp", "main",
                            "memory"})  # fmt: skip
STATEMENT_WORDS = frozenset({
    "ALTER", "ANALYZE", "ATTACH", "BEGIN", "CALL", "CHECKPOINT", "COMMIT", "COPY", "CREATE",
    "DEALLOCATE", "DELETE", "DESCRIBE", "DETACH", "DROP", "EXECUTE", "EXPLAIN", "EXPORT", "FORCE",
    "GRANT", "IMPORT", "INSERT", "INSTALL", "LOAD", "MERGE", "PRAGMA", "PREPARE", "RESET", "REVOKE",
    "ROLLBACK", "SET", "SHOW", "SUMMARIZE", "TRUNCATE", "UPDATE", "USE", "VACUUM",
})  # fmt: skip
TOKEN = re.compile(r"<Token token_type: [\w.]+, text: (.*?), line: .*?>")
QUERY_TYPES = (exp.Select, exp.SetOperation, exp.Subquery, exp.Pivot)
# Anything that is not a read; nested ones too (a CTE holding an INSERT, say).
STATEMENT_TYPES = (exp.DDL, exp.DML, exp.Command, exp.Copy, exp.Set, exp.Pragma, exp.Use,
                   exp.Transaction, exp.Commit, exp.Rollback, exp.Describe, exp.Summarize,
                   exp.Show, exp.Attach, exp.Detach, exp.Install, exp.Refresh, exp.Cache,
                   exp.Uncache, exp.Analyze, exp.LoadData, exp.Kill)  # fmt: skip


class SqlRefused(BadQuery):
    """A statement the SQL endpoint does not run: the message says what was refused."""

    def __init__(self, message: str):
        super().__init__(message, "sql", "sql_refused")


class SqlTimeout(BadQuery):
    """A query stopped at its tier's time budget."""

    def __init__(self, message: str):
        super().__init__(message, "sql", "query_timeout")


class SqlFailed(BadQuery):
    """A query DuckDB could not run (an unknown column, a bad cast, too much memory…)."""

    def __init__(self, message: str):
        super().__init__(message, "sql", "sql_error")


@dataclass
class SqlAnswer:
    columns: list[str]
    types: list[str]
    table: pa.Table
    truncated: bool
    row_cap: int
    datasets: dict[str, int] = field(default_factory=dict)  # each dataset read → its version


# -- the allow-list --------------------------------------------------------------------------------


def parse_statement(sql: str) -> exp.Expr:
    """The one query in ``sql``; anything else is refused, saying what."""
    if len(sql) > MAX_SQL:
        raise SqlRefused(f"a statement of more than {MAX_SQL:,} characters is not run")
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=DIALECT) if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = _first_word(sql)
        if first in STATEMENT_WORDS:
            raise SqlRefused(
                f"{first} is not allowed: only a SELECT (or WITH … SELECT) is run"
            ) from None
        problem = exc.errors[0] if exc.errors else {}
        where = (
            f" at line {problem['line']}, column {problem['col']}" if problem.get("line") else ""
        )
        what = TOKEN.sub(r"'\1'", str(problem.get("description") or str(exc).splitlines()[0]))
        raise SqlRefused(f"cannot parse the statement{where}: {what}") from None
    except (sqlglot.errors.SqlglotError, RecursionError, ValueError) as exc:
        raise SqlRefused(f"cannot parse the statement: {str(exc).splitlines()[0]}") from None
    if not statements:
        raise SqlRefused("no statement: send one SELECT")
    if len(statements) > 1:
        raise SqlRefused(
            f"only one statement is run; this holds {len(statements)} "
            f"({', '.join(_kind(s) for s in statements)})"
        )
    tree = statements[0]
    if not isinstance(tree, QUERY_TYPES):
        raise SqlRefused(f"{_kind(tree)} is not allowed: only a SELECT (or WITH … SELECT) is run")
    return tree


def _first_word(sql: str) -> str | None:
    """The statement's first keyword (after comments), upper case; None if it has none."""
    try:
        tokens = sqlglot.tokenize(sql, dialect=DIALECT)
    except sqlglot.errors.SqlglotError:
        return None
    return tokens[0].text.upper() if tokens and tokens[0].text[:1].isalpha() else None


def _kind(node: exp.Expr) -> str:
    """What a statement is, as its first words say: ``COPY``, ``ATTACH``, ``SELECT``…"""
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, QUERY_TYPES):
        return "SELECT"
    text = node.sql(dialect=DIALECT, comments=False).split()
    return text[0].upper() if text else type(node).__name__.upper()


def function_names(node: exp.Func) -> set[str]:
    """The names a function call may go by, lower case."""
    if isinstance(node, exp.Anonymous):
        return {str(node.this).lower()}
    return {name.lower() for name in type(node).sql_names()} | {node.sql_name().lower()}


def shown_name(node: exp.Func) -> str:
    """A function's name as DuckDB is given it (``lpad``, not sqlglot's ``PAD``)."""
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql(dialect=DIALECT, comments=False).split("(")[0].strip().lower()


def check_functions(tree: exp.Expr) -> None:
    for node in tree.find_all(exp.Func):
        names = function_names(node)
        if names & DENIED_FUNCTIONS or any(n.startswith(DENIED_PREFIXES) for n in names):
            kind = "table function" if isinstance(node.parent, exp.Table) else "function"
            raise SqlRefused(f"{kind} {shown_name(node)} is not allowed")
        if names & SIZED_FUNCTIONS:
            _check_size(node)


def _check_size(node: exp.Func) -> None:
    """A value built to a size the query gives (``repeat('x', n)``, ``lpad``, ``list_resize``)
    is allocated outside DuckDB's memory limit: its size must be a literal within bounds."""
    arguments = node.expressions if isinstance(node, exp.Anonymous) else [
        v for k, v in node.args.items() if k in ("times", "expression")
    ]  # fmt: skip
    sizes = arguments[1:2] if isinstance(node, exp.Anonymous) else arguments
    for size in sizes:
        if not (isinstance(size, exp.Literal) and size.is_int and int(size.name) <= MAX_SIZED):
            raise SqlRefused(
                f"function {shown_name(node)} takes a literal size of at most {MAX_SIZED:,} here"
            )


def check_statements(tree: exp.Expr) -> None:
    for node in tree.walk():
        if isinstance(node, STATEMENT_TYPES):
            raise SqlRefused(
                f"{_kind(node)} is not allowed: only a SELECT (or WITH … SELECT) is run"
            )


def ctes_in_scope(table: exp.Table) -> set[str]:
    """The CTE names a table reference can mean: those of every enclosing WITH, except that
    inside a CTE's own body only the earlier ones (and itself, when RECURSIVE) are there."""
    names: set[str] = set()
    node: exp.Expr = table
    while node.parent is not None:
        parent = node.parent
        if isinstance(parent, exp.With):
            ctes = list(parent.expressions)
            index = next((i for i, c in enumerate(ctes) if c is node), len(ctes))
            upto = index + 1 if parent.args.get("recursive") else index
            names |= {c.alias_or_name.lower() for c in ctes[:upto]}
        elif isinstance(parent, exp.Query) and node is not parent.args.get("with_"):
            with_ = parent.args.get("with_")
            if isinstance(with_, exp.With):
                names |= {c.alias_or_name.lower() for c in with_.expressions}
        node = parent
    return names


def _looks_like_a_file(name: str) -> bool:
    return "/" in name or "\\" in name or ":" in name or "." in name or "*" in name


def _qualified_refusal(table: exp.Table) -> SqlRefused:
    parts = [p for p in (table.text("catalog"), table.text("db")) if p]
    shown = ".".join([*parts, table.name])
    first = {p.lower() for p in parts}
    if first & SYSTEM_SCHEMAS:
        return SqlRefused(f"system catalogs are not available ({shown}); name a dataset")
    if any(p.startswith("__ducklake") or p == LAKE for p in first):
        return SqlRefused(
            f"the lake's own tables are not available ({shown}); name a dataset, e.g. "
            '"vehicle-positions"'
        )
    return SqlRefused(f"qualified names are not allowed ({shown}); name a dataset by itself")


def dataset_references(tree: exp.Expr) -> list[exp.Table]:
    """Every table reference that is not a CTE or an allowed table function: each must name a
    dataset. Refuses what no dataset reference may be (qualified, time-travelling, a file)."""
    found = []
    for table in list(tree.find_all(exp.Table)):
        target = table.this
        if isinstance(target, exp.Func):
            names = function_names(target)
            if table.text("db") or table.text("catalog"):
                raise SqlRefused(f"table function {shown_name(target)} is not allowed")
            if not names & TABLE_FUNCTIONS:
                raise SqlRefused(
                    f"table function {shown_name(target)} is not allowed "
                    "(only range, generate_series and unnest are)"
                )
            continue
        if not isinstance(target, exp.Identifier):
            raise SqlRefused(f"table reference {table.sql(dialect=DIALECT)} is not allowed")
        if table.args.get("when") is not None:
            raise SqlRefused(
                "AT (VERSION => …) / AT (TIMESTAMP => …) is not allowed: each dataset is read at "
                "the version this endpoint pins for you"
            )
        if table.text("db") or table.text("catalog"):
            raise _qualified_refusal(table)
        name = target.this
        if name.lower() in ctes_in_scope(table):
            continue
        if _looks_like_a_file(name):
            raise SqlRefused(f"files and URLs cannot be read ('{name}'); name a dataset")
        found.append(table)
    return found


def check(sql: str) -> exp.Expr:
    """The parsed statement, if nothing in it is refused (dataset names are checked later,
    against what the caller may see)."""
    tree = parse_statement(sql)
    check_statements(tree)
    check_functions(tree)
    dataset_references(tree)
    return tree


# -- names and rewriting ---------------------------------------------------------------------------


def dataset_names(entries: list[DatasetEntry]) -> dict[str, str]:
    """How each visible dataset may be written (lower case) → its name: as is, and with ``_``
    for ``-``, unless that spelling is another dataset's own name."""
    names = {e.name.lower(): e.name for e in entries}
    for entry in entries:
        alias = entry.name.lower().replace("-", "_")
        names.setdefault(alias, entry.name)
    return names


def pin_reference(table: exp.Table, ref: TableRef, version: int) -> None:
    """Point a dataset reference at its lake table at ``version``, in place; it keeps the name
    it was written with as its alias (so ``"vehicle-positions".route_id`` still binds), and its
    sample, pivots and the rest."""
    if table.args.get("alias") is None:
        table.set("alias", exp.TableAlias(this=table.this.copy()))
    table.set("this", exp.to_identifier(ref.name, quoted=True))
    table.set("db", exp.to_identifier(ref.domain, quoted=True))
    table.set("catalog", exp.to_identifier(LAKE))
    table.set(
        "when",
        exp.HistoricalData(this="AT", kind="VERSION", expression=exp.Literal.number(version)),
    )


def rewrite(tree: exp.Expr, names: dict[str, str], pins: dict[str, tuple[TableRef, int]]) -> str:
    """The statement to run: each dataset reference pinned, comments dropped."""
    for table in dataset_references(tree):
        ref, version = pins[names[table.name.lower()]]
        pin_reference(table, ref, version)
    return tree.sql(dialect=DIALECT, comments=False)


def verify(sql: str, pins: dict[str, tuple[TableRef, int]]) -> None:
    """The generated statement, parsed again, holds only the pinned tables (a second look, so
    that a quirk of generation cannot smuggle a name past the first)."""
    tree = parse_statement(sql)
    check_statements(tree)
    check_functions(tree)
    allowed = {(ref.domain, ref.name, version) for ref, version in pins.values()}
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func):
            if function_names(table.this) & TABLE_FUNCTIONS and not table.text("db"):
                continue
        elif table.text("catalog") == LAKE:
            when = table.args.get("when")
            version = when.expression.name if isinstance(when, exp.HistoricalData) else ""
            if version.isdigit() and (table.text("db"), table.name, int(version)) in allowed:
                continue
        elif not table.text("db") and table.name.lower() in ctes_in_scope(table):
            continue
        raise SqlRefused(f"table reference {table.sql(dialect=DIALECT)} is not allowed")


def plan(catalog: Catalog, caller: Caller, sql: str) -> tuple[str, dict[str, int]]:
    """The checked, rewritten statement and the version of each dataset it reads."""
    tree = check(sql)
    names = dataset_names(catalog.visible(caller))
    pins: dict[str, tuple[TableRef, int]] = {}
    for table in dataset_references(tree):
        written = table.this.this
        dataset = names.get(written.lower())
        if dataset is None:
            raise SqlRefused(f"no dataset '{written}'")
        if dataset in pins:
            continue
        try:
            pinned = pin(catalog, caller, dataset)
        except NotPublished:
            raise SqlRefused(f"dataset '{dataset}' has no published version yet") from None
        except NotFound:
            raise SqlRefused(f"no dataset '{written}'") from None
        pins[dataset] = (TableRef.parse(pinned.entry.table), pinned.number)
    statement = rewrite(tree, names, pins)
    verify(statement, pins)
    return statement, {name: version for name, (_, version) in pins.items()}


# -- running ---------------------------------------------------------------------------------------


def sql_query(catalog: Catalog, caller: Caller, sql: str, fmt: str = "json") -> SqlAnswer:
    """Run one read-only query over the datasets the caller may see, within the caller's tier's
    time budget; at most its row cap of rows, and ``truncated`` when there were more."""
    settings = catalog.settings.sql
    if not settings.enabled:
        raise NotFound("the SQL endpoint is turned off on this server (sql.enabled)")
    if fmt not in FORMATS:
        raise BadQuery(f"unknown format '{fmt}'; valid: {', '.join(FORMATS)}", "format")
    tier = settings.tier(caller.tier)
    statement, versions = plan(catalog, caller, sql)
    sandbox = catalog.sql_sandbox()
    try:
        answer = sandbox.run(statement, tier.row_cap, tier.timeout)
    except QueryInterrupted:
        raise SqlTimeout(
            f"the query ran past the {caller.tier} tier's time budget of {tier.timeout:g} s "
            "and was stopped"
        ) from None
    except QueryFailed as exc:
        raise SqlFailed(_failure(str(exc), exc.kind, versions, settings.memory_limit)) from None
    return SqlAnswer(columns=answer.table.column_names, types=answer.types, table=answer.table,
                     truncated=answer.truncated, row_cap=tier.row_cap, datasets=versions)  # fmt: skip


def _failure(message: str, kind: str, versions: dict[str, int], memory: str) -> str:
    if kind == "Out of Memory":
        return f"the query needs more than the SQL endpoint's memory ({memory}): {message}"
    # A hint at other names (functions, columns) is DuckDB's own and harmless; one at tables
    # cannot come up — every table reference is a pinned dataset — but is cut all the same.
    if kind == "Catalog" and "Did you mean" in message and "Table" in message:
        message = message.split("Did you mean")[0].strip()
    return mask(f"{kind} error: {message}")


# -- formats ---------------------------------------------------------------------------------------


def duration(value: Any) -> str:
    """An interval (Arrow's month-day-nanosecond) as an ISO 8601 duration: ``P1M2DT3H4M5.5S``."""
    months, days, nanos = value.months, value.days, value.nanoseconds
    date = (f"{months // 12}Y" if months // 12 else "") + (f"{months % 12}M" if months % 12 else "")
    date += f"{days}D" if days else ""
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = f"{rest / 1e9:f}".rstrip("0").rstrip(".") if rest else ""
    time_part = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    time_part += f"{seconds}S" if seconds else ""
    return "P" + date + (f"T{time_part}" if time_part else "" if date else "T0S")


def json_value(value: Any) -> Any:
    """What orjson does not write itself: decimals and huge integers as text (exact), bytes as
    hex, intervals as ISO 8601 durations, nanosecond timestamps in ISO 8601."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, pa.MonthDayNano):
        return duration(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | dict) or (isinstance(value, tuple) and type(value) is tuple):
        return orjson.dumps(value, default=json_value).decode()
    return json_value(value)


def _parquet_ready(table: pa.Table) -> pa.Table:
    """Columns Parquet has no type for (intervals, unions) as text, as in the other formats."""
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_interval(kind) or pa.types.is_union(kind):
            texts = [None if v is None else str(_cell(v)) for v in column.to_pylist()]
            column = pa.array(texts, pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def rows_of(table: pa.Table) -> list[tuple[Any, ...]]:
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


def render(answer: SqlAnswer, fmt: str) -> bytes:
    """The answer's body in a format: JSON (``columns``, ``types``, ``rows``, ``truncated``,
    ``row_cap``, ``datasets``), CSV with a header row, or a Parquet file."""
    if fmt == "parquet":
        out = io.BytesIO()
        try:
            pq.write_table(_parquet_ready(answer.table), out)
        except pa.ArrowException as exc:
            raise SqlFailed(
                f"the answer cannot be written as Parquet ({exc}); cast the column to another "
                "type or ask for format=json"
            ) from None
        return out.getvalue()
    rows = rows_of(answer.table) if answer.table.num_columns else []
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(answer.columns)
        writer.writerows([_cell(v) for v in row] for row in rows)
        return text.getvalue().encode()
    return orjson.dumps(
        {"columns": answer.columns, "types": answer.types, "rows": rows,
         "truncated": answer.truncated, "row_cap": answer.row_cap, "datasets": answer.datasets},
        default=json_value, option=orjson.OPT_NON_STR_KEYS,
    )  # fmt: skip
