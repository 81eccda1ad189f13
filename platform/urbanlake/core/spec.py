"""The connector config envelope (ARCHITECTURE.md §5): what every publisher's YAML file holds.

``source`` is kept as a plain mapping here and validated by its connector type's own model
(see ``urbanlake.connectors.registry``), so ``core`` knows nothing about connector types.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IDENTIFIER = r"^[a-z][a-z0-9_]*$"
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")

# Friendly names publishers may write, mapped to the lake's SQL types.
TYPE_ALIASES = {
    "string": "VARCHAR", "text": "VARCHAR", "varchar": "VARCHAR",
    "int": "BIGINT", "integer": "BIGINT", "bigint": "BIGINT", "int64": "BIGINT", "int32": "INTEGER",
    "float": "DOUBLE", "double": "DOUBLE", "number": "DOUBLE", "real": "DOUBLE",
    "bool": "BOOLEAN", "boolean": "BOOLEAN",
    "date": "DATE", "time": "TIME",
    "timestamp": "TIMESTAMPTZ", "timestamptz": "TIMESTAMPTZ", "datetime": "TIMESTAMPTZ",
    "json": "JSON",
}  # fmt: skip
DECIMAL = re.compile(r"^decimal\(\s*\d+\s*,\s*\d+\s*\)$", re.IGNORECASE)


def parse_duration(text: str | float | int) -> timedelta:
    """``30s``, ``10m``, ``1.5h``, ``7d`` (or a number of seconds) as a timedelta."""
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    match = DURATION.match(text)
    if not match:
        raise ValueError(
            f"'{text}' is not a duration: use a number and a unit, e.g. 30s, 10m, 1h, 7d"
        )
    return timedelta(seconds=float(match.group(1)) * DURATION_UNITS[match.group(2)])


def sql_type(declared: str) -> str:
    """The SQL type for a declared column type; raises ValueError naming the valid choices."""
    key = declared.strip().lower()
    if key in TYPE_ALIASES:
        return TYPE_ALIASES[key]
    if DECIMAL.match(key):
        return key.upper()
    choices = ", ".join(sorted(TYPE_ALIASES))
    raise ValueError(f"unknown column type '{declared}'; valid: {choices}, decimal(p,s)")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Publisher(Strict):
    name: str
    email: str | None = None
    url: str | None = None


class Schedule(Strict):
    """When ``urbanlake run`` pulls the connector: ``every`` a duration or a 5-field ``cron``."""

    every: str | None = None
    cron: str | None = None

    @model_validator(mode="before")
    @classmethod
    def from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"cron": value} if (" " in value.strip() or "*" in value) else {"every": value}
        return value

    @field_validator("every")
    @classmethod
    def check_every(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value).total_seconds() <= 0:
            raise ValueError("must be longer than zero")
        return value

    @field_validator("cron")
    @classmethod
    def check_cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        fields = value.split()
        if len(fields) != 5 or not all(CRON_FIELD.match(f) for f in fields):
            raise ValueError(
                f"'{value}' is not a cron expression of 5 fields (minute hour day month weekday)"
            )
        return value

    @model_validator(mode="after")
    def one_of(self) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError(
                "give exactly one of 'every' (e.g. 30s) or 'cron' (e.g. '*/5 * * * *')"
            )
        return self

    @property
    def interval(self) -> timedelta | None:
        return parse_duration(self.every) if self.every else None


class Column(Strict):
    """A declared column: its type wins over what the source suggests."""

    type: str
    unit: str | None = None
    description: str | None = None

    @field_validator("type")
    @classmethod
    def known_type(cls, value: str) -> str:
        return sql_type(value)


class TableSpec(Strict):
    primary_key: list[str] = Field(default_factory=list)
    event_time: str | None = None
    timezone: str | None = Field(
        None, description="zone of naive timestamps; default from settings"
    )

    @field_validator("primary_key", mode="before")
    @classmethod
    def listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class QualitySpec(Strict):
    suite: str | None = None
    expectations: list[dict[str, Any]] | None = None
    on_failure: Literal["quarantine", "reject_batch", "warn"] | None = None
    freshness: dict[str, Any] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")


class PublishSpec(Strict):
    access: Literal["public", "partner", "internal"] = "public"
    license: str | None = None
    keywords: list[str] = Field(default_factory=list)
    theme: str | None = None


class ConnectorConfig(Strict):
    """One publisher's connector: where the data comes from and what table it becomes."""

    name: str
    domain: str
    title: str | None = None
    description: str | None = None
    publisher: Publisher | None = None
    source: dict[str, Any]
    schedule: Schedule | None = None
    table: TableSpec = Field(default_factory=TableSpec)
    columns: dict[str, Column] = Field(default_factory=dict)
    quality: QualitySpec | None = None
    publish: PublishSpec = Field(default_factory=PublishSpec)
    path: Path | None = Field(None, exclude=True, description="the file it came from")

    @field_validator("name", "domain")
    @classmethod
    def sql_name(cls, value: str) -> str:
        if not re.match(IDENTIFIER, value):
            raise ValueError(
                f"'{value}' is not a SQL name: use lowercase letters, digits and _, starting with a letter"
            )
        return value

    @field_validator("source")
    @classmethod
    def has_type(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "type" not in value:
            raise ValueError("source needs a 'type'")
        return value

    @property
    def source_type(self) -> str:
        return str(self.source["type"])

    @property
    def table_name(self) -> str:
        """The SQL name, ``<domain>.<name>``."""
        return f"{self.domain}.{self.name}"

    @property
    def declared_types(self) -> dict[str, str]:
        return {name: column.type for name, column in self.columns.items()}
