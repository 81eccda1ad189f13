"""The dataset page's preview table and chart builder, read as a person's browser gets them
(over the demo city's server, without JavaScript) and checked against the records and aggregate
API's own answers; and the server-drawn SVG chart on its own."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

from urbanlake.web.svg import line_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"


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
    for series in ({}, {"a": []}, {"a": [(1, None), (2, None)]}):
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
