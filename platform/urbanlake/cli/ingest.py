"""``urbanlake ingest``, ``replay`` and ``publish``: data into the lake, curated versions out."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from urbanlake.cli.app import app, console, errors, fail, open_lake, settings
from urbanlake.core.errors import ConfigError, UrbanLakeError
from urbanlake.core.secrets import mask


def _select(names: list[str], everything: bool) -> list[Any]:
    from urbanlake.connectors.registry import load_configs

    configs, problems = load_configs(settings().connectors_dir)
    if problems:
        raise ConfigError(problems)
    if everything:
        return configs
    if not names:
        fail("name connectors to ingest (domain.name or name) or pass --all")
    chosen = []
    for name in names:
        match = [c for c in configs if name in (c.table_name, c.name)]
        if not match:
            fail(f"no connector '{name}'; known: {', '.join(c.table_name for c in configs)}")
        chosen.extend(match)
    return chosen


@app.command()
def ingest(
    names: Annotated[
        list[str] | None, typer.Argument(help="connectors to run, as domain.name or name")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="run every connector")] = False,
) -> None:
    """Fetch, keep raw, decode, check and commit: one run per connector, with a summary table."""
    from urbanlake.pipeline.run import RunSummary
    from urbanlake.pipeline.run import ingest as run_ingest

    try:
        configs = _select(names or [], all_)
        lake = open_lake()
    except UrbanLakeError as exc:
        fail(str(exc))
    summaries: list[RunSummary] = []
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    ) as progress:
        for config in configs:
            task = progress.add_task(config.table_name)

            def report(s: RunSummary, task: Any = task) -> None:
                progress.update(
                    task,
                    description=f"{s.connector}: {s.payloads} payload(s), {s.rows_in:,} rows in, "
                    f"{s.rows_committed:,} committed, {s.rows_quarantined:,} quarantined",
                )

            summaries.append(run_ingest(lake, config, settings(), report))
            progress.remove_task(task)
    fed = {s.connector for s in summaries if s.rows_committed}
    published = refresh_catalog(lake, fed) if fed else []
    lake.close()
    console.print(summary_table(summaries))
    if published:
        console.print(publish_table(published))
    print_failures(summaries)
    if any(s.status == "failed" for s in summaries):
        raise typer.Exit(1)


def print_failures(summaries: list[Any]) -> None:
    """Each failure of each run on its own line: every set-aside payload is named."""
    from rich.markup import escape

    for s in summaries:
        for failure in s.failures or ([s.error] if s.error else []):
            errors.print(
                f"[red]{s.connector}[/red]: {escape(mask(failure))}",
                highlight=False,
                soft_wrap=True,
            )
        if s.payloads_held:
            errors.print(f"[yellow]{s.connector}[/yellow]: {s.payloads_held} payload(s) fetched "
                         "again are still set aside (`urbanlake replay --failed`)", highlight=False)  # fmt: skip


@app.command()
def replay(
    names: Annotated[
        list[str] | None, typer.Argument(help="connectors whose kept payloads to decode again")
    ] = None,
    payload: Annotated[
        str | None, typer.Option("--payload", help="one payload: its sha256, or a prefix of it")
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="only the payloads set aside (undecodable)")
    ] = False,
) -> None:
    """Decode kept payloads again from the raw zone, after a config or the code was fixed."""
    from urbanlake.pipeline.run import Ingestion, RunSummary

    if not names and payload is None and not failed:
        fail("name connectors, or pass --payload ID or --failed")
    try:
        configs = _select(names or [], everything=not names)
        lake = open_lake()
    except UrbanLakeError as exc:
        fail(str(exc))
    status = "failed" if failed else None
    work = [(c, lake.payload_records(c.table_name, status=status, sha256=payload)) for c in configs]
    if payload is not None:
        found = {r["sha256"] for _, records in work for r in records}
        if not found:
            fail(
                f'no kept payload {payload}; `urbanlake sql "SELECT * FROM platform.payloads"` lists them'
            )
        if len(found) > 1:
            fail(f"{payload} matches {len(found)} payloads; give more of its sha256")
    summaries: list[RunSummary] = []
    for config, records in work:
        if not config.table.primary_key and status is None:
            # Without a key, rows already loaded cannot be recognised: they would load twice.
            loaded = [r for r in records if r["status"] != "failed"]
            if loaded:
                errors.print(f"[yellow]{config.table_name}[/yellow]: {len(loaded)} loaded payload(s) "
                             "not replayed: the table has no primary key", highlight=False)  # fmt: skip
            records = [r for r in records if r["status"] == "failed"]
        if records:
            summaries.append(Ingestion(lake, config, settings()).replay(records))
    if not summaries:
        lake.close()
        console.print("nothing to replay")
        return
    fed = {s.connector for s in summaries if s.rows_committed}
    published = refresh_catalog(lake, fed) if fed else []
    lake.close()
    console.print(summary_table(summaries, title="Replay summary"))
    if published:
        console.print(publish_table(published))
    print_failures(summaries)
    if any(s.status == "failed" for s in summaries):
        raise typer.Exit(1)


def refresh_catalog(lake: Any, tables: set[str] | None) -> list[Any]:
    """New versions of the curated datasets that ``tables`` feed (all, when None)."""
    from urbanlake.catalog.checks import catalog_entries
    from urbanlake.catalog.publish import publish

    try:
        entries = catalog_entries(settings())
    except ConfigError as exc:
        # The data is committed either way; a broken entry must not hide that.
        errors.print(f"[yellow]catalog not refreshed[/yellow] ({len(exc.problems)} problem(s); "
                     "`urbanlake check` lists them)")  # fmt: skip
        return []
    if not entries:
        return []
    # A multi-table connector (GTFS, GBFS) feeds <name>_<part> tables.
    fed = None
    if tables is not None:
        fed = {str(t) for t in lake.reader.table_names()
               if any(str(t) == n or str(t).startswith(f"{n}_") for n in tables)}  # fmt: skip
    return publish(lake, entries, tables=fed)


def publish_table(published: list[Any]) -> Table:
    table = Table(title="Catalog")
    for column in ("dataset", "status", "version", "rows", "detail"):
        table.add_column(column, justify="right" if column in ("version", "rows") else "left")
    for p in published:
        colour = {"failed": "red", "waiting": "yellow"}.get(p.status, "green")
        table.add_row(p.dataset, f"[{colour}]{p.status}[/{colour}]", str(p.version or "-"),
                      f"{p.rows:,}" if p.rows is not None else "-", p.detail)  # fmt: skip
    return table


def summary_table(summaries: list[Any], title: str = "Ingest summary") -> Table:
    table = Table(title=title)
    for column in (
        "connector",
        "status",
        "payloads",
        "set aside",
        "rows in",
        "committed",
        "quarantined",
        "duplicate",
        "bytes",
        "seconds",
    ):
        table.add_column(column, justify="left" if column in ("connector", "status") else "right")
    for s in summaries:
        colour = "green" if s.status == "succeeded" else "red"
        table.add_row(s.connector, f"[{colour}]{s.status}[/{colour}]", str(s.payloads),
                      str(s.payloads_failed), f"{s.rows_in:,}",
                      f"{s.rows_committed:,}", f"{s.rows_quarantined:,}", f"{s.rows_duplicate:,}",
                      f"{s.bytes:,}", f"{s.seconds:.2f}")  # fmt: skip
    return table


@app.command()
def publish(
    names: Annotated[
        list[str] | None, typer.Argument(help="datasets to refresh (default: all)")
    ] = None,
    force: Annotated[bool, typer.Option(help="make a new version even if nothing changed")] = False,
) -> None:
    """Refresh the curated datasets: materialize stale SQL models, record new versions."""
    from urbanlake.catalog.checks import catalog_entries
    from urbanlake.catalog.publish import publish as publish_entries

    try:
        entries = catalog_entries(settings())
        known = {e.name for e in entries}
        for name in names or []:
            if name not in known:
                fail(
                    f"no dataset '{name}' in {settings().catalog_dir}; known: {', '.join(sorted(known))}"
                )
        lake = open_lake()
    except UrbanLakeError as exc:
        fail(str(exc))
    with errors.status("publishing …") as status:
        results = publish_entries(lake, entries, names or None, force,
                                  progress=lambda p: status.update(f"published {p.dataset}"))  # fmt: skip
    lake.close()
    console.print(publish_table(results))
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)
