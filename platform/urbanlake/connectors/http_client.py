"""The one HTTP client every connector type uses: retries, back-off and status classification.

Timeouts, connection errors, 429 and 5xx are retriable (exponential back-off, ``Retry-After``
honoured up to ``http.backoff_max``); any other 4xx is a ``FatalSourceError``.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from urbanlake import __version__
from urbanlake.core.errors import FatalSourceError, RetriableSourceError
from urbanlake.core.secrets import MaskingFilter, mask
from urbanlake.core.settings import HttpSettings

log = logging.getLogger(__name__)


# httpx logs every request's URL: an ``api_key`` query parameter must never reach a log in clear.
_HTTPX_LOG = logging.getLogger("httpx")
if not any(isinstance(f, MaskingFilter) for f in _HTTPX_LOG.filters):
    _HTTPX_LOG.addFilter(MaskingFilter())


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify(response: httpx.Response) -> None:
    """Raise the error class that says what to do with a failed response; return if it succeeded."""
    status = response.status_code
    if status < 400:
        return
    url = mask(str(response.request.url))
    body = mask(response.text[:300]) if response.content else ""
    if status == 429 or status >= 500:
        raise RetriableSourceError(
            f"HTTP {status} from {url}",
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    raise FatalSourceError(f"HTTP {status} from {url}: {body}".rstrip(": "))


class HttpClient:
    """A pooled client with the platform's retry policy. ``sleep`` is replaceable for tests."""

    def __init__(self, settings: HttpSettings, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.sleep = sleep
        self.attempts = 0
        self._client = httpx.Client(
            timeout=settings.timeout,
            follow_redirects=True,
            headers={"User-Agent": f"{settings.user_agent}/{__version__}"},
        )

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """GET with retries; returns a successful response or raises a ``SourceError``."""
        delay = self.settings.backoff_base
        last: RetriableSourceError | None = None
        for attempt in range(self.settings.max_retries + 1):
            self.attempts += 1
            try:
                response = self._client.get(url, params=params, headers=dict(headers or {}))
                classify(response)
                return response
            except httpx.TimeoutException as exc:
                last = RetriableSourceError(
                    f"timeout after {self.settings.timeout}s from {mask(url)}: {exc}"
                )
            except httpx.TransportError as exc:
                last = RetriableSourceError(f"cannot reach {mask(url)}: {mask(str(exc))}")
            except RetriableSourceError as exc:
                last = exc
            if attempt == self.settings.max_retries:
                break
            wait = last.retry_after if last.retry_after is not None else delay
            wait = min(wait, self.settings.backoff_max)
            log.warning(
                "%s; retry %d/%d in %.1fs", last, attempt + 1, self.settings.max_retries, wait
            )
            self.sleep(wait)
            delay = min(delay * 2, self.settings.backoff_max)
        assert last is not None
        raise FatalSourceError(f"gave up after {self.settings.max_retries + 1} attempts: {last}")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
