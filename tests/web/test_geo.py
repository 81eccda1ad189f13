"""The dataset page's map over the demo city's server: the SVG drawn for readers without
JavaScript holds one circle per position the records API returns, the interactive map's data and
basemap URLs are the API's own GeoJSON, a dataset without geometry has no map; the vendored
libraries are served and no script or stylesheet loads anything from another host. And the
projection and WKT reading on their own."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.servers import ApiServer
from urbanlake.web.geo import MAX_POINTS, WIDTH, Frame, parse_wkt

SVG = "{http://www.w3.org/2000/svg}"
STATIC = Path(__file__).resolve().parents[2] / "platform" / "urbanlake" / "web" / "static"
GEO, PLAIN = "bin-fill-levels", "parking-occupancy"
VENDORED = r"/static/vendor/[\w./-]+\.\w+"  # a file under /static/vendor/
# URLs that may appear in the vendored files outside comments: the SVG namespace and a link a
# person may follow (Leaflet's attribution, which map.js replaces with a local one); none is loaded.
KNOWN_URLS = {"http://www.w3.org/2000/svg", "https://leafletjs.com"}
COMMENT = re.compile(r"/\*.*?\*/", re.S)


def page(server: ApiServer, path: str) -> str:
    response = httpx.get(f"{server.url}{path}", headers={"Accept": "text/html"}, timeout=120)
    assert response.status_code == 200, response.text[:500]
    return response.text


def map_div(html: str) -> dict[str, str]:
    found = re.search(r'<div id="map"([^>]*)>', html)
    assert found, "the page has no map"
    return {k: unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', found.group(1))}


def fallback(html: str) -> ET.Element:
    found = re.search(r'<svg[^>]*class="map-fallback".*?</svg>', html, re.S)
    assert found, "the map has no SVG for readers without JavaScript"
    return ET.fromstring(found.group(0))


def geojson(server: ApiServer, url: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}{url}", timeout=120)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection"
    return body


def test_the_map_draws_every_point_the_api_returns(demo_api: ApiServer) -> None:
    html = page(demo_api, f"/datasets/{GEO}")
    div = map_div(html)
    url = urlsplit(div["data-geojson"])
    assert url.path == f"/api/v1/datasets/{GEO}/records"
    assert ("format", "geojson") in parse_qsl(url.query)
    assert ("limit", str(MAX_POINTS)) in parse_qsl(url.query)
    features = geojson(demo_api, div["data-geojson"])["features"]
    assert 0 < len(features) <= MAX_POINTS
    assert all(f["geometry"]["type"] == "Point" for f in features)

    svg = fallback(html)
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == f"Map of {len(features):,} points of Smart bin fill levels"
    circles = list(svg.iter(f"{SVG}circle"))
    assert len(circles) == len(features)
    width, height = (float(v) for v in svg.get("viewBox", "").split()[2:])
    assert width == WIDTH
    assert all(0 <= float(c.get("cx", -1)) <= width and 0 <= float(c.get("cy", -1)) <= height
               for c in circles)  # fmt: skip
    assert "Showing the first" not in html  # 960 rows: all of them are drawn


def test_the_map_follows_the_page_filters_and_says_when_it_is_capped(
    demo_api: ApiServer,
) -> None:
    html = page(demo_api, f"/datasets/{GEO}?fill_level__gt=80&chart_y=fill_level&order_by=bin_id")
    div = map_div(html)
    query = parse_qsl(urlsplit(div["data-geojson"]).query)
    assert ("fill_level__gt", "80") in query
    assert not any(k in ("chart_y", "order_by", "cursor") for k, _ in query)
    features = geojson(demo_api, div["data-geojson"])["features"]
    assert features and all(f["properties"]["fill_level"] > 80 for f in features)
    assert len(list(fallback(html).iter(f"{SVG}circle"))) == len(features)

    # A dataset of more rows than the map draws: the page says how many it left out.
    response = httpx.get(f"{demo_api.api}/datasets/{GEO}/records", params={"limit": 1})
    total = response.json()["total"]
    if total > MAX_POINTS:  # the demo city may grow
        assert f"Showing the first {MAX_POINTS:,} of {total:,}" in page(
            demo_api, f"/datasets/{GEO}"
        )


def test_the_basemap_is_the_city_s_other_geographic_data(demo_api: ApiServer) -> None:
    div = map_div(page(demo_api, f"/datasets/{GEO}"))
    urls = div["data-basemap"].split()
    assert urls, "the demo city has other geographic datasets to draw a basemap from"
    names = set()
    for url in urls:
        parts = urlsplit(url)
        name = parts.path.split("/")[4]
        names.add(name)
        assert parts.path == f"/api/v1/datasets/{name}/records"
        body = geojson(demo_api, url)
        assert body["features"], f"{name}: an empty basemap layer"
        for feature in body["features"]:
            lon, lat = feature["geometry"]["coordinates"]
            assert -180 <= lon <= 180 and -90 <= lat <= 90
    assert GEO not in names
    assert "streetlights" in names


def test_a_dataset_without_geometry_has_no_map(demo_api: ApiServer) -> None:
    html = page(demo_api, f"/datasets/{PLAIN}")
    assert "data-geojson" not in html
    assert "map-fallback" not in html
    assert "/static/map.js" not in html
    assert "leaflet" not in html


def test_every_vendored_file_referenced_is_served(demo_api: ApiServer) -> None:
    referenced = set(re.findall(VENDORED, page(demo_api, f"/datasets/{GEO}")))
    for script in ("map.js", "chart.js"):
        referenced |= set(re.findall(VENDORED, (STATIC / script).read_text()))
    css = (STATIC / "vendor" / "leaflet" / "leaflet.css").read_text()
    referenced |= {f"/static/vendor/leaflet/{u}" for u in re.findall(r"url\((images/[^)]+)\)", css)}
    assert {"/static/vendor/leaflet/leaflet.js", "/static/vendor/uplot/uPlot.iife.min.js"} <= (
        referenced
    )
    for path in sorted(referenced):
        assert httpx.get(f"{demo_api.url}{path}", timeout=60).status_code == 200, path
    for library in ("leaflet", "uplot"):
        assert (STATIC / "vendor" / library / "LICENSE").is_file()
    assert httpx.get(f"{demo_api.url}/static/vendor/README.md", timeout=60).status_code == 200


def test_no_script_or_stylesheet_loads_from_another_host() -> None:
    files = sorted(p for p in STATIC.rglob("*") if p.suffix in (".js", ".css"))
    assert {"map.js", "chart.js", "leaflet.js", "uPlot.iife.min.js"} <= {p.name for p in files}
    for path in files:
        text = COMMENT.sub("", path.read_text(errors="replace"))
        name = path.relative_to(STATIC)
        # What a browser would load: CSS imports and url()s, tile URL templates, script sources.
        assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", text), name
        assert not re.search(r"https?://[^\s\"']*\{[xyzs]\}", text), name
        if "vendor" not in path.parts:
            assert not re.search(r"https?://", text), f"{name}: names another host"
        else:
            found = set(re.findall(r"https?://[\w.-]+(?:/[\w./-]*)?", text))
            assert found <= KNOWN_URLS, f"{name}: {found - KNOWN_URLS}"


# -- projection and WKT ----------------------------------------------------------------------------


def test_the_projection_keeps_north_up_and_distances_true() -> None:
    spots = [(10.70, 59.88), (10.80, 59.95), (10.75, 59.91)]
    frame = Frame.around(spots)
    assert frame is not None
    for spot in spots:
        assert frame.holds(spot)
        x, y = frame.xy(spot)
        assert 0 <= x <= WIDTH and 0 <= y <= frame.height
    # North is up, east is right.
    assert frame.xy((10.75, 59.95))[1] < frame.xy((10.75, 59.88))[1]
    assert frame.xy((10.80, 59.91))[0] > frame.xy((10.70, 59.91))[0]
    # A kilometre east is as long as a kilometre north (longitudes scaled by cos(latitude)).
    lat = 59.915
    north = frame.xy((10.75, lat))[1] - frame.xy((10.75, lat + 0.01))[1]
    east = (
        frame.xy((10.75 + 0.01 / math.cos(math.radians(lat)), lat))[0] - frame.xy((10.75, lat))[0]
    )
    assert abs(north - east) <= 1
    assert 0.45 * WIDTH - 1 <= frame.height <= 0.75 * WIDTH + 1
    one = Frame.around([(10.75, 59.91)])  # a single point gets room around it
    assert one is not None and one.east > one.west and one.north > one.south
    assert Frame.around([]) is None


def test_wkt_points_lines_and_polygons() -> None:
    assert parse_wkt("POINT (10.75 59.91)").points == [(10.75, 59.91)]
    assert parse_wkt("point z (10.75 59.91 12)").points == [(10.75, 59.91)]
    assert parse_wkt("MULTIPOINT ((1 2), (3 4))").points == [(1.0, 2.0), (3.0, 4.0)]
    assert parse_wkt("MULTIPOINT (1 2, 3 4)").points == [(1.0, 2.0), (3.0, 4.0)]
    line = parse_wkt("LINESTRING (1 2, 3 4, 5 6)")
    assert line.lines == [[(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)]] and not line.points
    rings = parse_wkt("POLYGON ((0 0, 1 0, 1 1, 0 0), (0.2 0.2, 0.4 0.2, 0.2 0.4, 0.2 0.2))")
    assert len(rings.lines) == 2
    assert (
        len(parse_wkt("MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))").lines) == 2
    )
    for nothing in ("POINT EMPTY", "GEOMETRYCOLLECTION (POINT (1 2))", "", None, 42, "POINT (x y)",
                    "POINT (500 10)"):  # fmt: skip
        empty = parse_wkt(nothing)
        assert not empty.points and not empty.lines


@pytest.mark.parametrize("name", ["map.js", "chart.js"])
def test_the_enhancements_use_no_inline_html_from_data(name: str) -> None:
    """Values from a dataset reach the page as text, never as HTML (popups, legends)."""
    text = (STATIC / name).read_text()
    assert "innerHTML =" not in text and "insertAdjacentHTML" not in text
    assert "eval(" not in text and "new Function" not in text
