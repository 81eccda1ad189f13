"""The API over the other lake kinds: data on a (loopback) S3 server, catalog in PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.api.conftest import start_server
from tests.conftest import _target
from urbanlake.catalog.checks import catalog_entries
from urbanlake.catalog.publish import publish
from urbanlake.lakehouse.lake import Lake

ENTRY = """\
name: readings
domain: energy
title: Readings
publisher: {name: Test Utility}
license: CC0-1.0
primary_key: [id]
source: {table: energy.readings}
"""


@pytest.mark.parametrize("kind", ["s3-sqlite", "local-postgres", "s3-postgres"])
def test_api_on_every_lake_kind(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    target = _target(kind, tmp_path, request)
    (target.project / "catalog" / "energy").mkdir(parents=True)
    (target.project / "catalog" / "energy" / "readings.yaml").write_text(ENTRY)
    settings = target.settings()
    with Lake.open(settings) as lake:
        lake.con.execute("CREATE SCHEMA energy")
        lake.con.execute(
            "CREATE TABLE energy.readings AS SELECT range AS id, range % 7 AS meter, range / 10 AS kwh FROM range(5000)"
        )
        [first] = publish(lake, catalog_entries(settings))
        lake.con.execute("INSERT INTO energy.readings SELECT range + 5000, 1, 0.5 FROM range(100)")
        [second] = publish(lake, catalog_entries(settings))
    assert (first.rows, second.rows) == (5000, 5100)
    server = start_server(target.project, env=target.env)
    try:
        rows: list[int] = []
        url: str | None = (
            f"{server.api}/datasets/readings/records?limit=999&meter=1&version={first.version}"
        )
        while url:
            body = server.get(url).json()
            rows += [r["id"] for r in body["rows"]]
            url = body["next"]
        assert rows == [i for i in range(5000) if i % 7 == 1]
        aggregate = server.get(
            "/datasets/readings/aggregate", params={"group_by": "meter", "metrics": "count"}
        ).json()
        assert {r["meter"]: r["count"] for r in aggregate["rows"]}[1] == 715 + 100
        parquet = f"{server.api}/datasets/readings/versions/{second.version}/data.parquet"
        whole = server.get(parquet)
        assert pq.read_table(io.BytesIO(whole.content)).num_rows == 5100
        tail = server.get(parquet, headers={"Range": "bytes=-4"})
        assert tail.status_code == 206 and tail.content == b"PAR1"
        changes = server.get(
            "/datasets/readings/changes", params={"from": first.version, "to": second.version}
        ).json()
        assert changes["counts"] == {"inserted": 100, "updated": 0, "deleted": 0}
    finally:
        server.stop()
