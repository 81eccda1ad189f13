"""Charts as inline SVG, drawn on the server: a page shows its chart without JavaScript, prints
it, and a screen reader reads its label. Colours come from CSS classes (``series-0`` …) whose
variables the stylesheet sets for light and dark; each series also has its own dash pattern and
marker, so none is told apart by colour alone."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from markupsafe import Markup, escape

# Dash patterns, one per series (the first solid); colours repeat in the stylesheet's order.
DASHES = ("", "6 3", "2 3", "8 3 2 3", "12 4", "4 2 4 6", "1 4", "10 2 2 2 2 2")
MARKERS = ("circle", "square", "diamond", "triangle")
# Steps of a time axis, in seconds: the first that keeps the ticks at or under six wins.
TIME_STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
              7 * 86400, 14 * 86400, 30 * 86400, 91 * 86400, 365 * 86400)  # fmt: skip
FONT = 12
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 12, 40  # room for tick labels and the axis label
LEGEND_ROW = 20

Point = tuple[Any, Any]


def _number(value: Any) -> float | None:
    """A y value as a float; None (a gap) for what is missing or not a finite number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _moment(value: Any) -> float | None:
    """An x value as a number: seconds since the epoch for times and dates, else the number."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    if isinstance(value, str):
        try:
            return _moment(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return _number(value)


def _is_time(series: Mapping[str, Sequence[Point]]) -> bool:
    return any(isinstance(x, date | str) for points in series.values() for x, _ in points)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values that cover ``low`` … ``high`` (1, 2 or 5 times a power of ten apart)."""
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def time_ticks(low: float, high: float) -> list[float]:
    """Tick moments on round times (whole minutes, hours, days …) inside ``low`` … ``high``."""
    span = max(high - low, 1.0)
    step = next(
        (s for s in TIME_STEPS if span / s <= 6),
        TIME_STEPS[-1] * math.ceil(span / 6 / TIME_STEPS[-1]),
    )
    first = math.ceil(low / step) * step
    ticks = []
    value = float(first)
    while value <= high:
        ticks.append(value)
        value += step
    return ticks or [low]


def format_number(value: float) -> str:
    """A tick or a value as a person reads it: thousands separated, no needless decimals."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10 or float(value).is_integer():
        return f"{value:,.1f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def format_time(moment: float, span: float) -> str:
    """A time tick: the day and the hour when the chart spans days, the day alone beyond."""
    when = datetime.fromtimestamp(moment, UTC)
    if span <= 86400:
        return when.strftime("%H:%M")
    if span <= 14 * 86400 and (when.hour or when.minute):
        return when.strftime("%d %b %H:%M")
    if span <= 400 * 86400:
        return when.strftime("%d %b")
    return when.strftime("%b %Y")


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _marker(kind: str, x: float, y: float) -> str:
    r = 3.5
    if kind == "square":
        return f'<rect x="{_fmt(x - r)}" y="{_fmt(y - r)}" width="{_fmt(2 * r)}" height="{_fmt(2 * r)}"/>'
    if kind == "diamond":
        return (f'<path d="M{_fmt(x)} {_fmt(y - r - 1)}L{_fmt(x + r + 1)} {_fmt(y)}'
                f'L{_fmt(x)} {_fmt(y + r + 1)}L{_fmt(x - r - 1)} {_fmt(y)}Z"/>')  # fmt: skip
    if kind == "triangle":
        return (f'<path d="M{_fmt(x)} {_fmt(y - r - 1)}L{_fmt(x + r + 1)} {_fmt(y + r)}'
                f'L{_fmt(x - r - 1)} {_fmt(y + r)}Z"/>')  # fmt: skip
    return f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="{_fmt(r)}"/>'


def line_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    label: str,
    y_label: str,
    width: int = 640,
    height: int = 240,
    empty_text: str = "No data to draw",
) -> Markup:
    """An inline SVG line chart of ``series`` (name → (x, y) points; x a time, a date or a
    number; a None y is a gap). ``label`` is its text alternative (``aria-label`` and
    ``<title>``); the legend names every series. Ready to put in a page as it is."""
    is_time = _is_time(series)
    lines: dict[str, list[tuple[float, float | None]]] = {}
    for name, points in series.items():
        clean = [(x, _number(y)) for raw, y in points if (x := _moment(raw)) is not None]
        lines[str(name)] = sorted(clean, key=lambda p: p[0])
    names = list(lines)
    legend_rows = math.ceil(len(names) / 3)
    total_height = height + legend_rows * LEGEND_ROW
    xs = [x for points in lines.values() for x, _ in points]
    ys = [y for points in lines.values() for _, y in points if y is not None]
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-label="{escape(label)}" viewBox="0 0 {width} {total_height}" '
        f'width="{width}" height="{total_height}" font-size="{FONT}">',
        f"<title>{escape(label)}</title>",
    ]
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    if not ys:
        out.append(
            f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" '
            'fill="none" stroke="currentColor"/>'
        )
        out.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" '
            f'text-anchor="middle">{escape(empty_text)}</text>'
        )
        out.append("</svg>")
        return Markup("".join(out))
    y_ticks = nice_ticks(min(ys), max(ys))
    y_low, y_high = y_ticks[0], y_ticks[-1]
    x_low, x_high = min(xs), max(xs)
    if x_high == x_low:  # one moment: centre it
        pad = 3600.0 if is_time else (abs(x_low) * 0.1 or 1.0)
        x_low, x_high = x_low - pad, x_high + pad
    x_ticks = time_ticks(x_low, x_high) if is_time else nice_ticks(x_low, x_high)
    if not is_time:
        x_low, x_high = min(x_low, x_ticks[0]), max(x_high, x_ticks[-1])

    def sx(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - (y - y_low) / (y_high - y_low) * plot_h

    out.append('<g class="axis" stroke="currentColor">')
    for tick in y_ticks:
        out.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_fmt(sy(tick))}" '
                   f'y2="{_fmt(sy(tick))}" stroke-opacity="0.2"/>')  # fmt: skip
    out.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}"/>')
    out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>')
    for tick in x_ticks:
        out.append(f'<line x1="{_fmt(sx(tick))}" x2="{_fmt(sx(tick))}" y1="{TOP + plot_h}" '
                   f'y2="{TOP + plot_h + 4}"/>')  # fmt: skip
    out.append("</g>")
    out.append('<g class="ticks" stroke="none">')
    for tick in y_ticks:
        out.append(f'<text x="{LEFT - 6}" y="{_fmt(sy(tick) + 4)}" text-anchor="end">'
                   f"{escape(format_number(tick))}</text>")  # fmt: skip
    span = x_high - x_low
    for i, tick in enumerate(x_ticks):
        text = format_time(tick, span) if is_time else format_number(tick)
        if is_time and i == 0 and span <= 86400:  # hours alone: the first names the day
            text = format_time(tick, 2 * 86400)
        # A label at the right edge ends there rather than running off the drawing.
        anchor = "end" if sx(tick) > width - RIGHT - 30 else "middle"
        out.append(f'<text x="{_fmt(sx(tick))}" y="{TOP + plot_h + 18}" text-anchor="{anchor}">'
                   f"{escape(text)}</text>")  # fmt: skip
    out.append(
        f'<text class="axis-label" transform="translate(14 {TOP + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    out.append("</g>")
    for i, name in enumerate(names):
        points = lines[name]
        dash = DASHES[i % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<g class="series series-{i % 8}">')
        runs: list[list[tuple[float, float]]] = [[]]
        for x, y in points:
            if y is None:
                runs.append([])
            else:
                runs[-1].append((x, y))
        path = "".join(
            "M" + "L".join(f"{_fmt(sx(x))} {_fmt(sy(y))}" for x, y in run) for run in runs if run
        )
        if path:
            out.append(f'<path class="line" d="{path}" fill="none" stroke="currentColor" '
                       f'stroke-width="2"{dash_attr}/>')  # fmt: skip
        # Markers where a person needs them to see a value: few points, or a point alone.
        few = sum(len(run) for run in runs) <= 60
        kind = MARKERS[i % len(MARKERS)]
        marks = [p for run in runs for p in run if few or len(run) == 1]
        if marks:
            out.append('<g class="marks" fill="currentColor" stroke="none">')
            out.extend(_marker(kind, sx(x), sy(y)) for x, y in marks)
            out.append("</g>")
        out.append("</g>")
    if names:
        out.append('<g class="legend">')
        column_w = (width - LEFT) / 3
        for i, name in enumerate(names):
            row, col = divmod(i, 3)
            x = LEFT + col * column_w
            y = height + row * LEGEND_ROW
            dash = DASHES[i % len(DASHES)]
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<g class="series series-{i % 8}">')
            out.append(f'<line x1="{_fmt(x)}" x2="{_fmt(x + 28)}" y1="{y - 4}" y2="{y - 4}" '
                       f'stroke="currentColor" stroke-width="2"{dash_attr}/>')  # fmt: skip
            out.append(
                f'<g fill="currentColor" stroke="none">{_marker(MARKERS[i % len(MARKERS)], x + 14, y - 4)}</g>'
            )
            out.append(f'<text x="{_fmt(x + 34)}" y="{y}">{escape(name)}</text>')
            out.append("</g>")
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))
