"""The dataset page's preview table and chart builder, read as a person's browser gets them
(over the demo city's server, without JavaScript) and checked against the records and aggregate
API's own answers; and the server-drawn SVG chart on its own."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.servers import ApiServer
from urbanlake.web.explore import MAX_CELLS, default_bucket, draw, time_column
from urbanlake.web.strings import Strings
from urbanlake.web.svg import line_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"
DATASET = "bin-fill-levels"  # public, with a time column, 960 rows: pages, filters and charts
GROUPED = "parking-occupancy"  # a few garages: a chart grouped by garage_id


# -- svg.line_chart --------------------------------------------------------------------------------


def parsed(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def test_a_chart_is_valid_svg_with_its_label_and_a_legend() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    series = {
        name: [(start + timedelta(hours=h), h * (i + 1)) for h in range(24)]
        for i, name in enumerate(["north", "south & <east>"])
    }
    svg = parsed(line_chart(series, label="Fill level by hour", y_label="fill_level (%)"))
    assert svg.tag == f"{SVG}svg"
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "Fill level by hour"
    assert svg.findtext(f"{SVG}title") == "Fill level by hour"
    legend = svg.find(f"{SVG}g[@class='legend']")
    assert legend is not None
    assert [t.text for t in legend.iter(f"{SVG}text")] == ["north", "south & <east>"]
    lines = [p for p in svg.iter(f"{SVG}path") if p.get("class") == "line"]
    assert len(lines) == 2
    # Told apart by more than colour: each series has its own dash pattern.
    assert lines[0].get("stroke-dasharray") != lines[1].get("stroke-dasharray")
    classes = {g.get("class") for g in svg.iter(f"{SVG}g")}
    assert {"series series-0", "series series-1"} <= classes
    texts = [t.text or "" for t in svg.iter(f"{SVG}text")]
    assert "fill_level (%)" in texts
    assert any("Nov" in t or ":" in t for t in texts)  # time ticks


def test_one_point_is_drawn_as_a_marker() -> None:
    svg = parsed(line_chart({"only": [(datetime(2026, 11, 1, tzinfo=UTC), 3.5)]},
                            label="One", y_label="y"))  # fmt: skip
    series = next(g for g in svg.iter(f"{SVG}g") if g.get("class") == "series series-0")
    assert series.find(f".//{SVG}circle") is not None


def test_an_empty_chart_says_so() -> None:
    nothing: list[dict[str, list[tuple[Any, Any]]]] = [{}, {"a": []}, {"a": [(1, None), (2, None)]}]
    for series in nothing:
        svg = parsed(line_chart(series, label="Nothing", y_label="y", empty_text="No data"))
        assert svg.get("role") == "img"
        assert "No data" in [t.text for t in svg.iter(f"{SVG}text")]


def test_a_missing_value_is_a_gap_in_the_line() -> None:
    points = [(date(2026, 11, d), None if d == 3 else float(d)) for d in range(1, 6)]
    svg = parsed(line_chart({"s": points}, label="Gap", y_label="y"))
    line = next(p for p in svg.iter(f"{SVG}path") if p.get("class") == "line")
    assert (line.get("d") or "").count("M") == 2


def test_numbers_on_both_axes() -> None:
    svg = parsed(line_chart({"s": [(0, 0), (10, 1000)]}, label="N", y_label="y"))
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "1,000" in texts and "10" in texts


def test_ticks_are_round_and_cover_the_values() -> None:
    ticks = nice_ticks(3.2, 97.5)
    assert ticks[0] <= 3.2 and ticks[-1] >= 97.5
    assert all(t % 10 == 0 for t in ticks)


# -- the preview and chart on the dataset page -----------------------------------------------------


class Table(HTMLParser):
    """The first ``<table>`` of some HTML: its caption, header cells (with their attributes and
    link) and body rows (each cell's text, and a ``<time datetime>`` in it). Text hidden from
    the eye (``visually-hidden``) or from the ear (``aria-hidden``) is left out."""

    def __init__(self) -> None:
        super().__init__()
        self.caption = ""
        self.headers: list[dict[str, Any]] = []
        self.rows: list[list[dict[str, Any]]] = []
        self._in: str | None = None
        self._done = False
        self._cell: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done:
            return
        found = dict(attrs)
        if tag == "caption":
            self._in = "caption"
        elif tag == "tr" and self._in != "caption":
            self.rows.append([])
        elif tag in ("th", "td"):
            self._cell = {"tag": tag, "text": "", "attrs": found}
        elif tag == "a" and self._cell is not None:
            self._cell["href"] = found.get("href")
        elif tag == "time" and self._cell is not None:
            self._cell["time"] = found.get("datetime")
        elif tag == "span" and (
            "visually-hidden" in (found.get("class") or "") or found.get("aria-hidden")
        ):
            self._in = "hidden"

    def handle_endtag(self, tag: str) -> None:
        if self._done:
            return
        if tag == "caption" or (tag == "span" and self._in == "hidden"):
            self._in = None
        elif tag in ("th", "td") and self._cell is not None:
            self._cell["text"] = self._cell["text"].strip()
            if self._cell["tag"] == "th" and len(self.rows) == 1:
                self.headers.append(self._cell)
            else:
                self.rows[-1].append(self._cell)
            self._cell = None
        elif tag == "table":
            self._done = True
            self.rows = [r for r in self.rows if r]

    def handle_data(self, data: str) -> None:
        if self._done:
            return
        if self._in == "caption":
            self.caption += data
        elif self._cell is not None and self._in != "hidden":
            self._cell["text"] += data


def section(html: str, name: str) -> str:
    found = re.search(rf'<section id="{name}".*?</section>', html, re.S)
    assert found, f"no section #{name}"
    return found.group(0)


def table_of(html: str) -> Table:
    table = Table()
    table.feed(html)
    return table


def page(server: ApiServer, query: str = "", name: str = DATASET) -> httpx.Response:
    response = httpx.get(f"{server.url}/datasets/{name}{query}", timeout=120,
                         headers={"Accept": "text/html"})  # fmt: skip
    assert response.status_code == 200, response.text[:2000]
    return response


def link(html: str, rel: str) -> str:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}"', html)
    assert found, f"no a[rel={rel}]"
    return unescape(found.group(1))


def keys(table: Table) -> list[tuple[str, str]]:
    """Each row's bin and time, as the API writes them."""
    return [(row[0]["text"], row[1]["time"]) for row in table.rows]


def api_keys(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(row["bin_id"], row["measured_at"]) for row in rows]


def test_the_caption_counts_every_row_as_the_api_does(demo_api: ApiServer) -> None:
    api = demo_api.get(f"/datasets/{DATASET}/records?limit=20").json()
    table = table_of(section(page(demo_api).text, "preview"))
    assert table.caption == f"Rows 1–20 of {api['total']:,}"
    assert keys(table) == api_keys(api["rows"])
    assert [h["text"] for h in table.headers] == list(api["rows"][0])


def test_the_next_page_is_the_api_s_second_page(demo_api: ApiServer) -> None:
    first = demo_api.get(f"/datasets/{DATASET}/records?limit=20").json()
    second = demo_api.get(first["next"]).json()
    preview = section(page(demo_api).text, "preview")
    assert "First page" not in preview
    following = link(preview, "next")
    assert following.endswith("#preview") and "page=2" in following
    later = section(page(demo_api, following[len(f"/datasets/{DATASET}") :]).text, "preview")
    table = table_of(later)
    assert table.caption == f"Rows 21–40 of {first['total']:,}"
    assert keys(table) == api_keys(second["rows"])
    back = link(later, "first")
    assert "cursor" not in back and "page=" not in back
    assert "Page 2" in later


def test_a_column_header_sorts_the_rows_and_says_so(demo_api: ApiServer) -> None:
    table = table_of(section(page(demo_api).text, "preview"))
    header = next(h for h in table.headers if h["text"] == "fill_level")
    assert "aria-sort" not in header["attrs"]
    query = header["href"][len(f"/datasets/{DATASET}") :]
    ascending = table_of(section(page(demo_api, query).text, "preview"))
    header = next(h for h in ascending.headers if h["text"] == "fill_level")
    assert header["attrs"]["aria-sort"] == "ascending"
    values = [float(row[2]["text"].replace(",", "")) for row in ascending.rows]
    assert values == sorted(values)
    # The sorted column's link turns the order around.
    query = header["href"][len(f"/datasets/{DATASET}") :]
    assert dict(parse_qsl(urlsplit(query).query))["order_by"] == "-fill_level"
    descending = table_of(section(page(demo_api, query).text, "preview"))
    header = next(h for h in descending.headers if h["text"] == "fill_level")
    assert header["attrs"]["aria-sort"] == "descending"
    api = demo_api.get(f"/datasets/{DATASET}/records?limit=20&order_by=-fill_level").json()
    assert [float(row[2]["text"]) for row in descending.rows] == [
        row["fill_level"] for row in api["rows"]
    ]


def test_the_filter_form_becomes_a_filter_of_the_records_api(demo_api: ApiServer) -> None:
    html = section(page(demo_api).text, "preview")
    assert '<form id="filter" method="get"' in html
    for field, words in (("fcol", "Column"), ("fop", "Condition"), ("fval", "Value")):
        assert f'<label for="{field}">{words}</label>' in html
        assert f'id="{field}" name="{field}"' in html
    assert "Apply filter" in html
    # What the form sends: its fields, and the page's own parameters it keeps as hidden fields.
    sent = httpx.get(
        f"{demo_api.url}/datasets/{DATASET}?order_by=-fill_level&cursor=abc&page=3"
        "&fcol=fill_level&fop=gt&fval=80",
        timeout=60,
        follow_redirects=False,
    )
    assert sent.status_code == 303
    location = sent.headers["location"]
    assert location.endswith(f"/datasets/{DATASET}?order_by=-fill_level&fill_level__gt=80#preview")
    filtered = page(demo_api, location[location.index("?") :].removesuffix("#preview")).text
    api = demo_api.get(f"/datasets/{DATASET}/records?limit=20&fill_level__gt=80").json()
    preview = section(filtered, "preview")
    assert table_of(preview).caption == f"Rows 1–20 of {api['total']:,}"
    assert api["total"] < 960
    assert "fill_level &gt; 80" in preview
    remove = re.search(r'<a href="([^"]+)">Remove', preview)
    assert remove and "fill_level__gt" not in unescape(remove.group(1))
    # An empty value adds no filter; the form's fields never stay in the URL.
    sent = httpx.get(f"{demo_api.url}/datasets/{DATASET}?fcol=bin_id&fop=eq&fval=",
                     timeout=60, follow_redirects=False)  # fmt: skip
    assert sent.status_code == 303
    assert sent.headers["location"].endswith(f"/datasets/{DATASET}#preview")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?nosuch=1", "unknown column &#39;nosuch&#39;"),
        ("?free__gt=lots", "&#39;lots&#39; in free__gt is not a BIGINT value"),
        ("?cursor=garbage", "cursor"),
    ],
)
def test_a_bad_filter_is_said_in_the_page(demo_api: ApiServer, query: str, words: str) -> None:
    response = page(demo_api, query, GROUPED)  # no map: the preview alone reads the filters
    preview = section(response.text, "preview")
    error = re.search(r'<p class="error" role="alert" id="preview-error">(.*?)</p>', preview, re.S)
    assert error, preview[:3000]
    assert words in error.group(1)
    assert '<form id="filter"' in preview  # to correct it
    assert "<table" not in preview
    chart = section(response.text, "chart")
    assert ("corrected" in chart) == (query != "?cursor=garbage")  # said once, in the preview
    if "cursor" in query:
        assert link(preview, "first") == f"/datasets/{GROUPED}#preview"


def chart_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S)
    assert found, "no chart data"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def chart_svg(html: str) -> ET.Element:
    found = re.search(r"<svg .*?</svg>", html, re.S)
    assert found, "no svg"
    return ET.fromstring(found.group(0))


def test_the_page_draws_a_chart_out_of_the_box(demo_api: ApiServer) -> None:
    chart = section(page(demo_api).text, "chart")
    assert '<form id="chart-form" method="get"' in chart
    assert f'action="/datasets/{DATASET}#chart"' in chart
    for field, words in (("chart_y", "Value"), ("chart_fn", "Function"),
                         ("chart_bucket", "Time bucket")):  # fmt: skip
        assert f'<label for="{field}">{words}</label>' in chart
    assert "Draw chart" in chart
    svg = chart_svg(chart)
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "Average fill_level per 1 hour"
    data = chart_data(chart)
    api = demo_api.get(
        f"/datasets/{DATASET}/aggregate?bucket=measured_at:1h&metrics=avg:fill_level"
    )
    rows = api.json()["rows"]
    assert data["title"] == "Average fill_level per 1 hour"
    assert data["y_label"] == "fill_level (%)"
    [series] = data["series"]
    by_time = dict(zip(data["x"], series["values"], strict=True))
    for row in rows[:3] + rows[-1:]:
        assert by_time[row["measured_at"]] == pytest.approx(row["avg_fill_level"])
    assert "<details" in chart and "<table>" in chart


def test_a_grouped_chart_has_a_series_per_group(demo_api: ApiServer) -> None:
    query = "?chart_y=free&chart_fn=max&chart_bucket=1h&chart_group=garage_id"
    chart = section(page(demo_api, query, GROUPED).text, "chart")
    data = chart_data(chart)
    api = demo_api.get(f"/datasets/{GROUPED}/aggregate?group_by=garage_id"
                       "&bucket=observed_at:1h&metrics=max:free").json()["rows"]  # fmt: skip
    garages = sorted({row["garage_id"] for row in api})
    assert [s["name"] for s in data["series"]] == garages
    row = api[len(api) // 2]
    values = next(s["values"] for s in data["series"] if s["name"] == row["garage_id"])
    assert values[data["x"].index(row["observed_at"])] == row["max_free"]
    legend = chart_svg(chart).find(f"{SVG}g[@class='legend']")
    assert legend is not None
    assert [t.text for t in legend.iter(f"{SVG}text")] == garages
    assert 'aria-label="Highest free per 1 hour, by garage_id"' in chart


def test_the_chart_reads_the_filtered_rows(demo_api: ApiServer) -> None:
    query = "?bin_id=bin-001&chart_y=fill_level&chart_fn=sum&chart_bucket=1d"
    data = chart_data(section(page(demo_api, query).text, "chart"))
    api = demo_api.get(f"/datasets/{DATASET}/aggregate?bin_id=bin-001"
                       "&bucket=measured_at:1d&metrics=sum:fill_level").json()["rows"]  # fmt: skip
    assert data["x"] == [row["measured_at"] for row in api]
    assert data["series"][0]["values"] == pytest.approx([row["sum_fill_level"] for row in api])


def test_a_chart_it_cannot_draw_is_said_in_the_page(demo_api: ApiServer) -> None:
    chart = section(page(demo_api, "?chart_y=bin_id&chart_bucket=7m").text, "chart")
    assert "&#39;bin_id&#39; is not a numeric column" in chart
    assert "&#39;7m&#39; is not a time bucket" in chart
    assert "<svg" not in chart


# -- choices the chart makes on its own ------------------------------------------------------------


def detail_of(columns: dict[str, str], low: str, high: str, key: list[str]) -> dict[str, Any]:
    stats = {name: {"min": low, "max": high, "distinct_estimate": 10} for name in columns}
    return {"schema": [{"name": n, "type": t} for n, t in columns.items()],
            "statistics": {"columns": stats}, "primary_key": key}  # fmt: skip


def test_the_event_time_is_the_key_s_timestamp_else_the_first() -> None:
    columns = {"fed_at": "TIMESTAMP WITH TIME ZONE", "seen_at": "TIMESTAMP", "day": "DATE"}
    assert time_column(detail_of(columns, "", "", ["id", "seen_at"])) == "seen_at"
    assert time_column(detail_of(columns, "", "", [])) == "fed_at"
    assert time_column(detail_of({"day": "DATE", "n": "BIGINT"}, "", "", [])) == "day"
    assert time_column(detail_of({"n": "BIGINT"}, "", "", [])) is None


@pytest.mark.parametrize(
    ("high", "bucket"),
    [("2026-11-01T01:00:00+00:00", "5m"), ("2026-11-01T06:00:00+00:00", "15m"),
     ("2026-11-03T00:00:00+00:00", "1h"), ("2027-01-01T00:00:00+00:00", "1d"),
     ("2030-01-01T00:00:00+00:00", "1w"), ("2060-01-01T00:00:00+00:00", "1mo")],
)  # fmt: skip
def test_a_first_chart_s_bucket_fits_the_span(high: str, bucket: str) -> None:
    detail = detail_of({"at": "TIMESTAMP"}, "2026-11-01T00:00:00+00:00", high, [])
    assert default_bucket(detail, "at") == bucket


def test_a_chart_too_big_for_a_page_says_so() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [{"at": start + timedelta(minutes=5 * i), "avg_v": 1.0} for i in range(MAX_CELLS + 1)]
    drawn = draw(Strings(), detail_of({"at": "TIMESTAMP", "v": "DOUBLE"}, "", "", []), rows,
                 "at", "avg_v", "v", "avg", "5m", None)  # fmt: skip
    assert "more than a page can draw" in drawn["error"]
    drawn = draw(Strings(), detail_of({"at": "TIMESTAMP", "v": "DOUBLE"}, "", "", []), rows[:50],
                 "at", "avg_v", "v", "avg", "5m", None)  # fmt: skip
    assert "error" not in drawn and len(json.loads(str(drawn["json"]))["x"]) == 50


def test_a_bad_filter_on_a_map_dataset_is_said_in_the_page_too(demo_api: ApiServer) -> None:
    response = page(demo_api, "?fill_level__gt=lots", DATASET)  # a dataset with a map
    assert response.status_code == 200
    assert "is not a DOUBLE value" in section(response.text, "preview")
