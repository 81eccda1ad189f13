"""The ``gtfs_realtime`` connector: recorded Caltrain feeds and generated ones, from disk and from
a loopback HTTP server, through full ingests into a real lake."""

from __future__ import annotations

import dataclasses
import gzip
import logging
import random
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from google.transit import gtfs_realtime_pb2 as rt
from pydantic import ValidationError

from tests.conftest import LakeTarget
from tests.gtfsrt_feeds import (
    BASE_TIME,
    GtfsRtServer,
    alerts,
    alerts_feed,
    fleet,
    mixed_feed,
    trip_updates_feed,
    trips,
    vehicle_positions_feed,
)
from urbanlake.connectors import registry
from urbanlake.connectors.base import ConnectorContext, Payload
from urbanlake.connectors.gtfs_realtime import (
    RECOMMENDED_EVENT_TIME,
    RECOMMENDED_PRIMARY_KEYS,
    SCHEMAS,
    GtfsRealtimeConnector,
    GtfsRealtimeSpec,
    declared_types,
    shortest_float32,
)
from urbanlake.core.settings import Settings
from urbanlake.core.spec import Column, ConnectorConfig
from urbanlake.lakehouse.lake import Lake
from urbanlake.lakehouse.normalize import canonical
from urbanlake.pipeline.run import RunSummary, ingest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "connectors"


def config(url: str, name: str = "vehicle_positions", **source: Any) -> ConnectorConfig:
    """A config with the recommended key for the feed type in ``feed_type``, else in ``name``."""
    kind = source.get("feed_type", name)
    return ConnectorConfig.model_validate(
        {
            "name": name,
            "domain": "transport",
            "source": {"type": "gtfs_realtime", "url": url, **source},
            "table": {
                "primary_key": RECOMMENDED_PRIMARY_KEYS.get(kind, []),
                "event_time": RECOMMENDED_EVENT_TIME.get(kind),
            },
        }
    )


def publish(target: LakeTarget, name: str, content: bytes) -> str:
    """Write a feed file into the project; returns its path relative to the project."""
    path = target.project / "feeds" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return f"feeds/{name}"


def succeeded(summary: RunSummary) -> RunSummary:
    assert summary.status == "succeeded", summary.error
    return summary


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def rows(lake: Lake, sql: str) -> list[dict[str, Any]]:
    return lake.query(sql).to_pylist()


def count(lake: Lake, table: str) -> int:
    return int(rows(lake, f"SELECT count(*) AS n FROM {table}")[0]["n"])


# -- 1. the recorded Caltrain feeds --------------------------------------------------------------


def test_caltrain_vehicle_positions(local_lake: LakeTarget, sample_data: Path) -> None:
    source = sample_data / "gtfs-rt" / "ct-vehicle-positions.pb"
    shutil.copy(source, local_lake.project / "ct-vehicle-positions.pb")
    settings = local_lake.settings()
    with Lake.open(settings) as lake:
        summary = succeeded(ingest(lake, config("ct-vehicle-positions.pb"), settings))

        assert (summary.payloads, summary.rows_committed, summary.rows_quarantined) == (1, 14, 0)
        first = rows(
            lake,
            "SELECT * FROM transport.vehicle_positions WHERE entity_id = '124'",
        )[0]
        assert first["vehicle_id"] == "124" and first["trip_id"] == "124"
        assert first["route_id"] == "L1" and first["direction_id"] == 1
        assert first["latitude"] == 37.37046 and first["longitude"] == -121.99604
        assert first["timestamp"] == datetime(2023, 11, 8, 1, 5, 49, tzinfo=UTC)
        assert first["feed_timestamp"] == datetime(2023, 11, 8, 1, 5, 59, tzinfo=UTC)
        # Empty strings in the feed, and fields it leaves out, are null.
        assert first["vehicle_label"] is None and first["license_plate"] is None
        assert first["bearing"] is None and first["current_status"] is None
        assert lake.read_state("transport.vehicle_positions") == {
            "feed_timestamp": 1699405559,
            "feed_type": "vehicle_positions",
        }


def test_caltrain_trip_updates_give_one_row_per_stop_time_update(
    local_lake: LakeTarget, sample_data: Path
) -> None:
    content = (sample_data / "gtfs-rt" / "ct-trip-updates.pb").read_bytes()
    message = rt.FeedMessage()
    message.ParseFromString(content)
    expected = sum(max(1, len(e.trip_update.stop_time_update)) for e in message.entity)
    settings = local_lake.settings()
    with Lake.open(settings) as lake:
        url = publish(local_lake, "ct-trip-updates.pb", content)
        summary = succeeded(ingest(lake, config(url, "trip_updates"), settings))

        assert expected == 220 and summary.rows_committed == expected
        stops = rows(
            lake,
            "SELECT * FROM transport.trip_updates WHERE entity_id = '124'"
            " ORDER BY stop_time_update_index",
        )
        assert [s["stop_sequence"] for s in stops] == [20, 21, 22, 23]
        assert stops[0]["stop_id"] == "70232" and stops[0]["arrival_time"] is None
        assert stops[0]["departure_time"] == at(1699405504)
        assert stops[3]["arrival_time"] == at(1699406518) and stops[3]["departure_time"] is None
        assert stops[0]["start_date"] == "20231107" and stops[0]["start_time"] == "15:37:00"
        assert stops[0]["trip_schedule_relationship"] == "SCHEDULED"
        assert stops[0]["stop_schedule_relationship"] == "SCHEDULED"
        assert stops[0]["timestamp"] == at(1699405520)
        assert stops[0]["feed_timestamp"] == at(1699405534)
        assert stops[0]["delay"] is None and stops[0]["vehicle_label"] is None


# -- 2. generated feeds of each type, on every lake kind -----------------------------------------


def test_generated_feeds_load_with_their_values(lake_target: LakeTarget) -> None:
    settings = lake_target.settings()
    vehicles, trip_list, alert_list = fleet(25), trips(6, stops_per_trip=5), alerts()
    with Lake.open(settings) as lake:
        for name, content in [
            ("vehicle_positions", vehicle_positions_feed(vehicles)),
            ("trip_updates", trip_updates_feed(trip_list)),
            ("alerts", alerts_feed(alert_list)),
        ]:
            url = publish(lake_target, f"{name}.pb", content)
            succeeded(ingest(lake, config(url, name, feed_type=name), settings))

        for name in ("vehicle_positions", "trip_updates", "alerts"):
            assert column_types(lake, f"transport.{name}") == {
                column: canonical(sql) for column, sql in declared_types(name).items()
            }
        assert count(lake, "transport.vehicle_positions") == 25
        bus = rows(lake, "SELECT * FROM transport.vehicle_positions WHERE entity_id = 'veh-010'")[0]
        assert bus == {
            "entity_id": "veh-010", "vehicle_id": "bus-010", "vehicle_label": "Bus 10",
            "license_plate": None, "trip_id": None, "route_id": None, "direction_id": None,
            "start_date": None, "start_time": None, "schedule_relationship": None,
            "latitude": 59.91, "longitude": 10.74, "bearing": 100.0, "speed": 8.5,
            "odometer": None, "current_stop_sequence": 11, "stop_id": "stop-3",
            "current_status": "STOPPED_AT", "congestion_level": None, "occupancy_status": None,
            "occupancy_percentage": None, "timestamp": at(BASE_TIME - 10),
            "feed_timestamp": at(BASE_TIME),
        }  # fmt: skip
        assert rows(
            lake,
            "SELECT count(*) FILTER (WHERE vehicle_label IS NULL) AS no_label,"
            " count(*) FILTER (WHERE speed IS NULL) AS no_speed,"
            " count(*) FILTER (WHERE occupancy_status = 'FEW_SEATS_AVAILABLE') AS few_seats"
            " FROM transport.vehicle_positions",
        ) == [{"no_label": 8, "no_speed": 6, "few_seats": 13}]

        assert count(lake, "transport.trip_updates") == 6 * 5 + 1
        skipped = rows(
            lake,
            "SELECT * FROM transport.trip_updates WHERE stop_schedule_relationship = 'SKIPPED'",
        )
        assert len(skipped) == 1 and skipped[0]["trip_id"] == "trip-002"
        assert skipped[0]["stop_sequence"] == 2 and skipped[0]["arrival_delay"] == 20
        assert skipped[0]["arrival_time"] == at(BASE_TIME + 122)
        assert skipped[0]["departure_time"] == at(BASE_TIME + 142)
        assert skipped[0]["vehicle_id"] == "bus-002" and skipped[0]["timestamp"] == at(
            BASE_TIME - 5
        )
        cancelled = rows(
            lake, "SELECT * FROM transport.trip_updates WHERE entity_id = 'tu-cancelled'"
        )
        assert len(cancelled) == 1
        assert cancelled[0]["trip_schedule_relationship"] == "CANCELED"
        assert cancelled[0]["stop_sequence"] is None and cancelled[0]["stop_id"] is None
        assert cancelled[0]["timestamp"] == at(BASE_TIME)  # the header's: the update has none

        assert count(lake, "transport.alerts") == 8
        roadworks = rows(
            lake,
            "SELECT * FROM transport.alerts WHERE entity_id = 'alert-roadworks'"
            " ORDER BY informed_entity_index, active_period_index",
        )
        assert [(r["agency_id"], r["route_id"], r["route_type"], r["stop_id"]) for r in roadworks[::2]] == [
            ("city-transit", "R1", None, None), (None, "R2", 3, None), (None, None, None, "stop-3"),
        ]  # fmt: skip
        assert roadworks[4]["trip_id"] == "trip-002"
        assert [(r["active_start"], r["active_end"]) for r in roadworks[:2]] == [
            (at(BASE_TIME), at(BASE_TIME + 3600)),
            (at(BASE_TIME + 86_400), None),
        ]
        first = roadworks[0]
        assert (first["cause"], first["effect"], first["severity_level"]) == (
            "CONSTRUCTION",
            "DETOUR",
            "WARNING",
        )
        assert first["header_text"] == "Detour on Main Street"
        assert first["header_text_translations"] == (
            '{"en":"Detour on Main Street","nb":"Omkjøring i Storgata"}'
        )
        assert first["description_text"] == "Buses skip stop 3 during roadworks."
        assert first["url"] == "https://transit.example/alerts/roadworks"
        lift = rows(lake, "SELECT * FROM transport.alerts WHERE entity_id = 'alert-lift'")
        assert len(lift) == 1 and lift[0]["active_start"] is None
        assert lift[0]["header_text_translations"] == '{"":"Lift out of service"}'
        assert lift[0]["cause"] is None and lift[0]["effect"] == "ACCESSIBILITY_ISSUE"
        bare = rows(lake, "SELECT * FROM transport.alerts WHERE entity_id = 'alert-bare'")
        assert len(bare) == 1 and bare[0]["stop_id"] is None and bare[0]["header_text"] is None
        assert bare[0]["active_start"] == at(BASE_TIME - 60)


# -- 3. polling: the same snapshot adds nothing, one moved vehicle adds one row ------------------


def test_polling_adds_only_what_changed(lake_target: LakeTarget) -> None:
    settings = lake_target.settings()
    vehicles = fleet(12)
    url = publish(lake_target, "vp.pb", vehicle_positions_feed(vehicles, timestamp=BASE_TIME))
    cfg = config(url)
    with Lake.open(settings) as lake:
        assert succeeded(ingest(lake, cfg, settings)).rows_committed == 12

        again = succeeded(ingest(lake, cfg, settings))
        assert (again.payloads, again.rows_committed) == (0, 0)  # header time unchanged: skipped
        assert count(lake, "platform.commits") == 1 and count(lake, "platform.payloads") == 1

        # Republished with a new header time but the same vehicle reports: the key drops them all.
        publish(lake_target, "vp.pb", vehicle_positions_feed(vehicles, timestamp=BASE_TIME + 30))
        republished = succeeded(ingest(lake, cfg, settings))
        assert (republished.payloads, republished.rows_committed) == (1, 0)
        assert republished.rows_duplicate == 12

        # One bus moved and reported again.
        moved = list(vehicles)
        moved[4] = dataclasses.replace(
            vehicles[4], latitude=59.95, longitude=10.8, timestamp=BASE_TIME + 55
        )
        publish(lake_target, "vp.pb", vehicle_positions_feed(moved, timestamp=BASE_TIME + 60))
        changed = succeeded(ingest(lake, cfg, settings))
        assert (changed.rows_committed, changed.rows_duplicate) == (1, 11)
        track = rows(
            lake,
            "SELECT latitude, timestamp FROM transport.vehicle_positions"
            " WHERE entity_id = 'veh-005' ORDER BY timestamp",
        )
        assert track == [
            {"latitude": 59.905, "timestamp": at(BASE_TIME - 5)},
            {"latitude": 59.95, "timestamp": at(BASE_TIME + 55)},
        ]
        assert count(lake, "transport.vehicle_positions") == 13
        assert lake.read_state("transport.vehicle_positions")["feed_timestamp"] == BASE_TIME + 60


def test_an_older_snapshot_is_skipped_with_a_warning(
    local_lake: LakeTarget, caplog: pytest.LogCaptureFixture
) -> None:
    settings = local_lake.settings()
    url = publish(local_lake, "vp.pb", vehicle_positions_feed(fleet(3), timestamp=BASE_TIME))
    with Lake.open(settings) as lake:
        succeeded(ingest(lake, config(url), settings))
        publish(local_lake, "vp.pb", vehicle_positions_feed(fleet(3), timestamp=BASE_TIME - 60))
        with caplog.at_level(logging.WARNING, logger="urbanlake.connectors.gtfs_realtime"):
            summary = succeeded(ingest(lake, config(url), settings))
        assert summary.payloads == 0 and count(lake, "transport.vehicle_positions") == 3
        assert "is not newer than" in caplog.text


# -- 4. broken payloads fail the run, keep their bytes, and the next good one loads --------------


def test_truncated_and_garbage_payloads_fail_clearly(local_lake: LakeTarget) -> None:
    settings = local_lake.settings()
    good = vehicle_positions_feed(fleet(10))
    truncated = good[: len(good) // 2 + 3]
    garbage = random.Random(20240501).randbytes(600)
    url = publish(local_lake, "vp.pb", truncated)
    with Lake.open(settings) as lake:
        for broken in (truncated, garbage, b""):
            publish(local_lake, "vp.pb", broken)
            summary = ingest(lake, config(url), settings)
            assert summary.status == "failed"
            error = summary.error or ""
            assert "not a GTFS-Realtime feed" in error and "payload kept at" in error
            assert error.startswith(str(local_lake.project / url))
        errors = [
            r["error"] for r in rows(lake, "SELECT error FROM platform.runs ORDER BY started_at")
        ]
        assert "do not parse as a protobuf FeedMessage (truncated" in errors[0]
        assert "do not parse as a protobuf FeedMessage" in errors[1]
        assert "no FeedHeader in 0 bytes (an empty body)" in errors[2]
        kept = rows(lake, "SELECT uri, size FROM platform.payloads ORDER BY first_seen")
        assert [k["size"] for k in kept] == [len(truncated), len(garbage), 0]
        assert lake.raw.get(kept[0]["uri"]) == truncated and lake.raw.get(kept[1]["uri"]) == garbage
        assert lake.read_state("transport.vehicle_positions") == {}

        publish(local_lake, "vp.pb", good)
        summary = succeeded(ingest(lake, config(url), settings))
        assert summary.rows_committed == 10 and count(lake, "transport.vehicle_positions") == 10


def test_a_gzipped_feed_file_is_read(local_lake: LakeTarget) -> None:
    settings = local_lake.settings()
    url = publish(local_lake, "vp.pb.gz", gzip.compress(vehicle_positions_feed(fleet(4))))
    with Lake.open(settings) as lake:
        assert succeeded(ingest(lake, config(url), settings)).rows_committed == 4


def test_a_time_in_milliseconds_quarantines_its_entity(local_lake: LakeTarget) -> None:
    settings = local_lake.settings()
    vehicles = fleet(5)
    vehicles[1] = dataclasses.replace(vehicles[1], timestamp=BASE_TIME * 1000)
    url = publish(local_lake, "vp.pb", vehicle_positions_feed(vehicles))
    with Lake.open(settings) as lake:
        summary = succeeded(ingest(lake, config(url), settings))
        assert (summary.rows_committed, summary.rows_quarantined) == (4, 1)
        bad = rows(lake, "SELECT reason, raw_record FROM transport.vehicle_positions__quarantine")
        assert bad[0]["reason"] == (
            f"entity veh-002: vehicle.timestamp {BASE_TIME * 1000} is not a time in POSIX seconds"
            " (milliseconds?)"
        )
        assert '"id": "veh-002"' in bad[0]["raw_record"]


def test_a_header_time_in_milliseconds_fails_the_run(local_lake: LakeTarget) -> None:
    settings = local_lake.settings()
    url = publish(local_lake, "vp.pb", vehicle_positions_feed(fleet(3), timestamp=BASE_TIME * 1000))
    with Lake.open(settings) as lake:
        summary = ingest(lake, config(url), settings)
        assert summary.status == "failed"
        assert "header.timestamp 1714550400000 is not a time in POSIX seconds (milliseconds?)" in (
            summary.error or ""
        )
        assert count(lake, "platform.payloads") == 1


# -- 5. feed type: detected from the first entity, kept in state ---------------------------------


def decode(
    settings: Settings, content: bytes, state: dict[str, Any] | None = None, **source: Any
) -> pa.Table:
    cfg = config("feed.pb", **source)
    spec = GtfsRealtimeSpec.model_validate(cfg.source)
    connector = GtfsRealtimeConnector(spec, cfg, ConnectorContext(settings))
    payload = Payload(content=content, origin="feed.pb", format="pb", state=state or {})
    decoded = connector.decode(payload)
    return decoded.parts[0].decoded.table if decoded.parts else decoded.table


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (vehicle_positions_feed(fleet(3)), "vehicle_positions"),
        (trip_updates_feed(trips(2)), "trip_updates"),
        (alerts_feed(alerts()), "alerts"),
        (mixed_feed(fleet(3), trips(2), alerts()), "alerts"),  # the first entity holds an alert
    ],
)
def test_feed_type_is_detected_from_the_first_entity(
    local_lake: LakeTarget, content: bytes, expected: str
) -> None:
    table = decode(local_lake.settings(), content)
    assert table.schema == SCHEMAS[expected]


def test_an_explicit_feed_type_reads_its_entities_of_a_mixed_feed(
    local_lake: LakeTarget, caplog: pytest.LogCaptureFixture
) -> None:
    content = mixed_feed(fleet(3), trips(2), alerts())
    settings = local_lake.settings()
    with caplog.at_level(logging.WARNING, logger="urbanlake.connectors.gtfs_realtime"):
        assert decode(settings, trip_updates_feed(trips(2)), feed_type="alerts").num_rows == 0
    assert "none of its 3 entities has the `alert` field: is feed_type alerts right?" in caplog.text
    assert decode(settings, content, feed_type="vehicle_positions").num_rows == 3
    assert decode(settings, content, feed_type="trip_updates").num_rows == 2 * 4 + 1
    # ``auto`` keeps the type it found first, even when a feed starts with another kind later.
    assert decode(settings, content, state={"feed_type": "trip_updates"}).num_rows == 9


def test_empty_feeds_keep_the_columns(local_lake: LakeTarget) -> None:
    settings = local_lake.settings()
    url = publish(local_lake, "vp.pb", vehicle_positions_feed([], timestamp=BASE_TIME))
    with Lake.open(settings) as lake:
        # ``auto`` cannot tell the type of an empty feed: no rows, no table yet, no error.
        assert succeeded(ingest(lake, config(url), settings)).rows_committed == 0
        assert lake.read_state("transport.vehicle_positions") == {"feed_timestamp": BASE_TIME}

        publish(local_lake, "vp.pb", vehicle_positions_feed(fleet(2), timestamp=BASE_TIME + 30))
        assert succeeded(ingest(lake, config(url), settings)).rows_committed == 2
        state = lake.read_state("transport.vehicle_positions")
        assert state == {"feed_timestamp": BASE_TIME + 30, "feed_type": "vehicle_positions"}

    # Once known, or when configured, an empty feed decodes to the type's full schema.
    empty = vehicle_positions_feed([], timestamp=BASE_TIME + 60)
    for kind in ("vehicle_positions", "trip_updates", "alerts"):
        assert decode(settings, empty, state={"feed_type": kind}).schema == SCHEMAS[kind]
        assert decode(settings, empty, feed_type=kind).schema == SCHEMAS[kind]


# -- 6. over HTTP --------------------------------------------------------------------------------


FAST_HTTP = {"backoff_base": 0.01, "backoff_max": 0.05, "max_retries": 1, "timeout": 5.0}


def test_a_feed_served_over_http_with_a_token(
    local_lake: LakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "gtfs-rt-token-8f2c"
    monkeypatch.setenv("TRANSIT_TOKEN", token)
    settings = local_lake.settings(http=FAST_HTTP)
    with GtfsRtServer() as server, Lake.open(settings) as lake:
        server.require_header = ("Authorization", f"Bearer {token}")
        server.publish("/rt/vehicle-positions.pb", vehicle_positions_feed(fleet(7)))
        cfg = config(
            server.url("/rt/vehicle-positions.pb"),
            headers={"Authorization": "Bearer ${TRANSIT_TOKEN}"},
        )
        summary = succeeded(ingest(lake, cfg, settings))
        assert summary.rows_committed == 7
        origin = rows(lake, "SELECT origin FROM platform.commits")[0]["origin"]
        assert origin == server.url("/rt/vehicle-positions.pb")

        assert succeeded(ingest(lake, cfg, settings)).payloads == 0  # polled, not republished
        assert server.hits["/rt/vehicle-positions.pb"] == 2

        missing = ingest(
            lake, config(server.url("/rt/nothing.pb"), headers=cfg.source["headers"]), settings
        )
        assert missing.status == "failed" and "HTTP 404" in (missing.error or "")
        refused = ingest(lake, config(server.url("/rt/vehicle-positions.pb")), settings)
        assert refused.status == "failed" and "HTTP 401" in (refused.error or "")
        assert token not in (refused.error or "")


def test_an_api_key_in_the_url_is_a_reference_and_masked(
    local_lake: LakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRANSIT_API_KEY", "k3y-0f-the-agency")
    settings = local_lake.settings(http=FAST_HTTP)
    with (
        GtfsRtServer({"/rt.pb": trip_updates_feed(trips(2))}) as server,
        Lake.open(settings) as lake,
    ):
        cfg = config(server.url("/rt.pb") + "?api_key=${TRANSIT_API_KEY}", "trip_updates")
        assert succeeded(ingest(lake, cfg, settings)).rows_committed == 2 * 4 + 1
        origin = rows(lake, "SELECT origin FROM platform.commits")[0]["origin"]
        assert origin == server.url("/rt.pb") + "?api_key=****"


@pytest.mark.parametrize(
    ("url", "headers", "where"),
    [
        ("https://transit.example/rt.pb", {"X-Api-Key": "abc123def"}, "header 'X-Api-Key'"),
        ("https://transit.example/rt.pb?api_key=abc123def", {}, "query parameter 'api_key'"),
    ],
)
def test_a_literal_secret_fails_the_run_before_any_request(
    local_lake: LakeTarget, url: str, headers: dict[str, str], where: str
) -> None:
    settings = local_lake.settings()
    with Lake.open(settings) as lake:
        summary = ingest(lake, config(url, headers=headers), settings)
        assert summary.status == "failed" and summary.payloads == 0
        assert f"{where} carries a credential" in (summary.error or "")
        assert "secrets must be ${ENV} references" in (summary.error or "")


# -- the spec ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"url": "s3://bucket/rt.pb"}, "is not an http://, https:// or file:// URL, nor a path"),
        ({"url": "http:///rt.pb"}, "has no host"),
        ({"url": "feeds/vp.pb", "headers": {"Accept": "x"}}, "headers apply to http://"),
        ({"url": "feeds/vp.pb", "feed_type": "vehicles"}, "vehicle_positions"),
        ({"url": "feeds/vp.pb", "format": "pb"}, "Extra inputs are not permitted"),
        ({"url": "https://t.example/rt.pb?key=abc123def"}, "query parameter 'key'"),
    ],
)
def test_the_spec_says_what_is_wrong(source: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        GtfsRealtimeSpec.model_validate({"type": "gtfs_realtime", **source})


def test_the_example_is_valid_and_the_type_is_registered() -> None:
    assert registry.connector_type("gtfs_realtime") is GtfsRealtimeConnector
    spec = GtfsRealtimeSpec.model_validate(GtfsRealtimeConnector.example)
    assert spec.feed_type == "vehicle_positions"
    assert (DOCS / "gtfs_realtime.md").exists()


def test_the_docs_recommend_the_keys_the_code_recommends() -> None:
    page = (DOCS / "gtfs_realtime.md").read_text(encoding="utf-8")
    for kind, key in RECOMMENDED_PRIMARY_KEYS.items():
        row = f"| `{kind}` | `[{', '.join(key)}]` | `{RECOMMENDED_EVENT_TIME[kind]}` |"
        assert row in page
    for kind, schema in SCHEMAS.items():
        assert f"### `{kind}`" in page
        for name in schema.names:
            assert f"`{name}`" in page, f"{kind}.{name} is not documented"


@pytest.mark.parametrize("value", [59.91, -121.99604, 271.5, 37.37046, 0.1, 1e-7])
def test_float32_values_read_as_their_shortest_decimal(value: float) -> None:
    as_sent = rt.Position(latitude=value, longitude=0).latitude  # what protobuf hands over
    assert as_sent != value or value == 271.5
    assert shortest_float32(as_sent) == value


# -- the lake's types ----------------------------------------------------------------------------


def column_types(lake: Lake, table: str) -> dict[str, str]:
    return {r["column_name"]: r["column_type"] for r in rows(lake, f"DESCRIBE {table}")}


def test_numeric_looking_ids_stay_text_in_the_lake(
    local_lake: LakeTarget, sample_data: Path
) -> None:
    """Caltrain's ids ("124", "70232") and dates ("20231107") would look like numbers to type
    inference; the declared schema keeps them text, so the next feed's "124a" still fits."""
    shutil.copy(sample_data / "gtfs-rt" / "ct-trip-updates.pb", local_lake.project / "tu.pb")
    settings = local_lake.settings()
    with Lake.open(settings) as lake:
        succeeded(ingest(lake, config("tu.pb", "trip_updates"), settings))
        assert column_types(lake, "transport.trip_updates") == {
            name: canonical(sql) for name, sql in declared_types("trip_updates").items()
        }
        assert column_types(lake, "transport.trip_updates")["start_date"] == "VARCHAR"


def test_declared_columns_in_the_config_win(local_lake: LakeTarget) -> None:
    settings = local_lake.settings()
    url = publish(local_lake, "tu.pb", trip_updates_feed(trips(2)))
    cfg = config(url, "trip_updates")
    cfg.columns = {"stop_sequence": Column(type="int32")}
    with Lake.open(settings) as lake:
        assert succeeded(ingest(lake, cfg, settings)).rows_committed == 2 * 4 + 1
        assert column_types(lake, "transport.trip_updates")["stop_sequence"] == "INTEGER"
