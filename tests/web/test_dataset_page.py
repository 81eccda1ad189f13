"""The dataset page and its "what changed" page, read as a browser without JavaScript gets them
from a real server, and held against the API's own answers for the same dataset: sections,
schema.org JSON-LD and Open Graph, schema, versions, changes, downloads, snippets, access."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.api.test_access import create_key
from tests.api.test_live_lake import ingest_and_publish, meters_city, write_batch
from tests.servers import ApiServer, start_server
from urbanlake.web.dataset import duration, json_ld, quality_view, score_badge, snippets_view
from urbanlake.web.render import KEY_COOKIE
from urbanlake.web.strings import Strings

GEO, PLAIN, PARTNER = "bin-fill-levels", "parking-occupancy", "meter-readings"
SECTIONS = ["about", "freshness", "quality", "schema", "preview", "chart", "map-section",
            "versions", "downloads", "snippets"]  # fmt: skip
LATER = """\
name: meters-later
domain: energy
title: Meter readings, republished
publisher: {name: Test Utility}
license: CC-BY-4.0
source: {table: energy.meters}
"""
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


# -- a small DOM, enough to find elements by tag, id and attribute ---------------------------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        return [n for n in self.walk() if n.tag == tag
                and all(n.attrs.get(k.rstrip("_")) == v for k, v in attrs.items())]  # fmt: skip

    def by_id(self, id_: str) -> Node:
        found = [n for n in self.walk() if n.attrs.get("id") == id_]
        assert len(found) == 1, f"{len(found)} elements with id={id_}"
        return found[0]


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def dom(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def page(server: ApiServer, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers={"Accept": "text/html"}, timeout=120,
                     follow_redirects=False, **kwargs)  # fmt: skip


def table_rows(table: Node) -> list[list[str]]:
    return [[" ".join(c.text().split()) for c in tr.children if isinstance(c, Node)
             and c.tag in ("td", "th")] for tr in table.find_all("tr")]  # fmt: skip


def section_ids(doc: Node) -> list[str]:
    return [s.attrs.get("id", "") for s in doc.find_all("section")]


# -- the page of a dataset -------------------------------------------------------------------------


@pytest.mark.parametrize("name", [GEO, PLAIN])
def test_every_section_in_order_and_the_map_only_for_geographic_data(
    demo_api: ApiServer, name: str
) -> None:
    response = page(demo_api, f"/datasets/{name}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert len(response.content) < 100_000
    doc = dom(response.text)
    expected = SECTIONS if name == GEO else [s for s in SECTIONS if s != "map-section"]
    assert section_ids(doc) == expected
    for section in doc.find_all("section"):
        heading = doc.by_id(section.attrs["aria-labelledby"])
        assert heading.tag == "h2" and heading.text().strip()
    detail = demo_api.get(f"/datasets/{name}").json()
    assert doc.find_all("h1")[0].text().strip() == detail["title"]
    scripts = [s.attrs.get("src", "") for s in doc.find_all("script")]
    assert any("/static/map.js" in s for s in scripts) == (name == GEO)


def test_json_ld_and_open_graph_name_the_dataset(demo_api: ApiServer) -> None:
    doc = dom(page(demo_api, f"/datasets/{GEO}").text)
    detail = demo_api.get(f"/datasets/{GEO}").json()
    head = doc.find_all("head")[0]
    (script,) = head.find_all("script", type="application/ld+json")
    document = json.loads(script.text())
    assert document["@type"] == "Dataset" and document["name"] == detail["title"]
    assert document == demo_api.get(f"/datasets/{GEO}/schema.org.jsonld").json()
    og = {m.attrs["property"]: m.attrs["content"] for m in head.find_all("meta")
          if m.attrs.get("property", "").startswith("og:")}  # fmt: skip
    assert og["og:title"] == detail["title"]
    assert og["og:description"] == detail["description"]
    assert og["og:type"] == "website"
    assert og["og:url"] == f"{demo_api.url}/datasets/{GEO}"


def test_the_about_freshness_and_quality_sections_say_what_the_api_says(
    demo_api: ApiServer,
) -> None:
    doc = dom(page(demo_api, f"/datasets/{GEO}").text)
    detail = demo_api.get(f"/datasets/{GEO}").json()
    about = " ".join(doc.by_id("about").text().split())
    assert detail["publisher"]["name"] in about and detail["license"] in about
    assert detail["publisher"]["email"] in about
    freshness = doc.by_id("freshness")
    (badge,) = [s for s in freshness.find_all("span") if "badge" in s.attrs.get("class", "")]
    assert badge.text() == ("Stale" if detail["freshness"]["stale"] else "Fresh")
    assert "3 hours" in freshness.text()  # the demo's SLA for bin fill levels
    quality = doc.by_id("quality")
    report = demo_api.get(f"/datasets/{GEO}/quality").json()
    score = f"{report['summary']['score'] * 100:.0f}%"
    assert score in quality.text()
    failed = [r for t in report["tables"].values() for r in t["expectations"] if not r["success"]]
    assert failed, "the demo city has a failing check (a fill level over 100)"
    failed_table = next(t for t in quality.find_all("table") if "Rows that failed" in t.text())
    rows = table_rows(failed_table)[1:]
    assert [(r[0], r[1], r[2].split()[0]) for r in rows] == [
        (f["expectation"], f["column_name"] or "", str(f["unexpected_count"])) for f in failed
    ]
    runs = [t for t in quality.find_all("table") if t is not failed_table]
    trend = sum(len(t["trend"]) for t in report["tables"].values())
    assert len(table_rows(runs[0])) - 1 == trend


def test_the_schema_table_lists_the_real_columns(demo_api: ApiServer) -> None:
    doc = dom(page(demo_api, f"/datasets/{GEO}").text)
    detail = demo_api.get(f"/datasets/{GEO}").json()
    (table,) = doc.by_id("schema").find_all("table")
    rows = table_rows(table)
    assert rows[0] == ["Column", "Type", "Unit", "Description", "Empty", "Lowest", "Highest"]
    assert [r[0] for r in rows[1:]] == [c["name"] for c in detail["schema"]]
    assert [r[1] for r in rows[1:]] == [c["type"] for c in detail["schema"]]
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["fill_level"][2] == "%" and by_name["fill_level"][4] == "0%"
    assert by_name["bin_id"][5:] == ["bin-000", "bin-039"]


def test_versions_are_the_apis(demo_api: ApiServer) -> None:
    doc = dom(page(demo_api, f"/datasets/{GEO}").text)
    versions = demo_api.get(f"/datasets/{GEO}/versions").json()["versions"]
    (table,) = doc.by_id("versions").find_all("table")
    rows = table_rows(table)[1:]
    assert [(int(r[0]), int(r[2].replace(",", ""))) for r in rows] == [
        (v["version"], v["rows"]) for v in versions
    ]


def test_downloads_carry_the_filters_of_the_page_and_nothing_else(demo_api: ApiServer) -> None:
    query = "fill_level__gt=80&order_by=-fill_level&chart_y=fill_level&chart_fn=avg"
    doc = dom(page(demo_api, f"/datasets/{GEO}?{query}").text)
    links = {a.text().strip(): a.attrs["href"] for a in doc.by_id("downloads").find_all("a")}
    assert set(links) == {"CSV", "JSON Lines", "GeoJSON", "Parquet"}
    for label, href in links.items():
        url = urlsplit(href)
        assert url.path == f"/api/v1/datasets/{GEO}/export", label
        params = dict(parse_qsl(url.query))
        assert params.pop("fill_level__gt") == "80" and set(params) == {"format"}, label
    total = demo_api.get(f"/datasets/{GEO}/records", params={"fill_level__gt": "80"}).json()
    csv = httpx.get(f"{demo_api.url}{links['CSV']}", timeout=120)
    assert csv.status_code == 200
    assert len(csv.text.strip().splitlines()) - 1 == total["total"] > 0
    plain = dom(page(demo_api, f"/datasets/{PLAIN}").text)
    labels = [a.text().strip() for a in plain.by_id("downloads").find_all("a")]
    assert labels == ["CSV", "JSON Lines", "Parquet"]


def test_the_stable_parquet_url_is_shown_and_in_the_snippets(demo_api: ApiServer) -> None:
    doc = dom(page(demo_api, f"/datasets/{GEO}").text)
    version = demo_api.get(f"/datasets/{GEO}").json()["version"]
    stable = f"{demo_api.url}/api/v1/datasets/{GEO}/versions/{version}/data.parquet"
    assert doc.by_id("stable-url").text().strip() == stable
    snippets = [p.text() for p in doc.by_id("snippets").find_all("pre")]
    assert len(snippets) == 5
    assert all(p.find_all("code") for p in doc.by_id("snippets").find_all("pre"))
    curl, python, pandas, duckdb, r = snippets
    assert curl.startswith("curl ") and "import httpx" in python and "import pandas" in pandas
    assert f"read_parquet('{stable}')" in duckdb and "read.csv" in r
    assert all(f"{demo_api.url}/api/v1/datasets/{GEO}/" in s for s in snippets)
    parquet = httpx.get(stable, timeout=120)
    assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"


def test_the_python_snippet_runs(demo_api: ApiServer) -> None:
    doc = dom(page(demo_api, f"/datasets/{GEO}?fill_level__gt=90").text)
    python = doc.by_id("snippets").find_all("pre")[1].text()
    printed: list[Any] = []
    exec(python, {"print": lambda *args: printed.append(args)})  # the snippet as a person runs it
    total = demo_api.get(f"/datasets/{GEO}/records", params={"fill_level__gt": "90"}).json()
    assert printed[0][0] == total["total"]


def test_a_partner_dataset_is_not_found_for_the_public_and_shown_to_a_partner(
    demo_api: ApiServer, demo_project: Path
) -> None:
    for path in (f"/datasets/{PARTNER}", f"/datasets/{PARTNER}/changes?from=1&to=2"):
        response = page(demo_api, path)
        assert response.status_code == 404
        assert "text/html" in response.headers["content-type"]
        # Told apart from a dataset that does not exist by nothing but its name.
        missing = page(demo_api, path.replace(PARTNER, "no-such-dataset"))
        assert missing.status_code == 404
        assert response.text == missing.text.replace("no-such-dataset", PARTNER)
    key = create_key(demo_project, "dataset-page-partner", "partner")
    signed_in = page(demo_api, f"/datasets/{PARTNER}", cookies={KEY_COOKIE: key})
    assert signed_in.status_code == 200
    assert key not in signed_in.text
    snippets = dom(signed_in.text).by_id("snippets").text()
    assert "URBANLAKE_API_KEY" in snippets  # a key from the environment, never the page


def test_a_missing_dataset_and_bad_versions_are_error_pages(demo_api: ApiServer) -> None:
    assert page(demo_api, "/datasets/no-such-dataset").status_code == 404
    bad = page(demo_api, f"/datasets/{GEO}/changes?from=x&to=1")
    assert bad.status_code == 400 and "from" in bad.text
    unknown = page(demo_api, f"/datasets/{GEO}/changes?from=1&to=2")
    assert unknown.status_code == 400


# -- what changed between two versions -------------------------------------------------------------


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """A small city published twice: meter readings (400 rows, then 400 more) and a daily sum
    of them, whose rows of the second batch's days change in place; and an entry added since,
    not yet published."""
    project = meters_city(tmp_path_factory.mktemp("changes") / "city")
    for index in range(2):
        write_batch(project, index)
        ingest_and_publish(project)
    (project / "catalog" / "energy" / "meters-later.yaml").write_text(LATER)  # not published
    server = start_server(project)
    yield server
    server.stop()


def test_the_compare_form_and_the_changes_page_match_the_api(two_versions: ApiServer) -> None:
    doc = dom(page(two_versions, "/datasets/meters").text)
    versions = two_versions.get("/datasets/meters/versions").json()["versions"]
    assert len(versions) == 2
    rows = table_rows(doc.by_id("versions").find_all("table")[0])[1:]
    assert [int(r[0]) for r in rows] == [v["version"] for v in versions]
    form = doc.by_id("compare")
    assert form.attrs["method"] == "get" and form.attrs["action"] == "/datasets/meters/changes"
    chosen = {s.attrs["name"]: [o.attrs["value"] for o in s.find_all("option", selected="")]
              for s in form.find_all("select")}  # fmt: skip
    newest, oldest = str(versions[0]["version"]), str(versions[1]["version"])
    assert chosen == {"from": [oldest], "to": [newest]}
    response = page(two_versions, f"/datasets/meters/changes?from={oldest}&to={newest}")
    assert response.status_code == 200, response.text
    assert len(response.content) < 100_000
    changes = dom(response.text)
    api = two_versions.get("/datasets/meters/changes", params={"from": oldest, "to": newest})
    counts = api.json()["counts"]
    shown = {dd.attrs["data-count"]: int(dd.text().replace(",", ""))
             for dd in changes.by_id("change-counts").find_all("dd")}  # fmt: skip
    assert shown == counts and counts["inserted"] == 400
    assert "first 50" in changes.by_id("change-completeness").text()
    tables = changes.find_all("table")
    assert len(table_rows(tables[0])) - 1 == 50  # the first 50 added rows
    assert changes.find_all("h1")[0].text() == "What changed"
    back = page(two_versions, f"/datasets/meters/changes?from={newest}&to={oldest}")
    reverse = {dd.attrs["data-count"]: int(dd.text().replace(",", ""))
               for dd in dom(back.text).by_id("change-counts").find_all("dd")}  # fmt: skip
    assert reverse == {"inserted": 0, "updated": 0, "deleted": 400}
    same = page(two_versions, f"/datasets/meters/changes?from={newest}&to={newest}")
    assert "Every changed row is listed" in same.text


def test_changed_rows_show_the_old_and_the_new_value(two_versions: ApiServer) -> None:
    versions = two_versions.get("/datasets/meters-daily/versions").json()["versions"]
    newest, oldest = versions[0]["version"], versions[-1]["version"]
    api = two_versions.get("/datasets/meters-daily/changes", params={"from": oldest, "to": newest})
    body = api.json()
    assert body["counts"]["updated"] > 0
    response = page(two_versions, f"/datasets/meters-daily/changes?from={oldest}&to={newest}")
    doc = dom(response.text)
    shown = {dd.attrs["data-count"]: int(dd.text().replace(",", ""))
             for dd in doc.by_id("change-counts").find_all("dd")}  # fmt: skip
    assert shown == body["counts"]
    assert "Every changed row is listed" in doc.by_id("change-completeness").text()
    (table,) = [t for t in doc.find_all("table") if "changes" in t.attrs.get("class", "")]
    rows = table.find_all("tbody")[0].find_all("tr")
    assert len(rows) == body["counts"]["updated"]
    first = body["updated"][0]
    cells = rows[0].find_all("td")
    columns = [th.text() for th in table.find_all("th")]
    n = cells[columns.index("n")]
    assert n.find_all("del")[0].text().split()[-1] == str(first["before"]["n"])
    assert n.find_all("ins")[0].text().split()[-1] == str(first["after"]["n"])
    assert cells[columns.index("meter_id")].text() == first["after"]["meter_id"]


def test_a_dataset_not_yet_published_has_its_page_with_nothing_to_download(
    two_versions: ApiServer,
) -> None:
    response = page(two_versions, "/datasets/meters-later")
    assert response.status_code == 200, response.text
    doc = dom(response.text)
    assert section_ids(doc) == [s for s in SECTIONS if s != "map-section"]
    assert "Not published yet" in doc.by_id("downloads").text()
    assert doc.by_id("downloads").find_all("a") == []
    assert "read_parquet('" not in doc.by_id("snippets").text()  # no version, no stable file
    assert "Not published yet" in doc.by_id("versions").text()


# -- the parts on their own ------------------------------------------------------------------------


def test_the_quality_trend_is_drawn_once_there_are_two_runs() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    runs = [{"run_id": f"r{i}", "validated_at": start + timedelta(hours=i), "batches": 1,
             "passed": 10 - i, "failed": i, "quarantined": i} for i in range(3)]  # fmt: skip
    failing = {"expectation": "expect_column_values_to_not_be_null", "column_name": None,
               "kwargs": {"column_list": ["a", "b"]}, "success": False, "unexpected_count": 4,
               "unexpected_percent": 2.0, "validated_at": start}  # fmt: skip
    report = {"summary": {"checked": True, "score": 0.8, "last_passed": None, "tables": ["x.y"]},
              "tables": {"x.y": {"expectations": [failing], "trend": runs}}}  # fmt: skip
    view = quality_view(report, Strings())
    assert view["badge"] == {"word": "ds.quality.fair", "class": "warn", "percent": "80%"}
    assert [r["share"] for r in view["trend"]] == [1.0, 0.9, 0.8]
    assert view["failed"][0]["column"] == "a, b" and view["failed"][0]["unexpected"] == 4
    chart = str(view["chart"])
    assert chart.startswith("<svg") and 'role="img"' in chart
    assert 'aria-label="Share of quality checks passed per validation run"' in chart
    one = quality_view({**report, "tables": {"x.y": {"expectations": [], "trend": runs[:1]}}},
                       Strings())  # fmt: skip
    assert one["chart"] is None and len(one["trend"]) == 1  # one run: the table alone


def test_a_score_is_told_in_words() -> None:
    assert score_badge(0.99, True)["word"] == "ds.quality.good"
    assert score_badge(0.5, True)["class"] == "bad"
    assert score_badge(None, True)["word"] == score_badge(1.0, False)["word"]


def test_durations_in_words() -> None:
    t = Strings()
    assert duration(t, None) is None
    assert duration(t, 30) == "less than a minute"
    assert duration(t, 60) == "1 minute" and duration(t, 3 * 3600 + 5) == "3 hours"
    assert duration(t, 2 * 86400) == "2 days"


def test_json_ld_cannot_close_its_script_element() -> None:
    text = str(json_ld({"name": "</script><script>alert(1)</script> & more"}))
    assert "</script>" not in text and "<" not in text and "&" not in text
    assert json.loads(text)["name"] == "</script><script>alert(1)</script> & more"


def test_snippets_of_a_partner_dataset_read_the_key_from_the_environment() -> None:
    detail = {"name": "meter-readings", "access": "partner"}
    stable = "http://x/api/v1/datasets/meter-readings/versions/3/data.parquet"
    snippets = {s["key"]: s["code"] for s in
                snippets_view("http://x", detail, [("kwh__ne", "1"), ("kwh__ne", "9")], stable)}  # fmt: skip
    assert set(snippets) == {"curl", "python", "pandas", "duckdb", "r"}
    assert all("URBANLAKE_API_KEY" in code for code in snippets.values())
    assert "kwh__ne=1&kwh__ne=9" in snippets["curl"]
    # A filter given twice: the pairs, since a dict would keep one of them.
    assert '[("limit", "100"), ("kwh__ne", "1"), ("kwh__ne", "9")]' in snippets["python"]
    compile(snippets["python"], "python", "exec")
    compile(snippets["pandas"], "pandas", "exec")
