"""``urbanlake serve``: the catalog API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from urbanlake.cli.app import app, console, fail, open_lake, settings
from urbanlake.cli.ingest import publish_table, refresh_catalog
from urbanlake.core.errors import UrbanLakeError
from urbanlake.web.strings import Strings


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="address to listen on (default: api.host)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default: api.port)")] = None,
    workers: Annotated[
        int | None, typer.Option(help="worker processes (default: api.workers)")
    ] = None,
    refresh: Annotated[bool, typer.Option(help="publish stale datasets before serving")] = True,
) -> None:
    """Serve the open-data portal (/) and the catalog API (/api/v1, docs at /api/v1/docs) until
    Ctrl-C."""
    import contextlib
    import os

    import uvicorn

    api = settings().api
    # The lake is opened here once, before any worker starts: a new project's catalog is created
    # by one process, and a lake that cannot be opened is one clear error, not one per worker.
    try:
        if api.web_strings:  # a broken translation is one clear error here, not one per worker
            Strings.load(settings().project_dir / api.web_strings)
        lake = open_lake()
        results = refresh_catalog(lake, None) if refresh else []
        lake.close()
    except UrbanLakeError as exc:
        fail(str(exc))
    if results:
        console.print(publish_table(results))
    os.environ["URBANLAKE_PROJECT"] = str(settings().project_dir)
    address = f"http://{host or api.host}:{port or api.port}"
    console.print(
        f"Open-data portal at {address}/  ·  API at {address}/api/v1/datasets  "
        f"(docs: {address}/api/v1/docs). Ctrl-C stops."
    )
    # uvicorn finishes open requests on Ctrl-C (or SIGTERM), then raises the interrupt again.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run("urbanlake.api.app:create_app", factory=True, host=host or api.host,
                port=port or api.port, workers=workers or api.workers, log_level="info")  # fmt: skip
