"""``urbanlake demo``: a seeded sample city — files and a local HTTP feed — ingested end to end.

The data is generated into ``demo-data/`` in the project; the HTTP feed runs on 127.0.0.1 for
the length of the demo and its address reaches the configs through ``URBANLAKE_DEMO_URL``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from rich.console import Console
from rich.table import Table

from urbanlake.core.settings import Settings
from urbanlake.sandbox.server import SandboxServer

SEED = 2026
START = datetime(2026, 11, 1, tzinfo=UTC)
CENTRE = (59.9139, 10.7522)  # the sample city sits where Oslo is; the data is invented


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_files(folder: Path, seed: int = SEED) -> dict[str, int]:
    """Write the sample city's files; returns rows written per dataset (bad rows included)."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    # Waste: two days of bin fill levels as CSV, one file a day, with two faulty lines.
    bins = [
        (f"bin-{i:03d}", CENTRE[0] + rng.uniform(-0.03, 0.03), CENTRE[1] + rng.uniform(-0.05, 0.05))
        for i in range(40)
    ]
    waste = folder / "waste"
    waste.mkdir(parents=True, exist_ok=True)
    total = 0
    for day in range(2):
        lines = ["bin_id,measured_at,fill_level,latitude,longitude"]
        for hour in range(0, 24, 2):
            moment = START + timedelta(days=day, hours=hour)
            for bin_id, lat, lon in bins:
                lines.append(
                    f"{bin_id},{_iso(moment)},{rng.uniform(0, 100):.1f},{lat:.5f},{lon:.5f}"
                )
        if day == 1:
            lines.append("bin-999,2026-11-02T23:00:00Z,sensor-error,59.9,10.7")  # unparsable value
            lines.append("bin-998,2026-11-02T23:00:00Z")  # truncated line
            # A fill level over 100 %: a well-formed line that the quality suite quarantines.
            lines.append("bin-007,2026-11-02T23:00:00Z,130.0,59.91000,10.75000")
        (waste / f"bin_fill_{(START + timedelta(days=day)):%Y-%m-%d}.csv").write_text(
            "\n".join(lines) + "\n"
        )
        total += len(lines) - 1
    counts["waste.bin_fill_levels"] = total
    # Energy: hourly readings of building meters as JSON Lines.
    energy = folder / "energy"
    energy.mkdir(parents=True, exist_ok=True)
    meters = [f"meter-{i:02d}" for i in range(12)]
    records = [
        {"meter_id": m, "read_at": _iso(START + timedelta(hours=h)), "kwh": round(rng.uniform(5, 60), 3),
         "building": {"name": f"School {i}", "district": rng.choice(["north", "south", "centre"])}}
        for h in range(48) for i, m in enumerate(meters)
    ]  # fmt: skip
    (energy / "meter_readings.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    counts["energy.meter_readings"] = len(records)
    # Lighting: the street-light inventory as one JSON document with the records nested.
    lighting = folder / "lighting"
    lighting.mkdir(parents=True, exist_ok=True)
    lights = [
        {"light_id": f"SL-{i:04d}", "street": rng.choice(["Storgata", "Kirkeveien", "Parkveien", "Havnegata"]),
         "lamp": rng.choice(["LED", "HPS", "LED"]), "watts": rng.choice([35, 50, 70, 100]),
         "installed": f"20{rng.randint(10, 25)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
         "lat": round(CENTRE[0] + rng.uniform(-0.03, 0.03), 5), "lon": round(CENTRE[1] + rng.uniform(-0.05, 0.05), 5)}
        for i in range(300)
    ]  # fmt: skip
    (lighting / "streetlights.json").write_text(
        json.dumps({"meta": {"city": "Sample City"}, "data": {"lights": lights}})
    )
    counts["lighting.streetlights"] = len(lights)
    return counts


def parking_records(seed: int = SEED) -> list[dict[str, Any]]:
    rng = random.Random(seed + 1)
    garages = [("P-Central", 420), ("P-Harbour", 260), ("P-Station", 510), ("P-Museum", 120)]
    return [
        {"garage_id": g, "observed_at": _iso(START + timedelta(minutes=15 * q)), "capacity": cap,
         "free": rng.randint(0, cap)}
        for q in range(96) for g, cap in garages
    ]  # fmt: skip


class ParkingFeed(BaseHTTPRequestHandler):
    """A paginated JSON API: ``/parking?page_size=100`` with a ``next`` link in every page."""

    records: list[dict[str, Any]] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path != "/parking":
            self.send_error(404)
            return
        size = int(query.get("page_size", ["100"])[0])
        cursor = int(query.get("cursor", ["0"])[0])
        since = query.get("since", [None])[0]
        rows = [r for r in self.records if since is None or r["observed_at"] > since]
        page = rows[cursor : cursor + size]
        more = cursor + size < len(rows)
        base = f"http://{self.headers['Host']}/parking?page_size={size}" + (
            f"&since={since}" if since else ""
        )
        body = json.dumps(
            {"items": page, "next": f"{base}&cursor={cursor + size}" if more else None}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def serve_parking(port: int = 0) -> ThreadingHTTPServer:
    ParkingFeed.records = parking_records()
    server = ThreadingHTTPServer(("127.0.0.1", port), ParkingFeed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


EXAMPLE_QUERY = """\
SELECT date_trunc('day', measured_at) AS day,
       count(DISTINCT bin_id)          AS bins,
       round(avg(fill_level), 1)       AS avg_fill_pct,
       count(*) FILTER (WHERE fill_level > 80) AS readings_over_80pct
FROM waste.bin_fill_levels
GROUP BY ALL ORDER BY day"""


def run_demo(settings: Settings, console: Console, serve: bool = False) -> int:
    """Generate, serve, ingest every connector, publish the catalog, print what was loaded and an
    example query; with ``serve``, then serve the catalog API until Ctrl-C."""
    from urbanlake.catalog.checks import catalog_entries
    from urbanlake.catalog.publish import publish
    from urbanlake.cli.ingest import publish_table, summary_table
    from urbanlake.connectors.registry import load_configs
    from urbanlake.lakehouse.lake import Lake
    from urbanlake.pipeline.run import ingest
    from urbanlake.quality.report import dataset_status
    from urbanlake.sql_output import to_rich

    if not any(settings.connectors_dir.rglob("*.yaml")):
        console.print(
            f"[red]error:[/red] the demo ingests the bundled city's connectors, and "
            f"{settings.connectors_dir} has none: run it from the UrbanLake checkout (`make demo`), "
            "or copy the checkout's connectors/, quality/ and catalog/ folders into the project",
            highlight=False,
        )
        return 1
    folder = settings.project_dir / "demo-data"
    counts = generate_files(folder)
    server = serve_parking()
    os.environ["URBANLAKE_DEMO_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
    # The sandbox city's transport feeds (GTFS, GTFS-Realtime, GBFS, traffic) on loopback.
    sandbox = SandboxServer(port=0).start()
    os.environ["URBANLAKE_SANDBOX_URL"] = sandbox.url
    console.print(
        f"[bold]Sample city[/bold]: files in {folder}, parking API at {os.environ['URBANLAKE_DEMO_URL']}, "
        f"transport feeds at {sandbox.url}"
    )
    for dataset, rows in counts.items():
        console.print(f"  {dataset}: {rows:,} records generated")
    try:
        configs, problems = load_configs(settings.connectors_dir)
        for problem in problems:
            console.print(f"[red]{problem}[/red]")
        if problems:
            return 1
        with Lake.open(settings) as lake:
            summaries = []
            for config in configs:
                console.print(f"ingesting {config.table_name} …")
                summaries.append(ingest(lake, config, settings))
            console.print(summary_table(summaries))
            table = Table(title="Loaded datasets")
            for column in ("table", "rows", "quarantined", "quality", "freshness SLA"):
                table.add_column(column, justify="left" if column == "table" else "right")
            for st in dataset_status(lake.reader, configs, settings):
                table.add_row(st.name, f"{st.rows:,}", f"{st.quarantined:,}",
                              f"{st.quality_score:.0%}" if st.quality_score is not None else "-",
                              "STALE" if st.stale else "ok" if st.max_age else "-")  # fmt: skip
            console.print(table)
            console.print('[bold]Example query[/bold] (`urbanlake sql "…"`):')
            console.print(EXAMPLE_QUERY, highlight=False, markup=False)
            console.print(to_rich(lake.query(EXAMPLE_QUERY)))
            published = publish(lake, catalog_entries(settings))
            console.print(publish_table(published))
            console.print(
                "Next: `urbanlake tables`, `urbanlake history waste.bin_fill_levels`, `urbanlake sql`"
            )
            failed = [s.connector for s in summaries if s.status != "succeeded"]
            failed += [p.dataset for p in published if p.status == "failed"]
            for s in summaries:
                if s.status != "succeeded":
                    console.print(f"[red]{s.connector} failed:[/red] {s.error}")
        if serve and not failed:
            serve_api(settings, console)
        return 1 if failed else 0
    finally:
        server.shutdown()
        sandbox.stop()


def serve_api(settings: Settings, console: Console) -> None:
    """Serve the portal and the catalog API on ``api.host:api.port`` until Ctrl-C (the demo feeds
    keep running)."""
    import uvicorn

    from urbanlake.api.app import create_app

    base = f"http://{settings.api.host}:{settings.api.port}"
    console.print("[bold]The open-data portal and its API are up[/bold] (Ctrl-C stops):")
    for path, what in (("/", "the portal: search, look at, chart, map and download the datasets"),
                       ("/status", "data health: every dataset's freshness and quality"),
                       ("/api/v1/datasets", "search the datasets (API)"),
                       ("/api/v1/docs", "interactive API docs"),
                       ("/api/v1/datasets/bins-above-80/records", "bins over 80 % full"),
                       ("/api/v1/datasets/bin-fill-levels/export?format=csv", "a streamed CSV export")):  # fmt: skip
        console.print(f"  {base}{path}  {what}", highlight=False)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.api.host,
            port=settings.api.port,
            log_level="warning",
        )
    )
    # uvicorn finishes open requests on Ctrl-C, then raises the interrupt again for the caller.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    console.print("API stopped.")
