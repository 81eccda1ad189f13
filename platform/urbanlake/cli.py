"""``urbanlake <verb>``: the command line for publishers, analysts and operators."""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

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


# -- project ---------------------------------------------------------------------------------------


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


# -- ingest ----------------------------------------------------------------------------------------


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


# -- SQL -------------------------------------------------------------------------------------------


@app.command()
def sql(
    query: Annotated[str | None, typer.Argument(help="SQL; omit for an interactive shell")] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, csv, json or parquet")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write to this file")
    ] = None,
) -> None:
    """Query the lake: every table is <domain>.<table>; time travel with AT (VERSION => n)."""
    from urbanlake.sql_output import render

    if fmt not in ("table", "csv", "json", "parquet"):
        fail(f"unknown format '{fmt}'; valid: table, csv, json, parquet")
    try:
        lake = open_lake()
    except UrbanLakeError as exc:
        fail(str(exc))
    if query is None:
        from urbanlake.sql_output import shell

        shell(lake, console)
        return
    try:
        result = lake.query(query)
    except Exception as exc:
        fail(f"query failed: {exc}")
    render(result, fmt, output, console)


@app.command()
def tables() -> None:
    """Every table: rows, quarantined rows, last commit and how long ago."""
    lake = open_lake()
    now = datetime.now(UTC)
    table = Table(title="Tables")
    for column in ("table", "rows", "quarantined", "last commit", "freshness"):
        table.add_column(column, justify="right" if column in ("rows", "quarantined") else "left")
    for stat in lake.reader.table_stats():
        last = stat.last_commit
        age = humanize_age(now - last) if last else "never"
        table.add_row(
            stat.name,
            f"{stat.rows:,}",
            f"{stat.quarantined:,}",
            f"{last:%Y-%m-%d %H:%M:%S}" if last else "-",
            age,
        )
    console.print(table)


def humanize_age(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


@app.command()
def history(name: Annotated[str, typer.Argument(help="table as <domain>.<table>")]) -> None:
    """The table's snapshots, newest first, with row counts and the run that made each."""
    from urbanlake.lakehouse.records import TableRef

    try:
        lake = open_lake()
        ref = TableRef.parse(name)
        if not lake.reader.exists(ref):
            fail(f"no table {name}; `urbanlake tables` lists them")
        snapshots = lake.reader.snapshots(ref)
    except UrbanLakeError as exc:
        fail(str(exc))
    table = Table(title=f"History of {name}  (query one: SELECT … FROM {name} AT (VERSION => n))")
    for column in ("snapshot", "time", "rows", "added", "run"):
        table.add_column(column)
    for snap in snapshots:
        table.add_row(str(snap["snapshot_id"]), f"{snap['time']:%Y-%m-%d %H:%M:%S}", f"{snap.get('rows', 0):,}",
                      f"{snap.get('inserted', '-')}", str(snap.get("run_id", "-")))  # fmt: skip
    console.print(table)


@app.command()
def status() -> None:
    """Every dataset: rows, last commit, age against its freshness SLA (stale flagged), quality score."""
    from urbanlake.connectors.registry import load_configs
    from urbanlake.quality.report import dataset_status

    configs, _ = load_configs(settings().connectors_dir)
    lake = open_lake()
    table = Table(title="Datasets")
    for column in (
        "dataset",
        "rows",
        "quarantined",
        "last commit",
        "age",
        "max age",
        "fresh",
        "quality",
        "last passed",
    ):
        table.add_column(
            column, justify="right" if column in ("rows", "quarantined", "quality") else "left"
        )
    table.add_column("set aside", justify="right")  # payloads not decodable: `urbanlake replay`
    set_aside = lake.failed_payload_counts()
    for st in dataset_status(lake.reader, configs, settings()):
        fresh = (
            "-" if st.max_age is None else ("[red]STALE[/red]" if st.stale else "[green]ok[/green]")
        )
        table.add_row(
            st.name, f"{st.rows:,}", f"{st.quarantined:,}",
            f"{st.last_commit:%Y-%m-%d %H:%M:%S}" if st.last_commit else "never",
            humanize_age(st.age) if st.age is not None else "-",
            humanize_age(st.max_age).removesuffix(" ago") if st.max_age else "-", fresh,
            f"{st.quality_score:.0%}" if st.quality_score is not None else "-",
            f"{st.last_passed:%Y-%m-%d %H:%M:%S}" if st.last_passed else "-",
            str(set_aside.get(st.name, 0)),
        )  # fmt: skip
    console.print(table)


@app.command()
def quality(
    dataset: Annotated[
        str, typer.Argument(help="<domain>.<table>, or 'docs' to build the HTML Data Docs")
    ],
    runs: Annotated[int, typer.Option(help="how many recent runs the trend shows")] = 10,
) -> None:
    """The latest result of each expectation of a dataset and the trend over recent runs."""
    from urbanlake.quality.report import latest_results, trend

    lake = open_lake()
    if dataset == "docs":
        from urbanlake.quality.docs import build_docs

        try:
            index = build_docs(lake.reader, settings())
        except UrbanLakeError as exc:
            fail(str(exc))
        console.print(f"Data Docs written: {index}")
        return
    latest = latest_results(lake.reader, dataset)
    if not latest:
        fail(
            f"no quality results for {dataset}: does its connector have a quality suite, and has it run?"
        )
    table = Table(title=f"Quality of {dataset}: latest result per expectation")
    for column in (
        "expectation",
        "column",
        "result",
        "unexpected",
        "observed",
        "validated",
        "snapshot",
    ):
        table.add_column(column)
    for r in latest:
        unexpected = (
            "-"
            if r["unexpected_count"] is None
            else f"{r['unexpected_count']:,} ({r['unexpected_percent'] or 0:.2f}%)"
        )
        table.add_row(
            r["expectation"], r["column_name"] or "-", "[green]pass[/green]" if r["success"] else "[red]FAIL[/red]",
            unexpected, (r["observed_value"] or "-")[:40], f"{r['validated_at']:%Y-%m-%d %H:%M:%S}", str(r["snapshot_id"]),
        )  # fmt: skip
    console.print(table)
    history = Table(title="Trend over recent runs")
    for column in ("run", "validated", "batches", "passed", "failed", "rows quarantined"):
        history.add_column(column)
    for r in trend(lake.reader, dataset, runs):
        history.add_row(r["run_id"], f"{r['validated_at']:%Y-%m-%d %H:%M:%S}", str(r["batches"]), str(r["passed"]),
                        str(r["failed"]), f"{r['quarantined'] or 0:,}")  # fmt: skip
    console.print(history)


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
    """Serve the catalog API (/api/v1, OpenAPI docs at /api/v1/docs) until Ctrl-C."""
    import contextlib
    import os

    import uvicorn

    api = settings().api
    if refresh:
        try:
            lake = open_lake()
            results = refresh_catalog(lake, None)
            lake.close()
        except UrbanLakeError as exc:
            fail(str(exc))
        if results:
            console.print(publish_table(results))
    os.environ["URBANLAKE_PROJECT"] = str(settings().project_dir)
    address = f"http://{host or api.host}:{port or api.port}"
    console.print(
        f"Catalog API at {address}/api/v1/datasets  (docs: {address}/api/v1/docs). Ctrl-C stops."
    )
    # uvicorn finishes open requests on Ctrl-C (or SIGTERM), then raises the interrupt again.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run("urbanlake.api.app:create_app", factory=True, host=host or api.host,
                port=port or api.port, workers=workers or api.workers, log_level="info")  # fmt: skip


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


# -- API keys --------------------------------------------------------------------------------------

keys_app = typer.Typer(
    help="API keys for partners and internal users: create (shown once), list, revoke.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


def key_store() -> Any:
    from urbanlake.catalog.keys import KeyStore

    try:
        return KeyStore(settings())
    except UrbanLakeError as exc:
        fail(str(exc))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="who the key is for, e.g. transit-app-vendor")],
    tier: Annotated[str, typer.Option(help="partner or internal")],
    expires: Annotated[
        str | None, typer.Option(help="lifetime, e.g. 90d or 12h (default: never expires)")
    ] = None,
) -> None:
    """Make a key and print it once: only a salted hash of it is kept."""
    from urbanlake.core.spec import parse_duration

    lifetime = None
    if expires is not None:
        try:
            lifetime = parse_duration(expires)
        except ValueError as exc:
            fail(f"--expires: {exc}")
    store = key_store()
    try:
        key = store.create(name, tier, lifetime)
    except UrbanLakeError as exc:
        fail(str(exc))
    finally:
        store.close()
    until = f", expires {datetime.now(UTC) + lifetime:%Y-%m-%d %H:%M} UTC" if lifetime else ""
    console.print(f"Key [bold]{name}[/bold] ({tier}{until}):", highlight=False)
    console.print(key, highlight=False, markup=False, soft_wrap=True)
    console.print(
        "Keep it now: it is not stored and will not be shown again. Send it as "
        "'X-API-Key: <key>' or 'Authorization: Bearer <key>'.",
        highlight=False,
    )


@keys_app.command("list")
def keys_list() -> None:
    """Every key: tier, created, expires, last used, requests, revoked (never the key)."""
    store = key_store()
    try:
        found = store.list_keys()
    except UrbanLakeError as exc:
        fail(str(exc))
    finally:
        store.close()

    def when(moment: datetime | None) -> str:
        return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"

    table = Table(title="API keys")
    for column in ("name", "tier", "created", "expires", "last used", "requests", "revoked"):
        table.add_column(column, justify="right" if column == "requests" else "left")
    for key in found:
        table.add_row(key.name, key.tier, when(key.created), when(key.expires),
                      when(key.last_used), f"{key.requests:,}", when(key.revoked))  # fmt: skip
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key; API workers refuse it within access.key_cache_seconds."""
    store = key_store()
    try:
        store.revoke(name)
    except UrbanLakeError as exc:
        fail(str(exc))
    finally:
        store.close()
    wait = settings().access.key_cache_seconds
    console.print(
        f"Revoked [bold]{name}[/bold]; running API workers refuse it within {wait:g} s.",
        highlight=False,
    )


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
