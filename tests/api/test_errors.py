"""One JSON error shape for every error of /api/v1, guarded over every error path."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import ApiServer

# (method, path, status, code, a word the message must name)
ERRORS = [
    ("GET", "/datasets/no-such-dataset", 404, "not_found", "no-such-dataset"),
    ("GET", "/no-such-endpoint", 404, "not_found", "no-such-endpoint"),
    ("GET", "/datasets?domain=waste&facet_x=1&limit=0", 400, "invalid_parameter", "limit"),
    ("GET", "/datasets/bin-fill-levels/records?no_column=1", 400, "unknown_column", "no_column"),
    ("GET", "/datasets/bin-fill-levels/records?fill_levl__gt=1", 400, "unknown_column", "fill_level"),
    ("GET", "/datasets/bin-fill-levels/records?fill_level__near=1", 400, "unknown_operator", "__near"),
    ("GET", "/datasets/bin-fill-levels/records?fill_level__gt=lots", 400, "bad_value", "'lots' in fill_level__gt"),
    ("GET", "/datasets/bin-fill-levels/records?measured_at__in=2026-11-01,soon", 400, "bad_value", "'soon' in measured_at__in"),
    ("GET", "/datasets/bin-fill-levels/export?format=csv&nope=1", 400, "unknown_column", "nope"),
    ("GET", "/datasets/bin-fill-levels/export?format=jsonl&fill_level__gt=lots", 400, "bad_value", "fill_level__gt"),
    ("GET", "/datasets/bin-fill-levels/aggregate?fill_level__lt=x", 400, "bad_value", "fill_level__lt"),
    ("GET", "/datasets/bin-fill-levels/records?fill_level__isnull=maybe", 400, "bad_parameter", "fill_level__isnull"),
    ("GET", "/datasets/bin-fill-levels/records?cursor=not-a-cursor", 400, "bad_cursor", "cursor"),
    ("GET", "/datasets/bin-fill-levels/records?limit=10001", 400, "invalid_parameter", "limit"),
    ("GET", "/datasets/bin-fill-levels/records?limit=ten", 400, "invalid_parameter", "limit"),
    ("GET", "/datasets/bin-fill-levels/records?select=bin_id,nope", 400, "unknown_column", "nope"),
    ("GET", "/datasets/bin-fill-levels/records?order_by=-nope", 400, "unknown_column", "nope"),
    ("GET", "/datasets/bin-fill-levels/records?bbox=1,2,3", 400, "bad_parameter", "bbox"),
    ("GET", "/datasets/bin-fill-levels/records?version=999999", 404, "not_found", "999999"),
    ("GET", "/datasets/bin-fill-levels/records?as_of=yesterday", 400, "bad_parameter", "as_of"),
    ("GET", "/datasets/bin-fill-levels/records?format=xml", 400, "invalid_parameter", "format"),
    ("GET", "/datasets/daily-energy-per-meter/records?bbox=0,0,1,1", 400, "bad_parameter", "geometry"),
    ("GET", "/datasets/daily-energy-per-meter/export?format=geojson", 400, "bad_parameter", "geometry"),
    ("GET", "/datasets/bin-fill-levels/aggregate?metrics=median:fill_level", 400, "bad_parameter", "median"),
    ("GET", "/datasets/bin-fill-levels/aggregate?metrics=sum", 400, "bad_parameter", "sum:<column>"),
    ("GET", "/datasets/bin-fill-levels/aggregate?metrics=sum:bin_id", 400, "bad_parameter", "numeric"),
    ("GET", "/datasets/bin-fill-levels/aggregate?bucket=fill_level:1h", 400, "bad_parameter", "time column"),
    ("GET", "/datasets/bin-fill-levels/aggregate?bucket=measured_at:fortnight", 400, "bad_parameter", "interval"),
    ("GET", "/datasets/bin-fill-levels/aggregate?group_by=nope", 400, "unknown_column", "nope"),
    ("GET", "/datasets/bin-fill-levels/export?format=xlsx", 400, "invalid_parameter", "format"),
    ("GET", "/datasets/bin-fill-levels/changes?from=1", 400, "invalid_parameter", "to"),
    ("GET", "/datasets/bin-fill-levels/changes?from=1&to=2", 400, "unknown_version", "from=1"),
    ("GET", "/datasets/bin-fill-levels/versions/1/data.parquet", 404, "not_found", "version 1"),
    ("POST", "/datasets", 405, "method_not_allowed", ""),
    ("DELETE", "/datasets/bin-fill-levels", 405, "method_not_allowed", ""),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "status", "code", "named"), ERRORS)
def test_every_error_has_one_shape(
    demo_api: ApiServer, method: str, path: str, status: int, code: str, named: str
) -> None:
    response = httpx.request(method, f"{demo_api.api}{path}", timeout=60)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) <= {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert named in body["error"]["message"] or named in str(body["error"].get("details")), body
    assert "SELECT" not in body["error"]["message"] and "VERSION =>" not in body["error"]["message"]


def test_too_many_groups_is_an_error_never_a_cut(demo_project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.api.conftest import start_server

    server = start_server(demo_project, env={"URBANLAKE_API_MAX_GROUPS": "10"})
    try:
        response = server.get("/datasets/bin-fill-levels/aggregate", params={"group_by": "bin_id"})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "too_many_groups"
        fine = server.get("/datasets/bins-above-80/aggregate", params={"group_by": "bin_id"})
        assert fine.status_code == 200
    finally:
        server.stop()


def test_a_cursor_of_another_query_is_refused(demo_api: ApiServer) -> None:
    first = demo_api.get("/datasets/bin-fill-levels/records", params={"limit": 5}).json()
    cursor = first["next"].split("cursor=")[1]
    other = demo_api.get(
        "/datasets/bin-fill-levels/records",
        params={"limit": 5, "fill_level__gt": "3", "cursor": cursor},
    )
    assert other.status_code == 400 and other.json()["error"]["code"] == "bad_cursor"
