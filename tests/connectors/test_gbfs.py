"""The ``gbfs`` connector: recorded sample systems and generated GBFS 2.3 / 3.0 ones, served by a
loopback HTTP server or read from disk, through full ingests into a real lake."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import ValidationError

from tests.conftest import SHARED, LakeTarget
from tests.gbfs_feeds import (
    BASE_TIME,
    SYSTEM_ID,
    GbfsOptions,
    GbfsServer,
    folder_documents,
    gbfs_documents,
    station_id,
    vehicle_id,
    write_folder,
)
from urbanlake.connectors import registry
from urbanlake.connectors.base import ConnectorContext, Payload
from urbanlake.connectors.gbfs import GbfsConnector, GbfsSpec
from urbanlake.connectors.gbfs_documents import (
    SCHEMAS,
    TABLES,
    BadValue,
    as_bool,
    as_time,
    localized,
)
from urbanlake.connectors.registry import validate_document
from urbanlake.core.settings import Settings
from urbanlake.core.spec import ConnectorConfig
from urbanlake.core.yamlsource import load_located
from urbanlake.lakehouse.lake import Lake
from urbanlake.lakehouse.records import TableRef
from urbanlake.pipeline.run import RunSummary, ingest

SAMPLES = {
    "v23": "entur-spec-example-v2.3",
    "v30": "entur-spec-example-v3.0",
    "oslo": "otp-tieroslo",
}
# Where each table's records are in its feed file (system_information is one record).
RECORDS = {
    "system_information": ("system_information", None),
    "vehicle_types": ("vehicle_types", "vehicle_types"),
    "station_information": ("station_information", "stations"),
    "station_status": ("station_status", "stations"),
    "vehicle_status": ("vehicle_status", "vehicles"),
}
FAST_HTTP = {"backoff_base": 0.01, "backoff_max": 0.1, "max_retries": 1, "timeout": 5.0}


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The type as the registry knows it once pyproject.toml's entry point is installed."""
    if "gbfs" not in registry.connector_types():
        monkeypatch.setitem(registry.BUILTINS, "gbfs", "urbanlake.connectors.gbfs:GbfsConnector")
        registry.connector_types.cache_clear()
    yield
    registry.connector_types.cache_clear()


@pytest.fixture
def server() -> Iterator[GbfsServer]:
    with GbfsServer() as running:
        yield running


def config(url: str, name: str = "bikes", **source: Any) -> ConnectorConfig:
    return ConnectorConfig.model_validate(
        {"name": name, "domain": "mobility", "source": {"type": "gbfs", "url": url, **source}}
    )


def succeeded(summary: RunSummary) -> RunSummary:
    assert summary.status == "succeeded", summary.error
    return summary


def rows(lake: Lake, table: str, order: str = "") -> list[dict[str, Any]]:
    return lake.query(f"SELECT * FROM mobility.{table} {order}").to_pylist()


def count(lake: Lake, table: str) -> int:
    return int(lake.query(f"SELECT count(*) AS n FROM mobility.{table}").column("n")[0].as_py())


def posix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# -- 1. the recorded sample systems ---------------------------------------------------------------


def expected_counts(folder: Path) -> dict[str, int]:
    """Records per table, read straight from the sample files."""
    counts = {}
    for table, (feed, key) in RECORDS.items():
        files = [folder / f"{feed}.json"]
        if table == "vehicle_status":
            files.append(folder / "free_bike_status.json")
        for path in files:
            if path.exists():
                data = json.loads(path.read_bytes())["data"]
                if key is None:
                    counts[table] = 1
                else:
                    counts[table] = len(data.get(key) or data.get("bikes") or [])
    return counts


def test_sample_systems_load_with_the_same_columns_in_every_version(
    local_lake: LakeTarget, sample_data: Path, server: GbfsServer
) -> None:
    settings = local_lake.settings(http=FAST_HTTP)
    with Lake.open(settings) as lake:
        for name, folder in SAMPLES.items():
            server.documents = folder_documents(sample_data / "gbfs" / folder, server.base_url)
            expected = expected_counts(sample_data / "gbfs" / folder)

            summary = succeeded(ingest(lake, config(server.url(), name), settings))

            assert summary.payloads == len(expected)  # one payload per feed file with a table
            assert summary.rows_committed == sum(expected.values())
            assert summary.rows_quarantined == 0
            loaded = {
                t.name.removeprefix(f"{name}_"): count(lake, t.name)
                for t in lake.table_names()
                if t.domain == "mobility" and t.name.startswith(f"{name}_")
            }
            assert loaded == expected, name
            # Feeds without a table (alerts, pricing plans, geofencing zones…) are not requested.
            assert "/geofencing_zones.json" not in server.paths_hit()

        # Every table has the same columns and types, whatever the version sent.
        for table in TABLES:
            v23 = lake.column_types(TableRef("mobility", f"v23_{table}"))
            v30 = lake.column_types(TableRef("mobility", f"v30_{table}"))
            assert v23 == v30, table
            assert list(v23) == SCHEMAS[table].names

        # A few exact values, each read by hand from the files.
        [v23_system] = rows(lake, "v23_system_information")
        [v30_system] = rows(lake, "v30_system_information")
        for system in (v23_system, v30_system):
            assert system["system_id"] == "example_cityname"
            assert system["name"] == "Example Bike Rental"  # v3.0: a localized list
            assert system["operator"] == "Example Sharing, Inc"
            assert system["timezone"] == "America/Chicago"
            assert system["start_date"] == date(2010, 6, 10)
            assert system["language"] == "en"
        assert v23_system["feed_last_updated"] == posix(1640887163)
        v30_time = datetime(2024, 3, 21, 9, 25, 53, 343000, tzinfo=UTC)
        assert v30_system["feed_last_updated"] == v30_time

        v23_status = rows(lake, "v23_station_status", "ORDER BY station_id")
        assert [r["num_vehicles_available"] for r in v23_status] == [1, 6]  # num_bikes_available
        assert v23_status[0]["last_reported"] == posix(1609866125)
        assert v23_status[0]["is_installed"] is True
        v30_status = rows(lake, "v30_station_status", "ORDER BY station_id")
        assert [r["num_vehicles_available"] for r in v30_status] == [1, 6]
        assert v30_status[1]["last_reported"] == v30_time
        assert json.loads(v30_status[1]["vehicle_types_available"]) == [
            {"vehicle_type_id": "abc123", "count": 2},
            {"vehicle_type_id": "def456", "count": 4},
        ]

        v23_bikes = {r["vehicle_id"]: r for r in rows(lake, "v23_vehicle_status")}
        docked = v23_bikes["987fd100-b822-4347-86a4-b3eef8ca8b53"]  # bike_id in 2.3
        assert (docked["station_id"], docked["lat"], docked["current_range_meters"]) == (
            "86",
            None,
            6543.0,
        )
        assert v23_bikes["973a5c94-c288-4a2b-afa6-de8aeb6ae2e5"]["lat"] == 12.34

        v23_stations = {r["station_id"]: r for r in rows(lake, "v23_station_information")}
        assert v23_stations["station1"]["name"] == "Parking garage A"
        # 2.3's {type: count} object, in 3.0's list shape
        assert json.loads(v23_stations["station1"]["vehicle_docks_capacity"]) == [
            {"vehicle_type_ids": ["abc123"], "count": 7},
            {"vehicle_type_ids": ["def456"], "count": 9},
        ]
        v30_stations = {r["station_id"]: r for r in rows(lake, "v30_station_information")}
        assert v30_stations["station2"]["name"] == "SE Belmont & SE 10th"
        assert v30_stations["station2"]["is_virtual_station"] is True
        assert v30_stations["station2"]["capacity"] == 16

        types = {r["vehicle_type_id"]: r for r in rows(lake, "v30_vehicle_types")}
        assert types["car1"]["name"] == "Four-door Sedan"
        assert types["car1"]["make"] == "Renault"
        assert types["def456"]["max_range_meters"] == 12345.0

        [oslo] = rows(lake, "oslo_system_information")
        assert (oslo["system_id"], oslo["name"], oslo["timezone"]) == (
            "tieroslo",
            "Tier OSLO",
            "Europe/Oslo",
        )
        assert oslo["feed_last_updated"] == posix(1670236314)


def test_a_local_sample_folder_is_read_beside_its_gbfs_json(
    local_lake: LakeTarget, sample_data: Path
) -> None:
    # The published gbfs.json lists the publisher's URLs (https://www.example.com/…, and
    # ``file:src/test/…`` for OTP): a local discovery reads <folder>/<name>.json instead.
    settings = local_lake.settings()
    v23 = sample_data / "gbfs" / SAMPLES["v23"]
    with Lake.open(settings) as lake:
        summary = succeeded(ingest(lake, config(str(v23 / "gbfs.json"), "v23"), settings))
        oslo_url = (sample_data / "gbfs" / SAMPLES["oslo"] / "gbfs.json").as_uri()
        succeeded(ingest(lake, config(oslo_url, "oslo"), settings))

        # As published, the discovery lists system_information and station_information only.
        assert (summary.payloads, summary.rows_committed) == (2, 3)
        origins = lake.query("SELECT origin FROM platform.commits ORDER BY origin")
        assert str(v23 / "station_information.json") in origins.column("origin").to_pylist()
        assert count(lake, "oslo_system_information") == 1


# -- 2. generated systems on every lake kind ------------------------------------------------------

QUIRKY_23 = GbfsOptions(
    version="2.3", numeric_booleans=True, times="rfc3339", legacy_installed=True
)
# 3.0 with POSIX times, as some publishers keep sending after moving to 3.0
POSIX_30 = GbfsOptions(version="3.0", times="posix", ttl=0)


def serve_two(server: GbfsServer, first: GbfsOptions, second: GbfsOptions) -> None:
    """Two systems on one server, below /a and /b."""
    documents = {}
    for prefix, options in (("/a", first), ("/b", second)):
        for path, document in gbfs_documents(options, server.base_url + prefix).items():
            documents[prefix + path] = document
    server.documents = documents


def test_generated_systems_on_every_lake_kind(lake_target: LakeTarget, server: GbfsServer) -> None:
    settings = lake_target.settings(http=FAST_HTTP)
    serve_two(server, QUIRKY_23, GbfsOptions(version="3.0"))
    with Lake.open(settings) as lake:
        old = succeeded(ingest(lake, config(server.url("/a/gbfs.json"), "old"), settings))
        new = succeeded(ingest(lake, config(server.url("/b/gbfs.json"), "new"), settings))

        # 1 system + 3 vehicle types + 6 stations + 6 statuses + 8 vehicles
        for summary in (old, new):
            assert (summary.payloads, summary.rows_committed, summary.rows_quarantined) == (
                5,
                24,
                0,
            )
        assert "/a/en/system_alerts.json" not in server.paths_hit()

        # 1/0 booleans, RFC 3339 times in 2.3 and ``installed`` give what 3.0 gives.
        for table in TABLES:
            ignore = {"opening_hours"}  # a 3.0 field
            key = ", ".join(SCHEMAS[table].names[:2])
            a = [
                {k: v for k, v in r.items() if k not in ignore}
                for r in rows(lake, f"old_{table}", f"ORDER BY {key}")
            ]
            b = [
                {k: v for k, v in r.items() if k not in ignore}
                for r in rows(lake, f"new_{table}", f"ORDER BY {key}")
            ]
            assert a == b, table

        status = {r["station_id"]: r for r in rows(lake, "old_station_status")}
        assert [status[station_id(n)]["is_installed"] for n in range(1, 7)] == [
            n % 4 != 0 for n in range(1, 7)
        ]
        assert [status[station_id(n)]["is_renting"] for n in range(1, 7)] == [
            n % 3 != 0 for n in range(1, 7)
        ]
        assert status[station_id(3)]["num_vehicles_available"] == 3
        assert status[station_id(3)]["num_docks_available"] == 10
        assert status[station_id(3)]["last_reported"] == BASE_TIME - timedelta(seconds=30)
        assert status[station_id(3)]["feed_last_updated"] == BASE_TIME

        vehicles = {r["vehicle_id"]: r for r in rows(lake, "old_vehicle_status")}
        assert len(vehicles) == 8
        assert vehicles[vehicle_id(4)]["is_reserved"] is True
        assert vehicles[vehicle_id(5)]["is_disabled"] is True
        assert vehicles[vehicle_id(4)]["lat"] == pytest.approx(59.904)
        assert vehicles[vehicle_id(3)]["station_id"] == station_id(4)
        assert vehicles[vehicle_id(3)]["current_range_meters"] == 3000.0
        assert vehicles[vehicle_id(2)]["last_reported"] == BASE_TIME - timedelta(minutes=2)

        [system] = rows(lake, "new_system_information")
        assert (system["system_id"], system["name"], system["languages"]) == (
            SYSTEM_ID,
            "Test City Bikes",
            '["en"]',
        )


# -- 3. polling follows last_updated and ttl ------------------------------------------------------


def test_polling_again_adds_nothing_and_a_newer_status_adds_rows(
    local_lake: LakeTarget, server: GbfsServer
) -> None:
    settings = local_lake.settings(http=FAST_HTTP)
    options = POSIX_30
    server.publish(options)
    cfg = config(server.url())
    with Lake.open(settings) as lake:
        succeeded(ingest(lake, cfg, settings))
        assert (count(lake, "bikes_station_status"), count(lake, "bikes_vehicle_status")) == (6, 8)

        again = succeeded(ingest(lake, cfg, settings))
        assert (again.payloads, again.rows_committed) == (0, 0)

        # Only station_status is republished, a minute later, with new availability.
        later = gbfs_documents(options.later(60), server.base_url)
        server.documents["/station_status.json"] = later["/station_status.json"]
        newer = succeeded(ingest(lake, cfg, settings))

        assert (newer.payloads, newer.rows_committed) == (1, 6)
        assert count(lake, "bikes_station_status") == 12
        assert count(lake, "bikes_vehicle_status") == 8
        times = lake.query(
            "SELECT DISTINCT feed_last_updated AS t FROM mobility.bikes_station_status ORDER BY t"
        ).column("t")
        assert times.to_pylist() == [BASE_TIME, BASE_TIME + timedelta(seconds=60)]
        state = lake.read_state("mobility.bikes")
        assert (
            state["feeds"]["station_status"]["last_updated"]
            == (BASE_TIME + timedelta(seconds=60)).isoformat()
        )

        # A republished description replaces the table's content.
        later = gbfs_documents(replace(options.later(60), stations=4), server.base_url)
        server.documents["/station_information.json"] = later["/station_information.json"]
        succeeded(ingest(lake, cfg, settings))
        assert count(lake, "bikes_station_information") == 4


def test_a_feed_is_not_requested_before_its_ttl_runs_out(
    local_lake: LakeTarget, server: GbfsServer
) -> None:
    settings = local_lake.settings(http=FAST_HTTP)
    now = datetime.now(UTC).replace(microsecond=0)
    documents = server.publish(GbfsOptions(version="2.3", last_updated=now, ttl=3600))
    # station_status says it changes at any moment: it alone is fetched again.
    documents["/en/station_status.json"]["ttl"] = 0
    server.documents = documents
    cfg = config(server.url())
    with Lake.open(settings) as lake:
        succeeded(ingest(lake, cfg, settings))
        server.hits.clear()

        again = succeeded(ingest(lake, cfg, settings))

    assert again.payloads == 0
    assert server.paths_hit() == ["/en/station_status.json"]  # not even gbfs.json


# -- feeds, languages, quarantine, secrets --------------------------------------------------------


def test_feeds_language_and_missing_last_reported(
    local_lake: LakeTarget, server: GbfsServer
) -> None:
    settings = local_lake.settings(http=FAST_HTTP)
    with Lake.open(settings) as lake:
        server.publish(GbfsOptions(version="2.3", languages=("en", "nb")))
        only = config(server.url(), "nb23", language="nb", feeds=["station_information"])
        summary = succeeded(ingest(lake, only, settings))
        assert summary.payloads == 1
        assert server.paths_hit() == ["/gbfs.json", "/nb/station_information.json"]
        names = rows(lake, "nb23_station_information", "ORDER BY station_id")
        assert names[0]["name"] == "Hovedgata 1"

        server.publish(
            GbfsOptions(version="3.0", languages=("en", "nb"), vehicle_last_reported=False)
        )
        cfg = config(
            server.url(), "nb30", language="nb", feeds=["vehicle_types", "free_bike_status"]
        )
        succeeded(ingest(lake, cfg, settings))
        types = {r["vehicle_type_id"]: r["name"] for r in rows(lake, "nb30_vehicle_types")}
        assert types["ebike"] == "Elsykkel"
        # Without last_reported, a vehicle was last seen when the feed was published.
        seen = rows(lake, "nb30_vehicle_status")
        assert {r["last_reported"] for r in seen} == {BASE_TIME}

        # 3.0 has one feed list, and texts fall back to the first language; 2.3 needs the language.
        succeeded(ingest(lake, config(server.url(), "xx", language="xx"), settings))
        server.publish(GbfsOptions(version="2.3"))
        failed = ingest(lake, config(server.url(), "yy", language="xx"), settings)
        assert failed.status == "failed"
        assert "no feeds in language 'xx'" in (failed.error or "")


def test_a_record_with_a_bad_value_is_quarantined(
    local_lake: LakeTarget, server: GbfsServer, tmp_path: Path
) -> None:
    settings = local_lake.settings(http=FAST_HTTP)
    documents = gbfs_documents(GbfsOptions(version="3.0"), "")
    documents["/station_status.json"]["data"]["stations"][1]["is_installed"] = "yes"
    documents["/station_status.json"]["data"]["stations"][2]["last_reported"] = "yesterday"
    gbfs_json = write_folder(documents, tmp_path / "snapshot")
    with Lake.open(settings) as lake:
        summary = succeeded(
            ingest(lake, config(str(gbfs_json), feeds=["station_status"]), settings)
        )

        assert (summary.rows_committed, summary.rows_quarantined) == (4, 2)
        reasons = lake.query(
            "SELECT reason FROM mobility.bikes_station_status__quarantine ORDER BY reason"
        ).column("reason")
        assert reasons.to_pylist() == [
            "stations[1]: is_installed 'yes' is not a boolean",
            "stations[2]: last_reported 'yesterday' is neither RFC 3339 nor POSIX seconds",
        ]


def test_a_broken_feed_is_set_aside_and_the_others_load(
    local_lake: LakeTarget, server: GbfsServer
) -> None:
    settings = local_lake.settings(http=FAST_HTTP)
    server.publish(GbfsOptions(version="3.0"))
    server.documents["/station_status.json"] = b"<html>maintenance</html>"
    with Lake.open(settings) as lake:
        summary = ingest(lake, config(server.url()), settings)

        assert summary.status == "failed"
        assert "not valid JSON" in (summary.error or "")
        # The feeds before and after it are committed; it is set aside, its bytes kept.
        assert summary.payloads == 5 and summary.payloads_failed == 1
        kept = lake.query(
            "SELECT uri, status FROM platform.payloads WHERE origin LIKE '%station_status%'"
        )
        assert kept.to_pylist()[0]["status"] == "failed" and kept.num_rows == 1


def test_credentials_come_from_the_environment(
    local_lake: LakeTarget, server: GbfsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GBFS_TEST_TOKEN", "tok-5a1f-not-for-logs")
    monkeypatch.setenv("GBFS_TEST_KEY", "key-77c2-not-for-logs")
    server.publish(GbfsOptions(version="3.0", skip=("vehicle_status",)))
    server.require_header = ("Authorization", "Bearer tok-5a1f-not-for-logs")
    settings = local_lake.settings(http=FAST_HTTP)
    headers = {"Authorization": "Bearer ${GBFS_TEST_TOKEN}"}
    url = server.url() + "?key=${GBFS_TEST_KEY}"
    with Lake.open(settings) as lake:
        summary = succeeded(ingest(lake, config(url, headers=headers), settings))
        assert summary.payloads == 4
        # The key in the discovery URL goes with every feed URL on its host...
        assert all(hit.query == {"key": "key-77c2-not-for-logs"} for hit in server.hits)
        # ...and nowhere in the lake.
        stored = json.dumps(lake.read_state("mobility.bikes"))
        origins = lake.query("SELECT origin FROM platform.commits").column("origin").to_pylist()
        assert "key-77c2" not in stored + "".join(origins)
        assert all(origin.endswith("?key=****") for origin in origins)

        literal = ingest(
            lake, config(server.url(), "lit", headers={"Authorization": "unset-x"}), settings
        )
        assert literal.status == "failed"
        assert "secrets must be ${ENV} references" in (literal.error or "")


# -- 4. the generator writes valid GBFS -----------------------------------------------------------


@pytest.mark.parametrize("version", ["2.3", "3.0"])
def test_generated_feeds_validate_against_the_official_schemas(
    version: Literal["2.3", "3.0"],
) -> None:
    folder = SHARED / "conformance" / "gbfs" / f"v{version}"
    if not folder.is_dir():
        pytest.skip(f"GBFS JSON Schemas folder {folder} is absent (see SOURCES.md to restore it)")
    from jsonschema import validators

    options = GbfsOptions(version=version, languages=("en", "nb"))
    documents = gbfs_documents(options, "https://bikes.testcity.example/gbfs")
    checked = set()
    for path, document in documents.items():
        name = Path(path).stem
        schema = json.loads((folder / f"{name}.json").read_bytes())
        validator = validators.validator_for(schema)
        errors = list(
            validator(schema, format_checker=validator.FORMAT_CHECKER).iter_errors(document)
        )
        assert not errors, f"{path}: {[e.message for e in errors]}"
        checked.add(name)
    assert {"gbfs", "system_information", "station_status", "vehicle_types"} <= checked
    # The quirks are what makes a feed non-conforming.
    quirky = gbfs_documents(replace(QUIRKY_23, version=version), "https://x.example")
    status_path = "/station_status.json" if version == "3.0" else "/en/station_status.json"
    schema = json.loads((folder / "station_status.json").read_bytes())
    assert list(validators.validator_for(schema)(schema).iter_errors(quirky[status_path]))


# -- values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1714550400, datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ("1714550400", datetime(2024, 5, 1, 8, tzinfo=UTC)),
        (1714550400123, datetime(2024, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)),  # milliseconds
        ("2024-05-01T08:00:00Z", datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ("2024-05-01T10:00:00.5+02:00", datetime(2024, 5, 1, 8, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01t08:00:00z", datetime(2024, 5, 1, 8, tzinfo=UTC)),
    ],
)
def test_times(value: Any, expected: datetime) -> None:
    assert as_time(value) == expected


@pytest.mark.parametrize("value", ["2024-05-01T08:00:00", "soon", True, -5, None])
def test_not_times(value: Any) -> None:
    with pytest.raises(BadValue):
        as_time(value)


def test_booleans_and_localized_text() -> None:
    assert [as_bool(v) for v in (True, 1, 0, "false", "TRUE", "1")] == [
        True,
        True,
        False,
        False,
        True,
        True,
    ]
    for bad in (2, "yes", None):
        with pytest.raises(BadValue):
            as_bool(bad)
    texts = [{"text": "Bysykkel", "language": "nb"}, {"text": "City bike", "language": "en-GB"}]
    assert localized(texts, "en") == "City bike"  # en matches en-GB
    assert localized(texts, None) == "Bysykkel"
    assert localized(texts, "fr") == "Bysykkel"
    assert localized("plain", "fr") == "plain"


# -- the spec and the docs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"headers": {"Authorization": "Bearer literal-8f3a"}},
            "secrets must be ${ENV} references",
        ),
        ({"url": "https://gbfs.example/gbfs.json?key=literal-8f3a"}, "secrets must be ${ENV}"),
        ({"url": "ftp://gbfs.example/gbfs.json"}, "not an http://, https:// or file:// URL"),
        ({"url": "feeds/gbfs.json", "headers": {"Accept": "x"}}, "headers apply to http"),
        ({"feeds": ["system_alerts"]}, "Input should be"),
        ({"feeds": []}, "at least one feed"),
        ({"ttl": 10}, "Extra inputs are not permitted"),
    ],
)
def test_spec_errors(source: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        GbfsSpec.model_validate({"type": "gbfs", "url": "https://gbfs.example/gbfs.json", **source})
    assert message in str(raised.value)
    assert "literal-8f3a" not in "".join(e["msg"] for e in raised.value.errors())


def test_docs_page_documents_every_field_and_its_example_is_valid(tmp_path: Path) -> None:
    assert registry.connector_type("gbfs") is GbfsConnector
    page = (Path(__file__).resolve().parents[2] / "docs" / "connectors" / "gbfs.md").read_text(
        encoding="utf-8"
    )
    for name in GbfsSpec.model_fields:
        assert f"| `{name}` |" in page, f"source.{name} is not documented"
    for table in TABLES:
        assert f"`{table}`" in page
        for column in SCHEMAS[table].names:
            assert f"`{column}`" in page, f"{table}.{column} is not documented"
    blocks = re.findall(r"```yaml\n(.*?)```", page, flags=re.DOTALL)
    assert blocks
    for i, block in enumerate(blocks):
        path = tmp_path / f"example_{i}.yaml"
        path.write_text(block, encoding="utf-8")
        parsed, problems = validate_document(load_located(path))
        assert problems == [] and parsed is not None


def test_feeds_without_a_table_are_logged_and_not_requested(
    local_lake: LakeTarget, server: GbfsServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings: Settings = local_lake.settings(http=FAST_HTTP)
    server.publish(GbfsOptions(version="3.0", skip=("vehicle_status",)))
    caplog.set_level(logging.DEBUG, logger="urbanlake.connectors.gbfs")
    with Lake.open(settings) as lake:
        succeeded(ingest(lake, config(server.url()), settings))
    assert "feed system_alerts has no table here; not loaded" in caplog.text
    assert "/system_alerts.json" not in server.paths_hit()


@pytest.mark.parametrize("version", ["2.3", "3.0"])
def test_a_payload_decodes_without_the_fetch_that_read_it(
    version: Literal["2.3", "3.0"], local_lake: LakeTarget
) -> None:
    # A payload replayed from the raw zone: its table is told by the document's shape.
    cfg = config("https://gbfs.example/gbfs.json", language="nb")
    spec = GbfsSpec.model_validate(cfg.source)
    connector = GbfsConnector(spec, cfg, ConnectorContext(local_lake.settings()))
    options = GbfsOptions(version=version, languages=("en", "nb"))
    found = {}
    for path, document in gbfs_documents(options, "").items():
        if path.endswith(("gbfs.json", "system_alerts.json")) or "/en/" in path:
            continue
        payload = Payload(content=json.dumps(document).encode(), origin=path, format="json")
        [part] = connector.decode(payload).parts
        found[part.suffix] = part.decoded.table.num_rows
        if part.suffix == "system_information":
            [system] = part.decoded.table.to_pylist()
            assert (system["language"], system["name"]) == ("nb", "Testby Sykler")
    assert found == {
        "system_information": 1,
        "vehicle_types": 3,
        "station_information": 6,
        "station_status": 6,
        "vehicle_status": 8,
    }
