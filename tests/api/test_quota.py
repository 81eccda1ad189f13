"""Quotas and usage over HTTP: real `urbanlake serve` processes on 127.0.0.1, each with its own
quota settings, counting in the default SQLite file or in the machine's Redis."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from tests.api.conftest import ApiServer, new_project, sql, start_server
from urbanlake.api.quota import SqliteStorage
from urbanlake.catalog.keys import KeyStore
from urbanlake.core.settings import load_settings

REDIS = "redis://127.0.0.1:6379/0"
FIELD = re.compile(r'^"(?P<policy>[\w-]+)";r=(?P<r>\d+);t=(?P<t>\d+)$')


def remaining(response: httpx.Response) -> tuple[str, int, int]:
    """(policy, remaining, seconds to reset) of a RateLimit field."""
    found = FIELD.match(response.headers["ratelimit"])
    assert found, response.headers["ratelimit"]
    return found["policy"], int(found["r"]), int(found["t"])


def fresh_get(url: str, **kwargs: object) -> httpx.Response:
    """A request over a new connection, so that any worker may take it."""
    with httpx.Client(timeout=120) as client:
        return client.get(url, **kwargs)  # type: ignore[arg-type]


def usage(project: Path, where: str = "true") -> list[dict[str, object]]:
    rows = sql(
        project,
        "SELECT key, tier, address, dataset, endpoint, method, status, worker, "
        f"sum(requests)::BIGINT AS requests, sum(bytes)::BIGINT AS bytes FROM platform.api_usage "
        f"WHERE {where} GROUP BY ALL ORDER BY endpoint, status, dataset",
    )
    return rows


@pytest.fixture
def serve(demo_project: Path, tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    """Servers over the demo city with the quota settings given, counting in a SQLite file of
    the test's own (the shared demo server keeps its own counts); stopped after the test."""
    started: list[ApiServer] = []

    def start(**env: str) -> ApiServer:
        storage = f"sqlite:///{tmp_path / 'quota.sqlite'}"
        started.append(start_server(demo_project, {"URBANLAKE_QUOTA_STORAGE": storage, **env}))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def test_request_over_the_limit_gets_429_with_retry_after(serve: Callable[..., ApiServer]) -> None:
    server = serve(URBANLAKE_QUOTA_PUBLIC="5/minute")
    page = f"{server.api}/datasets/bin-fill-levels/records"
    answers = [server.get(page, params={"limit": 2, "fill_level__gte": 50}) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [remaining(a)[1] for a in answers] == [4, 3, 2, 1, 0, 0]
    refused = answers[-1]
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60 and remaining(refused)[2] == retry_after
    body = refused.json()
    assert body["error"]["code"] == "rate_limited"
    assert "5 per 60 s" in body["error"]["message"]
    assert body["error"]["details"] == [
        {"policy": "public", "quota": 5, "window": 60, "retry_after": retry_after}
    ]
    assert refused.headers["ratelimit-policy"] == '"public";q=5;w=60'
    # Operations and the docs are never limited, and carry no quota fields.
    for path in ("/healthz", "/metrics", "/api/v1/docs", "/api/v1/docs/assets/swagger-ui.css"):
        answer = server.get(f"{server.url}{path}")
        assert answer.status_code == 200, path
        assert "ratelimit" not in answer.headers and "ratelimit-policy" not in answer.headers
    assert server.get(page).status_code == 429  # still spent


def test_rate_limit_fields_on_every_answer(serve: Callable[..., ApiServer]) -> None:
    server = serve(URBANLAKE_QUOTA_PUBLIC="100/minute")
    answers = {
        200: server.get("/datasets/bin-fill-levels/records", params={"fill_level__gte": 80}),
        404: server.get("/datasets/no-such-dataset"),
        400: server.get("/datasets/bin-fill-levels/records", params={"limit": "many"}),
        405: httpx.post(f"{server.api}/datasets"),
    }
    seen = []
    for status, answer in answers.items():
        assert answer.status_code == status, answer.text
        assert answer.headers["ratelimit-policy"] == '"public";q=100;w=60'
        policy, left, reset = remaining(answer)
        assert policy == "public" and 0 < reset <= 60
        seen.append(left)
    assert seen == [99, 98, 97, 96]  # each answer, whatever its status, counts once
    missing = server.get(f"{server.url}/no/such/endpoint")
    assert missing.status_code == 404 and remaining(missing)[1] == 95
    # An export streams its rows with the fields in its head.
    with httpx.stream(
        "GET", f"{server.api}/datasets/bin-fill-levels/export", params={"format": "csv"}
    ) as export:
        assert export.status_code == 200 and remaining(export)[1] == 94
        assert sum(len(chunk) for chunk in export.iter_bytes()) > 0


def test_two_workers_share_the_count(tmp_path: Path) -> None:
    """Requests from many connections at once reach both workers; the quota allows N in all,
    not N per worker. The usage table says which worker answered what."""
    project = new_project(tmp_path / "city", with_city=False)
    server = start_server(
        project, {"URBANLAKE_QUOTA_PUBLIC": "10/minute", "URBANLAKE_API_WORKERS": "2"}
    )
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda i: fresh_get(f"{server.api}/datasets/ds-{i % 4}"), range(60))
            )
    finally:
        server.stop()  # each worker writes its usage as it stops
    statuses = [a.status_code for a in answers]
    assert statuses.count(404) == 10 and statuses.count(429) == 50  # 404: the datasets do not exist
    assert all(a.json()["error"]["code"] in ("not_found", "rate_limited") for a in answers)
    rows = usage(project)
    assert sum(int(r["requests"]) for r in rows) == 60  # type: ignore[call-overload]
    assert len({r["worker"] for r in rows}) == 2, rows  # both workers answered
    assert {(r["status"], r["endpoint"]) for r in rows} == {
        (404, "/api/v1/datasets/{name}"),
        (429, "/api/v1/datasets/{name}"),
    }


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS)
    client.ping()  # Redis runs on this machine (and .ci/run starts it when it is down)

    def clear() -> None:
        for key in client.scan_iter("LIMITS:LIMITER/public/127.0.0.1/7/*"):
            client.delete(key)

    clear()
    yield client
    clear()
    client.close()


def test_replicas_share_the_count_in_redis(demo_project: Path, redis_client: redis.Redis) -> None:
    """Two servers (replicas, with two workers each) over one lake and one Redis: N in all."""
    env = {
        "URBANLAKE_QUOTA_PUBLIC": "7/minute",
        "URBANLAKE_QUOTA_STORAGE": REDIS,
        "URBANLAKE_API_WORKERS": "2",
    }
    replicas = [start_server(demo_project, env), start_server(demo_project, env)]
    try:
        answers = [
            fresh_get(f"{replicas[i % 2].api}/datasets", params={"limit": 1}) for i in range(12)
        ]
    finally:
        for replica in replicas:
            replica.stop()
    assert [a.status_code for a in answers] == [200] * 7 + [429] * 5
    assert [remaining(a)[1] for a in answers[:7]] == [6, 5, 4, 3, 2, 1, 0]
    assert redis_client.keys("LIMITS:LIMITER/public/127.0.0.1/7/*")


def test_a_storage_that_is_down_lets_requests_through(serve: Callable[..., ApiServer]) -> None:
    """Fail open: a quota storage that does not answer never takes the API down; the answers say
    the policy but not a remaining count, and the log says why."""
    server = serve(
        URBANLAKE_QUOTA_PUBLIC="3/minute", URBANLAKE_QUOTA_STORAGE="redis://127.0.0.1:9/0"
    )
    answers = [server.get("/datasets", params={"limit": 1}) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert all(a.headers["ratelimit-policy"] == '"public";q=3;w=60' for a in answers)
    assert all("ratelimit" not in a.headers for a in answers)
    errors = re.search(
        r"^urbanlake_quota_storage_errors_total (\S+)$",
        server.get(f"{server.url}/metrics").text,
        re.M,
    )
    assert errors and float(errors[1]) >= 1
    assert "quota storage failed" in server.log_text()
    assert "requests pass unlimited" in server.log_text()


def test_usage_is_lake_data_written_in_batches_and_at_shutdown(tmp_path: Path) -> None:
    project = new_project(tmp_path / "city", with_city=False)
    env = {"URBANLAKE_QUOTA_PUBLIC": "100/minute", "URBANLAKE_QUOTA_USAGE_FLUSH_SECONDS": "0.5"}
    server = start_server(project, env)
    try:
        for _ in range(3):
            assert server.get("/datasets/buses").status_code == 404
        assert server.get("/datasets").status_code == 200
        assert server.get("/datasets", params={"limit": "x"}).status_code == 400
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not usage(project):
            time.sleep(0.5)  # written by the worker's background flush, not by a request
        assert usage(project), "no usage written while the server runs"
        assert server.get("/datasets/buses").status_code == 404
    finally:
        server.stop()
    rows = {(r["endpoint"], r["status"], r["dataset"]): r for r in usage(project)}
    assert {k: int(r["requests"]) for k, r in rows.items()} == {  # type: ignore[call-overload]
        ("/api/v1/datasets", 200, None): 1,
        ("/api/v1/datasets", 400, None): 1,
        ("/api/v1/datasets/{name}", 404, "buses"): 4,
    }
    row = rows[("/api/v1/datasets/{name}", 404, "buses")]
    assert row["tier"] == "public" and row["key"] is None and row["method"] == "GET"
    assert row["address"] == "127.0.0.0/24"  # an anonymous caller's network, not its address
    assert int(row["bytes"]) > 0  # type: ignore[call-overload]
    # The publisher's question, as they would ask it.
    answer = subprocess.run(
        [sys.executable, "-m", "urbanlake", "--project", str(project), "sql", "--format", "json",
         "SELECT dataset, sum(requests)::INTEGER AS requests FROM platform.api_usage "
         "WHERE dataset IS NOT NULL GROUP BY dataset"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(answer.stdout) == [{"dataset": "buses", "requests": 4}]


def test_storage_sqlite_counts_fixed_windows(tmp_path: Path) -> None:
    first = SqliteStorage(f"sqlite:///{tmp_path / 'q.sqlite'}")
    second = SqliteStorage(f"sqlite:///{tmp_path / 'q.sqlite'}")  # another worker, same file
    assert [first.incr("k", 1), second.incr("k", 1), first.incr("k", 1)] == [1, 2, 3]
    assert second.get("k") == 3 and second.get_expiry("k") > time.time()
    time.sleep(1.1)  # the one-second window is over: a new one starts
    assert second.get("k") == 0 and first.incr("k", 1) == 1
    first.clear("k")
    assert second.get("k") == 0 and first.check()


def test_quota_settings_are_checked(tmp_path: Path) -> None:
    from urbanlake.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"quota\.public"):
        load_settings(tmp_path, env={"URBANLAKE_QUOTA_PUBLIC": "lots"})
    assert load_settings(
        tmp_path, env={"URBANLAKE_QUOTA_PARTNER": "10/second; 500/hour"}
    ).quota.partner


def test_each_key_has_its_own_count(serve: Callable[..., ApiServer]) -> None:
    server = serve(URBANLAKE_QUOTA_PUBLIC="4/minute", URBANLAKE_QUOTA_PARTNER="3/minute")
    store = KeyStore(load_settings(server.project, env={}))
    try:
        suffix = str(time.time_ns())
        first = store.create(f"vendor-{suffix}", "partner")
        second = store.create(f"utility-{suffix}", "partner")
    finally:
        store.close()
    page = "/datasets/bin-fill-levels/records"
    with_first = [server.get(page, headers={"X-API-Key": first}) for _ in range(4)]
    assert [a.status_code for a in with_first] == [200, 200, 200, 429]
    assert with_first[0].headers["ratelimit-policy"] == '"partner";q=3;w=60'
    assert [remaining(a)[:2] for a in with_first] == [
        ("partner", 2),
        ("partner", 1),
        ("partner", 0),
        ("partner", 0),
    ]
    assert "this key's quota of 3" in with_first[-1].json()["error"]["message"]
    # Another key, and the anonymous public at the same address, count on their own.
    second_answer = server.get(page, headers={"Authorization": f"Bearer {second}"})
    assert second_answer.status_code == 200 and remaining(second_answer)[:2] == ("partner", 2)
    anonymous = server.get(page)
    assert anonymous.status_code == 200 and remaining(anonymous)[:2] == ("public", 3)
    # A key that is not valid is a 401 that counts against its address's public quota.
    bad = server.get(page, headers={"X-API-Key": "not-a-key"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_key"
    assert remaining(bad)[:2] == ("public", 2)
    guesses = [server.get(page, headers={"X-API-Key": f"guess-{i}"}).status_code for i in range(3)]
    assert guesses == [401, 401, 429]
