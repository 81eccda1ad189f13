"""The sandbox city: deterministic, schema-valid, consistent across feeds, moving, breakable.

Every test talks to a real ``SandboxServer`` on 127.0.0.1 (port 0) in a thread, with a frozen,
injectable clock.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as rt

from tests.conftest import SHARED, LakeTarget
from urbanlake.sandbox import City, SandboxServer, parse_faults
from urbanlake.sandbox.city import BBOX, ZONE

ROOT = Path(__file__).resolve().parents[2]
GBFS_SCHEMAS = SHARED / "conformance" / "gbfs"
# A Wednesday morning in Fjordvik: every route runs.
MORNING = datetime(2026, 3, 4, 8, 15, tzinfo=ZONE).astimezone(UTC)


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(MORNING)


@pytest.fixture
def sandbox(clock: Clock) -> Iterator[SandboxServer]:
    with SandboxServer(seed=7, clock=clock) as server:
        yield server


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def fetch(server: SandboxServer, path: str) -> bytes:
    status, body = get(server.url + path)
    assert status == 200, (path, status, body[:200])
    return body


def feed(server: SandboxServer, path: str) -> rt.FeedMessage:
    message = rt.FeedMessage()
    message.ParseFromString(fetch(server, path))
    return message


def gtfs_table(zip_bytes: bytes, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        return list(csv.DictReader(io.StringIO(archive.read(name).decode())))


ALL_PATHS = [
    "/gtfs/schedule.zip",
    "/gtfs-rt/vehicle-positions.pb",
    "/gtfs-rt/trip-updates.pb",
    "/gtfs-rt/alerts.pb",
    "/gbfs/2.3/station_status.json",
    "/gbfs/3.0/station_information.json",
    "/gbfs/3.0/vehicle_status.json",
    "/traffic/speeds.json",
]


def test_same_seed_same_city_and_feeds(clock: Clock) -> None:
    with SandboxServer(seed=7, clock=clock) as a, SandboxServer(seed=7, clock=clock) as b:
        for path in ALL_PATHS:
            assert fetch(a, path) == fetch(b, path), path
        # gbfs.json holds the server's own address, which differs between the two servers
        for version in ("2.3", "3.0"):
            path = f"/gbfs/{version}/gbfs.json"
            assert fetch(a, path).replace(a.url.encode(), b"") == fetch(b, path).replace(
                b.url.encode(), b""
            )
    with SandboxServer(seed=8, clock=clock) as c, SandboxServer(seed=7, clock=clock) as d:
        assert fetch(c, "/gtfs/schedule.zip") != fetch(d, "/gtfs/schedule.zip")


def test_schedule_zip_is_a_full_day_of_service(sandbox: SandboxServer) -> None:
    data = fetch(sandbox, "/gtfs/schedule.zip")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
    assert {"agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt",
            "calendar.txt", "shapes.txt", "feed_info.txt"} <= names  # fmt: skip
    routes = gtfs_table(data, "routes.txt")
    assert {r["route_type"] for r in routes} == {"0", "3"}  # trams and buses
    assert 12 <= len(gtfs_table(data, "stops.txt")) <= 18
    stop_times = gtfs_table(data, "stop_times.txt")
    assert any(st["departure_time"] >= "24:00:00" for st in stop_times)  # night trips
    trips = gtfs_table(data, "trips.txt")
    for route in routes:
        for direction in ("0", "1"):
            starts = sorted(
                st["departure_time"] for st in stop_times
                if st["stop_sequence"] == "1" and st["trip_id"].startswith(f"{route['route_id']}-WKD-{direction}-")
            )  # fmt: skip
            assert len(starts) > 60, (route["route_id"], direction)
    assert {t["shape_id"] for t in trips} <= {s["shape_id"] for s in gtfs_table(data, "shapes.txt")}


def test_realtime_joins_to_the_schedule(sandbox: SandboxServer) -> None:
    data = fetch(sandbox, "/gtfs/schedule.zip")
    trips = {t["trip_id"]: t for t in gtfs_table(data, "trips.txt")}
    routes = {r["route_id"] for r in gtfs_table(data, "routes.txt")}
    stops = {s["stop_id"] for s in gtfs_table(data, "stops.txt")}
    positions = feed(sandbox, "/gtfs-rt/vehicle-positions.pb")
    updates = feed(sandbox, "/gtfs-rt/trip-updates.pb")
    alerts = feed(sandbox, "/gtfs-rt/alerts.pb")
    for message in (positions, updates, alerts):
        assert message.header.timestamp == int(MORNING.timestamp())
    assert len(positions.entity) >= 8
    for entity in positions.entity:
        v = entity.vehicle
        assert v.trip.trip_id in trips and trips[v.trip.trip_id]["route_id"] == v.trip.route_id
        assert v.stop_id in stops
        assert BBOX[0] <= v.position.latitude <= BBOX[2]
        assert BBOX[1] <= v.position.longitude <= BBOX[3]
    assert {e.trip_update.trip.trip_id for e in updates.entity} == {
        e.vehicle.trip.trip_id for e in positions.entity
    }
    for entity in updates.entity:
        update = entity.trip_update
        assert update.trip.route_id in routes
        assert update.stop_time_update and all(s.stop_id in stops for s in update.stop_time_update)
        assert {s.arrival.delay for s in update.stop_time_update} == {update.delay}
    assert len(alerts.entity) == 2
    for entity in alerts.entity:
        for informed in entity.alert.informed_entity:
            assert informed.route_id in routes | {""} and informed.stop_id in stops | {""}


def test_vehicles_move_with_the_clock(sandbox: SandboxServer, clock: Clock) -> None:
    def where() -> dict[str, tuple[float, float, str]]:
        message = feed(sandbox, "/gtfs-rt/vehicle-positions.pb")
        return {
            e.vehicle.vehicle.id: (e.vehicle.position.latitude, e.vehicle.position.longitude,
                                   e.vehicle.trip.trip_id)
            for e in message.entity
        }  # fmt: skip

    before = where()
    clock.now += timedelta(seconds=90)
    after = where()
    assert feed(sandbox, "/gtfs-rt/vehicle-positions.pb").header.timestamp == int(
        clock.now.timestamp()
    )
    same_trip = [v for v in before if v in after and before[v][2] == after[v][2]]
    assert same_trip
    moved = [v for v in same_trip if before[v][:2] != after[v][:2]]
    assert len(moved) >= len(same_trip) // 2
    clock.now = datetime(2026, 3, 4, 3, 0, tzinfo=ZONE).astimezone(UTC)  # the night break
    assert where() == {}
    clock.now = datetime(2026, 3, 5, 0, 35, tzinfo=ZONE).astimezone(UTC)  # after midnight
    late = where()
    # Trips of Wednesday's service that left after midnight (times like 24:20:00) are on the road.
    assert any(trip.startswith(("T", "B")) and trip[-4:] >= "2400" for *_, trip in late.values())


def _validator(version: str, feed_name: str) -> Any:
    from jsonschema import validators

    schema = json.loads((GBFS_SCHEMAS / f"v{version}" / f"{feed_name}.json").read_text())
    return validators.validator_for(schema)(schema)


@pytest.mark.parametrize("version", ["2.3", "3.0"])
def test_gbfs_validates_against_the_official_schemas(
    sandbox: SandboxServer, clock: Clock, version: str
) -> None:
    if not GBFS_SCHEMAS.is_dir():
        pytest.skip(f"GBFS JSON Schemas folder {GBFS_SCHEMAS} is absent")
    discovery = json.loads(fetch(sandbox, f"/gbfs/{version}/gbfs.json"))
    listed = discovery["data"]["feeds"] if version == "3.0" else discovery["data"]["en"]["feeds"]
    documents = {"gbfs": discovery}
    for entry in listed:
        assert entry["url"].startswith(sandbox.url)
        documents[entry["name"]] = json.loads(
            fetch(sandbox, entry["url"].removeprefix(sandbox.url))
        )
    assert len(documents) == 6
    for name, document in documents.items():
        errors = [e.message for e in _validator(version, name).iter_errors(document)]
        assert not errors, (version, name, errors[:3])
        assert document["ttl"] >= 0
        stamp = int(MORNING.timestamp()) if version == "2.3" else "2026-03-04T07:15:00Z"
        assert document["last_updated"] == stamp
    # Availability follows the clock.
    counts = []
    for hours in (0, 4, 9):
        clock.now = MORNING + timedelta(hours=hours)
        status = json.loads(fetch(sandbox, f"/gbfs/{version}/station_status.json"))
        key = "num_vehicles_available" if version == "3.0" else "num_bikes_available"
        counts.append([s[key] for s in status["data"]["stations"]])
    assert len({tuple(c) for c in counts}) == 3


def test_traffic_speeds_in_local_time(sandbox: SandboxServer) -> None:
    body = json.loads(fetch(sandbox, "/traffic/speeds.json"))
    segments = body["segments"]
    assert len(segments) >= 5
    for s in segments:
        assert set(s) >= {"segment_id", "speed", "travel_time", "data_as_of"}
        assert s["speed"] >= 0
        assert s["data_as_of"] == "2026-03-04 08:15:00"  # Oslo wall-clock time, no offset


def test_fault_http503_for_the_next_n_requests(sandbox: SandboxServer) -> None:
    sandbox.set_fault("http503", 2)
    path = sandbox.url + "/traffic/speeds.json"
    assert [get(path)[0] for _ in range(3)] == [503, 503, 200]
    assert get(path + "?fault=http503")[0] == 503
    assert get(path)[0] == 200
    assert get(path + "?fault=no_such_fault")[0] == 400
    assert parse_faults(["http503"]) == {"http503": 3}
    with pytest.raises(ValueError, match="unknown fault"):
        parse_faults(["gremlins"])


def test_fault_truncated_pb(sandbox: SandboxServer) -> None:
    whole = fetch(sandbox, "/gtfs-rt/vehicle-positions.pb")
    cut = fetch(sandbox, "/gtfs-rt/vehicle-positions.pb?fault=truncated_pb")
    assert whole.startswith(cut) and len(cut) < len(whole)
    with pytest.raises(DecodeError):
        rt.FeedMessage().ParseFromString(cut)


def test_fault_duplicate_entities(sandbox: SandboxServer) -> None:
    sandbox.set_fault("duplicate_entities")
    for path in ("/gtfs-rt/vehicle-positions.pb", "/gtfs-rt/trip-updates.pb"):
        ids = [e.id for e in feed(sandbox, path).entity]
        assert ids and len(ids) == 2 * len(set(ids))
    stations = json.loads(fetch(sandbox, "/gbfs/3.0/station_status.json"))["data"]["stations"]
    assert len(stations) == 2 * len({s["station_id"] for s in stations})
    sandbox.clear_faults()
    ids = [e.id for e in feed(sandbox, "/gtfs-rt/vehicle-positions.pb").entity]
    assert len(ids) == len(set(ids))


def test_fault_impossible_position(sandbox: SandboxServer) -> None:
    message = feed(sandbox, "/gtfs-rt/vehicle-positions.pb?fault=impossible_position")
    lats = [e.vehicle.position.latitude for e in message.entity]
    assert 91.0 in lats
    outside = [
        e for e in message.entity
        if not (BBOX[0] <= e.vehicle.position.latitude <= BBOX[2]
                and BBOX[1] <= e.vehicle.position.longitude <= BBOX[3])
    ]  # fmt: skip
    assert len(outside) == 2


def _recent_morning() -> datetime:
    """08:15 in Fjordvik on the latest weekday not in the future (quality suites refuse times
    after now+5m, so the end-to-end run's frozen clock must be in the past)."""
    now = datetime.now(UTC)
    day = now.astimezone(ZONE).date()
    while True:
        moment = datetime(day.year, day.month, day.day, 8, 15, tzinfo=ZONE).astimezone(UTC)
        if moment <= now and day.weekday() < 5:
            return moment
        day -= timedelta(days=1)


def test_demo_city_transport_configs_ingest_end_to_end(
    local_lake: LakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urbanlake.connectors.registry import load_configs
    from urbanlake.lakehouse.lake import Lake
    from urbanlake.pipeline.run import ingest

    project = local_lake.project
    for folder in ("connectors", "quality"):
        shutil.copytree(ROOT / folder / "transport", project / folder / "transport")
    # The parking connector belongs to `urbanlake demo`'s feed, not to the sandbox.
    (project / "connectors" / "transport" / "parking_occupancy.yaml").unlink()
    moment = _recent_morning()
    with SandboxServer(seed=2026, clock=lambda: moment) as server:
        monkeypatch.setenv("URBANLAKE_SANDBOX_URL", server.url)
        settings = local_lake.settings()
        configs, problems = load_configs(project / "connectors")
        assert not problems, problems
        assert {c.name for c in configs} == {
            "schedule", "vehicle_positions", "trip_updates", "alerts", "bikes", "traffic_speeds"
        }  # fmt: skip
        with Lake.open(settings) as lake:
            summaries = [ingest(lake, config, settings) for config in configs]
            for s in summaries:
                assert s.status == "succeeded", (s.connector, s.error)
                assert s.rows_committed > 0, s.connector
                assert s.rows_quarantined == 0, s.connector
            result = lake.query(
                "SELECT r.route_short_name, count(*) AS vehicles "
                "FROM transport.vehicle_positions v JOIN transport.schedule_routes r "
                "USING (route_id) GROUP BY ALL"
            )
    got = {row["route_short_name"]: row["vehicles"] for row in result.to_pylist()}
    expected = City.build(2026).vehicles_per_route(moment)
    assert got == expected
    assert sum(expected.values()) >= 8
