"""The portal as people use it, in headless Chromium over the demo city: a visitor who clicks
(search, facet, a result, the preview's next page, a filter, the CSV download), one who only
uses the keyboard, a partner who signs in and out, screenshots for a person to look at, and the
pages with JavaScript on (enhanced chart and map) and off (everything still reads).

What a page shows is held against what the API answers to the same question: one query path.
Every test also proves the page asked nothing of another host.
"""

from __future__ import annotations

import csv
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import (
    CHART,
    GEO,
    PARTNER_DATASET,
    WIDTHS,
    OpenTab,
    Tab,
    api_json,
)
from urbanlake.web.render import KEY_COOKIE

QUERY, FACET, FACET_VALUE = "bin", "domain", "waste"
DATASET = GEO  # geographic, numeric, with an event time: every part of the page
FILTER_COLUMN, FILTER_LABEL, FILTER_OP, FILTER_VALUE = "fill_level", ">", "gt", "80"
PAGE_SIZE = 20

# What the focused element is, and whether a person can see where focus is.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
  const shadow = !!s.boxShadow && s.boxShadow !== 'none';
  const box = el.getBoundingClientRect();
  return {tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute('name'),
          value: el.value === undefined ? null : String(el.value),
          type: el.getAttribute('type'), href: el.getAttribute('href'),
          text: (el.innerText || el.getAttribute('aria-label') || '').trim().slice(0, 80),
          ring: outline || shadow, onscreen: box.width > 0 && box.height > 0,
          main: !!el.closest('main'), downloads: !!el.closest('#downloads'),
          checked: !!el.checked, mark: el.getAttribute('data-tab-mark'),
          html: el.outerHTML.slice(0, 160)};
}"""


def rows_caption(first: int, last: int, total: int) -> str:
    return f"Rows {first:,}–{last:,} of {total:,}"


def records(portal: str, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = api_json(portal, f"/datasets/{DATASET}/records", params)
    return result


def column_of(page: Page, name: str) -> list[str]:
    """The preview table's cells of one column, found by its header."""
    headers = [h.strip() for h in page.locator("#preview table thead th").all_inner_texts()]
    index = next(i for i, h in enumerate(headers) if h.startswith(name))
    return [c.strip() for c in page.locator(f"#preview table tbody tr td:nth-child({index + 1}), "
                                             f"#preview table tbody tr th:nth-child({index + 1})"
                                             ).all_inner_texts()]  # fmt: skip


def check_download(download: Any, portal: str, total: int) -> None:
    """The CSV the person downloaded: the dataset's columns, then exactly the filtered rows."""
    path = download.path()
    with open(path, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    columns = [c["name"] for c in api_json(portal, f"/datasets/{DATASET}")["schema"]]
    assert table[0] == columns, table[0]
    assert len(table) - 1 == total, f"{len(table) - 1} rows downloaded, the filter matches {total}"
    value_at = table[0].index(FILTER_COLUMN)
    assert all(float(row[value_at]) > float(FILTER_VALUE) for row in table[1:])


def test_a_person_searches_explores_filters_and_downloads(open_tab: OpenTab, portal: str) -> None:
    tab = open_tab()
    page = tab.page
    tab.goto("/")
    page.get_by_label("Search datasets").fill(QUERY)
    facet_count = api_json(portal, "/datasets")["facets"][FACET][FACET_VALUE]
    facet = page.get_by_role("group", name=re.compile(FACET, re.IGNORECASE))
    facet.get_by_role("checkbox", name=re.compile(rf"\b{FACET_VALUE}\b.*\({facet_count}\)")).check()
    page.get_by_role("button", name="Apply", exact=True).click()
    page.wait_for_url(re.compile(rf"[?&]{FACET}={FACET_VALUE}"))
    assert f"q={QUERY}" in page.url

    found = api_json(portal, "/datasets", {"q": QUERY, FACET: FACET_VALUE})
    expect(page.locator("#result-count")).to_have_text(f"{found['total']} datasets")
    links = page.locator("#results > li h3 a")
    assert [link.get_attribute("href") for link in links.all()] == [
        f"/datasets/{d['name']}" for d in found["datasets"]
    ]
    expect(facet.get_by_role("checkbox", name=re.compile(rf"\b{FACET_VALUE}\b"))).to_be_checked()
    title = next(d["title"] for d in found["datasets"] if d["name"] == DATASET)
    page.locator("#results").get_by_role("link", name=title, exact=True).click()

    page.wait_for_url(f"**/datasets/{DATASET}")
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    first = records(portal, limit=PAGE_SIZE)
    caption = page.locator("#preview table caption")
    expect(caption).to_contain_text(rows_caption(1, PAGE_SIZE, first["total"]))
    assert column_of(page, "bin_id") == [r["bin_id"] for r in first["rows"]]

    page.locator("#preview").get_by_role("link", name="Next page").click()
    page.wait_for_url(re.compile(r"[?&]cursor="))
    expect(caption).to_contain_text(rows_caption(PAGE_SIZE + 1, 2 * PAGE_SIZE, first["total"]))
    second = records(portal, limit=PAGE_SIZE, cursor=first["next"].split("cursor=")[1])
    assert column_of(page, "bin_id") == [r["bin_id"] for r in second["rows"]]
    expect(page.locator("#preview").get_by_role("link", name="First page")).to_be_visible()

    form = page.locator("form#filter")
    form.get_by_label("Column").select_option(FILTER_COLUMN)
    form.get_by_label("Condition").select_option(label=FILTER_LABEL)
    form.get_by_label("Value").fill(FILTER_VALUE)
    form.get_by_role("button", name="Apply filter").click()
    page.wait_for_url(re.compile(rf"[?&]{FILTER_COLUMN}__{FILTER_OP}={FILTER_VALUE}"))
    assert "fcol=" not in page.url and "cursor=" not in page.url, page.url
    filtered = records(portal, limit=1, **{f"{FILTER_COLUMN}__{FILTER_OP}": FILTER_VALUE})
    assert filtered["total"] < first["total"]
    expect(caption).to_contain_text(rows_caption(1, PAGE_SIZE, filtered["total"]))
    expect(page.get_by_role("link", name=re.compile("Remove"))).not_to_have_count(0)

    with page.expect_download() as info:
        page.locator("#downloads").get_by_role("link", name="CSV", exact=True).click()
    check_download(info.value, portal, filtered["total"])
    tab.assert_local()


def focus_next(page: Page, want: Any, limit: int = 300, key: str = "Tab") -> dict[str, Any]:
    """Press Tab until the focused element is the one ``want(focused)`` picks; every element
    focused on the way must show where focus is (an outline or a box shadow)."""
    for _ in range(limit):
        page.keyboard.press(key)
        focused = page.evaluate(FOCUSED)
        if focused is None:
            continue
        assert focused["ring"], f"no visible focus indicator on {focused['html']}"
        if want(focused):
            return focused
    raise AssertionError(f"{limit} presses of {key} never reached the control ({page.url})")


def choose(page: Page, name: str, value: str | None = None, label: str | None = None) -> None:
    """Pick an option of the focused select with the arrow keys only."""
    select = page.locator(f"select[name={name}]")
    options = select.locator("option")
    texts = [o.strip() for o in options.all_inner_texts()]
    values = [o.get_attribute("value") or "" for o in options.all()]
    target = values.index(value) if value is not None else texts.index(str(label))
    now = int(select.evaluate("s => s.selectedIndex"))
    key = "ArrowDown" if target > now else "ArrowUp"
    for _ in range(abs(target - now)):
        page.keyboard.press(key)
    assert int(select.evaluate("s => s.selectedIndex")) == target, f"could not choose in {name}"


def test_keyboard_only_walks_the_main_path(open_tab: OpenTab, portal: str) -> None:
    tab = open_tab()
    page = tab.page
    tab.goto("/")
    skip = focus_next(page, lambda f: True)
    assert skip["href"] == "#main" and skip["onscreen"], f"the first Tab stop is {skip['html']}"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main", "the skip link moves no focus"
    after_skip = focus_next(page, lambda f: True)
    assert after_skip["main"], f"after the skip link, Tab goes to {after_skip['html']}"

    focus_next(page, lambda f: f["name"] == "q")
    page.keyboard.type(QUERY)
    focus_next(page, lambda f: f["name"] == FACET and f["value"] == FACET_VALUE)
    page.keyboard.press("Space")
    assert page.evaluate(FOCUSED)["checked"], "Space did not tick the facet"
    focus_next(page, lambda f: f["tag"] == "button" and f["text"] == "Apply")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"[?&]{FACET}={FACET_VALUE}"))

    focus_next(page, lambda f: f["href"] == f"/datasets/{DATASET}")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/datasets/{DATASET}")
    total = records(portal, limit=1)["total"]
    focus_next(page, lambda f: f["text"] == "Next page")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"[?&]cursor="))
    caption = page.locator("#preview table caption")
    expect(caption).to_contain_text(rows_caption(PAGE_SIZE + 1, 2 * PAGE_SIZE, total))

    focus_next(page, lambda f: f["name"] == "fcol")
    choose(page, "fcol", value=FILTER_COLUMN)
    focus_next(page, lambda f: f["name"] == "fop")
    choose(page, "fop", label=FILTER_LABEL)
    focus_next(page, lambda f: f["name"] == "fval")
    page.keyboard.type(FILTER_VALUE)
    focus_next(page, lambda f: f["tag"] == "button" and f["text"] == "Apply filter")
    page.keyboard.press("Space")
    page.wait_for_url(re.compile(rf"[?&]{FILTER_COLUMN}__{FILTER_OP}={FILTER_VALUE}"))
    filtered = records(portal, limit=1, **{f"{FILTER_COLUMN}__{FILTER_OP}": FILTER_VALUE})
    expect(caption).to_contain_text(rows_caption(1, PAGE_SIZE, filtered["total"]))

    focus_next(page, lambda f: f["downloads"] and f["text"] == "CSV")
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    check_download(info.value, portal, filtered["total"])
    tab.assert_local()


# Every control a person could use, marked so a walk with Tab can tick it off.
MARK_CONTROLS = """() => {
  const all = document.querySelectorAll('a[href], button, input:not([type=hidden]), select, ' +
    'textarea, summary, [tabindex]:not([tabindex="-1"])');
  let n = 0;
  const marked = [];
  for (const el of all) {
    if (el.disabled || el.closest('[inert]')) continue;
    const closed = el.closest('details:not([open])');
    if (closed && el.parentElement !== closed) continue;  // in a closed <details>: not shown
    const box = el.getBoundingClientRect();
    const shown = el.classList.contains('skip') ||
      (box.width > 0 && box.height > 0 && el.checkVisibility({visibilityProperty: true}));
    if (!shown) continue;
    el.setAttribute('data-tab-mark', String(n));
    marked.push({mark: String(n), html: el.outerHTML.slice(0, 160)});
    n += 1;
  }
  return marked;
}"""

REACHABLE_PAGES = {
    "home": "/",
    "status": "/status",
    "signin": "/signin",
    "dataset": f"/datasets/{DATASET}?{CHART}",
}


@pytest.mark.parametrize("path", REACHABLE_PAGES.values(), ids=REACHABLE_PAGES.keys())
def test_every_control_is_reachable_by_tab_with_a_focus_ring(open_tab: OpenTab, path: str) -> None:
    tab = open_tab()
    page = tab.page
    tab.goto(path)
    controls = {c["mark"]: c["html"] for c in page.evaluate(MARK_CONTROLS)}
    reached: set[str] = set()
    no_ring: list[str] = []
    for _ in range(len(controls) + 400):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None:
            if reached:
                break
            continue
        if focused["mark"] in reached:
            break
        if focused["mark"] is not None:
            reached.add(focused["mark"])
        if not focused["ring"]:
            no_ring.append(focused["html"])
    missing = [html for mark, html in controls.items() if mark not in reached]
    assert not missing, f"controls Tab never reaches on {path}: {missing}"
    assert not no_ring, f"controls without a visible focus indicator on {path}: {no_ring}"
    tab.assert_local()


def test_a_partner_dataset_shows_only_to_a_signed_in_partner(
    open_tab: OpenTab, portal: str, partner_key: str
) -> None:
    title = api_json(portal, f"/datasets/{PARTNER_DATASET}", key=partner_key)["title"]
    tab = open_tab()
    page = tab.page

    def hidden() -> None:
        for path in ("/", "/status", f"/?q={PARTNER_DATASET.split('-')[0]}"):
            tab.goto(path)
            html = page.content()
            assert PARTNER_DATASET not in html and title not in html, f"{path} shows it"
        response = tab.goto(f"/datasets/{PARTNER_DATASET}")
        assert response.status == 404
        expect(page.get_by_role("heading", level=1)).to_contain_text("404")

    hidden()
    tab.goto("/")
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url("**/signin")
    page.get_by_label("API key").fill(partner_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))
    link = page.locator(f'#results a[href="/datasets/{PARTNER_DATASET}"]')
    expect(link).to_have_text(title)
    tab.goto("/status")
    expect(page.locator(f'table a[href="/datasets/{PARTNER_DATASET}"]')).to_have_count(1)
    assert tab.goto(f"/datasets/{PARTNER_DATASET}").status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(title)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/$"))
    assert KEY_COOKIE not in {c["name"] for c in tab.context.cookies()}
    hidden()
    tab.assert_local()


def png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


SHOTS = {"home": "/", "dataset": f"/datasets/{DATASET}?{CHART}#chart", "status": "/status"}


@pytest.mark.parametrize("width", WIDTHS)
def test_screenshots_for_a_person_to_look_at(
    open_tab: OpenTab, artifacts: Path, width: str
) -> None:
    tab = open_tab(width=width)
    for name, path in SHOTS.items():
        assert tab.goto(path).status == 200
        if name == "dataset":
            page = tab.page
            drawn = page.locator("#chart").locator("svg, canvas").locator("visible=true")
            expect(drawn.first).to_be_visible()
            expect(page.locator("#map")).to_be_visible()
        shot = artifacts / f"{name}-{width}.png"
        shot.unlink(missing_ok=True)
        tab.page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000, f"{shot} is nearly empty"
        png_width, png_height = png_size(shot)
        assert png_width == WIDTHS[width]["width"], f"{name} scrolls sideways: {png_width} px wide"
        assert png_height >= WIDTHS[width]["height"] // 2
    tab.assert_local()


def script_landed(tab: Tab, name: str) -> bool:
    response = tab.context.request.get(f"/static/{name}")
    return response.status == 200


def test_javascript_enhances_the_chart_and_the_map(open_tab: OpenTab, portal: str) -> None:
    tab = open_tab()
    if not (script_landed(tab, "map.js") and script_landed(tab, "chart.js")):
        pytest.skip(
            "the chart and map enhancements (static/chart.js, static/map.js) are not in yet"
        )
    page = tab.page
    tab.goto(f"/datasets/{DATASET}?{CHART}")
    live_map = page.locator("#map .leaflet-container")
    expect(live_map).to_be_visible()
    assert live_map.get_attribute("aria-label"), "the interactive map has no name"
    features = len(
        api_json(portal, f"/datasets/{DATASET}/records", {"format": "geojson", "limit": "1000"})[
            "features"
        ]
    )
    expect(page.locator("#map .leaflet-overlay-pane path.map-point")).to_have_count(features)
    expect(page.locator('#map svg[role="img"]')).to_be_hidden()  # the fallback steps aside

    live_chart = page.locator('#chart .chart-live[role="img"]')
    expect(live_chart).to_be_visible()
    assert live_chart.get_attribute("aria-label"), "the interactive chart has no name"
    expect(live_chart.locator("canvas").first).to_be_visible()
    expect(page.locator("#chart svg.chart")).to_be_hidden()
    tab.assert_local()


def test_without_javascript_every_page_still_reads(open_tab: OpenTab, portal: str) -> None:
    tab = open_tab(javascript=False)
    page = tab.page
    tab.goto(f"/?q={QUERY}&{FACET}={FACET_VALUE}")
    found = api_json(portal, "/datasets", {"q": QUERY, FACET: FACET_VALUE})
    expect(page.locator("#result-count")).to_have_text(f"{found['total']} datasets")

    tab.goto(f"/datasets/{DATASET}?{CHART}")
    total = records(portal, limit=1)["total"]
    expect(page.locator("#preview table caption")).to_contain_text(
        rows_caption(1, PAGE_SIZE, total)
    )
    expect(page.locator("#preview table tbody tr")).to_have_count(PAGE_SIZE)
    chart = page.locator('#chart svg[role="img"]')
    expect(chart).to_have_count(1)
    assert chart.get_attribute("aria-label"), "the chart's SVG has no text alternative"
    expect(page.locator("#chart details table")).to_have_count(1)
    fallback = page.locator('#map svg[role="img"]')
    expect(fallback).to_have_count(1)
    assert fallback.locator("circle, path, use").count() > 0, "the map's SVG draws no points"
    expect(page.locator(".leaflet-container")).to_have_count(0)

    page.locator("#preview").get_by_role("link", name="Next page").click()
    expect(page.locator("#preview table caption")).to_contain_text(
        rows_caption(PAGE_SIZE + 1, 2 * PAGE_SIZE, total)
    )
    tab.assert_local()
