"""The ``gtfs_static`` connector: the recorded Caltrain feed and generated ones, from disk and from
a loopback HTTP server, through full ingests into a real lake."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import hashlib
import io
import logging
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import LakeTarget
from tests.gtfs_feeds import (
    GtfsServer,
    csv_text,
    renamed_stop,
    small_feed,
    without_route,
    zip_feed,
)
from urbanlake.connectors import registry
from urbanlake.connectors.base import ConnectorContext
from urbanlake.connectors.gtfs_files import read_gtfs_file
from urbanlake.connectors.gtfs_static import GtfsStaticConnector, GtfsStaticSpec
from urbanlake.core.errors import ConfigError
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.lake import Lake
from urbanlake.pipeline.run import RunSummary, ingest

CALTRAIN = Path("gtfs/caltrain-ct-rt-companion.zip")


def config(url: str, name: str = "citybus", **source: Any) -> ConnectorConfig:
    return ConnectorConfig.model_validate(
        {
            "name": name,
            "domain": "transport",
            "source": {"type": "gtfs_static", "url": url, **source},
        }
    )


def load(target: LakeTarget, cfg: ConnectorConfig) -> tuple[Lake, RunSummary]:
    settings = target.settings()
    lake = Lake.open(settings)
    return lake, ingest(lake, cfg, settings)


def publish(target: LakeTarget, content: bytes, name: str = "feeds/gtfs.zip") -> str:
    """Put a zip where a connector reads it; returns the path relative to the project."""
    path = target.project / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return name


def data_lines(content: bytes) -> dict[str, int]:
    """Data rows per file, counted with the standard library, independently of the connector."""
    counts = {}
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for name in archive.namelist():
            text = archive.read(name).decode("utf-8-sig")
            rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
            counts[Path(name).stem] = len(rows) - 1
    return counts


def count(lake: Lake, table: str, at: int | None = None) -> int:
    return int(
        lake.query(f"SELECT count(*) AS n FROM {table}{Lake.at_clause(at)}").column(0)[0].as_py()
    )


def test_the_type_is_registered() -> None:
    # Built-in types register in registry.BUILTINS and the pyproject entry point.
    assert "gtfs_static" in registry.BUILTINS
    assert registry.connector_type("gtfs_static") is GtfsStaticConnector


# -- the recorded Caltrain feed ------------------------------------------------------------------


def test_caltrain_feed_loads_every_file_typed_and_once(
    local_lake: LakeTarget, sample_data: Path
) -> None:
    zip_path = sample_data / CALTRAIN
    content = zip_path.read_bytes()
    expected = data_lines(content)
    cfg = config(f"file://{zip_path}", name="caltrain")
    lake, summary = load(local_lake, cfg)
    with lake:
        assert summary.status == "succeeded", summary.error
        assert summary.payloads == 1 and summary.rows_quarantined == 0
        assert summary.rows_committed == sum(expected.values())
        for stem, lines in expected.items():
            assert count(lake, f"transport.caltrain_{stem}") == lines, stem

        stop = lake.query(
            "SELECT stop_name, stop_lat, stop_lon, parent_station, location_type "
            "FROM transport.caltrain_stops WHERE stop_id = '70021'"
        ).to_pylist()
        assert stop == [
            {"stop_name": "22nd Street Caltrain Station", "stop_lat": 37.757599,
             "stop_lon": -122.39188, "parent_station": "22nd_street", "location_type": 0}
        ]  # fmt: skip
        late = lake.query(
            "SELECT arrival_time, arrival_time_seconds, departure_time_seconds "
            "FROM transport.caltrain_stop_times WHERE trip_id = 'H281' AND stop_sequence = 12"
        ).to_pylist()
        assert late == [
            {"arrival_time": "24:01:00", "arrival_time_seconds": 86_460,
             "departure_time_seconds": 86_460}
        ]  # fmt: skip
        early = lake.query(
            "SELECT arrival_time_seconds FROM transport.caltrain_stop_times "
            "WHERE trip_id = '501' AND stop_sequence = 1"
        ).column(0)
        assert early.to_pylist() == [5 * 3600]  # "5:00:00": GTFS allows a one-digit hour
        calendar = lake.query(
            "SELECT start_date, end_date, saturday FROM transport.caltrain_calendar "
            "WHERE service_id = '72981'"
        ).to_pylist()
        assert calendar == [
            {"start_date": dt.date(2023, 9, 23), "end_date": dt.date(2024, 6, 1), "saturday": 1}
        ]
        types = {
            r["column_name"]: r["column_type"]
            for r in lake.query("DESCRIBE transport.caltrain_calendar_dates").to_pylist()
        }
        assert types == {"service_id": "VARCHAR", "date": "DATE", "exception_type": "BIGINT"}
        # A file the reference does not define is kept, all text.
        assert count(lake, "transport.caltrain_directions") == expected["directions"]

        state = lake.read_state("transport.caltrain")
        assert state["sha256"] == hashlib.sha256(content).hexdigest()
        assert state["feed_version"] == "20230922"
        assert (state["feed_start_date"], state["feed_end_date"]) == ("2023-09-23", "2024-06-01")
        assert state["referential"] == {
            "trips.route_id": 0, "trips.service_id": 0, "trips.shape_id": 0,
            "stop_times.trip_id": 0, "stop_times.stop_id": 0,
        }  # fmt: skip
        snapshots = len(lake.snapshots())

        # The same zip again: fetched, recognised by its hash, nothing kept or committed.
        again = ingest(lake, cfg, local_lake.settings())
        assert again.status == "succeeded" and again.payloads == 0 and again.rows_committed == 0
        assert len(lake.snapshots()) == snapshots + 1  # only the run's own record in platform.runs
        assert count(lake, "transport.caltrain_stop_times") == expected["stop_times"]
        kept = lake.query("SELECT count(DISTINCT sha256) FROM platform.payloads").column(0)
        assert kept.to_pylist() == [1]


# -- generated feeds -----------------------------------------------------------------------------


def test_generated_feed_on_every_lake_kind(lake_target: LakeTarget) -> None:
    feed = small_feed()
    url = publish(lake_target, zip_feed(feed))
    lake, summary = load(lake_target, config(url))
    with lake:
        assert summary.status == "succeeded", summary.error
        for file_name, rows in feed.items():
            assert count(lake, f"transport.citybus_{Path(file_name).stem}") == len(rows)
        stops = lake.query(
            "SELECT stop_id, stop_code, location_type FROM transport.citybus_stops ORDER BY stop_id"
        ).to_pylist()
        codes = {s["stop_id"]: s["stop_code"] for s in stops}
        assert codes == {"central": None, "S1": "007", "S2": "012", "S3": "100", "S4": "0100"}
        assert {s["stop_id"]: s["location_type"] for s in stops}["S2"] is None  # empty is null
        night = lake.query(
            "SELECT departure_time, departure_time_seconds FROM transport.citybus_stop_times "
            "WHERE trip_id = 'T2' AND stop_sequence = 2"
        ).to_pylist()
        assert night == [{"departure_time": "25:10:00", "departure_time_seconds": 90_600}]
        expected_types = {
            "citybus_stops": {"stop_id": "VARCHAR", "stop_code": "VARCHAR", "stop_lat": "DOUBLE",
                              "stop_lon": "DOUBLE", "location_type": "BIGINT",
                              "wheelchair_boarding": "BIGINT"},
            "citybus_stop_times": {"arrival_time": "VARCHAR", "arrival_time_seconds": "BIGINT",
                                   "stop_sequence": "BIGINT", "pickup_type": "BIGINT"},
            "citybus_calendar": {"monday": "BIGINT", "start_date": "DATE", "end_date": "DATE"},
            "citybus_routes": {"route_short_name": "VARCHAR", "route_type": "BIGINT",
                               "route_color": "VARCHAR"},
            "citybus_frequencies": {"start_time_seconds": "BIGINT", "headway_secs": "BIGINT"},
            "citybus_shapes": {"shape_pt_lat": "DOUBLE", "shape_dist_traveled": "DOUBLE"},
            "citybus_feed_info": {"feed_version": "VARCHAR", "feed_start_date": "DATE"},
            "citybus_vehicles": {"vehicle_id": "VARCHAR", "seats": "VARCHAR"},
        }  # fmt: skip
        for table, wanted in expected_types.items():
            described = {
                r["column_name"]: r["column_type"]
                for r in lake.query(f"DESCRIBE transport.{table}").to_pylist()
            }
            assert {name: described.get(name) for name in wanted} == wanted, table
        assert lake.query("SELECT vehicle_id FROM transport.citybus_vehicles ORDER BY 1").column(
            0
        ).to_pylist() == ["0042", "0043"]


def test_a_new_version_replaces_every_table_in_one_snapshot(local_lake: LakeTarget) -> None:
    first = small_feed()
    url = publish(local_lake, zip_feed(first))
    lake, v1 = load(local_lake, config(url))
    with lake:
        assert v1.status == "succeeded" and v1.snapshot_id is not None
        state = lake.read_state("transport.citybus")
        assert state["feed_version"] == "2024.05.01" and state["feed_end_date"] == "2024-12-31"
    second = without_route(renamed_stop(first, "S2", "Harbour Ferry Terminal"), "R2")
    del second["vehicles.txt"]  # a file dropped from the feed: its table is emptied too
    second["feed_info.txt"][0]["feed_version"] = "2024.06.01"
    publish(local_lake, zip_feed(second))
    lake, v2 = load(local_lake, config(url))
    with lake:
        assert v2.status == "succeeded", v2.error
        assert v2.payloads == 1
        changed = [s for s in lake.snapshots() if s.get("run_id") == v2.run_id]
        assert len(changed) == 1 and changed[0]["snapshot_id"] == v2.snapshot_id
        assert set(changed[0]["datasets"]) >= {
            "transport.citybus_stops", "transport.citybus_routes", "transport.citybus_trips",
            "transport.citybus_stop_times", "transport.citybus_vehicles",
        }  # fmt: skip

        routes = "SELECT route_id FROM transport.citybus_routes{} ORDER BY 1"
        assert lake.query(routes.format("")).column(0).to_pylist() == ["R1"]
        assert lake.query(routes.format(Lake.at_clause(v1.snapshot_id))).column(0).to_pylist() == [
            "R1", "R2"
        ]  # fmt: skip
        name = "SELECT stop_name FROM transport.citybus_stops{} WHERE stop_id = 'S2'"
        assert lake.query(name.format("")).column(0).to_pylist() == ["Harbour Ferry Terminal"]
        old = lake.query(name.format(Lake.at_clause(v1.snapshot_id)))
        assert old.column(0).to_pylist() == ["Harbour"]
        assert count(lake, "transport.citybus_stops") == 5  # replaced, not appended
        assert count(lake, "transport.citybus_stop_times") == 6
        assert count(lake, "transport.citybus_frequencies") == 0  # T3 went with R2
        assert count(lake, "transport.citybus_vehicles") == 0
        assert count(lake, "transport.citybus_vehicles", at=v1.snapshot_id) == 2
        state = lake.read_state("transport.citybus")
        assert state["feed_version"] == "2024.06.01" and "vehicles" not in state["files"]


def test_a_bad_latitude_quarantines_its_row_and_the_rest_load(
    local_lake: LakeTarget, caplog: pytest.LogCaptureFixture
) -> None:
    feed = small_feed()
    feed["stops.txt"][3]["stop_lat"] = "abc"  # S3, on line 5 (header, central, S1, S2, S3)
    url = publish(local_lake, zip_feed(feed))
    with caplog.at_level(logging.WARNING, logger="urbanlake.connectors.gtfs_static"):
        lake, summary = load(local_lake, config(url))
    assert "3 stop_times.stop_id not in stops.stop_id (e.g. 'S3')" in caplog.text
    with lake:
        assert summary.status == "succeeded", summary.error
        assert summary.rows_quarantined == 1
        assert lake.query("SELECT stop_id FROM transport.citybus_stops ORDER BY 1").column(
            0
        ).to_pylist() == ["S1", "S2", "S4", "central"]
        bad = lake.query(
            "SELECT line, check_name, reason, raw_record FROM transport.citybus_stops__quarantine"
        ).to_pylist()
        assert bad == [
            {"line": 5, "check_name": "decode",
             "reason": "stops.txt line 5: stop_lat 'abc' is not a number",
             "raw_record": "S3,100,Old Town,abc,10.760100,0,,"}
        ]  # fmt: skip
        # Three stop times now point at a stop that is not there: reported, not fatal.
        referential = lake.read_state("transport.citybus")["referential"]
        assert referential["stop_times.stop_id"] == 3 and referential["stop_times.trip_id"] == 0


def test_a_broken_zip_fails_the_run_and_keeps_the_bytes(local_lake: LakeTarget) -> None:
    broken = zip_feed(small_feed())[:500]
    url = publish(local_lake, broken)
    lake, summary = load(local_lake, config(url))
    with lake:
        assert summary.status == "failed"
        assert "not a zip archive" in (summary.error or "")
        assert "payload kept at" in (summary.error or "")
        uri = lake.query("SELECT uri FROM platform.payloads").column(0)[0].as_py()
        assert lake.raw.get(uri) == broken
        assert not any(t.name.startswith("citybus") for t in lake.table_names())


def test_a_feed_missing_required_files_names_them(local_lake: LakeTarget) -> None:
    feed = small_feed()
    for name in ("routes.txt", "calendar.txt", "calendar_dates.txt"):
        del feed[name]
    lake, summary = load(local_lake, config(publish(local_lake, zip_feed(feed))))
    with lake:
        assert summary.status == "failed"
        assert "missing routes.txt, calendar.txt or calendar_dates.txt" in (summary.error or "")


# -- reading files -------------------------------------------------------------------------------


def test_misfit_values_name_file_line_and_column() -> None:
    rows = copy.deepcopy(small_feed()["stop_times.txt"])
    rows[0]["trip_headsign"] = "two\nlines"  # a quoted value over two lines: line numbers hold
    rows[2]["arrival_time"] = "8:61:00"
    rows[3]["stop_sequence"] = "1.5"
    rows[5]["pickup_type"] = "2.0"  # an integer written as a decimal: loads as 2
    text = csv_text(rows).splitlines(keepends=True)
    text.insert(4, "T9,08:00:00\r\n")  # too few fields, on line 5 (the headsign spans 2 and 3)
    read = read_gtfs_file("".join(text).encode(), "stop_times.txt", standard=True)
    assert read.decoded.table.num_rows == 6
    bad = sorted((b.line, b.reason, b.raw) for b in read.decoded.bad_records)
    assert bad == [
        (5, "stop_times.txt line 5: expected 9 fields, found 2", "T9,08:00:00"),
        (6, "stop_times.txt line 6: arrival_time '8:61:00' is not a time (H:MM:SS)",
         "T1,8:61:00,08:12:30,S3,3,0,0,1,"),
        (7, "stop_times.txt line 7: stop_sequence '1.5' is not an integer",
         "T2,24:50:00,24:50:00,S1,1.5,0,0,1,"),
    ]  # fmt: skip
    assert read.decoded.table.column("pickup_type").to_pylist()[-3] == 2


def test_dates_must_exist_and_text_is_kept_as_published() -> None:
    content = b"service_id,date,exception_type\r\n007,20230230,1\r\n008,20240229,NA\r\n"
    read = read_gtfs_file(content, "calendar_dates.txt", standard=True)
    assert [b.reason for b in read.decoded.bad_records] == [
        "calendar_dates.txt line 2: date '20230230' is not a date (YYYYMMDD)",
        "calendar_dates.txt line 3: exception_type 'NA' is not an integer",
    ]
    extra = read_gtfs_file(content, "calendar_notes.txt", standard=False)
    assert extra.decoded.table.to_pylist()[0] == {
        "service_id": "007", "date": "20230230", "exception_type": "1"
    }  # fmt: skip


def test_feed_files_in_a_folder_inside_the_zip(local_lake: LakeTarget) -> None:
    lake, summary = load(
        local_lake, config(publish(local_lake, zip_feed(small_feed(), folder="gtfs/")))
    )
    with lake:
        assert summary.status == "succeeded", summary.error
        assert count(lake, "transport.citybus_stops") == 5


# -- HTTP and the spec ---------------------------------------------------------------------------


def test_http_feed_with_a_secret_header(
    local_lake: LakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GTFS_TOKEN", "s3cret-token-for-gtfs")
    with GtfsServer(zip_feed(small_feed())) as server:
        server.require_header = ("Authorization", "Bearer s3cret-token-for-gtfs")
        cfg = config(server.url(), headers={"Authorization": "Bearer ${GTFS_TOKEN}"})
        lake, summary = load(local_lake, cfg)
        with lake:
            assert summary.status == "succeeded", summary.error
            assert count(lake, "transport.citybus_trips") == 3
            again = ingest(lake, cfg, local_lake.settings())
            assert again.payloads == 0 and server.requests == 2
            origin = lake.query("SELECT origin FROM platform.payloads").column(0)[0].as_py()
            assert origin == server.url()
        unauthorised = config(server.url(), name="nobody")
        lake, summary = load(local_lake, unauthorised)
        with lake:
            assert summary.status == "failed" and "HTTP 401" in (summary.error or "")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"url": "feeds/gtfs.zip", "headers": {"Accept": "x"}}, "headers apply to http://"),
        ({"url": "ftp://transit.example/gtfs.zip"}, "not an http://"),
        ({"url": "https://transit.example/gtfs.zip", "headers": {"Authorization": "Bearer abc123"}},
         "must be ${ENV} references"),
        ({"url": "https://transit.example/gtfs.zip?api_key=abc123"}, "must be ${ENV} references"),
    ],
)  # fmt: skip
def test_spec_rejects(source: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        GtfsStaticSpec.model_validate({"type": "gtfs_static", **source})


def test_a_literal_secret_in_the_config_is_a_config_error(local_lake: LakeTarget) -> None:
    cfg = config("https://transit.example/gtfs.zip", headers={"X-Api-Key": "literal-key-123"})
    lake, summary = load(local_lake, cfg)
    with lake:
        assert summary.status == "failed" and "${ENV} references" in (summary.error or "")
    with pytest.raises(ConfigError):
        registry.build_connector(cfg, ConnectorContext(local_lake.settings()))
