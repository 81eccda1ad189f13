"""Connector types by ``type`` name, found through the ``urbanlake.connectors`` entry points.

Built-in types register through the same entry-point group as third-party packages; the
``BUILTINS`` table is only a fallback for a source checkout that has not been pip-installed.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from urbanlake.connectors.base import Connector, ConnectorContext, SourceSpec
from urbanlake.core.errors import ConfigError, ConfigProblem
from urbanlake.core.secrets import resolve
from urbanlake.core.spec import ConnectorConfig
from urbanlake.core.yamlsource import (
    LocatedDocument,
    load_documents,
    problem_at,
    validation_problems,
)

log = logging.getLogger(__name__)
GROUP = "urbanlake.connectors"
BUILTINS = {
    "file": "urbanlake.connectors.file:FileConnector",
    "http": "urbanlake.connectors.http:HttpConnector",
    "gtfs_static": "urbanlake.connectors.gtfs_static:GtfsStaticConnector",
    "gtfs_realtime": "urbanlake.connectors.gtfs_realtime:GtfsRealtimeConnector",
    "gbfs": "urbanlake.connectors.gbfs:GbfsConnector",
}


def _load(target: str) -> type[Connector[Any]]:
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise TypeError(f"{target} is not a Connector class")
    return cls


@cache
def connector_types() -> dict[str, type[Connector[Any]]]:
    """Every registered connector type, by name."""
    found: dict[str, str] = dict(BUILTINS)
    for ep in entry_points(group=GROUP):
        found[ep.name] = ep.value
    types: dict[str, type[Connector[Any]]] = {}
    for name, target in sorted(found.items()):
        try:
            types[name] = _load(target)
        except (ImportError, AttributeError, TypeError) as exc:
            # A broken plugin must not take the built-in types down with it.
            log.warning("connector type %r (%s) cannot be loaded: %s", name, target, exc)
    return types


def connector_type(name: str) -> type[Connector[Any]]:
    types = connector_types()
    if name not in types:
        raise KeyError(name)
    return types[name]


def validate_document(doc: LocatedDocument) -> tuple[ConnectorConfig | None, list[ConfigProblem]]:
    """Validate one connector file; returns the config (if usable) and every problem found."""
    if not isinstance(doc.data, dict):
        return None, [problem_at(doc, (), "a connector config must be a mapping of fields")]
    problems: list[ConfigProblem] = []
    config: ConnectorConfig | None = None
    try:
        config = ConnectorConfig.model_validate({**doc.data, "path": doc.path})
    except ValidationError as exc:
        problems.extend(validation_problems(doc, exc))
    source = doc.data.get("source")
    if isinstance(source, dict) and "type" in source:
        type_name = str(source["type"])
        types = connector_types()
        if type_name not in types:
            close = difflib.get_close_matches(type_name, types, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(
                problem_at(doc, ("source", "type"),
                         f"unknown connector type '{type_name}'{hint}; valid types: {', '.join(types)}")
            )  # fmt: skip
        else:
            try:
                types[type_name].spec_model.model_validate(resolve(source, lenient=True))
            except ValidationError as exc:
                problems.extend(validation_problems(doc, exc, ("source",)))
    return (config if not problems else None), problems


def load_configs(directory: Path) -> tuple[list[ConnectorConfig], list[ConfigProblem]]:
    """Every connector config under ``directory``, and every problem in any of them."""
    configs: list[ConnectorConfig] = []
    docs, problems = load_documents(directory)
    seen: dict[str, Path] = {}
    for doc in docs:
        config, found = validate_document(doc)
        problems.extend(found)
        if config is not None:
            if config.table_name in seen:
                problems.append(
                    problem_at(
                        doc,
                        ("name",),
                        f"table {config.table_name} is already defined in {seen[config.table_name]}",
                    )
                )
                continue
            seen[config.table_name] = doc.path
            configs.append(config)
    return configs, problems


def build_connector(config: ConnectorConfig, context: ConnectorContext) -> Connector[Any]:
    """An instance of the config's connector type with its validated (secret-resolved) spec."""
    cls = connector_type(config.source_type)
    where = f"{config.path or config.table_name}: source"
    try:
        spec: SourceSpec = cls.spec_model.model_validate(resolve(config.source, where=where))
    except ValidationError as exc:
        raise ConfigError(
            [
                ConfigProblem(
                    str(config.path), None, "source." + ".".join(map(str, e["loc"])), e["msg"]
                )
                for e in exc.errors()
            ]
        ) from None
    return cls(spec, config, context)
