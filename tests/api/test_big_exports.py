"""Exports of a 10,000,000-row dataset stream in every format while the server's memory stays
under 500 MB (read from /proc while the download runs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import ApiServer, new_project, start_server
from urbanlake.catalog.checks import catalog_entries
from urbanlake.catalog.publish import publish
from urbanlake.core.settings import load_settings
from urbanlake.lakehouse.lake import Lake

ROWS = 10_000_000
RSS_LIMIT_MB = 500
ENTRY = """\
name: smart-meter
domain: energy
title: Smart meter readings
publisher: {name: Test Utility}
license: CC-BY-4.0
primary_key: [meter_id, ts]
geometry: {lon: lon, lat: lat}
source: {table: energy.smart_meter}
"""


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    project = new_project(tmp_path_factory.mktemp("big") / "city", with_city=False)
    (project / "catalog" / "energy").mkdir(parents=True)
    (project / "catalog" / "energy" / "smart-meter.yaml").write_text(ENTRY)
    settings = load_settings(project, env={})
    with Lake.open(settings) as lake:
        lake.con.execute("CREATE SCHEMA energy")
        lake.con.execute(
            f"""CREATE TABLE energy.smart_meter AS
            SELECT 'meter-' || lpad(CAST(i % 10000 AS VARCHAR), 5, '0') AS meter_id,
                   (['North', 'South', 'East', 'West', 'Centre', 'Harbour', 'Hills', 'Airport',
                     'Old Town', 'Riverside', 'Park', 'Docks'])[1 + i % 12] AS district,
                   TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_minutes(CAST(i // 10000 AS BIGINT) * 15) AS ts,
                   round((i * 7919 % 1000) / 100.0, 3) AS kwh,
                   230 + (i % 17) / 10.0 AS voltage,
                   CASE WHEN i % 997 = 0 THEN 'estimated' ELSE 'measured' END AS status,
                   59.85 + (i % 10000) / 100000.0 AS lat, 10.65 + (i % 7777) / 40000.0 AS lon
            FROM range({ROWS}) t(i)"""
        )
        [result] = publish(lake, catalog_entries(settings))
        assert result.rows == ROWS
    server = start_server(project)
    yield server
    server.stop()


def download(server: ApiServer, fmt: str) -> tuple[int, int, float]:
    """(bytes, newlines, peak server RSS in MB) of one full export."""
    peak = server.rss_mb()
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.rss_mb())
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    size = lines = 0
    try:
        with httpx.stream("GET", f"{server.api}/datasets/smart-meter/export", params={"format": fmt},
                          timeout=600) as response:  # fmt: skip
            assert response.status_code == 200
            for chunk in response.iter_bytes(1 << 20):
                size += len(chunk)
                lines += chunk.count(b"\n")
    finally:
        done.set()
        watcher.join()
    return size, lines, peak


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "geojson", "parquet"])
def test_ten_million_rows_stream_in_constant_memory(big: ApiServer, fmt: str) -> None:
    started = time.perf_counter()
    size, lines, peak = download(big, fmt)
    seconds = time.perf_counter() - started
    print(
        f"{fmt}: {size / 1e6:,.0f} MB in {seconds:.1f} s ({size / 1e6 / seconds:,.0f} MB/s), peak RSS {peak:,.0f} MB"
    )
    assert peak < RSS_LIMIT_MB, f"{fmt}: server RSS reached {peak:.0f} MB"
    expected_lines = {"csv": ROWS + 1, "jsonl": ROWS, "geojson": ROWS + 2}
    if fmt in expected_lines:
        assert lines == expected_lines[fmt]
    else:
        assert size > 10_000_000


def test_big_page_deep_in_the_dataset(big: ApiServer) -> None:
    first = httpx.get(
        f"{big.api}/datasets/smart-meter/records",
        params={"district": "North", "limit": 100},
        timeout=120,
    ).json()
    assert first["total"] == ROWS // 12 + (1 if ROWS % 12 else 0)
    deep = httpx.get(first["next"], timeout=120).json()
    assert len(deep["rows"]) == 100 and deep["rows"][0]["meter_id"] >= first["rows"][-1]["meter_id"]
