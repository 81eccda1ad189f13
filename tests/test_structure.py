"""Structural rules that keep the house honest: import directions, docs for every connector
type and setting, where DuckDB and HTTP clients may be imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from urbanlake.connectors.registry import connector_types

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "platform" / "urbanlake"

# Each layer may import only the layers listed (and itself); see ARCHITECTURE.md §2.
ALLOWED = {
    "core": {"core"},
    "lakehouse": {"core", "lakehouse"},
    "connectors": {"core", "connectors"},
    "quality": {"core", "quality", "lakehouse"},
    "pipeline": {"core", "connectors", "quality", "lakehouse", "pipeline"},
    "catalog": {"core", "connectors", "quality", "lakehouse", "catalog"},
    # A request crosses api → catalog → lakehouse reader, and nothing else.
    "api": {"core", "catalog", "api", "web"},
    # The pages for people: the same catalog actions as the API, rendered as HTML.
    "web": {"core", "catalog", "web"},
}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (imports for type hints only)."""
    nodes: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            stack.extend(node.orelse)
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def python_files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_import_directions(layer: str) -> None:
    for path in python_files(layer):
        for module in imports_of(path):
            parts = module.split(".")
            if (
                parts[0] == "urbanlake"
                and len(parts) > 1
                and parts[1] in {*ALLOWED, "cli", "api", "catalog"}
            ):
                assert parts[1] in ALLOWED[layer], f"{path.relative_to(ROOT)} imports {module}"


def test_duckdb_only_in_the_lakehouse() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "lakehouse" in path.parts:
            continue
        modules = {m.split(".")[0] for m in imports_of(path)}
        assert "duckdb" not in modules, (
            f"{path.relative_to(ROOT)} imports duckdb outside lakehouse/"
        )


def test_http_clients_only_in_connectors() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "connectors" in path.parts or path.name == "demo.py":
            continue
        modules = {m.split(".")[0] for m in imports_of(path)}
        assert not modules & {"httpx", "requests", "urllib3"}, (
            f"{path.relative_to(ROOT)} imports an HTTP client"
        )


def test_no_package_directly_in_platform() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists(), "platform/ must stay a source root"


@pytest.mark.parametrize("name", sorted(connector_types()))
def test_every_connector_type_has_docs_and_a_valid_example(name: str) -> None:
    cls = connector_types()[name]
    assert (ROOT / "docs" / "connectors" / f"{name}.md").exists(), (
        f"docs/connectors/{name}.md is missing"
    )
    cls.spec_model.model_validate(cls.example)
    assert cls.example["type"] == name == cls.type_name
    schema = cls.spec_model.model_json_schema()
    assert schema["type"] == "object" and "properties" in schema


def test_the_api_process_never_imports_great_expectations() -> None:
    import subprocess
    import sys

    code = "import sys, urbanlake.api.app; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
