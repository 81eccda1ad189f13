"""YAML loading that remembers the line of every key, so errors can say where they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from urbanlake.core.errors import ConfigProblem


@dataclass
class LocatedDocument:
    """A parsed YAML document plus the line (1-based) of each field path, e.g. ``source.url``."""

    path: Path
    data: Any
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    def line_of(self, loc: tuple[str | int, ...]) -> int | None:
        """The line of the deepest known ancestor of ``loc`` (a missing field points at its parent)."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None


def _construct(
    node: yaml.Node, loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]
) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            child = (*loc, key)
            lines[child] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, child, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def load_located(path: Path) -> LocatedDocument:
    """Parse ``path``; raises ``yaml.YAMLError`` (which carries its own line) on bad syntax."""
    text = path.read_text(encoding="utf-8")
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[tuple[str | int, ...], int] = {}
    data = None if node is None else _construct(node, (), lines)
    return LocatedDocument(path=path, data=data, lines=lines)


def yaml_problem(path: Path, exc: yaml.YAMLError) -> ConfigProblem:
    """A file that is not YAML, at the line its parser stopped."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    return ConfigProblem(str(path), line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")


def problem_at(doc: LocatedDocument, loc: tuple[str | int, ...], message: str) -> ConfigProblem:
    """A problem at a field path of a document, with the field's line."""
    return ConfigProblem(str(doc.path), doc.line_of(loc), ".".join(str(p) for p in loc), message)


def validation_problems(
    doc: LocatedDocument, exc: ValidationError, prefix: tuple[str, ...] = ()
) -> list[ConfigProblem]:
    """Each of pydantic's errors as a problem at its field's line."""
    problems = []
    for err in exc.errors():
        loc = (
            *prefix,
            *(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))),
        )
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(problem_at(doc, tuple(loc), message))
    return problems


def yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def load_documents(directory: Path) -> tuple[list[LocatedDocument], list[ConfigProblem]]:
    """Every YAML file under ``directory``, parsed; a file that is not YAML is a problem."""
    docs: list[LocatedDocument] = []
    problems: list[ConfigProblem] = []
    for path in yaml_files(directory):
        try:
            docs.append(load_located(path))
        except yaml.YAMLError as exc:
            problems.append(yaml_problem(path, exc))
    return docs, problems
