"""The dataset page's map: where a geographic dataset's rows are, drawn on the server as an inline
SVG that reads without JavaScript and prints, and handed to ``static/map.js`` (Leaflet, vendored)
as the records API's own GeoJSON for an interactive map.

The basemap is the city's own open data, not tiles: the other geographic datasets of the catalog
that the visitor may see, drawn as a faint layer of their positions, with a graticule (degrees)
and a scale bar. A bundled file could only be one of two wrong things: a world outline too coarse
to show a street, or one city's streets that are wrong for every other city. The city's own data
is exact wherever the platform runs, honours the tiers (a partner dataset is a basemap only for a
partner), changes with the city's catalog and never asks another host for anything. The browser
reads the same rows from the records API (``data-basemap``: one GeoJSON URL per dataset, geometry
columns only), so the SVG and the interactive map show the same thing.

Every row is read through ``actions.records_page``, the action behind the records API, with the
page's active record filters; at most ``MAX_POINTS`` positions are drawn, and the page says so
when there are more. Positions are projected equirectangularly, longitudes scaled by the cosine
of the middle latitude: true to scale across one city.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from markupsafe import Markup

from urbanlake.catalog import actions
from urbanlake.catalog.params import parse_record_params
from urbanlake.catalog.service import Caller, Catalog
from urbanlake.core.errors import BadQuery, NotFound, UrbanLakeError

MAX_POINTS = 1000  # the records API's page limit, and what a page can carry as SVG
MAX_BASEMAP = 4  # other datasets drawn as the basemap
WIDTH = 1000  # the SVG's viewBox width; its height follows the area's shape
KM_PER_DEGREE = 111.32
LOWEST, HIGHEST = 0.45, 0.75  # the drawing's height to width, at least and at most
# Query parameters of the dataset page that the records API reads besides column filters.
PASSED_ON = ("version", "as_of", "bbox")
NICE = (1.0, 2.0, 5.0)

Position = tuple[float, float]  # lon, lat
WKT_SHAPE = re.compile(
    r"^\s*(MULTI)?(POINT|LINESTRING|POLYGON)\s*(?:ZM|Z|M)?\s*(\(.*\))\s*$", re.I | re.S
)
WKT_RUN = re.compile(r"\(([^()]*)\)")


@dataclass
class Shapes:
    """What rows hold: points, and lines or rings (polygons drawn by their rings)."""

    points: list[Position] = field(default_factory=list)
    lines: list[list[Position]] = field(default_factory=list)

    def add(self, other: Shapes) -> None:
        self.points.extend(other.points)
        self.lines.extend(other.lines)

    def positions(self) -> Iterable[Position]:
        yield from self.points
        for line in self.lines:
            yield from line


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _position(lon: Any, lat: Any) -> Position | None:
    x, y = _float(lon), _float(lat)
    if x is None or y is None or not (-180 <= x <= 180 and -90 <= y <= 90):
        return None
    return x, y


def parse_wkt(text: Any) -> Shapes:
    """Points, lines and polygon rings of a WKT value (2D; Z and M dropped); an empty or
    unreadable value, or a geometry collection, has none."""
    found = Shapes()
    match = WKT_SHAPE.match(text) if isinstance(text, str) else None
    if match is None:
        return found
    kind = match.group(2).upper()
    body = match.group(3)
    if kind == "POINT":
        # MULTIPOINT may be written with or without parentheses around each point.
        runs = WKT_RUN.findall(body)
        for run in runs:
            for pair in run.split(","):
                parts = pair.split()
                spot = _position(*parts[:2]) if len(parts) >= 2 else None
                if spot is not None:
                    found.points.append(spot)
        return found
    for run in WKT_RUN.findall(body):
        line = []
        for pair in run.split(","):
            parts = pair.split()
            spot = _position(*parts[:2]) if len(parts) >= 2 else None
            if spot is not None:
                line.append(spot)
        if len(line) >= 2:
            found.lines.append(line)
    return found


def row_shapes(row: dict[str, Any], geometry: dict[str, Any]) -> Shapes:
    """The shapes of one row, from its lon/lat columns or its WKT column."""
    if geometry.get("wkt"):
        return parse_wkt(row.get(geometry["wkt"]))
    spot = _position(row.get(geometry.get("lon", "")), row.get(geometry.get("lat", "")))
    return Shapes(points=[spot] if spot else [])


def geometry_columns(geometry: dict[str, Any]) -> list[str]:
    return [geometry[k] for k in ("lon", "lat", "wkt") if geometry.get(k)]


def active_filters(request: Request, detail: dict[str, Any]) -> list[tuple[str, str]]:
    """The dataset page's query parameters that are the records API's: filters on the dataset's
    columns (``col=value``, ``col__op=value``) and the version asked for. The page's own
    parameters (the preview's cursor and order, the chart's) are left out: the map shows the
    first rows that match, whichever page of the table is open."""
    columns = {c["name"] for c in detail.get("schema") or []}
    return [
        (key, value)
        for key, value in request.query_params.multi_items()
        if key in PASSED_ON or key.partition("__")[0] in columns
    ]


def records_url(name: str, params: list[tuple[str, str]]) -> str:
    return f"/api/v1/datasets/{name}/records?" + urlencode(
        [("format", "geojson"), ("limit", str(MAX_POINTS)), *params]
    )


def read_shapes(
    catalog: Catalog,
    caller: Caller,
    name: str,
    geometry: dict[str, Any],
    filters: list[tuple[str, str]],
) -> tuple[list[Shapes], int]:
    """The shapes of the first ``MAX_POINTS`` matching rows (one entry a row), and how many rows
    match in all; read with the records API's own action, geometry columns only."""
    pairs = [*filters, ("select", ",".join(geometry_columns(geometry))),
             ("limit", str(MAX_POINTS))]  # fmt: skip
    page = actions.records_page(catalog, caller, name, parse_record_params(pairs))
    # A version never changes: neither do the shapes read from one of its pages.
    key = ("map-shapes", name, page["version"], tuple(pairs))
    shapes: list[Shapes] | None = catalog.answers.get(key)
    if shapes is None:
        shapes = [row_shapes(row, geometry) for row in page["rows"]]
        catalog.answers.put(key, shapes, max(1, 2 * len(shapes)))
    return shapes, int(page["total"])


@dataclass
class Layer:
    """One other dataset drawn as the basemap."""

    name: str
    title: str
    url: str
    shapes: Shapes


def basemap_layers(catalog: Catalog, caller: Caller, name: str) -> list[Layer]:
    """The other geographic datasets the caller may see (at most ``MAX_BASEMAP``), each with
    its first ``MAX_POINTS`` positions; one that cannot be read is left out."""
    layers: list[Layer] = []
    for entry in catalog.visible(caller):
        if len(layers) >= MAX_BASEMAP:
            break
        if entry.name == name or entry.geometry is None:
            continue
        geometry = entry.geometry.model_dump(exclude_none=True)
        try:
            rows, _ = read_shapes(catalog, caller, entry.name, geometry, [])
        except UrbanLakeError:
            continue  # not published yet, or unreadable now: the map is drawn without it
        shapes = Shapes()
        for row in rows:
            shapes.add(row)
        select = [("select", ",".join(geometry_columns(geometry)))]
        layers.append(Layer(entry.name, entry.title, records_url(entry.name, select), shapes))
    return layers


def _nice(value: float) -> float:
    """The largest 1, 2 or 5 times a power of ten that is at most ``value``."""
    power = 10 ** math.floor(math.log10(value))
    return max(n * power for n in NICE if n * power <= value)


@dataclass
class Frame:
    """The area drawn and its projection onto a viewBox ``WIDTH`` wide."""

    west: float
    south: float
    east: float
    north: float
    scale: float = field(init=False)  # the cosine of the middle latitude
    unit: float = field(init=False)  # viewBox units per degree of latitude

    def __post_init__(self) -> None:
        self.scale = max(math.cos(math.radians((self.south + self.north) / 2)), 0.05)
        self.unit = WIDTH / ((self.east - self.west) * self.scale)

    @classmethod
    def around(cls, positions: Iterable[Position]) -> Frame | None:
        spots = list(positions)
        if not spots:
            return None
        lons, lats = [p[0] for p in spots], [p[1] for p in spots]
        west, east, south, north = min(lons), max(lons), min(lats), max(lats)
        middle = (south + north) / 2
        scale = max(math.cos(math.radians(middle)), 0.05)
        # Some room around the points; a single point gets a few hundred metres.
        pad_lat = max((north - south) * 0.06, 0.002)
        pad_lon = max((east - west) * 0.06, 0.002 / scale)
        west, east, south, north = west - pad_lon, east + pad_lon, south - pad_lat, north + pad_lat
        # Keep the drawing landscape, as screens are, but not a thin strip: widen the narrow side.
        wide, high = (east - west) * scale, north - south
        if high < LOWEST * wide:
            grow = (LOWEST * wide - high) / 2
            south, north = south - grow, north + grow
        elif high > HIGHEST * wide:
            grow = (high / HIGHEST - wide) / scale / 2
            west, east = west - grow, east + grow
        return cls(west, max(south, -90.0), east, min(north, 90.0))

    @property
    def height(self) -> int:
        return round((self.north - self.south) * self.unit)

    def xy(self, spot: Position) -> tuple[int, int]:
        return (round((spot[0] - self.west) * self.scale * self.unit),
                round((self.north - spot[1]) * self.unit))  # fmt: skip

    def holds(self, spot: Position) -> bool:
        return self.west <= spot[0] <= self.east and self.south <= spot[1] <= self.north

    def path(self, shapes: Shapes, dots: bool) -> str:
        """An SVG path: each line as a polyline; with ``dots``, each point as a dot (a zero-length
        segment drawn with round caps), one per pixel."""
        out: list[str] = []
        seen: set[tuple[int, int]] = set()
        if dots:
            for spot in shapes.points:
                if self.holds(spot):
                    x, y = self.xy(spot)
                    if (x, y) not in seen:
                        seen.add((x, y))
                        out.append(f"M{x} {y}h0")
        for line in shapes.lines:
            xys = [self.xy(spot) for spot in line]
            out.append("M" + "L".join(f"{x} {y}" for x, y in xys))
        return "".join(out)

    def graticule(self) -> dict[str, Any]:
        """Lines of equal longitude and latitude at a round step, with their labels."""
        lines, labels = [], []
        step = _nice((self.north - self.south) / 3)
        decimals = max(0, -math.floor(math.log10(step)))
        for i in range(math.ceil(self.south / step), math.floor(self.north / step) + 1):
            _, y = self.xy((self.west, i * step))
            if 20 < y < self.height - 4:  # clear of the longitude labels along the top
                lines.append(f"M0 {y}H{WIDTH}")
                labels.append({"x": 4, "y": y - 4, "text": _degrees(i * step, decimals, "N", "S")})
        step = _nice((self.east - self.west) / 4)
        decimals = max(0, -math.floor(math.log10(step)))
        for i in range(math.ceil(self.west / step), math.floor(self.east / step) + 1):
            x, _ = self.xy((i * step, self.south))
            if 4 < x < WIDTH - 90:  # room for the label to its right
                lines.append(f"M{x} 0V{self.height}")
                labels.append({"x": x + 4, "y": 14, "text": _degrees(i * step, decimals, "E", "W")})
        return {"path": "".join(lines), "labels": labels}

    def scale_bar(self) -> dict[str, Any]:
        """A bar of a round length, about a fifth of the width."""
        width_km = (self.east - self.west) * self.scale * KM_PER_DEGREE
        km = _nice(width_km / 5)
        length = round(km / width_km * WIDTH)
        text = f"{km:g} km" if km >= 1 else f"{km * 1000:g} m"
        y = self.height - 14
        return {"path": f"M16 {y - 6}V{y}H{16 + length}V{y - 6}", "x": 16, "y": y - 10,
                "text": text}  # fmt: skip


def circles(spots: Iterable[tuple[int, int]]) -> Markup:
    """One SVG circle a point (whole numbers only: nothing here comes from the data as text)."""
    return Markup("".join(f'<circle cx="{x}" cy="{y}" r="5"/>' for x, y in spots))


def _degrees(value: float, decimals: int, positive: str, negative: str) -> str:
    hemisphere = positive if value >= 0 else negative
    return f"{abs(value):.{decimals}f}°{hemisphere}"


def map_context(
    request: Request, catalog: Catalog, caller: Caller, detail: dict[str, Any]
) -> dict[str, Any] | None:
    """What `_map.html` shows for a geographic dataset; None for one without geometry."""
    geometry = detail.get("geometry")
    if not geometry:
        return None
    name = detail["name"]
    filters = active_filters(request, detail)
    rows: list[Shapes] = []
    total = 0
    if detail.get("version") is not None:
        try:
            rows, total = read_shapes(catalog, caller, name, geometry, filters)
        except (NotFound, BadQuery):
            # Published since, or withdrawn; or a filter the preview explains in its own words:
            # the map shows nothing rather than making the whole page an error.
            rows, total = [], 0
    shapes = Shapes()
    for row in rows:
        shapes.add(row)
    layers = basemap_layers(catalog, caller, name)
    base = Shapes()
    for layer in layers:
        base.add(layer.shapes)
    spatial = detail.get("spatial") or {}
    bbox = spatial.get("bbox")
    declared = [(bbox[0], bbox[1]), (bbox[2], bbox[3])] if bbox else []
    frame = (Frame.around(shapes.positions()) or Frame.around(declared)
             or Frame.around(base.positions()))  # fmt: skip
    svg = None
    if frame is not None:
        svg = {
            "width": WIDTH,
            "height": frame.height,
            "circles": circles(frame.xy(spot) for spot in shapes.points),
            "lines": frame.path(Shapes(lines=shapes.lines), dots=False),
            "basemap": frame.path(base, dots=True),
            "graticule": frame.graticule(),
            "scale": frame.scale_bar(),
        }
    return {
        "name": name,
        "title": detail.get("title") or name,
        "geojson_url": records_url(name, filters),
        "basemap_urls": [layer.url for layer in layers],
        "basemap_titles": [layer.title for layer in layers],
        "svg": svg,
        "count": len(shapes.points) + len(shapes.lines),
        "only_points": not shapes.lines,
        "shown": len(rows),
        "total": total,
        "capped": total > len(rows),
        "filtered": bool(filters),
    }
