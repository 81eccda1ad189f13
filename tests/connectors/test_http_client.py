"""The shared HTTP client: ``Retry-After``, status classification, and retries against a real server."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.httpfeeds import FeedServer
from urbanlake.connectors.http_client import HttpClient, classify, retry_after_seconds
from urbanlake.core.errors import FatalSourceError, RetriableSourceError
from urbanlake.core.secrets import resolve
from urbanlake.core.settings import HttpSettings


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer(count=10) as server:
        yield server


def http_date(when: datetime) -> str:
    return email.utils.format_datetime(when.astimezone(UTC), usegmt=True)


def response(
    status: int, url: str = "https://api.city.example/v1/items", **headers: str
) -> httpx.Response:
    return httpx.Response(
        status, headers=headers, content=b"details", request=httpx.Request("GET", url)
    )


# -- retry_after_seconds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5", 5.0), (" 2.5 ", 2.5), ("0", 0.0), ("-3", 0.0), (None, None), ("", None), ("soon", None)],
)
def test_retry_after_in_seconds(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_retry_after_as_http_date() -> None:
    later = retry_after_seconds(http_date(datetime.now(UTC) + timedelta(seconds=30)))
    assert later is not None and 27 <= later <= 31  # HTTP dates have whole seconds


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert retry_after_seconds(http_date(datetime.now(UTC) - timedelta(hours=1))) == 0.0


def test_retry_after_http_date_without_zone_counts_as_utc() -> None:
    when = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%a, %d %b %Y %H:%M:%S")
    seconds = retry_after_seconds(when + " -0000")
    assert seconds is not None and 57 <= seconds <= 61


# -- classify -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 204, 304])
def test_success_and_redirects_pass(status: int) -> None:
    assert classify(response(status)) is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_client_errors_are_fatal(status: int) -> None:
    with pytest.raises(FatalSourceError) as raised:
        classify(response(status))
    assert not isinstance(raised.value, RetriableSourceError)
    assert str(raised.value) == f"HTTP {status} from https://api.city.example/v1/items: details"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_rate_limits_and_server_errors_are_retriable(status: int) -> None:
    with pytest.raises(RetriableSourceError) as raised:
        classify(response(status))
    assert f"HTTP {status}" in str(raised.value)
    assert raised.value.retry_after is None


def test_retriable_error_carries_retry_after() -> None:
    with pytest.raises(RetriableSourceError) as raised:
        classify(response(429, **{"Retry-After": "7"}))
    assert raised.value.retry_after == 7.0


def test_classify_masks_secrets_in_the_url() -> None:
    key = resolve("${CLIENT_TEST_KEY}", env={"CLIENT_TEST_KEY": "k-5ec2e7-value"})

    with pytest.raises(FatalSourceError) as raised:
        classify(response(403, url=f"https://api.city.example/v1/items?api_key={key}"))

    assert key not in str(raised.value)
    assert "api_key=****" in str(raised.value)


# -- HttpClient against a real server -------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap(feed: FeedServer) -> None:
    feed.fail_first = 4
    waits: list[float] = []
    settings = HttpSettings(backoff_base=0.01, backoff_max=0.03, max_retries=5)

    with HttpClient(settings, sleep=waits.append) as client:
        answer = client.get(feed.url("/all"))

    assert answer.status_code == 200
    assert waits == [0.01, 0.02, 0.03, 0.03]
    assert client.attempts == 5 == len(feed.hits)


def test_retry_after_is_capped_by_backoff_max(feed: FeedServer) -> None:
    feed.rate_limit_once = True
    waits: list[float] = []

    with HttpClient(HttpSettings(backoff_base=0.01, backoff_max=0.5), sleep=waits.append) as client:
        client.get(feed.url("/all"))

    assert waits == [0.5]  # the server asked for 1 s


def test_gives_up_after_max_retries(feed: FeedServer) -> None:
    feed.fail_first = 10

    with (
        HttpClient(HttpSettings(backoff_base=0.001, max_retries=2)) as client,
        pytest.raises(FatalSourceError) as raised,
    ):
        client.get(feed.url("/all"))

    assert "gave up after 3 attempts" in str(raised.value)
    assert len(feed.hits) == 3


def test_a_timeout_is_retried(feed: FeedServer) -> None:
    with (
        HttpClient(HttpSettings(timeout=0.2, backoff_base=0.001, max_retries=1)) as client,
        pytest.raises(FatalSourceError) as raised,
    ):
        client.get(feed.url("/slow", delay=1))

    assert "timeout after 0.2s" in str(raised.value)
    assert client.attempts == 2


def test_a_404_is_not_retried(feed: FeedServer) -> None:
    with HttpClient(HttpSettings(backoff_base=0.001)) as client, pytest.raises(FatalSourceError):
        client.get(feed.url("/status/404"))

    assert len(feed.hits) == 1
