"""Caltrain's real schedule and its companion realtime feeds, in one lake: every trip the
realtime feeds mention joins to the schedule's trips."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import LakeTarget
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.lake import Lake
from urbanlake.pipeline.run import ingest


def config(name: str, source: dict[str, str], key: list[str]) -> ConnectorConfig:
    return ConnectorConfig.model_validate(
        {"name": name, "domain": "transport", "source": source, "table": {"primary_key": key}}
    )


def test_realtime_trips_join_to_the_schedule(local_lake: LakeTarget, sample_data: Path) -> None:
    settings = local_lake.settings()
    configs = [
        config(
            "caltrain",
            {
                "type": "gtfs_static",
                "url": str(sample_data / "gtfs" / "caltrain-ct-rt-companion.zip"),
            },
            [],
        ),
        config(
            "vehicle_positions",
            {
                "type": "gtfs_realtime",
                "url": str(sample_data / "gtfs-rt" / "ct-vehicle-positions.pb"),
            },
            ["entity_id", "timestamp"],
        ),
        config(
            "trip_updates",
            {"type": "gtfs_realtime", "url": str(sample_data / "gtfs-rt" / "ct-trip-updates.pb")},
            ["entity_id", "timestamp", "stop_time_update_index"],
        ),
    ]
    with Lake.open(settings) as lake:
        for cfg in configs:
            summary = ingest(lake, cfg, settings)
            assert summary.status == "succeeded", summary.error
        for table, trips in (("vehicle_positions", 14), ("trip_updates", 19)):
            found = lake.query(
                f"""SELECT count(DISTINCT r.trip_id) AS trips,
                           count(DISTINCT r.trip_id) FILTER (WHERE t.trip_id IS NULL) AS orphans
                    FROM transport.{table} r LEFT JOIN transport.caltrain_trips t USING (trip_id)"""
            ).to_pylist()[0]
            assert found == {"trips": trips, "orphans": 0}, table
        per_route = lake.query(
            """SELECT r.route_id, count(*) AS vehicles FROM transport.vehicle_positions v
               JOIN transport.caltrain_trips t USING (trip_id) JOIN transport.caltrain_routes r ON r.route_id = t.route_id
               GROUP BY ALL"""
        ).to_pylist()
        assert sum(r["vehicles"] for r in per_route) == 14
