"""One conformance suite over every registered connector type.

For each type: its spec exports a strict JSON Schema; its example validates and an unknown key
fails; a fetch from a local source decodes to the same Arrow schema twice, and that schema is
what an ingest commits; and a secret given to the source reaches no log and no platform table.

Every type needs a local source in ``LOCAL_SOURCES``: a newly registered type (built in or
through the ``urbanlake.connectors`` entry points) without one fails here, so that no type ships
without being run against a real server and a real lake.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pytest
import yaml
from pydantic import ValidationError

from tests.conftest import LakeTarget
from urbanlake.connectors.base import ConnectorContext, TablePart
from urbanlake.connectors.registry import build_connector, connector_types, load_configs
from urbanlake.core.errors import ConfigProblem
from urbanlake.core.settings import Settings
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.lake import Lake
from urbanlake.lakehouse.records import QUARANTINE_SUFFIX, TableRef
from urbanlake.lakehouse.schema import PLATFORM, PLATFORM_TABLES
from urbanlake.pipeline.run import ingest
from urbanlake.sandbox import SandboxServer
from urbanlake.sandbox.city import ZONE

TYPES = sorted(connector_types())
DOMAIN, NAME = "conformance", "feed"
# A Wednesday morning in the sandbox city: every route runs, so no realtime feed is empty. The
# second fetch is made in the small hours, when no trip runs and the vehicle feed is empty: the
# schema must not depend on what the feed happens to hold.
MORNING = datetime(2026, 3, 4, 8, 15, tzinfo=ZONE).astimezone(UTC)
SMALL_HOURS = datetime(2026, 3, 5, 3, 0, tzinfo=ZONE).astimezone(UTC)
# Distinctive values, so that finding one anywhere can only mean it leaked.
HEADER_SECRET = ("CONFORMANCE_SECRET", "s3cr3t-value-4242")
QUERY_SECRET = ("CONFORMANCE_QUERY_SECRET", "s3cr3t-query-4242")
HEADER_REF, QUERY_REF = f"${{{HEADER_SECRET[0]}}}", f"${{{QUERY_SECRET[0]}}}"
SECRET_HEADER_NAME = "X-Api-Key"
UNKNOWN_KEY = "surely_not_a_source_field"

BINS_CSV = """bin_id,street,fill_level,measured_at
B-001,Storgata 1,0.42,2026-03-04T08:00:00Z
B-002,Torggata 7,0.91,2026-03-04T08:05:00Z
B-003,Akersgata 12,,2026-03-04T08:10:00Z
"""
PARKING = {
    "data": [
        {"lot_id": "P1", "name": "Vika", "free": 112, "rate": 38.5, "updated": "2026-03-04T08:00:00Z"},
        {"lot_id": "P2", "name": "Aker", "free": 0, "rate": None, "updated": "2026-03-04T08:01:00Z"},
    ]
}  # fmt: skip


# -- a local source for every type ---------------------------------------------------------------


@dataclass
class Seen:
    """One request the local source answered."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class Clock:
    """The sandbox's clock, moved by hand between fetches."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class LocalSource:
    """One loopback server: ``/parking.json`` itself, every other path relayed to the sandbox.

    Relaying (rather than pointing connectors at the sandbox) lets the test see the headers and
    query each request carried, so the secret test knows the secret was really sent. The relay
    forwards ``Host``, so the sandbox's GBFS discovery lists feed URLs on the relay too.
    """

    sandbox: SandboxServer
    clock: Clock
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalSource:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _relay(self, path: str, host: str) -> tuple[int, bytes, str]:
        target = urlsplit(self.sandbox.url)
        connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        try:
            connection.request("GET", path, headers={"Host": host})
            answer = connection.getresponse()
            return answer.status, answer.read(), answer.getheader("Content-Type") or ""
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                source.seen.append(Seen(parts.path, parse_qs(parts.query), dict(self.headers)))
                if parts.path == "/parking.json":
                    status, body, media_type = 200, json.dumps(PARKING).encode(), "application/json"
                else:
                    status, body, media_type = source._relay(self.path, self.headers["Host"])
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture(scope="module")
def local_source() -> Iterator[LocalSource]:
    clock = Clock(MORNING)
    with SandboxServer(seed=7, clock=clock) as sandbox:
        source = LocalSource(sandbox, clock).start()
        try:
            yield source
        finally:
            source.stop()


def _file(source: LocalSource, project: Path) -> dict[str, Any]:
    path = project / "data" / "bins.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BINS_CSV)
    return {"type": "file", "url": str(path), "format": "csv"}


def _http(source: LocalSource, project: Path) -> dict[str, Any]:
    return {
        "type": "http",
        "url": f"{source.url}/parking.json",
        "records_path": "data",
        "params": {"api_key": QUERY_REF},
    }


def _gtfs_static(source: LocalSource, project: Path) -> dict[str, Any]:
    return {"type": "gtfs_static", "url": f"{source.url}/gtfs/schedule.zip?api_key={QUERY_REF}"}


def _gtfs_realtime(source: LocalSource, project: Path) -> dict[str, Any]:
    return {
        "type": "gtfs_realtime",
        "url": f"{source.url}/gtfs-rt/vehicle-positions.pb?api_key={QUERY_REF}",
        "feed_type": "vehicle_positions",
    }


def _gbfs(source: LocalSource, project: Path) -> dict[str, Any]:
    return {"type": "gbfs", "url": f"{source.url}/gbfs/3.0/gbfs.json?api_key={QUERY_REF}"}


# type name → a ``source`` block reading from a local server or file. Add one for a new type.
LOCAL_SOURCES: dict[str, Callable[[LocalSource, Path], dict[str, Any]]] = {
    "file": _file,
    "http": _http,
    "gtfs_static": _gtfs_static,
    "gtfs_realtime": _gtfs_realtime,
    "gbfs": _gbfs,
}


def takes_headers(type_name: str) -> bool:
    return "headers" in connector_types()[type_name].spec_model.model_fields


def local_config(type_name: str, source: LocalSource, project: Path) -> ConnectorConfig:
    """A config for ``type_name`` reading from ``source``; fails the test for an unknown type."""
    build = LOCAL_SOURCES.get(type_name)
    if build is None:
        pytest.fail(
            f"connector type '{type_name}' has no local source in the conformance suite: add one "
            f"to LOCAL_SOURCES in {Path(__file__).name} (a file, a loopback server or the sandbox) "
            "so that it is fetched, decoded and committed like every other type"
        )
    block = build(source, project)
    if takes_headers(type_name):
        block["headers"] = {SECRET_HEADER_NAME: HEADER_REF}
    return ConnectorConfig.model_validate({"name": NAME, "domain": DOMAIN, "source": block})


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (HEADER_SECRET, QUERY_SECRET):
        monkeypatch.setenv(name, value)


# -- (a) the spec's JSON Schema ------------------------------------------------------------------


@pytest.mark.parametrize("type_name", TYPES)
def test_spec_exports_a_strict_json_schema(type_name: str) -> None:
    cls = connector_types()[type_name]
    schema = cls.spec_model.model_json_schema()
    assert schema["type"] == "object"
    assert "type" in schema["properties"], f"{type_name}: the spec has no 'type' property"
    kind = schema["properties"]["type"]
    assert type_name in (kind.get("const"), kind.get("default"), *kind.get("enum", [])), kind
    assert schema.get("additionalProperties") is False, f"{type_name}: extra keys are not forbidden"
    # Nested blocks (pagination, incremental, …) forbid unknown keys too: a typo there is as
    # silent as one at the top.
    for name, nested in schema.get("$defs", {}).items():
        if nested.get("type") == "object" and "properties" in nested:
            assert nested.get("additionalProperties") is False, (
                f"{type_name}: nested block {name} does not forbid extra keys"
            )


# -- (b) the example, and an unknown key ---------------------------------------------------------


@pytest.mark.parametrize("type_name", TYPES)
def test_example_validates_and_an_unknown_key_fails(type_name: str, tmp_path: Path) -> None:
    cls = connector_types()[type_name]
    assert cls.spec_model.model_validate(cls.example).type == type_name
    with pytest.raises(ValidationError) as caught:
        cls.spec_model.model_validate({**cls.example, UNKNOWN_KEY: True})
    assert [(e["type"], e["loc"]) for e in caught.value.errors()] == [
        ("extra_forbidden", (UNKNOWN_KEY,))
    ]
    # And as a user meets it: the loader names the file, the line and the field.
    document = {"name": NAME, "domain": DOMAIN, "source": {**cls.example, UNKNOWN_KEY: True}}
    text = yaml.safe_dump(document, sort_keys=False)
    path = tmp_path / "connectors" / f"{type_name}.yaml"
    path.parent.mkdir()
    path.write_text(text)
    line = next(
        i for i, row in enumerate(text.splitlines(), 1) if row.strip().startswith(UNKNOWN_KEY)
    )
    configs, problems = load_configs(path.parent)
    assert configs == []
    assert problems == [ConfigProblem(str(path), line, f"source.{UNKNOWN_KEY}", "unknown field")]


# -- (c) fetch, decode, commit -------------------------------------------------------------------


def decoded_schemas(config: ConnectorConfig, settings: Settings) -> dict[str, pa.Schema]:
    """Table suffix ("" for the connector's own table) → the Arrow schema of a fresh fetch."""
    connector = build_connector(config, ConnectorContext(settings))
    schemas: dict[str, pa.Schema] = {}
    try:
        for payload in connector.fetch({}):
            decoded = connector.decode(payload)
            for part in decoded.parts or [TablePart("", decoded)]:
                schema = part.decoded.table.schema
                if part.suffix in schemas:
                    assert schemas[part.suffix].equals(schema), (
                        f"{payload.origin}: table '{part.suffix}' changed schema within one fetch"
                    )
                schemas[part.suffix] = schema
    finally:
        connector.close()
    return schemas


def columns(schemas: dict[str, pa.Schema]) -> dict[str, list[tuple[str, str]]]:
    return {k: [(f.name, str(f.type)) for f in s] for k, s in sorted(schemas.items())}


def table_ref(suffix: str) -> TableRef:
    return TableRef(DOMAIN, f"{NAME}_{suffix}" if suffix else NAME)


@pytest.mark.parametrize("type_name", TYPES)
def test_fetch_decodes_to_a_stable_schema_that_the_lake_commits(
    type_name: str, local_lake: LakeTarget, local_source: LocalSource, secrets: None
) -> None:
    config = local_config(type_name, local_source, local_lake.project)
    settings = local_lake.settings()

    first = decoded_schemas(config, settings)
    local_source.clock.now = SMALL_HOURS
    try:
        second = decoded_schemas(config, settings)
    finally:
        local_source.clock.now = MORNING
    assert first, f"{type_name}: a fetch from the local source yielded no payload"
    assert all(s.names for s in first.values()), columns(first)
    assert columns(first) == columns(second)

    with Lake.open(settings) as lake:
        summary = ingest(lake, config, settings)
        assert summary.status == "succeeded", summary.error
        assert summary.rows_committed > 0
        data_tables = {
            str(t)
            for t in lake.table_names()
            if t.domain == DOMAIN and not t.name.endswith(QUARANTINE_SUFFIX)
        }
        assert data_tables == {str(table_ref(s)) for s in first}
        for suffix, schema in first.items():
            committed = list(lake.column_types(table_ref(suffix)))
            assert committed == schema.names, f"{table_ref(suffix)}: committed ≠ decoded columns"


# -- (d) secrets ---------------------------------------------------------------------------------


def platform_rows(lake: Lake) -> dict[str, str]:
    """Each platform table's rows, and the snapshots' commit messages, as searchable text."""
    found = {
        f"{PLATFORM}.{name}": json.dumps(
            lake.query(f"SELECT * FROM {PLATFORM}.{name}").to_pylist(), default=str
        )
        for name in PLATFORM_TABLES
    }
    found["snapshots"] = json.dumps(lake.snapshots(), default=str)
    return found


@pytest.mark.parametrize("type_name", TYPES)
def test_secrets_reach_no_log_and_no_platform_table(
    type_name: str,
    local_lake: LakeTarget,
    local_source: LocalSource,
    secrets: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = local_config(type_name, local_source, local_lake.project)
    settings = local_lake.settings()
    caplog.set_level(logging.DEBUG)
    local_source.seen.clear()
    with Lake.open(settings) as lake:
        summary = ingest(lake, config, settings)
        places = {"log": caplog.text, "run error": summary.error or "", **platform_rows(lake)}
    assert summary.status == "succeeded", summary.error
    assert summary.rows_committed > 0

    for (variable, secret), channel in ((HEADER_SECRET, "header"), (QUERY_SECRET, "query")):
        for place, text in places.items():
            at = text.find(secret)
            assert at < 0, (
                f"{type_name}: the {channel} secret ${{{variable}}} is in {place}: "
                f"…{text[max(0, at - 120) : at + 40]}…"
            )
    # The secrets were really sent: a type that dropped them would pass the checks above idly.
    if urlsplit(config.source["url"]).scheme == "http":
        assert local_source.seen, f"{type_name}: no request reached the local source"
        for request in local_source.seen:
            assert request.query.get("api_key") == [QUERY_SECRET[1]], request.path
            if takes_headers(type_name):
                assert request.headers.get(SECRET_HEADER_NAME) == HEADER_SECRET[1], request.path
