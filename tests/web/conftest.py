"""The web catalog's browser tests: Debian's Chromium driven by Playwright over the session's demo
city and its server. One browser per session, a fresh context (cookies, viewport, colour scheme,
JavaScript on or off) per test, and every request to another host blocked and written down, so a
test can prove a page asks nothing of the internet.

Chromium is the system's (``chromium``, or the path in ``URBANLAKE_CHROMIUM``); Playwright never
downloads a browser of its own. Without Chromium the browser tests skip and say how to get it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Request, Route, ViewportSize

    from tests.servers import ApiServer

CHROMIUM_ENV = "URBANLAKE_CHROMIUM"
NO_CHROMIUM = "Chromium not installed: apt-get install chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # git-ignored: for people to look at
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
MOBILE: ViewportSize = {"width": 390, "height": 844}
WIDTHS = {"desktop": DESKTOP, "mobile": MOBILE}
NARROWEST: ViewportSize = {"width": 320, "height": 640}  # WCAG 1.4.10: reflow at 320 CSS px
VIEWPORTS = {**WIDTHS, "narrowest": NARROWEST}
LOCAL_HOSTS = {"127.0.0.1"}
PARTNER_DATASET = "meter-readings"  # the demo's one dataset for partners only
GEO, PLAIN = "bin-fill-levels", "parking-occupancy"  # a dataset with a map, one without
CHART = "chart_y=fill_level&chart_fn=avg&chart_bucket=1h"  # a chart of the geographic one


# A page's enhancements are done: the map is live or there is none, the chart likewise.
ENHANCED = """() => document.readyState === 'complete' &&
  (!document.querySelector('#map[data-geojson]') || !!document.querySelector('#map.map-live')) &&
  (!document.querySelector('#chart-data') || !!document.querySelector('#chart .chart-live'))"""


def chromium_path() -> str | None:
    """The Chromium to drive: ``URBANLAKE_CHROMIUM`` when set, else the system's."""
    override = os.environ.get(CHROMIUM_ENV)
    if override:
        return override if Path(override).is_file() else None
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


@dataclass
class Tab:
    """One browser context with its page, and what it asked of the network: every request
    (``requests``, in order) and the ones to another host, which were aborted (``blocked``)."""

    context: BrowserContext
    page: Page
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    javascript: bool = True

    def goto(self, url: str) -> Any:
        """Load a page and, with JavaScript on, wait for its enhancements to finish drawing."""
        response = self.page.goto(url, wait_until="load")
        if self.javascript:
            self.settle()
        return response

    def settle(self) -> None:
        """Wait until the map and the chart are drawn (or a few seconds have passed: a broken
        enhancement leaves the page as it reads without JavaScript, which the tests then see)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        with contextlib.suppress(PlaywrightTimeout):
            self.page.wait_for_function(ENHANCED, timeout=5_000)

    def assert_local(self) -> None:
        assert self.blocked == [], f"requests to another host: {self.blocked}"


OpenTab = Callable[..., Tab]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole session."""
    executable = chromium_path()
    if executable is None:
        pytest.skip(NO_CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"], headless=True
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def portal(demo_api: ApiServer) -> str:
    """The demo city's portal: the same server as its API."""
    return demo_api.url


@pytest.fixture
def open_tab(browser: Browser, portal: str) -> Iterator[OpenTab]:
    """Open a fresh context and page: ``open_tab(width="desktop"|"mobile", color_scheme=
    "light"|"dark", javascript=True)``; everything it opened is closed after the test."""
    opened: list[Tab] = []

    def open_one(
        width: str = "desktop", color_scheme: str = "light", javascript: bool = True
    ) -> Tab:
        context = browser.new_context(
            base_url=portal,
            viewport=VIEWPORTS[width],
            color_scheme=color_scheme,  # type: ignore[arg-type]
            java_script_enabled=javascript,
            accept_downloads=True,
        )
        context.set_default_timeout(15_000)
        tab = Tab(context=context, page=context.new_page(), javascript=javascript)

        def only_this_machine(route: Route, request: Request) -> None:
            tab.requests.append(request.url)
            url = urlsplit(request.url)
            if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in LOCAL_HOSTS:
                tab.blocked.append(request.url)
                route.abort("blockedbyclient")
            else:
                route.continue_()

        context.route("**/*", only_this_machine)
        opened.append(tab)
        return tab

    yield open_one
    for tab in opened:
        tab.context.close()


@pytest.fixture(scope="session")
def partner_key(demo_project: Path) -> str:
    """A partner's API key for the demo city, made by the real ``urbanlake keys create``."""
    from tests.api.test_access import create_key

    # A name of its own: key names are unique for good, even after a revocation.
    return create_key(demo_project, f"web-partner-{uuid.uuid4().hex[:8]}", "partner")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def api_json(portal: str, path: str, params: Any = None, key: str | None = None) -> Any:
    """What the API answers to the same question a page shows, to hold the page against."""
    import httpx

    headers = {"X-API-Key": key} if key else {}
    response = httpx.get(f"{portal}/api/v1{path}", params=params, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


class NextLink(HTMLParser):
    """The first ``<a rel="next">`` of a page: the preview's next page."""

    def __init__(self) -> None:
        super().__init__()
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and self.href is None and "next" in (found.get("rel") or "").split():
            self.href = found.get("href")


def next_page_of(html: str) -> str:
    """The href of a page's next-page link (``a[rel=next]``)."""
    parser = NextLink()
    parser.feed(html)
    assert parser.href, "the page has no next-page link (a[rel=next])"
    return parser.href
