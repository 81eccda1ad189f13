"""Reading while the lake moves on: keyset pages of a pinned version stay exact while an ingest
commits and publishes new versions; versions, changes and incremental statistics."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import ApiServer, new_project, sql, start_server
from urbanlake.catalog.checks import catalog_entries
from urbanlake.catalog.publish import publish
from urbanlake.connectors.registry import load_configs
from urbanlake.core.settings import load_settings
from urbanlake.lakehouse.lake import Lake
from urbanlake.lakehouse.records import TableRef
from urbanlake.lakehouse.versions import version_statistics
from urbanlake.pipeline.run import ingest

CONNECTOR = """\
name: meters
domain: energy
title: Meter readings
publisher: {name: Test Utility}
source: {type: file, url: data/*.csv}
table: {primary_key: [meter_id, ts], event_time: ts}
publish: {license: CC-BY-4.0}
"""
ENTRY = """\
name: meters
domain: energy
source: {table: energy.meters}
"""
DAILY = """\
name: meters-daily
domain: energy
title: Daily use per meter
publisher: {name: Test Utility}
license: CC-BY-4.0
primary_key: [meter_id, day]
source: {sql: meters-daily.sql}
"""
DAILY_SQL = "SELECT meter_id, CAST(ts AS DATE) AS day, sum(kwh) AS kwh, count(*) AS n FROM energy.meters GROUP BY ALL\n"


def write_batch(project: Path, index: int, rows: int = 400) -> None:
    lines = ["meter_id,ts,kwh"]
    for r in range(rows):
        minute = index * rows + r
        kwh = "" if r % 97 == 0 else f"{(minute * 7) % 100 / 4}"
        lines.append(
            f"m{r % 13:02d},2026-03-{1 + minute // 1440:02d}T{minute // 60 % 24:02d}:{minute % 60:02d}:00Z,{kwh}"
        )
    (project / "data" / f"batch-{index:03d}.csv").write_text("\n".join(lines) + "\n")


def ingest_and_publish(project: Path) -> None:
    settings = load_settings(project, env={})
    configs, _ = load_configs(settings.connectors_dir)
    with Lake.open(settings) as lake:
        summary = ingest(lake, configs[0], settings)
        assert summary.status == "succeeded", summary.error
        publish(lake, catalog_entries(settings))


def meters_city(folder: Path) -> Path:
    """A small city: a meter-readings connector over CSV files in data/, the readings as a
    dataset and their daily sum as a SQL model."""
    project = new_project(folder, with_city=False)
    (project / "connectors").mkdir()
    (project / "connectors" / "meters.yaml").write_text(CONNECTOR)
    (project / "catalog" / "energy").mkdir(parents=True)
    (project / "catalog" / "energy" / "meters.yaml").write_text(ENTRY)
    (project / "catalog" / "energy" / "meters-daily.yaml").write_text(DAILY)
    (project / "catalog" / "energy" / "meters-daily.sql").write_text(DAILY_SQL)
    (project / "data").mkdir()
    return project


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    project = meters_city(tmp_path_factory.mktemp("live") / "city")
    for index in range(5):
        write_batch(project, index)
    ingest_and_publish(project)
    server = start_server(project)
    yield server
    server.stop()


def test_pages_of_a_pinned_version_stay_exact_while_new_data_is_committed(live: ApiServer) -> None:
    first = live.get("/datasets/meters/records", params={"limit": 37, "order_by": "-kwh"}).json()
    version = first["version"]
    done = threading.Event()
    errors: list[BaseException] = []

    def background() -> None:
        try:
            for index in range(5, 11):
                write_batch(live.project, index)
                ingest_and_publish(live.project)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=background)
    worker.start()
    rows = [(r["meter_id"], r["ts"]) for r in first["rows"]]
    url = first["next"]
    pages = 1
    while url:
        body = live.get(url).json()
        assert body["version"] == version and body["total"] == first["total"]
        rows += [(r["meter_id"], r["ts"]) for r in body["rows"]]
        url = body["next"]
        pages += 1
    worker.join(timeout=600)
    assert not errors, errors
    expected = sql(live.project, f"SELECT meter_id, ts FROM energy.meters AT (VERSION => {version}) "
                   "ORDER BY kwh DESC NULLS LAST, meter_id, ts")  # fmt: skip
    assert len(rows) == len(set(rows)) == len(expected) == first["total"] == 2000
    assert [(m, t) for m, t in rows] == [(e["meter_id"], e["ts"].isoformat()) for e in expected]
    assert pages > 50
    # The latest version moved on meanwhile, and its total is the new one.
    latest = live.get("/datasets/meters/records", params={"limit": 1}).json()
    assert latest["version"] > version and latest["total"] == 2000 + 6 * 400


def test_versions_and_changes_between_them(live: ApiServer) -> None:
    versions = live.get("/datasets/meters/versions").json()["versions"]
    assert len(versions) >= 2
    newest, oldest = versions[0], versions[-1]
    assert newest["rows"] > oldest["rows"] and newest["inputs"][0]["table"] == "energy.meters"
    changes = live.get(
        "/datasets/meters/changes",
        params={"from": oldest["version"], "to": newest["version"], "limit": 10},
    ).json()
    assert changes["counts"] == {
        "inserted": newest["rows"] - oldest["rows"],
        "updated": 0,
        "deleted": 0,
    }
    assert len(changes["inserted"]) == 10 and changes["complete"] is False
    assert changes["key"] == ["meter_id", "ts"]
    # A model's rows change in place when an input grows: the same key with new values.
    daily = live.get("/datasets/meters-daily/versions").json()["versions"]
    moved = live.get(
        "/datasets/meters-daily/changes",
        params={"from": daily[-1]["version"], "to": daily[0]["version"]},
    ).json()
    assert moved["counts"]["updated"] > 0 and moved["counts"]["deleted"] == 0
    before, after = moved["updated"][0]["before"], moved["updated"][0]["after"]
    assert before["meter_id"] == after["meter_id"] and before["n"] < after["n"]


def test_incremental_statistics_equal_a_full_computation(live: ApiServer) -> None:
    body = live.get("/datasets/meters").json()
    version = body["version"]
    with Lake.open(live.settings()) as lake:
        count, full = version_statistics(lake.con, TableRef("energy", "meters"), version, None)
        latest = lake.reader.dataset_versions("meters")[0]
    assert latest["statistics"]["method"] == "incremental"
    assert body["statistics"]["rows"] == count
    for column, stats in full["columns"].items():
        got = body["statistics"]["columns"][column]
        assert (got["min"], got["max"], got["null_count"]) == (
            stats["min"],
            stats["max"],
            stats["null_count"],
        ), column
    [nulls] = sql(
        live.project,
        f"SELECT count(*) - count(kwh) AS n FROM energy.meters AT (VERSION => {version})",
    )
    assert body["statistics"]["columns"]["kwh"]["null_count"] == nulls["n"] > 0
