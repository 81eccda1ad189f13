"""The ``http`` connector against real local HTTP servers, through full ingests into a real lake."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from pydantic import ValidationError

from tests.conftest import LakeTarget
from tests.httpfeeds import BASE_TIME, FeedServer
from urbanlake.connectors.http import (
    HttpConnector,
    HttpSpec,
    Incremental,
    Pagination,
    as_datetime,
    column_max,
    iso,
)
from urbanlake.connectors.registry import connector_type, validate_document
from urbanlake.core.settings import Settings
from urbanlake.core.spec import ConnectorConfig
from urbanlake.core.yamlsource import load_located
from urbanlake.lakehouse.lake import Lake
from urbanlake.pipeline.run import RunSummary, ingest

TABLE = "test.readings"


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


# Short back-offs keep retry tests fast; backoff_max stays above Retry-After: 1 so it is honoured.
FAST_HTTP = {"backoff_base": 0.01, "backoff_max": 2.0, "max_retries": 3, "timeout": 5.0}


@pytest.fixture
def settings(lake_target: LakeTarget) -> Settings:
    """Every ingest test runs on each lake kind: local or S3 storage, SQLite or PostgreSQL catalog."""
    return lake_target.settings(http=FAST_HTTP)


@pytest.fixture
def lake(settings: Settings) -> Iterator[Lake]:
    with Lake.open(settings) as opened:
        yield opened


def config(source: dict[str, Any], name: str = "readings", **table: Any) -> ConnectorConfig:
    return ConnectorConfig.model_validate(
        {
            "name": name,
            "domain": "test",
            "source": {"type": "http", **source},
            "table": {"primary_key": ["id"], "event_time": "updated_at", **table},
        }
    )


def rows(lake: Lake, table: str = TABLE) -> tuple[int, int]:
    """(rows, distinct ids) in the table."""
    result = lake.query(
        f"SELECT count(*) AS n, count(DISTINCT id) AS ids FROM {table}"
    ).to_pylist()[0]
    return result["n"], result["ids"]


def succeeded(summary: RunSummary) -> RunSummary:
    assert summary.status == "succeeded", summary.error
    return summary


# -- 1. every pagination style reads every record exactly once -----------------------------------

PAGINATIONS = {
    "next_link": {
        "url": "/next",
        "records_path": "data",
        "pagination": {"type": "next_link", "next_path": "links.next"},
    },
    "link_header": {"url": "/link", "params": {"per_page": 100}, "pagination": "link_header"},
    "page_with_size": {
        "url": "/page",
        "records_path": "items",
        "pagination": {"type": "page", "size_param": "size", "size": 100},
    },
    "page_until_empty": {"url": "/page", "records_path": "items", "pagination": {"type": "page"}},
    "offset": {"url": "/offset", "pagination": {"type": "offset", "limit": 100}},
}


@pytest.mark.parametrize("style", PAGINATIONS)
def test_every_pagination_style_loads_every_record_once(
    style: str, feed: FeedServer, lake: Lake, settings: Settings
) -> None:
    source = dict(PAGINATIONS[style])
    source["url"] = feed.url(source["url"])

    summary = succeeded(ingest(lake, config(source), settings))

    assert (summary.payloads, summary.rows_in, summary.rows_committed) == (3, 250, 250)
    assert summary.rows_duplicate == 0  # no page was read twice
    assert rows(lake) == (250, 250)
    pages = len(feed.hits)
    assert pages == (
        4 if style == "page_until_empty" else 3
    )  # only an unknown page size costs a request


def test_query_string_in_url_is_kept_with_params(
    feed: FeedServer, lake: Lake, settings: Settings
) -> None:
    source = {"url": feed.url("/page", size=50), "records_path": "items", "params": {"page": 2}}

    summary = succeeded(ingest(lake, config(source), settings))

    assert summary.rows_committed == 50
    assert feed.hits[0].query == {"size": "50", "page": "2"}
    origins = lake.query("SELECT origin FROM platform.commits").column("origin").to_pylist()
    assert origins == [feed.url("/page", size=50, page=2)]  # each payload's origin is its page URL


@pytest.mark.parametrize(
    ("path", "media_type"), [("/csv", "text/csv"), ("/jsonl", "application/x-ndjson")]
)
def test_format_comes_from_the_content_type(
    path: str, media_type: str, feed: FeedServer, lake: Lake, settings: Settings
) -> None:
    summary = succeeded(ingest(lake, config({"url": feed.url(path)}), settings))

    assert summary.rows_committed == 250
    assert rows(lake) == (250, 250)


def test_recorded_open311_feed_pages_through_link_headers(
    lake: Lake, settings: Settings, sample_data: Path
) -> None:
    recorded = json.loads((sample_data / "open311" / "bloomington_requests.json").read_bytes())
    source = {"params": {"per_page": 5}, "pagination": "link_header"}
    table = {"primary_key": ["service_request_id"], "event_time": "updated_datetime"}

    with FeedServer(records=recorded, time_field="updated_datetime") as feed:
        source["url"] = feed.url("/link")
        summary = succeeded(ingest(lake, config(source, name="requests", **table), settings))

    assert (summary.payloads, summary.rows_committed) == (5, 21)
    count = lake.query("SELECT count(DISTINCT service_request_id) AS n FROM test.requests").column(
        "n"
    )
    assert count.to_pylist() == [21]


# -- 2, 3. retries --------------------------------------------------------------------------------


def test_two_503s_then_success_loads_the_data(
    feed: FeedServer, lake: Lake, settings: Settings
) -> None:
    feed.fail_first = 2

    summary = succeeded(ingest(lake, config({"url": feed.url("/all")}), settings))

    assert [h.status for h in feed.hits] == [503, 503, 200]  # three attempts, server-side
    assert summary.rows_committed == 250
    assert rows(lake) == (250, 250)


def test_retry_after_on_429_is_honoured(feed: FeedServer, lake: Lake, settings: Settings) -> None:
    feed.rate_limit_once = True

    summary = succeeded(ingest(lake, config({"url": feed.url("/all")}), settings))

    limited, retried = feed.hits
    assert (limited.status, retried.status) == (429, 200)
    assert retried.at - limited.at >= 0.95  # Retry-After: 1, not the 0.01 s back-off
    assert summary.rows_committed == 250


def test_retries_exhausted_fail_the_run(feed: FeedServer, lake: Lake, settings: Settings) -> None:
    feed.fail_first = 100

    summary = ingest(lake, config({"url": feed.url("/all")}), settings)

    assert summary.status == "failed"
    assert "gave up after 4 attempts" in (summary.error or "")
    assert "HTTP 503" in (summary.error or "")
    assert len(feed.hits) == 4


# -- 4. other 4xx fail the run, and secrets stay out of every message -----------------------------


def test_404_fails_the_run_naming_status_and_url(
    feed: FeedServer, lake: Lake, settings: Settings
) -> None:
    url = feed.url("/missing")

    summary = ingest(lake, config({"url": url}), settings)

    assert summary.status == "failed"
    assert "HTTP 404" in (summary.error or "")
    assert url in (summary.error or "")
    assert len(feed.hits) == 1  # a 404 is not retried


def test_401_fails_without_showing_the_secret(
    feed: FeedServer,
    lake: Lake,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "tok-8d41c0ffee-do-not-print"
    monkeypatch.setenv("TEST_TOKEN", token)
    feed.require_header = ("Authorization", "Bearer the-right-token")
    source = {
        "url": feed.url("/all"),
        "headers": {"Authorization": "Bearer ${TEST_TOKEN}"},
        "params": {"api_key": "${TEST_TOKEN}"},  # in the URL too: the error quotes the URL
    }
    caplog.set_level(logging.DEBUG)

    summary = ingest(lake, config(source), settings)

    assert feed.hits[0].headers["authorization"] == f"Bearer {token}"  # it was sent
    assert summary.status == "failed"
    error = summary.error or ""
    assert "HTTP 401" in error and feed.url("/all") in error
    assert "api_key=****" in error
    assert token not in error
    assert token not in caplog.text
    recorded = lake.query("SELECT error FROM platform.runs").column("error").to_pylist()
    assert all(token not in (e or "") for e in recorded)


def test_a_literal_secret_fails_the_run_before_any_request(
    feed: FeedServer, lake: Lake, settings: Settings
) -> None:
    # "unset-token" passes the spec model (it is what `urbanlake check` puts for an unset variable);
    # the connector still refuses it, seeing the config as written.
    value = "unset-token"
    summary = ingest(
        lake, config({"url": feed.url("/all"), "headers": {"Authorization": value}}), settings
    )

    assert summary.status == "failed"
    assert "secrets must be ${ENV} references" in (summary.error or "")
    assert value not in (summary.error or "")
    assert feed.hits == []


def test_check_accepts_a_reference_to_an_unset_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARKING_TOKEN", raising=False)
    path = tmp_path / "parking.yaml"
    path.write_text(
        "name: parking\ndomain: transport\nsource:\n  type: http\n  url: https://api.city.example/v1\n"
        '  headers: {Authorization: "Bearer ${PARKING_TOKEN}"}\n  params: {api_key: "${PARKING_TOKEN}"}\n',
        encoding="utf-8",
    )

    assert validate_document(load_located(path))[1] == []


def test_credentials_are_not_sent_to_another_host(
    feed: FeedServer, lake: Lake, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_TOKEN", "the-right-token")
    feed.next_host = f"localhost:{feed.port}"  # another origin than 127.0.0.1
    source = {
        "url": feed.url("/next"),
        "records_path": "data",
        "pagination": {"type": "next_link", "next_path": "links.next"},
        "headers": {"Authorization": "Bearer ${TEST_TOKEN}", "X-Trace": "urbanlake-test"},
    }

    succeeded(ingest(lake, config(source), settings))

    first, *others = feed.hits
    assert first.headers["authorization"] == "Bearer the-right-token"
    assert others and all("authorization" not in h.headers for h in others)
    assert all(h.headers["x-trace"] == "urbanlake-test" for h in others)


# -- 5. incremental -------------------------------------------------------------------------------

INCREMENTAL = {"url": "/offset", "pagination": {"type": "offset", "limit": 100}}


def test_incremental_runs_ask_since_the_last_event_time(
    feed: FeedServer, lake: Lake, settings: Settings
) -> None:
    source = {
        **INCREMENTAL,
        "url": feed.url("/offset"),
        "incremental": {"param": "since", "lookback": "10m"},
    }
    cfg = config(source)

    first = succeeded(ingest(lake, cfg, settings))
    assert first.rows_committed == 250
    assert all("since" not in h.query for h in feed.hits)
    newest = BASE_TIME + timedelta(minutes=250)
    assert lake.read_state(TABLE) == {"since": iso(newest)}

    feed.hits.clear()
    feed.add_records(120)
    second = succeeded(ingest(lake, cfg, settings))
    expected = iso(newest - timedelta(minutes=10))
    assert [h.query.get("since") for h in feed.hits] == [
        expected,
        expected,
    ]  # one since for every page
    assert second.rows_committed == 120
    assert second.rows_duplicate == 11  # the look-back window: records 240..250 again
    assert rows(lake) == (370, 370)

    third = succeeded(ingest(lake, cfg, settings))
    assert third.rows_committed == 0
    assert rows(lake) == (370, 370)
    assert lake.read_state(TABLE) == {"since": iso(BASE_TIME + timedelta(minutes=370))}


def test_incremental_initial_and_epoch_format(
    feed: FeedServer, lake: Lake, settings: Settings
) -> None:
    start = BASE_TIME + timedelta(minutes=200)
    incremental = {"param": "since", "initial": iso(start), "format": "epoch"}
    source = {"url": feed.url("/all"), "incremental": incremental}

    summary = succeeded(ingest(lake, config(source), settings))

    assert feed.hits[0].query["since"] == str(int(start.timestamp()))
    assert summary.rows_committed == 51  # records 200..250


def test_incremental_with_nothing_new_commits_nothing(
    feed: FeedServer, lake: Lake, settings: Settings
) -> None:
    incremental = {"param": "since", "initial": "2030-01-01T00:00:00Z"}

    summary = succeeded(
        ingest(lake, config({"url": feed.url("/all"), "incremental": incremental}), settings)
    )

    assert (summary.payloads, summary.rows_committed) == (1, 0)
    assert lake.read_state(TABLE) == {}


def test_no_content_means_no_records(feed: FeedServer, lake: Lake, settings: Settings) -> None:
    source = {"url": feed.url("/status/204"), "incremental": {"param": "since"}}

    summary = succeeded(ingest(lake, config(source), settings))

    assert (summary.payloads, summary.rows_in, summary.rows_committed) == (1, 0, 0)


def test_incremental_needs_an_event_time(feed: FeedServer, lake: Lake, settings: Settings) -> None:
    source = {"url": feed.url("/all"), "incremental": {"param": "since"}}

    summary = ingest(lake, config(source, event_time=None), settings)

    assert summary.status == "failed"
    assert "source.incremental.field" in (summary.error or "")
    assert feed.hits == []


# -- 6. max_pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        {"url": "/offset", "pagination": {"type": "offset", "limit": 100, "max_pages": 2}},
        {"url": "/link", "pagination": {"type": "link_header", "max_pages": 2}},
        {
            "url": "/next",
            "records_path": "data",
            "pagination": {"type": "next_link", "next_path": "links.next", "max_pages": 2},
        },
    ],
    ids=["offset", "link_header", "next_link"],
)
def test_max_pages_fails_the_run_and_keeps_the_watermark(
    source: dict[str, Any], feed: FeedServer, lake: Lake, settings: Settings
) -> None:
    source = {**source, "url": feed.url(source["url"]), "incremental": {"param": "since"}}

    summary = ingest(lake, config(source), settings)

    assert summary.status == "failed"
    assert "more than 2 pages" in (summary.error or "")
    assert "max_pages" in (summary.error or "")
    assert len(feed.hits) == 2
    assert summary.rows_committed == 100  # the first page; the second waits for the third
    assert (
        lake.read_state(TABLE).get("since") is None
    )  # the next run asks for the whole window again


def test_exactly_max_pages_is_fine(feed: FeedServer, lake: Lake, settings: Settings) -> None:
    pagination = {"type": "next_link", "next_path": "links.next", "max_pages": 3}
    source = {"url": feed.url("/next"), "records_path": "data", "pagination": pagination}

    assert succeeded(ingest(lake, config(source), settings)).rows_committed == 250


def test_a_next_link_loop_fails_the_run(feed: FeedServer, lake: Lake, settings: Settings) -> None:
    pagination = {"type": "next_link", "next_path": "links.next"}

    summary = ingest(
        lake,
        config({"url": feed.url("/loop"), "records_path": "data", "pagination": pagination}),
        settings,
    )

    assert summary.status == "failed"
    assert "pagination loops" in (summary.error or "")
    assert len(feed.hits) == 1


# -- 7. a body that is not JSON -------------------------------------------------------------------


def test_a_body_that_is_not_json_fails_and_is_kept(
    feed: FeedServer, lake: Lake, settings: Settings
) -> None:
    url = feed.url("/html")

    summary = ingest(lake, config({"url": url}), settings)  # text/html: format falls back to json

    assert summary.status == "failed"
    assert "not valid JSON" in (summary.error or "")
    kept = lake.query("SELECT uri, origin, size FROM platform.payloads").to_pylist()
    assert len(kept) == 1
    assert kept[0]["origin"] == url
    assert kept[0]["uri"] in (summary.error or "")
    assert lake.raw.get(kept[0]["uri"]) == b"<html><body>Maintenance tonight</body></html>"


def test_an_unreadable_page_is_set_aside_and_the_same_answer_again_ends_the_feed(
    feed: FeedServer, lake: Lake, settings: Settings
) -> None:
    summary = ingest(
        lake,
        config({"url": feed.url("/html"), "pagination": {"type": "page"}}),
        settings,
    )

    # Page 1 is set aside and page 2 is asked for; it is the same HTML again: the feed ends.
    assert summary.status == "failed" and summary.payloads_failed == 1
    assert "not valid JSON" in (summary.error or "")
    assert len(feed.hits) == 2


# -- the spec -------------------------------------------------------------------------------------


def test_example_is_valid_and_registered() -> None:
    assert connector_type("http") is HttpConnector
    spec = HttpSpec.model_validate(HttpConnector.example)
    assert spec.pagination.type == "none"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"headers": {"Authorization": "Bearer literal-8f3a"}},
            "secrets must be ${ENV} references",
        ),
        ({"headers": {"X-Api-Key": "literal-8f3a"}}, "secrets must be ${ENV} references"),
        ({"headers": {"Cookie": "session=literal-8f3a"}}, "secrets must be ${ENV} references"),
        ({"params": {"api_key": "literal-8f3a"}}, "secrets must be ${ENV} references"),
        ({"url": "ftp://files.city.example/data.json"}, "not an http:// or https:// URL"),
        ({"pagination": {"type": "next_link"}}, "needs next_path"),
        ({"pagination": {"type": "offset", "page_param": "p"}}, "page_param do(es) not apply"),
        ({"pagination": {"type": "page", "size_param": "size"}}, "size_param needs size"),
        ({"pagination": {"type": "offset", "max_pages": 0}}, "greater than or equal to 1"),
        ({"incremental": {"param": "since", "lookback": "ten minutes"}}, "is not a duration"),
        ({"incremental": {"param": "since", "initial": "last tuesday"}}, "is not a timestamp"),
        (
            {"incremental": {"param": "since"}, "params": {"since": "2024-01-01"}},
            "is set by incremental",
        ),
        ({"format": "csv", "records_path": "data"}, "JSON bodies only"),
        ({"verb": "POST"}, "Extra inputs are not permitted"),
    ],
)
def test_spec_errors(source: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        HttpSpec.model_validate({"type": "http", "url": "https://api.city.example/v1", **source})
    assert message in str(raised.value)
    assert "literal-8f3a" not in "".join(
        e["msg"] for e in raised.value.errors()
    )  # the error never echoes a secret


def test_secret_references_are_accepted() -> None:
    spec = HttpSpec.model_validate(
        {
            "type": "http",
            "url": "https://api.city.example/v1",
            "headers": {"Authorization": "Bearer ${CITY_TOKEN}", "Accept": "application/json"},
            "params": {"api_key": "${CITY_KEY}", "keyword": "parking"},
        }
    )
    assert spec.headers["Authorization"] == "Bearer ${CITY_TOKEN}"


def test_literal_secret_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "parking.yaml"
    path.write_text(
        "name: parking\n"
        "domain: transport\n"
        "source:\n"
        "  type: http\n"
        "  url: https://api.city.example/v1/parking\n"
        "  headers:\n"
        "    Authorization: Bearer literal-8f3a\n",
        encoding="utf-8",
    )

    config_, problems = validate_document(load_located(path))

    assert config_ is None
    [problem] = problems
    assert problem.field == "source.headers"
    assert problem.line is not None and problem.line >= 6
    assert "secrets must be ${ENV} references" in problem.message


# -- event times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T08:00:00-04:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (1714564800, datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (1714564800000, datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("1714564800", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (date(2024, 5, 1), datetime(2024, 5, 1)),
        ("not a time", None),
        (None, None),
        (True, None),
    ],
)
def test_as_datetime(value: Any, expected: datetime | None) -> None:
    assert as_datetime(value) == expected


def test_column_max_compares_instants_not_text() -> None:
    # As text, "…T23:00:00+02:00" sorts after "…T22:00:00Z", but it is three hours earlier.
    column = pa.chunked_array(
        [["2024-05-01T23:00:00+02:00", "2024-05-01T22:00:00Z", None, "garbage"]]
    )

    newest, unreadable = column_max(column)

    assert newest == datetime(2024, 5, 1, 22, tzinfo=UTC)
    assert unreadable == 1
    assert column_max(pa.chunked_array([[1714564800, 1714568400]]))[0] == datetime(
        2024, 5, 1, 13, tzinfo=UTC
    )
    stamps = pa.chunked_array([[datetime(2024, 5, 1, 12)]], type=pa.timestamp("us", tz="UTC"))
    assert iso(column_max(stamps)[0] or datetime.min) == "2024-05-01T12:00:00Z"


# -- every lake kind ------------------------------------------------------------------------------


def test_paged_incremental_ingest_on_every_lake_kind(
    lake_target: LakeTarget, feed: FeedServer
) -> None:
    settings = lake_target.settings(http=FAST_HTTP)
    source = {
        "url": feed.url("/next"),
        "records_path": "data",
        "pagination": {"type": "next_link", "next_path": "links.next"},
        "incremental": {"param": "since", "lookback": "1m"},
    }
    with Lake.open(settings) as lake:
        assert succeeded(ingest(lake, config(source), settings)).rows_committed == 250
        feed.add_records(5)
        assert succeeded(ingest(lake, config(source), settings)).rows_committed == 5
        assert rows(lake) == (255, 255)
        assert lake.read_state(TABLE) == {"since": iso(BASE_TIME + timedelta(minutes=255))}


# -- the docs page --------------------------------------------------------------------------------


def test_docs_examples_are_valid(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "connectors" / "http.md").read_text(
        encoding="utf-8"
    )
    blocks = re.findall(r"```yaml\n(.*?)```", page, flags=re.DOTALL)
    full, styles, *examples = blocks
    for index, config in enumerate([full, *examples]):
        path = tmp_path / f"example_{index}.yaml"
        path.write_text(config, encoding="utf-8")
        parsed, problems = validate_document(load_located(path))
        assert problems == [] and parsed is not None, problems
    for line in styles.strip().splitlines():
        pagination = yaml.safe_load(line)["pagination"]
        HttpSpec.model_validate(
            {"type": "http", "url": "https://api.city.example/v1", "pagination": pagination}
        )
    # Every field of the spec is in the tables.
    for model in (HttpSpec, Pagination, Incremental):
        for name in model.model_fields:
            assert f"| `{name}` |" in page, f"{model.__name__}.{name} is not documented"
