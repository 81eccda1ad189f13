"""Curated datasets: ``catalog/<domain>/<name>.yaml``, the curator's whole interface.

A dataset is published from a lake table (``source: {table: <domain>.<table>}``) or from a DuckDB
SQL model over lake tables (``source: {sql: <file>.sql}``, next to the YAML), materialized as
``catalog.<name>``. A connector's ``publish`` block gives defaults (access, license, keywords,
theme, and its title, description and publisher) to the entries that publish its table; nothing is
published without an entry.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from urbanlake.core.errors import ConfigProblem
from urbanlake.core.spec import ConnectorConfig, Publisher, parse_duration
from urbanlake.core.suggest import closest
from urbanlake.core.yamlsource import (
    LocatedDocument,
    load_documents,
    load_located,
    problem_at,
    validation_problems,
)
from urbanlake.quality.suite import Freshness

DATASET_NAME = re.compile(r"^[a-z0-9_-]{2,100}$")  # CKAN's package-name rule
MODEL_SCHEMA = "catalog"  # materialized SQL models live in the lake as catalog.<name>
FREQUENCIES = ("continuous", "realtime", "minutely", "hourly", "daily", "weekly", "monthly",
               "quarterly", "annual", "irregular", "never")  # fmt: skip
SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ColumnDoc(Strict):
    description: str | None = None
    unit: str | None = None


class Spatial(Strict):
    bbox: tuple[float, float, float, float] = Field(
        description="min longitude, min latitude, max longitude, max latitude (WGS 84)"
    )

    @field_validator("bbox")
    @classmethod
    def ordered(cls, value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        min_lon, min_lat, max_lon, max_lat = value
        if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
            raise ValueError("bbox must be min_lon, min_lat, max_lon, max_lat within WGS 84 bounds")
        return value


class Temporal(Strict):
    start: str | None = None
    end: str | None = None


class GeometrySpec(Strict):
    lon: str | None = None
    lat: str | None = None
    wkt: str | None = None

    @model_validator(mode="after")
    def one_kind(self) -> GeometrySpec:
        if bool(self.wkt) == bool(self.lon or self.lat) or (
            not self.wkt and not (self.lon and self.lat)
        ):
            raise ValueError("give either {lon: <column>, lat: <column>} or {wkt: <column>}")
        return self

    def columns(self) -> list[str]:
        return [c for c in (self.lon, self.lat, self.wkt) if c]


class DatasetSource(Strict):
    table: str | None = Field(None, description="a lake table, <domain>.<table>")
    sql: str | None = Field(None, description="a .sql file next to the entry: a DuckDB SQL model")

    @model_validator(mode="after")
    def one_of(self) -> DatasetSource:
        if (self.table is None) == (self.sql is None):
            raise ValueError("give exactly one of 'table' (<domain>.<table>) or 'sql' (<file>.sql)")
        if self.table is not None and self.table.count(".") != 1:
            raise ValueError(f"'{self.table}' is not a table name: use <domain>.<table>")
        return self


class DatasetEntry(Strict):
    """One curated dataset: what it is, who publishes it, who may see it, where it comes from."""

    name: str
    domain: str
    title: str
    description: str = ""
    keywords: list[str] = Field(default_factory=list)
    theme: str | None = None
    publisher: Publisher
    license: str
    access: Literal["public", "partner", "internal"] = "public"
    public_delay: str | None = Field(
        None,
        description="a non-public dataset that everyone may read late: callers below its access "
        "tier read the version that was current this long ago (e.g. 1h)",
    )
    frequency: str = "irregular"
    spatial: Spatial | None = None
    temporal: Temporal | None = None
    columns: dict[str, ColumnDoc] = Field(default_factory=dict)
    primary_key: list[str] = Field(default_factory=list)
    geometry: GeometrySpec | None = None
    source: DatasetSource
    freshness: Freshness | None = None
    path: Path | None = Field(None, exclude=True)

    @field_validator("name")
    @classmethod
    def dataset_name(cls, value: str) -> str:
        if not DATASET_NAME.match(value):
            raise ValueError(
                f"'{value}' is not a dataset name: 2–100 lowercase letters, digits, - and _"
            )
        return value

    @field_validator("license")
    @classmethod
    def spdx(cls, value: str) -> str:
        if not SPDX_ID.match(value):
            raise ValueError(f"'{value}' is not an SPDX license id (e.g. CC-BY-4.0, CC0-1.0)")
        return value

    @field_validator("frequency")
    @classmethod
    def known_frequency(cls, value: str) -> str:
        if value not in FREQUENCIES:
            raise ValueError(f"unknown frequency '{value}'; valid: {', '.join(FREQUENCIES)}")
        return value

    @field_validator("public_delay")
    @classmethod
    def delay_of_a_tiered_dataset(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if info.data.get("access", "public") == "public":
            raise ValueError(
                "public_delay is for a partner or internal dataset (the public reads it late); "
                "this dataset is public already"
            )
        if parse_duration(value) <= timedelta(0):
            raise ValueError(f"public_delay must be longer than 0, not '{value}'")
        return value

    @property
    def delay(self) -> timedelta | None:
        """How late callers below its access tier read it; None: they do not see it at all."""
        return parse_duration(self.public_delay) if self.public_delay else None

    @field_validator("primary_key", "keywords", mode="before")
    @classmethod
    def listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def table(self) -> str:
        """The lake table the dataset is read from: its source table, or its materialized model."""
        if self.source.table:
            return self.source.table
        return f"{MODEL_SCHEMA}.{self.name.replace('-', '_')}"

    @property
    def is_model(self) -> bool:
        return self.source.sql is not None

    def sql_path(self) -> Path | None:
        if self.source.sql is None or self.path is None:
            return None
        return self.path.parent / self.source.sql

    def model_sql(self) -> str:
        path = self.sql_path()
        if path is None:
            raise ValueError(f"dataset {self.name} has no SQL model")
        return path.read_text(encoding="utf-8").strip().rstrip(";")


def connector_defaults(connector: ConnectorConfig) -> dict[str, Any]:
    """What a connector's config gives the entries that publish its table."""
    defaults: dict[str, Any] = {
        "title": connector.title,
        "description": connector.description,
        "publisher": connector.publisher.model_dump(exclude_none=True)
        if connector.publisher
        else None,
        "access": connector.publish.access,
        "license": connector.publish.license,
        "keywords": connector.publish.keywords or None,
        "theme": connector.publish.theme,
        "primary_key": connector.table.primary_key or None,
        "columns": {
            name: {k: v for k, v in (("description", c.description), ("unit", c.unit)) if v}
            for name, c in connector.columns.items()
            if c.description or c.unit
        }
        or None,
    }
    return {k: v for k, v in defaults.items() if v is not None}


def validate_entry(
    doc: LocatedDocument,
    connectors: dict[str, ConnectorConfig],
    known_tables: set[str] | None = None,
) -> tuple[DatasetEntry | None, list[ConfigProblem]]:
    if not isinstance(doc.data, dict):
        return None, [problem_at(doc, (), "a catalog entry must be a mapping of fields")]
    data = dict(doc.data)
    source = data.get("source")
    if isinstance(source, dict) and isinstance(source.get("table"), str):
        table = source["table"]
        # A multi-table connector (GTFS, GBFS) makes <name>_<part> tables, known once loaded.
        part_of = any(table.startswith(f"{name}_") for name in connectors)
        if known_tables is not None and table not in known_tables and not part_of:
            # Said first: the fields a connector would have given are missing for the same reason.
            hint = closest(table, sorted(known_tables))
            return None, [
                problem_at(
                    doc,
                    ("source", "table"),
                    f"no table {table}" + (f"; did you mean '{hint}'?" if hint else ""),
                )
            ]
        connector = connectors.get(table)
        if connector is not None:
            defaults = connector_defaults(connector)
            columns = {**defaults.pop("columns", {}), **(data.get("columns") or {})}
            data = {**defaults, **data}
            if columns:
                data["columns"] = columns
    try:
        entry = DatasetEntry.model_validate({**data, "path": doc.path})
    except ValidationError as exc:
        return None, validation_problems(doc, exc)
    problems = []
    sql_path = entry.sql_path()
    if sql_path is not None and not sql_path.is_file():
        problems.append(problem_at(doc, ("source", "sql"), f"no SQL file {sql_path}"))
    return (entry if not problems else None), problems


def load_entries(
    directory: Path,
    connectors: list[ConnectorConfig] | None = None,
    known_tables: set[str] | None = None,
) -> tuple[list[DatasetEntry], list[ConfigProblem]]:
    """Every catalog entry under ``directory``, and every problem in any of them; with
    ``known_tables``, a source table outside them is a problem too."""
    by_table = {c.table_name: c for c in connectors or []}
    entries: list[DatasetEntry] = []
    docs, problems = load_documents(directory) if directory.is_dir() else ([], [])
    seen: dict[str, Path] = {}
    tables: dict[str, Path] = {}
    for doc in docs:
        entry, found = validate_entry(doc, by_table, known_tables)
        problems.extend(found)
        if entry is None:
            continue
        if entry.name in seen:
            problems.append(
                problem_at(
                    doc, ("name",), f"dataset {entry.name} is already defined in {seen[entry.name]}"
                )
            )
            continue
        if entry.is_model and entry.table in tables:
            problems.append(
                problem_at(
                    doc,
                    ("name",),
                    f"its model table {entry.table} is also made by {tables[entry.table]}",
                )
            )
            continue
        seen[entry.name] = doc.path
        tables[entry.table] = doc.path
        entries.append(entry)
    return entries, problems


def check_against_lake(
    entries: list[DatasetEntry],
    table_columns: dict[str, list[str]],
    model_columns: dict[str, list[str]],
) -> list[ConfigProblem]:
    """Names of tables and columns the entries use that the lake (or the connectors) do not know,
    each with the closest real name. ``table_columns`` maps known tables to their columns (an
    empty list when they are declared but not loaded yet); ``model_columns`` maps a model's
    dataset name to the columns its SQL gives."""
    problems: list[ConfigProblem] = []
    for entry in entries:

        def problem(field: str, message: str, entry: DatasetEntry = entry) -> None:
            problems.append(ConfigProblem(str(entry.path), _line(entry, field), field, message))

        if entry.source.table:
            if entry.source.table not in table_columns:
                hint = closest(entry.source.table, list(table_columns))
                problem(
                    "source.table",
                    f"no table {entry.source.table}"
                    + (f"; did you mean '{hint}'?" if hint else ""),
                )
                continue
            columns = table_columns[entry.source.table]
        else:
            columns = model_columns.get(entry.name, [])
        if not columns:
            continue  # not loaded yet: the columns are checked once it is
        used = [("primary_key", c) for c in entry.primary_key] + [
            ("columns", c) for c in entry.columns
        ]
        used += [("geometry", c) for c in (entry.geometry.columns() if entry.geometry else [])]
        for field, column in used:
            if column not in columns:
                hint = closest(column, columns)
                problem(
                    field,
                    f"no column '{column}' in {entry.table}"
                    + (f"; did you mean '{hint}'?" if hint else f"; columns: {', '.join(columns)}"),
                )
    return problems


def _line(entry: DatasetEntry, field: str) -> int | None:
    if entry.path is None:
        return None
    try:
        return load_located(entry.path).line_of(tuple(field.split(".")))
    except (OSError, ValueError):
        return None
