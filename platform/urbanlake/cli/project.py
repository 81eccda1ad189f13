"""``urbanlake init``, ``check``, ``demo`` and ``sandbox``: a city project and its sample city."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from urbanlake.cli.app import app, console, errors, fail, settings
from urbanlake.core.errors import ConfigError, UrbanLakeError


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="folder to create the project in")],
) -> None:
    """Scaffold a city project: urbanlake.yaml, connectors/, quality/, catalog/ with commented examples."""
    from urbanlake.project import scaffold

    try:
        created = scaffold(directory)
    except UrbanLakeError as exc:
        fail(str(exc))
    for path in created:
        console.print(f"  created {path}")
    console.print(f"[green]Project ready.[/green] Next: cd {directory} && urbanlake check")


@app.command()
def check() -> None:
    """Validate every connector config and catalog entry; every problem at once, with file:line."""
    from urbanlake.catalog.checks import check_catalog
    from urbanlake.connectors.registry import load_configs
    from urbanlake.quality.suite import check_suites

    entries: list[Any] = []
    try:
        configs, problems = load_configs(settings().connectors_dir)
        problems += check_suites(settings(), configs)
        entries, found = check_catalog(settings(), configs)
        problems += found
    except ConfigError as exc:
        problems, configs = exc.problems, []
    for problem in sorted(problems, key=lambda p: (p.file, p.line or 0)):
        errors.print(str(problem), highlight=False, markup=False, soft_wrap=True)
    if problems:
        errors.print(
            f"[red]{len(problems)} problem(s)[/red] in {settings().connectors_dir} and {settings().catalog_dir}"
        )
        raise typer.Exit(1)
    console.print(
        f"[green]ok[/green]: {len(configs)} connector config(s) and {len(entries)} catalog entr"
        f"{'y' if len(entries) == 1 else 'ies'} valid"
    )


@app.command()
def demo(
    serve: Annotated[
        bool, typer.Option(help="serve the catalog API afterwards until Ctrl-C (--no-serve: exit)")
    ] = True,
) -> None:
    """Generate a seeded sample city, ingest it, publish its catalog, then serve the API."""
    from urbanlake.demo import run_demo

    code = run_demo(settings(), console, serve=serve)
    raise typer.Exit(code)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (0: any free port)")] = 8780,
    seed: Annotated[int, typer.Option(help="the city's seed: same seed, same city")] = 2026,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="switch a fault on: http503[:N], truncated_pb, duplicate_entities, "
            "impossible_position (repeatable)"
        ),
    ] = None,
) -> None:
    """Serve a seeded fictional city over GTFS, GTFS-Realtime, GBFS and HTTP until Ctrl-C."""
    import contextlib

    from urbanlake.sandbox.server import PATHS, SandboxServer, parse_faults

    try:
        faults = parse_faults(fault or [])
        server = SandboxServer(seed=seed, host=host, port=port, faults=faults)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    console.print(f"[bold]Sandbox city[/bold] (seed {seed}) at {server.url}")
    for path, what in PATHS.items():
        console.print(f"  {server.url}{path}  {what}", highlight=False)
    if faults:
        console.print(f"  faults on: {', '.join(faults)}")
    console.print(
        "Configs in connectors/transport read URBANLAKE_SANDBOX_URL (default "
        "http://127.0.0.1:8780). Ctrl-C stops."
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
