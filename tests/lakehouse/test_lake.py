"""The lakehouse on every storage × catalog combination: commits, idempotency, schema evolution,
quarantine, time travel, history and the raw zone."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import LakeTarget
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.lake import Lake
from urbanlake.lakehouse.records import TableRef
from urbanlake.pipeline.run import ingest

BINS = TableRef("waste", "bins")


def bins_config(target: LakeTarget, url: str = "data/*.csv", **extra: object) -> ConnectorConfig:
    return ConnectorConfig.model_validate(
        {
            "name": "bins",
            "domain": "waste",
            "source": {"type": "file", "url": url},
            "table": {"primary_key": ["bin_id", "ts"], "event_time": "ts"},
            **extra,
        }
    )


def write_csv(project: Path, name: str, rows: list[str], header: str = "bin_id,fill,ts") -> Path:
    path = project / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def clean_rows(start: int, count: int, hour: int = 10) -> list[str]:
    return [f"b{i:04d},{i % 100},2026-01-01T{hour:02d}:00:00Z" for i in range(start, start + count)]


def count(lake: Lake, sql: str) -> int:
    return int(lake.query(sql).column(0)[0].as_py())


def test_ingest_then_same_file_again_adds_nothing(lake_target: LakeTarget) -> None:
    settings = lake_target.settings()
    write_csv(lake_target.project, "a.csv", clean_rows(0, 50))
    with Lake.open(settings) as lake:
        first = ingest(lake, bins_config(lake_target), settings)
        assert (first.status, first.rows_committed) == ("succeeded", 50)
        # The same bytes under another name: the state does not know it, the primary key does.
        write_csv(lake_target.project, "copy.csv", clean_rows(0, 50))
        second = ingest(lake, bins_config(lake_target), settings)
        assert second.payloads == 1 and second.rows_committed == 0 and second.rows_duplicate == 50
        # Nothing new at all: the state skips both files.
        third = ingest(lake, bins_config(lake_target), settings)
        assert third.payloads == 0
        assert count(lake, "SELECT count(*) FROM waste.bins") == 50
        runs = lake.query(
            "SELECT status, rows_committed FROM platform.runs ORDER BY started_at"
        ).to_pylist()
        assert [r["rows_committed"] for r in runs] == [50, 0, 0]


def test_new_source_column_is_added_with_nulls_for_older_rows(lake_target: LakeTarget) -> None:
    settings = lake_target.settings()
    write_csv(lake_target.project, "a.csv", clean_rows(0, 30))
    with Lake.open(settings) as lake:
        ingest(lake, bins_config(lake_target), settings)
        rows = [f"c{i},{i},2026-01-02T10:00:00Z,{i * 1.5}" for i in range(30)]
        write_csv(lake_target.project, "b.csv", rows, header="bin_id,fill,ts,temperature")
        summary = ingest(lake, bins_config(lake_target), settings)
        assert summary.status == "succeeded", summary.error
        assert "temperature" in lake.column_types(BINS)
        assert count(lake, "SELECT count(*) FROM waste.bins WHERE temperature IS NULL") == 30
        assert count(lake, "SELECT count(*) FROM waste.bins WHERE temperature IS NOT NULL") == 30


def test_bad_rows_go_to_quarantine_with_their_reason(lake_target: LakeTarget) -> None:
    settings = lake_target.settings()
    rows = clean_rows(0, 200)
    rows[10] = "b0010,not-a-number,2026-01-01T10:00:00Z"  # unparsable value
    rows[20] = "b0020,5"  # a line with a missing field
    write_csv(lake_target.project, "a.csv", rows)
    with Lake.open(settings) as lake:
        summary = ingest(lake, bins_config(lake_target), settings)
        assert summary.rows_in == 200
        assert (summary.rows_committed, summary.rows_quarantined) == (198, 2)
        bad = lake.query("SELECT * FROM waste.bins__quarantine ORDER BY check_name").to_pylist()
        assert [b["check_name"] for b in bad] == ["decode", "type"]
        assert bad[0]["line"] == 22 and "expected 3 columns, found 2" in bad[0]["reason"]
        assert bad[0]["raw_record"] == "b0020,5"
        assert "fill: not-a-number is not BIGINT" in bad[1]["reason"]
        assert '"not-a-number"' in bad[1]["raw_record"] and bad[1]["run_id"] == summary.run_id
        assert lake.column_types(BINS)["fill"] == "BIGINT"


def test_a_type_change_quarantines_the_batch_and_fails_the_run(lake_target: LakeTarget) -> None:
    settings = lake_target.settings()
    write_csv(lake_target.project, "a.csv", clean_rows(0, 30))
    with Lake.open(settings) as lake:
        ingest(lake, bins_config(lake_target), settings)
        write_csv(
            lake_target.project, "b.csv", [f"x{i},full,2026-01-03T10:00:00Z" for i in range(25)]
        )
        summary = ingest(lake, bins_config(lake_target), settings)
        assert (
            summary.status == "failed"
            and "fill" in (summary.error or "")
            and "type" in (summary.error or "")
        )
        assert summary.rows_quarantined == 25 and summary.rows_committed == 0
        assert count(lake, "SELECT count(*) FROM waste.bins") == 30
        assert (
            count(lake, "SELECT count(*) FROM waste.bins__quarantine WHERE check_name = 'schema'")
            == 25
        )


def test_time_travel_returns_the_earlier_row_count(lake_target: LakeTarget) -> None:
    settings = lake_target.settings()
    write_csv(lake_target.project, "a.csv", clean_rows(0, 40))
    with Lake.open(settings) as lake:
        first = ingest(lake, bins_config(lake_target), settings)
        between = lake.query("SELECT now() AS t").column(0)[0].as_py()
        time.sleep(0.05)
        write_csv(lake_target.project, "b.csv", clean_rows(100, 25))
        second = ingest(lake, bins_config(lake_target), settings)
        assert second.snapshot_id is not None and first.snapshot_id is not None
        assert count(lake, "SELECT count(*) FROM waste.bins") == 65
        assert (
            count(lake, f"SELECT count(*) FROM waste.bins AT (VERSION => {first.snapshot_id})")
            == 40
        )
        assert lake.reader.read_table(BINS, version=first.snapshot_id).num_rows == 40
        assert lake.reader.read_table(BINS, timestamp=between).num_rows == 40
        history = lake.snapshots(BINS)
        assert [h["rows"] for h in history[:2]] == [65, 40]
        assert history[0]["run_id"] == second.run_id


def test_raw_zone_keeps_each_payload_once(lake_target: LakeTarget) -> None:
    settings = lake_target.settings()
    write_csv(lake_target.project, "a.csv", clean_rows(0, 10))
    with Lake.open(settings) as lake:
        ingest(lake, bins_config(lake_target), settings)
        write_csv(lake_target.project, "same.csv", clean_rows(0, 10))
        ingest(lake, bins_config(lake_target), settings)
        payloads = lake.query("SELECT sha256, uri FROM platform.payloads").to_pylist()
        assert len(payloads) == 1
        uri = payloads[0]["uri"]
        assert "/raw/waste/bins/" in uri and uri.endswith(f"{payloads[0]['sha256']}.csv")
        assert lake.raw.get(uri) == (lake_target.project / "data" / "a.csv").read_bytes()


def test_state_is_committed_with_the_data(lake_target: LakeTarget) -> None:
    settings = lake_target.settings()
    write_csv(lake_target.project, "a.csv", clean_rows(0, 10))
    write_csv(lake_target.project, "b.csv", clean_rows(10, 10))
    with Lake.open(settings) as lake:
        ingest(lake, bins_config(lake_target), settings)
        state = lake.read_state("waste.bins")
        assert sorted(Path(p).name for p in state["files"]) == ["a.csv", "b.csv"]
        per_commit = lake.query(
            "SELECT batch, rows_inserted, rows_total FROM platform.commits ORDER BY batch"
        ).to_pylist()
        assert [(c["rows_inserted"], c["rows_total"]) for c in per_commit] == [(10, 10), (10, 20)]


@pytest.mark.parametrize("zone", ["Europe/Oslo"])
def test_naive_timestamps_are_read_in_the_declared_zone(local_lake: LakeTarget, zone: str) -> None:
    settings = local_lake.settings()
    write_csv(local_lake.project, "a.csv", ["b1,1,2026-06-01 12:00:00"])
    config = bins_config(
        local_lake, table={"primary_key": ["bin_id"], "event_time": "ts", "timezone": zone}
    )
    with Lake.open(settings) as lake:
        ingest(lake, config, settings)
        value = (
            lake.query("SELECT strftime(ts AT TIME ZONE 'UTC', '%H:%M') FROM waste.bins")
            .column(0)[0]
            .as_py()
        )
        assert value == "10:00"  # 12:00 in Oslo's summer time is 10:00 UTC


def test_null_and_conflicting_keys_in_a_batch_are_quarantined_exact_copies_dropped(
    lake_target: LakeTarget,
) -> None:
    settings = lake_target.settings()
    rows = clean_rows(0, 30)
    rows += [rows[3], "b0004,99,2026-01-01T10:00:00Z", ",5,2026-01-01T10:00:00Z"]
    write_csv(lake_target.project, "a.csv", rows)
    with Lake.open(settings) as lake:
        summary = ingest(lake, bins_config(lake_target), settings)
        assert summary.rows_in == 33
        assert (summary.rows_committed, summary.rows_quarantined, summary.rows_duplicate) == (
            30,
            2,
            1,
        )
        bad = lake.query(
            "SELECT check_name, raw_record FROM waste.bins__quarantine ORDER BY check_name"
        ).to_pylist()
        assert [b["check_name"] for b in bad] == ["primary_key_duplicate", "primary_key_null"]
        assert '"fill":99' in bad[0]["raw_record"].replace(" ", "")
        # The first row of a repeated key is the one kept.
        assert count(lake, "SELECT fill FROM waste.bins WHERE bin_id = 'b0004'") == 4
        commit = lake.query(
            "SELECT rows_quarantined, rows_duplicate FROM platform.commits"
        ).to_pylist()
        assert commit == [{"rows_quarantined": 2, "rows_duplicate": 1}]


def test_several_tables_commit_in_one_snapshot_and_replace_keeps_history(
    lake_target: LakeTarget,
) -> None:
    import pyarrow as pa

    from urbanlake.lakehouse.records import CommitRequest

    def request(
        name: str, rows: list[dict[str, object]], batch: int, **extra: object
    ) -> CommitRequest:
        table = pa.Table.from_pylist(rows)
        table = table.append_column("__row", pa.array(range(len(rows)), pa.int64()))
        return CommitRequest(
            table=TableRef("transport", name),
            rows=table,
            connector="transport.feed",
            run_id="run-1",
            batch=batch,
            primary_key=["id"],
            **extra,
        )  # type: ignore[arg-type]

    with Lake.open(lake_target.settings()) as lake:
        first = lake.commit_batches(
            [
                request(
                    "feed_stops",
                    [{"id": "s1", "name": "Central"}, {"id": "s2", "name": "Harbour"}],
                    1,
                    replace=True,
                ),
                request(
                    "feed_routes",
                    [{"id": "r1", "name": "Line 1"}],
                    1,
                    replace=True,
                    state={"version": "a"},
                ),
            ]
        )
        assert {r.snapshot_id for r in first} == {first[0].snapshot_id}
        assert lake.read_state("transport.feed") == {"version": "a"}
        second = lake.commit_batches(
            [
                request("feed_stops", [{"id": "s1", "name": "Central Station"}], 2, replace=True),
                request(
                    "feed_routes",
                    [{"id": "r1", "name": "Line 1"}, {"id": "r2", "name": "Line 2"}],
                    2,
                    replace=True,
                    state={"version": "b"},
                ),
            ]
        )
        assert lake.query("SELECT id, name FROM transport.feed_stops").to_pylist() == [
            {"id": "s1", "name": "Central Station"}
        ]
        assert count(lake, "SELECT count(*) FROM transport.feed_routes") == 2
        old = first[0].snapshot_id
        assert count(lake, f"SELECT count(*) FROM transport.feed_stops AT (VERSION => {old})") == 2
        assert second[0].snapshot_id == second[1].snapshot_id > old
        assert lake.read_state("transport.feed") == {"version": "b"}
        assert [h["snapshot_id"] for h in lake.snapshots(TableRef("transport", "feed_routes"))][
            :2
        ] == [
            second[0].snapshot_id,
            old,
        ]
