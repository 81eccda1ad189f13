"""The documented traffic-speed example of the `http` type: naive local times stored in UTC."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import LakeTarget
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.lake import Lake
from urbanlake.pipeline.run import ingest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "connectors" / "http.md"
SEGMENTS = [
    {"segment_id": "S-101", "speed": 31.5, "travel_time": 95, "data_as_of": "2026-11-28 08:15:00"},
    {"segment_id": "S-102", "speed": 12.0, "travel_time": 240, "data_as_of": "2026-11-28 08:15:00"},
]


class Speeds(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"segments": SEGMENTS}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Speeds)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def documented_example() -> dict[str, Any]:
    text = DOCS.read_text()
    block = text[text.index("## Example: road-segment speeds") :]
    loaded: dict[str, Any] = yaml.safe_load(re.search(r"```yaml\n(.*?)```", block, re.S).group(1))  # type: ignore[union-attr]
    return loaded


def test_traffic_example_reads_local_times_as_utc(
    local_lake: LakeTarget, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAFFIC_API_KEY", "test-key-123")
    example = documented_example()
    example["source"]["url"] = f"{server}/api/segments/speeds"
    config = ConnectorConfig.model_validate(example)
    settings = local_lake.settings()
    with Lake.open(settings) as lake:
        assert ingest(lake, config, settings).rows_committed == 2
        assert ingest(lake, config, settings).rows_committed == 0  # the same readings again
        row = lake.query(
            "SELECT strftime(data_as_of AT TIME ZONE 'UTC', '%H:%M') AS utc, travel_time "
            "FROM transport.traffic_speeds WHERE segment_id = 'S-101'"
        ).to_pylist()[0]
    assert row == {"utc": "13:15", "travel_time": 95}  # 08:15 in New York in November is 13:15 UTC
