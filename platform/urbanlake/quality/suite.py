"""Expectation suites as YAML files: ``quality/<domain>/<dataset>.yaml``.

A suite lists Great Expectations expectations by their own names and arguments, plus the
platform's keys::

    expectations:
      - expect_column_values_to_not_be_null: {column: vehicle_id}
      - expect_column_values_to_be_between: {column: latitude, min_value: -90, max_value: 90, mostly: 0.99}
    freshness: {max_age: 10m}
    schema: {require: [vehicle_id, latitude], allow_extra: true}
    on_failure: quarantine          # quarantine | reject_batch | warn

A connector refers to a suite (``quality: {suite: transport/vehicle_positions}``) or inlines the
same keys under ``quality:``. Nothing here imports Great Expectations except the name checks.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from urbanlake.core.errors import ConfigError, ConfigProblem
from urbanlake.core.settings import Settings
from urbanlake.core.spec import ConnectorConfig, parse_duration
from urbanlake.core.yamlsource import LocatedDocument, load_located

OnFailure = Literal["quarantine", "reject_batch", "warn"]


class Freshness(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_age: str

    @field_validator("max_age")
    @classmethod
    def is_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def limit(self) -> timedelta:
        return parse_duration(self.max_age)


class SchemaRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    require: list[str] = Field(default_factory=list)
    allow_extra: bool = True


class Suite(BaseModel):
    """One dataset's checks. ``expectations`` keep GX's names and arguments unchanged."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    expectations: list[dict[str, dict[str, Any]]] = Field(default_factory=list)
    freshness: Freshness | None = None
    schema_: SchemaRule | None = Field(None, alias="schema")
    on_failure: OnFailure | None = None
    path: Path | None = Field(None, exclude=True)

    @field_validator("expectations", mode="before")
    @classmethod
    def one_name_each(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("expectations must be a list of {expectation_name: {arguments}}")
        out = []
        for item in value:
            if isinstance(item, str):
                item = {item: {}}
            if not isinstance(item, dict) or len(item) != 1:
                raise ValueError(
                    f"each expectation is one {{name: {{arguments}}}} mapping, got {item!r}"
                )
            name, kwargs = next(iter(item.items()))
            out.append({name: kwargs or {}})
        return out

    @property
    def items(self) -> list[tuple[str, dict[str, Any]]]:
        return [next(iter(e.items())) for e in self.expectations]


def suite_path(settings: Settings, name: str) -> Path:
    return settings.quality_dir / f"{name}.yaml"


def _parse(doc: LocatedDocument) -> tuple[Suite | None, list[ConfigProblem]]:
    if not isinstance(doc.data, dict):
        return None, [
            ConfigProblem(str(doc.path), 1, "", "a suite must be a mapping (expectations: [...])")
        ]
    try:
        return Suite.model_validate({**doc.data, "path": doc.path}), []
    except ValidationError as exc:
        return None, [
            ConfigProblem(str(doc.path), doc.line_of(tuple(e["loc"])), ".".join(map(str, e["loc"])),
                          e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]  # fmt: skip


def suite_for(config: ConnectorConfig, settings: Settings) -> Suite | None:
    """The suite a connector uses: its referenced file with inline keys on top, or the inline keys."""
    quality = config.quality
    if quality is None:
        return None
    base: dict[str, Any] = {}
    if quality.suite:
        path = suite_path(settings, quality.suite)
        if not path.exists():
            raise ConfigError(
                f"{config.path or config.table_name}: quality.suite: no suite file {path}"
            )
        suite, problems = _parse(load_located(path))
        if problems or suite is None:
            raise ConfigError(problems)
        base = suite.model_dump(by_alias=True, exclude_none=True)
    inline = quality.model_dump(by_alias=True, exclude_none=True, exclude={"suite"})
    merged = {**base, **inline}
    if not merged.get("expectations") and not merged.get("freshness") and not merged.get("schema"):
        return None
    return Suite.model_validate(merged)


def check_expectations(
    doc: LocatedDocument, suite: Suite, prefix: tuple[str | int, ...]
) -> list[ConfigProblem]:
    """Unknown expectation names (with the closest real ones) and missing required arguments."""
    from urbanlake.quality.gx_runner import closest_names, expectation_names, required_arguments

    known = expectation_names()
    problems = []
    for index, (name, kwargs) in enumerate(suite.items):
        loc = (*prefix, "expectations", index, name)
        line = doc.line_of(loc)
        if name not in known:
            close = closest_names(name)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            problems.append(
                ConfigProblem(
                    str(doc.path),
                    line,
                    ".".join(map(str, loc)),
                    f"unknown expectation '{name}'{hint}",
                )
            )
            continue
        for argument in required_arguments(name):
            if argument not in kwargs:
                problems.append(
                    ConfigProblem(
                        str(doc.path),
                        line,
                        ".".join(map(str, loc)),
                        f"missing required argument '{argument}'",
                    )
                )
    return problems


def check_suites(settings: Settings, configs: list[ConnectorConfig]) -> list[ConfigProblem]:
    """Every suite file and inline suite: shape, expectation names, required arguments, references."""
    problems: list[ConfigProblem] = []
    folder = settings.quality_dir
    files = sorted(folder.rglob("*.yaml")) if folder.is_dir() else []
    for path in files:
        try:
            doc = load_located(path)
        except yaml.YAMLError as exc:
            problems.append(ConfigProblem(str(path), None, "", f"not valid YAML: {exc}"))
            continue
        suite, found = _parse(doc)
        problems.extend(found)
        if suite is not None:
            problems.extend(check_expectations(doc, suite, ()))
    for config in configs:
        quality = config.quality
        if quality is None or config.path is None:
            continue
        doc = load_located(config.path)
        if quality.suite and not suite_path(settings, quality.suite).exists():
            problems.append(ConfigProblem(str(config.path), doc.line_of(("quality", "suite")), "quality.suite",
                                          f"no suite file {suite_path(settings, quality.suite)}"))  # fmt: skip
        if quality.expectations:
            inline = Suite.model_validate({"expectations": quality.expectations})
            problems.extend(check_expectations(doc, inline, ("quality",)))
    return problems
