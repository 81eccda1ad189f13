"""The sandbox's GTFS-Realtime feeds read under the official ``gtfs-realtime.proto``.

The sandbox writes its feeds with ``gtfs-realtime-bindings``, as the connector reads them; a
feed both sides agree on could still be wrong if the bindings drifted from the spec. So the
official file (shared/conformance/gtfs-realtime, see its SOURCES.md) is compiled here with
``grpc_tools.protoc``, and each feed must parse under it completely (every required field
present, no field it does not know) and mean exactly what it means to the bindings.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from google.transit import gtfs_realtime_pb2 as rt

from tests.conftest import SHARED
from urbanlake.sandbox import SandboxServer
from urbanlake.sandbox.city import ZONE

PROTO = SHARED / "conformance" / "gtfs-realtime" / "gtfs-realtime.proto"
FEEDS = {
    "vehicle_positions": "/gtfs-rt/vehicle-positions.pb",
    "trip_updates": "/gtfs-rt/trip-updates.pb",
    "alerts": "/gtfs-rt/alerts.pb",
}
# A Wednesday morning in the sandbox city: every route runs, so no feed is empty.
MORNING = datetime(2026, 3, 4, 8, 15, tzinfo=ZONE).astimezone(UTC)

# Run in a fresh interpreter. The official file and the bindings are the same file to protobuf:
# both register ``gtfs-realtime.proto`` (package ``transit_realtime``) in the default descriptor
# pool, and a process that has loaded the bindings (this one: the connectors import them)
# refuses the second with "duplicate file name". A separate interpreter loads the official file
# exactly as published, where renaming its package on a copy would change what is tested.
DECODE = """
import json, sys
from google.protobuf import json_format, unknown_fields
sys.path.insert(0, sys.argv[1])
import gtfs_realtime_pb2 as official
assert "google.transit" not in sys.modules, "the bindings must not be loaded here"

def unknown(message):
    count = len(unknown_fields.UnknownFieldSet(message))
    for described, value in message.ListFields():
        if described.message_type is not None:
            count += sum(unknown(v) for v in (value if described.is_repeated else [value]))
    return count

results = {}
for name, path in zip(sys.argv[2::2], sys.argv[3::2]):
    content = open(path, "rb").read()
    message = official.FeedMessage()
    consumed = message.ParseFromString(content)
    results[name] = {
        "package": official.DESCRIPTOR.package,
        "consumed": consumed,
        "initialized": message.IsInitialized(),
        "version": message.header.gtfs_realtime_version,
        "entities": len(message.entity),
        "unknown_fields": unknown(message),
        "reserialized_equal": message.SerializeToString() == content,
        "document": json_format.MessageToDict(message, preserving_proto_field_name=True),
    }
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``gtfs_realtime_pb2.py`` generated from the official, unedited file."""
    if not PROTO.is_file():
        pytest.skip(f"{PROTO} is absent (as in a fresh clone without shared/conformance)")
    protoc = pytest.importorskip(
        "grpc_tools.protoc",
        reason="grpc_tools is not importable: pip install grpcio-tools (the dev extra) to "
        "compile the official gtfs-realtime.proto",
    )
    out = tmp_path_factory.mktemp("official-gtfs-rt")
    code = protoc.main(["protoc", f"-I{PROTO.parent}", f"--python_out={out}", str(PROTO)])
    assert code == 0, f"protoc could not compile {PROTO} (exit {code})"
    return out


@pytest.fixture(scope="module")
def payloads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, bytes]]:
    with SandboxServer(seed=7, clock=lambda: MORNING) as server:
        found = {}
        for name, path in FEEDS.items():
            with urllib.request.urlopen(server.url + path, timeout=10) as answer:
                found[name] = answer.read()
        yield found


@pytest.fixture(scope="module")
def official(
    compiled: Path, payloads: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """Feed name → what the official module makes of the sandbox's payload."""
    folder = tmp_path_factory.mktemp("payloads")
    args = []
    for name, content in payloads.items():
        (folder / f"{name}.pb").write_bytes(content)
        args += [name, str(folder / f"{name}.pb")]
    done = subprocess.run(
        [sys.executable, "-c", DECODE, str(compiled), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    results: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return results


@pytest.mark.parametrize("feed", sorted(FEEDS))
def test_sandbox_feed_parses_fully_under_the_official_proto(
    feed: str, official: dict[str, dict[str, Any]], payloads: dict[str, bytes]
) -> None:
    content = payloads[feed]
    result = official[feed]
    bindings = rt.FeedMessage()
    bindings.ParseFromString(content)

    assert result["package"] == "transit_realtime"
    assert result["consumed"] == len(content)
    assert result["initialized"], "a required field is missing"
    assert result["unknown_fields"] == 0, "fields the official proto does not define"
    assert result["version"] == bindings.header.gtfs_realtime_version == "2.0"
    assert result["entities"] == len(bindings.entity) > 0
    assert result["document"] == json_format.MessageToDict(
        bindings, preserving_proto_field_name=True
    )
    # Written in field order by the bindings, so the official module writes the same bytes.
    assert result["reserialized_equal"]
