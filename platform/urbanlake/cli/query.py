"""``urbanlake sql``, ``tables``, ``history``, ``status`` and ``quality``: reading the lake."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from urbanlake.cli.app import app, console, fail, open_lake, settings
from urbanlake.core.errors import UrbanLakeError


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
