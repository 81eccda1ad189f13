"""Every /api/v1 endpoint over HTTP on the demo city, each answer held against the same question
asked of the lake in SQL."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest

from tests.api.conftest import ApiServer, sql

HIDDEN = "meter-readings"  # the demo's partner-only dataset


def version_of(demo_api: ApiServer, name: str) -> int:
    return int(demo_api.get(f"/datasets/{name}").json()["version"])


def test_search_lists_public_datasets_with_exact_facets(demo_api: ApiServer) -> None:
    body = demo_api.get("/datasets", params={"limit": 100}).json()
    names = {d["name"] for d in body["datasets"]}
    assert HIDDEN not in names and "bin-fill-levels" in names and "bins-above-80" in names
    assert body["total"] == len(names) == 9
    assert body["facets"]["domain"] == {"transport": 3, "energy": 2, "lighting": 2, "waste": 2}
    assert sum(body["facets"]["license"].values()) == 9
    waste = demo_api.get("/datasets", params={"domain": "waste"}).json()
    assert {d["name"] for d in waste["datasets"]} == {"bin-fill-levels", "bins-above-80"}
    # q matches titles, descriptions, keywords and column names; every word must match.
    assert [d["name"] for d in demo_api.get("/datasets", params={"q": "fill_level"}).json()["datasets"]] == [
        "bin-fill-levels", "bins-above-80"]  # fmt: skip
    assert demo_api.get("/datasets", params={"q": "electricity district"}).json()["total"] == 1
    # The partner dataset's keyword and publisher counts do not leak through the facets.
    assert "meters" not in body["facets"]["keyword"]


def test_search_pages_by_name_until_next_is_null(demo_api: ApiServer) -> None:
    seen: list[str] = []
    url: str | None = f"{demo_api.api}/datasets?limit=2"
    while url:
        body = demo_api.get(url).json()
        seen += [d["name"] for d in body["datasets"]]
        url = body["next"]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 9


def test_dataset_metadata(demo_api: ApiServer) -> None:
    body = demo_api.get("/datasets/bin-fill-levels").json()
    version = body["version"]
    [expected] = sql(demo_api.project, f"SELECT count(*) AS n, min(fill_level) AS lo, max(fill_level) AS hi, "
                     f"count(DISTINCT bin_id) AS bins FROM waste.bin_fill_levels AT (VERSION => {version})")  # fmt: skip
    assert body["rows"] == body["statistics"]["rows"] == expected["n"]
    stats = body["statistics"]["columns"]["fill_level"]
    assert (stats["min"], stats["max"], stats["null_count"]) == (expected["lo"], expected["hi"], 0)
    assert body["statistics"]["distinct_counts_are_estimates"] is True
    assert abs(body["statistics"]["columns"]["bin_id"]["distinct_estimate"] - expected["bins"]) <= 5
    schema = {c["name"]: c for c in body["schema"]}
    assert schema["fill_level"]["unit"] == "%" and schema["fill_level"]["type"] == "DOUBLE"
    assert body["quality"]["checked"] is True and 0 < body["quality"]["score"] <= 1
    assert body["freshness"]["last_updated"] is not None
    assert body["lineage"] == [
        {"table": "waste.bin_fill_levels", "snapshot": body["lineage"][0]["snapshot"]}
    ]
    assert set(body["downloads"]) == {"csv", "jsonl", "geojson", "parquet"}
    assert body["downloads"]["parquet"].endswith(f"/versions/{version}/data.parquet")
    model = demo_api.get("/datasets/daily-energy-per-meter").json()
    assert model["source"]["table"] == "catalog.daily_energy_per_meter"
    assert [i["table"] for i in model["lineage"]] == ["energy.meter_readings"]
    assert "geojson" not in model["downloads"]


def test_records_total_filters_and_facets_equal_sql(demo_api: ApiServer) -> None:
    version = version_of(demo_api, "bin-fill-levels")
    at = f"waste.bin_fill_levels AT (VERSION => {version})"
    cases = [
        ({"fill_level__gt": "80"}, "fill_level > 80"),
        ({"fill_level__gte": "50", "fill_level__lt": "60"}, "fill_level >= 50 AND fill_level < 60"),
        ({"bin_id": "bin-007"}, "bin_id = 'bin-007'"),
        ({"bin_id__ne": "bin-007", "fill_level__lte": "10"}, "bin_id <> 'bin-007' AND fill_level <= 10"),
        ({"bin_id__in": "bin-001,bin-002,bin-003"}, "bin_id IN ('bin-001', 'bin-002', 'bin-003')"),
        ({"bin_id__contains": "00"}, "bin_id LIKE '%00%'"),
        ({"fill_level__isnull": "false"}, "fill_level IS NOT NULL"),
        ({"measured_at__gte": "2026-11-02T00:00:00Z"}, "measured_at >= TIMESTAMPTZ '2026-11-02 00:00:00+00'"),
        ({"bbox": "10.70,59.90,10.75,59.93"}, "longitude BETWEEN 10.70 AND 10.75 AND latitude BETWEEN 59.90 AND 59.93"),
    ]  # fmt: skip
    for params, condition in cases:
        body = demo_api.get(
            "/datasets/bin-fill-levels/records",
            params={**params, "facet": "bin_id", "facet_size": 1000},
        ).json()
        [expected] = sql(demo_api.project, f"SELECT count(*) AS n FROM {at} WHERE {condition}")
        assert body["total"] == expected["n"], params
        assert body["version"] == version
        counts = {
            r["bin_id"]: r["n"]
            for r in sql(
                demo_api.project,
                f"SELECT bin_id, count(*) AS n FROM {at} WHERE {condition} GROUP BY 1",
            )
        }
        assert {v["value"]: v["count"] for v in body["facets"]["bin_id"]["values"]} == counts, (
            params
        )
        assert body["facets"]["bin_id"]["complete"] is True
        assert len(body["rows"]) == min(100, expected["n"])


def test_records_select_order_and_formats(demo_api: ApiServer) -> None:
    version = version_of(demo_api, "bin-fill-levels")
    body = demo_api.get("/datasets/bin-fill-levels/records",
                        params={"select": "bin_id,fill_level", "order_by": "-fill_level", "limit": 5}).json()  # fmt: skip
    expected = sql(demo_api.project, f"SELECT bin_id, fill_level FROM waste.bin_fill_levels AT (VERSION => {version}) "
                   "ORDER BY fill_level DESC, bin_id, measured_at LIMIT 5")  # fmt: skip
    assert body["rows"] == expected
    page = demo_api.get("/datasets/bin-fill-levels/records", params={"limit": 3, "format": "csv"})
    assert page.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(page.text)))) == 3
    geo = demo_api.get(
        "/datasets/bin-fill-levels/records", params={"limit": 3, "format": "geojson"}
    ).json()
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == 3
    assert geo["features"][0]["geometry"]["type"] == "Point"
    assert 'rel="next"' in page.headers["link"]
    only = demo_api.get(
        "/datasets/bin-fill-levels/records",
        params={"limit": 2, "format": "geojson", "select": "bin_id"},
    ).json()
    assert all(f["geometry"]["type"] == "Point" for f in only["features"])
    empty = demo_api.get(
        "/datasets/bin-fill-levels/records", params={"fill_level__gt": "1000", "format": "csv"}
    )
    assert empty.text.strip() == "bin_id,measured_at,fill_level,latitude,longitude"


def test_keyset_pages_return_every_row_once(demo_api: ApiServer) -> None:
    version = version_of(demo_api, "bin-fill-levels")
    rows: list[tuple[str, str]] = []
    url: str | None = (
        f"{demo_api.api}/datasets/bin-fill-levels/records?limit=97&order_by=-fill_level&fill_level__gt=20"
    )
    while url:
        body = demo_api.get(url).json()
        assert body["version"] == version
        rows += [(r["bin_id"], r["measured_at"]) for r in body["rows"]]
        url = body["next"]
    expected = sql(demo_api.project, f"SELECT bin_id, measured_at FROM waste.bin_fill_levels AT (VERSION => {version}) "
                   "WHERE fill_level > 20 ORDER BY fill_level DESC, bin_id, measured_at")  # fmt: skip
    assert len(rows) == len(set(rows)) == len(expected) == body["total"]
    assert [r[0] for r in rows] == [e["bin_id"] for e in expected]


def test_aggregate_equals_sql(demo_api: ApiServer) -> None:
    version = version_of(demo_api, "bin-fill-levels")
    body = demo_api.get("/datasets/bin-fill-levels/aggregate", params={
        "group_by": "bin_id", "bucket": "measured_at:1d", "metrics": "count,sum:fill_level,avg:fill_level,min:fill_level,max:fill_level",
        "fill_level__gt": "10"}).json()  # fmt: skip
    expected = sql(demo_api.project, f"""SELECT bin_id, time_bucket(INTERVAL '1 day', measured_at) AS measured_at, count(*) AS count,
        sum(fill_level) AS sum_fill_level, avg(fill_level) AS avg_fill_level, min(fill_level) AS min_fill_level,
        max(fill_level) AS max_fill_level FROM waste.bin_fill_levels AT (VERSION => {version}) WHERE fill_level > 10
        GROUP BY 1, 2 ORDER BY 1, 2""")  # fmt: skip
    assert body["version"] == version and len(body["rows"]) == len(expected)
    for got, want in zip(body["rows"], expected, strict=True):
        assert got["bin_id"] == want["bin_id"] and got["count"] == want["count"]
        assert got["sum_fill_level"] == pytest.approx(want["sum_fill_level"])
        assert got["max_fill_level"] == want["max_fill_level"]
    total = demo_api.get(
        "/datasets/parking-occupancy/aggregate", params={"metrics": "count"}
    ).json()
    assert total["rows"] == [{"count": 384}]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "geojson", "parquet"])
def test_exports_hold_every_filtered_row(demo_api: ApiServer, fmt: str) -> None:
    version = version_of(demo_api, "bin-fill-levels")
    [expected] = sql(
        demo_api.project,
        f"SELECT count(*) AS n FROM waste.bin_fill_levels AT (VERSION => {version}) WHERE fill_level > 50",
    )
    response = demo_api.get(
        "/datasets/bin-fill-levels/export", params={"format": fmt, "fill_level__gt": "50"}
    )
    assert response.status_code == 200
    assert response.headers["x-dataset-version"] == str(version)
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert rows[0]["measured_at"].startswith("2026-11-0") and "T" in rows[0]["measured_at"]
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in response.text.splitlines()]
    elif fmt == "geojson":
        rows = json.loads(response.text)["features"]
        assert rows[0]["geometry"]["type"] == "Point"
    else:
        rows = pq.read_table(io.BytesIO(response.content)).to_pylist()
    assert len(rows) == expected["n"]


def test_versions_and_as_of(demo_api: ApiServer) -> None:
    versions = demo_api.get("/datasets/streetlights/versions").json()["versions"]
    assert versions and versions[0]["rows"] == 300 and versions[0]["how"] == "table"
    current = versions[0]["version"]
    pinned = demo_api.get(
        "/datasets/streetlights/records", params={"version": current, "limit": 1}
    ).json()
    assert pinned["version"] == current and pinned["total"] == 300
    early = demo_api.get("/datasets/streetlights/records", params={"as_of": "2001-01-01T00:00:00Z"})
    assert early.status_code == 404 and early.json()["error"]["code"] == "not_found"


def test_quality_endpoint(demo_api: ApiServer) -> None:
    body = demo_api.get("/datasets/bin-fill-levels/quality").json()
    table = body["tables"]["waste.bin_fill_levels"]
    names = {e["expectation"] for e in table["expectations"]}
    assert "expect_column_values_to_be_between" in names
    assert table["trend"] and body["summary"]["checked"] is True


def test_parquet_stable_url_serves_ranges_to_duckdb(demo_api: ApiServer) -> None:
    import duckdb
    import duckdb_extensions

    version = version_of(demo_api, "bin-fill-levels")
    url = f"{demo_api.api}/datasets/bin-fill-levels/versions/{version}/data.parquet"
    head = demo_api.get(url, headers={"Range": "bytes=0-3"})
    assert head.status_code == 206 and head.content == b"PAR1"
    assert head.headers["cache-control"].endswith("immutable") and head.headers["etag"]
    assert demo_api.get(url, headers={"If-None-Match": head.headers["etag"]}).status_code == 304
    con = duckdb.connect()
    con.execute(
        f"SET extension_directory = '{demo_api.project / '.urbanlake' / 'duckdb_extensions'}'"
    )
    try:
        con.execute("LOAD httpfs")
    except duckdb.Error:
        duckdb_extensions.import_extension("httpfs", con=con)
        con.execute("LOAD httpfs")
    got = con.execute(f"SELECT count(*), max(fill_level) FROM read_parquet('{url}')").fetchone()
    [expected] = sql(
        demo_api.project,
        f"SELECT count(*) AS n, max(fill_level) AS hi FROM waste.bin_fill_levels AT (VERSION => {version})",
    )
    assert got == (expected["n"], expected["hi"])
    assert "Range request bytes=" in demo_api.log_text()


def test_health_and_metrics(demo_api: ApiServer) -> None:
    health = demo_api.get(f"{demo_api.url}/healthz").json()
    assert health["status"] == "ok" and health["datasets"] == 9  # public ones only
    metrics = demo_api.get(f"{demo_api.url}/metrics").text
    assert "urbanlake_api_requests_total" in metrics
    assert demo_api.get(f"{demo_api.api}/openapi.json").json()["paths"]
    docs = demo_api.get(f"{demo_api.api}/docs")
    assert docs.status_code == 200 and "/api/v1/docs/assets/swagger-ui-bundle.js" in docs.text
    assert demo_api.get(f"{demo_api.api}/docs/assets/swagger-ui-bundle.js").status_code == 200


HIDDEN_PATHS = ["", "/records", "/aggregate", "/export", "/export?format=parquet", "/versions",
                "/changes?from=1&to=2", "/quality", "/versions/1/data.parquet"]  # fmt: skip


@pytest.mark.parametrize("suffix", HIDDEN_PATHS)
def test_non_public_dataset_is_invisible(demo_api: ApiServer, suffix: str) -> None:
    hidden = demo_api.get(f"/datasets/{HIDDEN}{suffix}")
    missing = demo_api.get(f"/datasets/no-such-dataset{suffix}")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert hidden.json()["error"]["message"] == missing.json()["error"]["message"].replace(
        "no-such-dataset", HIDDEN
    )
