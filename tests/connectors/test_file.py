"""The `file` connector: every format, globs, file:// and s3:// sources, on every lake kind."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import S3_KEY_ID, S3_SECRET, LakeTarget, s3_client
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.lake import Lake
from urbanlake.pipeline.run import ingest

RECORDS = [
    {
        "light_id": f"SL-{i:03d}",
        "watts": 35 + i % 4 * 15,
        "lamp": "LED" if i % 3 else "HPS",
        "installed": f"2020-01-{i % 28 + 1:02d}",
        "position": {"lat": 59.9 + i / 1000, "lon": 10.7},
    }
    for i in range(60)
]


def config(url: str, **source: object) -> ConnectorConfig:
    return ConnectorConfig.model_validate(
        {
            "name": "lights",
            "domain": "lighting",
            "source": {"type": "file", "url": url, **source},
            "table": {"primary_key": ["light_id"]},
        }
    )


def load(target: LakeTarget, cfg: ConnectorConfig) -> tuple[Lake, object]:
    settings = target.settings()
    lake = Lake.open(settings)
    return lake, ingest(lake, cfg, settings)


def rows(lake: Lake) -> list[dict[str, object]]:
    return lake.query("SELECT * FROM lighting.lights ORDER BY light_id").to_pylist()


def write(target: LakeTarget, name: str, content: bytes) -> Path:
    path = target.project / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet", "csv.gz"])
def test_each_format_loads_the_same_rows(lake_target: LakeTarget, fmt: str) -> None:
    flat = [
        {k: v for k, v in r.items() if k != "position"} | {"position_lat": r["position"]["lat"]}
        for r in RECORDS
    ]
    if fmt == "json":
        write(lake_target, "lights.json", json.dumps({"result": {"lights": RECORDS}}).encode())
        cfg = config("in/*.json", records_path="result.lights")
    elif fmt == "jsonl":
        write(lake_target, "lights.jsonl", "\n".join(json.dumps(r) for r in RECORDS).encode())
        cfg = config("in/lights.jsonl")
    elif fmt.startswith("csv"):
        header = "light_id,watts,lamp,installed,position_lat\n"
        body = "".join(
            f"{r['light_id']},{r['watts']},{r['lamp']},{r['installed']},{r['position_lat']}\n"
            for r in flat
        )
        data = (header + body).encode()
        name = "lights.csv.gz" if fmt.endswith("gz") else "lights.csv"
        write(lake_target, name, gzip.compress(data) if fmt.endswith("gz") else data)
        cfg = config(f"in/{name}")
    else:
        path = lake_target.project / "in" / "lights.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(flat), path)
        cfg = config(f"file://{path}")
    lake, summary = load(lake_target, cfg)
    with lake:
        assert summary.status == "succeeded", summary.error  # type: ignore[attr-defined]
        loaded = rows(lake)
        assert len(loaded) == 60
        assert (
            loaded[5]["light_id"] == "SL-005"
            and loaded[5]["watts"] == 50
            and loaded[5]["lamp"] == "LED"
        )
        assert loaded[5]["position_lat"] == pytest.approx(59.905)
        assert str(loaded[5]["installed"]) == "2020-01-06"


def test_s3_source_with_glob(lake_target: LakeTarget, s3_endpoint: str, s3_bucket: str) -> None:
    client = s3_client(s3_endpoint)
    for part in range(3):
        chunk = RECORDS[part * 20 : (part + 1) * 20]
        client.put_object(
            Bucket=s3_bucket,
            Key=f"drop/2026/part-{part}.jsonl",
            Body="\n".join(json.dumps(r) for r in chunk).encode(),
        )
    client.put_object(Bucket=s3_bucket, Key="drop/2026/readme.txt", Body=b"not data")
    target = LakeTarget(
        lake_target.project,
        {
            **lake_target.env,
            "URBANLAKE_S3_ENDPOINT": s3_endpoint,
            "URBANLAKE_S3_ACCESS_KEY_ID": S3_KEY_ID,
            "URBANLAKE_S3_SECRET_ACCESS_KEY": S3_SECRET,
            "URBANLAKE_S3_USE_SSL": "false",
        },
    )
    lake, summary = load(target, config(f"s3://{s3_bucket}/drop/*/part-*.jsonl"))
    with lake:
        assert summary.payloads == 3 and summary.rows_committed == 60  # type: ignore[attr-defined]


def test_mixed_types_and_bad_lines_are_quarantined_not_lost(lake_target: LakeTarget) -> None:
    lines = [json.dumps({"light_id": f"SL-{i:03d}", "watts": i}) for i in range(40)]
    lines[7] = json.dumps({"light_id": "SL-007", "watts": "broken"})
    lines[9] = "{not json"
    lines[11] = json.dumps(["an", "array"])
    write(lake_target, "lights.jsonl", "\n".join(lines).encode())
    lake, summary = load(lake_target, config("in/lights.jsonl"))
    with lake:
        assert (
            summary.rows_in == 40 and summary.rows_committed == 37 and summary.rows_quarantined == 3
        )  # type: ignore[attr-defined]
        bad = lake.query(
            "SELECT line, check_name, reason FROM lighting.lights__quarantine ORDER BY reason"
        ).to_pylist()
        reasons = " | ".join(b["reason"] for b in bad)
        assert "watts: broken is not BIGINT" in reasons
        assert "not valid JSON" in reasons and "not a JSON object" in reasons
        assert sorted(b["line"] for b in bad if b["line"]) == [10, 12]


def test_an_undecodable_file_fails_the_run_and_keeps_the_bytes(lake_target: LakeTarget) -> None:
    write(lake_target, "broken.json", b'{"lights": [1, 2')
    lake, summary = load(lake_target, config("in/broken.json"))
    with lake:
        assert summary.status == "failed"  # type: ignore[attr-defined]
        assert "not valid JSON" in summary.error and "payload kept at" in summary.error  # type: ignore[attr-defined]
        payload = lake.query("SELECT uri FROM platform.payloads").to_pylist()[0]["uri"]
        assert lake.raw.get(payload) == b'{"lights": [1, 2'
        run = lake.query("SELECT status, error FROM platform.runs").to_pylist()[0]
        assert run["status"] == "failed" and "not valid JSON" in run["error"]


def test_missing_file_and_unknown_extension_are_clear_errors(lake_target: LakeTarget) -> None:
    lake, summary = load(lake_target, config("in/nothing.csv"))
    with lake:
        assert summary.status == "failed" and "no such file" in summary.error  # type: ignore[attr-defined]
    write(lake_target, "lights.xyz", b"a,b\n")
    lake, summary = load(lake_target, config("in/lights.xyz"))
    with lake:
        assert "set source.format" in summary.error  # type: ignore[attr-defined]
