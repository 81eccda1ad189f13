"""WCAG 2.1 A and AA on every page type, checked by axe-core in Chromium: at desktop and mobile
widths, in the light and the dark colour scheme, with JavaScript on (so the enhanced chart and
map are checked too). Each page × width × scheme is one test, so a failure names where it is;
the message lists every violation with its rule, what it asks and the elements that break it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.web.conftest import (
    CHART,
    GEO,
    PARTNER_DATASET,
    PLAIN,
    WIDTHS,
    OpenTab,
    Tab,
    api_json,
    next_page_of,
)

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]}
SCHEMES = ["light", "dark"]


@dataclass(frozen=True)
class PageType:
    """How a visitor reaches one kind of page: a URL, or a few steps in the browser."""

    path: str
    steps: Callable[[Tab, dict[str, Any]], None] | None = None


def second_preview_page(tab: Tab, context: dict[str, Any]) -> None:
    tab.goto(next_page_of(tab.page.content()))


def wrong_key(tab: Tab, context: dict[str, Any]) -> None:
    tab.page.get_by_label("API key").fill("ul_not-a-real-key")
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Sign in").click()
    # The error page: the form again, its field pointing at the message that says what went wrong.
    expect(tab.page.get_by_label("API key")).to_have_attribute("aria-describedby", re.compile("."))


def signed_in(tab: Tab, context: dict[str, Any]) -> None:
    tab.page.get_by_label("API key").fill(context["partner_key"])
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Sign in").click()
    assert tab.goto(f"/datasets/{context['partner_dataset']}").status == 200, "not signed in"


PAGES = {
    "home": PageType("/"),
    "search": PageType("/?q=bin&domain=waste"),
    "dataset-geo": PageType(f"/datasets/{GEO}"),
    "dataset-plain": PageType(f"/datasets/{PLAIN}"),
    "dataset-filter-chart": PageType(f"/datasets/{GEO}?fill_level__gt=80&{CHART}"),
    "dataset-chart-group": PageType(
        f"/datasets/{PLAIN}?chart_y=free&chart_fn=avg&chart_bucket=1h&chart_group=garage_id"
    ),
    "preview-page-2": PageType(f"/datasets/{GEO}", second_preview_page),
    "changes": PageType(f"/datasets/{GEO}/changes?from={{version}}&to={{version}}"),
    "status": PageType("/status"),
    "signin": PageType("/signin"),
    "signin-error": PageType("/signin", wrong_key),
    "signed-in": PageType("/signin", signed_in),
    "not-found": PageType("/datasets/no-such-dataset"),
}
CASES = [
    pytest.param(page, width, scheme, id=f"{page}-{width}-{scheme}")
    for page in PAGES
    for width in WIDTHS
    for scheme in SCHEMES
]


def report(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation.get('impact')}): {violation['help']}")
        for node in violation["nodes"]:
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {node['target']}: {summary}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def version(portal: str) -> int:
    """The geographic dataset's latest version (the changes page compares it with itself)."""
    latest: int = api_json(portal, f"/datasets/{GEO}")["version"]
    return latest


def visit(tab: Tab, kind: str, version: int, partner_key: str) -> None:
    page_type = PAGES[kind]
    tab.goto(page_type.path.format(version=version))
    if page_type.steps:
        page_type.steps(tab, {"partner_key": partner_key, "partner_dataset": PARTNER_DATASET})


@pytest.mark.parametrize(("kind", "width", "scheme"), CASES)
def test_no_wcag_21_aa_violations(
    open_tab: OpenTab, version: int, partner_key: str, kind: str, width: str, scheme: str
) -> None:
    tab = open_tab(width=width, color_scheme=scheme)
    visit(tab, kind, version, partner_key)
    results = Axe().run(tab.page, options=AXE_OPTIONS)
    violations = results.response["violations"]
    assert not violations, f"axe on {kind} ({tab.page.url}):\n{report(violations)}"
    tab.assert_local()


# What makes a page scroll sideways: each element past the right edge (an SVG counts as one) is
# hidden in turn, and those whose hiding narrows the page are named, innermost first.
STICKING_OUT = """() => {
  const root = document.documentElement;
  const width = root.clientWidth, scroll = root.scrollWidth;
  const past = [...document.querySelectorAll('body *')].filter(e =>
    !e.parentElement.closest('svg') && e.getBoundingClientRect().right > width + 1);
  const culprits = [];
  for (const e of past.reverse().slice(0, 400)) {
    if (culprits.some(c => e.contains(c.element))) continue;
    const html = e.outerHTML.slice(0, 200), style = e.getAttribute('style');
    e.style.display = 'none';
    const narrower = root.scrollWidth < scroll;
    if (style === null) e.removeAttribute('style'); else e.setAttribute('style', style);
    if (narrower) culprits.push({element: e, html: html});
  }
  return {scroll: scroll, width: width, out: culprits.slice(0, 5).map(c => c.html)};
}"""


@pytest.mark.parametrize("kind", PAGES)
def test_pages_reflow_at_320_css_pixels(
    open_tab: OpenTab, version: int, partner_key: str, kind: str
) -> None:
    """WCAG 1.4.10 (axe does not check it): at 320 CSS px nothing scrolls sideways but the
    wide tables and code blocks, each inside its own scroll box."""
    tab = open_tab(width="narrowest")
    visit(tab, kind, version, partner_key)
    found = tab.page.evaluate(STICKING_OUT)
    assert found["scroll"] <= found["width"], (
        f"{kind} is {found['scroll']} px wide at {found['width']} px; sticking out: {found['out']}"
    )
