"""The ``urbanlake`` application: global options, the project's settings, the consoles, and the
entry point that renders every error once (secrets masked)."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from urbanlake import __version__
from urbanlake.core.errors import ConfigError, UrbanLakeError
from urbanlake.core.secrets import mask, mask_logs
from urbanlake.core.settings import Settings, load_settings

app = typer.Typer(
    name="urbanlake",
    help="City feeds into a DuckDB + Parquet lakehouse: check configs, ingest, query.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, files) gets a wide fixed width so tables are not squeezed to 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=160)
errors = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)
_state: dict[str, Any] = {}

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        help="city project folder (default: $URBANLAKE_PROJECT or the current folder)",
    ),
]


@app.callback()
def main_options(
    project: ProjectOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log more")] = False,
    version: Annotated[bool, typer.Option("--version", help="print the version and exit")] = False,
) -> None:
    if version:
        console.print(f"urbanlake {__version__}")
        raise typer.Exit()
    _state.clear()
    _state["project"] = project
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    mask_logs()


def settings() -> Settings:
    if "settings" not in _state:
        _state["settings"] = load_settings(_state.get("project"))
    loaded: Settings = _state["settings"]
    return loaded


def open_lake() -> Any:
    from urbanlake.lakehouse.lake import Lake

    return Lake.open(settings())


def fail(message: str, code: int = 1) -> None:
    errors.print(f"[red]error:[/red] {mask(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        for problem in sorted(exc.problems, key=lambda p: (p.file, p.line or 0)):
            errors.print(str(problem), highlight=False, markup=False, soft_wrap=True)
        sys.exit(1)
    except UrbanLakeError as exc:
        errors.print(f"error: {mask(str(exc))}", highlight=False, markup=False)
        sys.exit(1)
    except Exception:
        # A bug's traceback is worth showing, but never with a secret in it.
        errors.print(mask(traceback.format_exc()), highlight=False, markup=False)
        sys.exit(1)
