"""The catalog's own pages over the demo city, read as a browser gets them: search and facets
narrow the results with the API's counts, the data health page lists every dataset the visitor
may see, and a partner's sign-in (a cookie) shows the partner dataset until sign-out.

Pages are parsed into a small element tree (the standard library's parser) that also checks the
HTML is well nested, so the assertions are about elements, not substrings."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.api.test_access import create_key
from tests.servers import ApiServer
from urbanlake.web.render import KEY_COOKIE

HTML = {"accept": "text/html"}
PARTNER = "meter-readings"  # the demo's one dataset for partners only
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text for c in self.children]
        return " ".join(" ".join(parts).split())

    def all(self, tag: str, **attrs: str) -> list[Element]:
        """Every descendant with the tag (``*`` for any) and these attribute values."""
        found = []
        for child in self.children:
            if isinstance(child, Element):
                if (tag in ("*", child.tag)) and all(
                    child.attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items()
                ):
                    found.append(child)
                found += child.all(tag, **attrs)
        return found

    def one(self, tag: str, **attrs: str) -> Element:
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}>"
        return found[0]


class Tree(HTMLParser):
    """An element tree; a closing tag that does not close the open element fails the test."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.open[-1].children.append(element)
        if tag not in VOID:
            self.open.append(element)

    def handle_endtag(self, tag: str) -> None:
        assert self.open[-1].tag == tag, f"</{tag}> closes <{self.open[-1].tag}>"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.open[-1].children.append(data)


def parse(html: str) -> Element:
    tree = Tree()
    tree.feed(html)
    tree.close()
    assert [e.tag for e in tree.open] == ["#document"], "unclosed elements"
    root = tree.root
    ids = [e.attrs["id"] for e in root.all("*") if "id" in e.attrs]
    assert len(ids) == len(set(ids)), f"duplicate ids: {sorted(ids)}"
    assert len(root.all("main")) == 1 and len(root.all("h1")) == 1
    levels = [int(e.tag[1]) for e in root.one("main").all("*") if e.tag in ("h1", "h2", "h3", "h4")]
    assert all(b <= a + 1 for a, b in pairwise(levels)), levels
    for control in root.all("input") + root.all("select"):
        if control.attrs.get("type") not in ("hidden", "submit"):
            labels = root.all("label", for_=control.attrs.get("id", "?"))
            assert len(labels) == 1 or "aria-label" in control.attrs, control.attrs
    return root


def page(server: ApiServer, path: str, key: str | None = None) -> tuple[httpx.Response, Element]:
    cookies = {KEY_COOKIE: key} if key else None
    response = httpx.get(f"{server.url}{path}", headers=HTML, cookies=cookies, timeout=120)
    return response, parse(response.text)


def api(server: ApiServer, path: str, **params: str | list[str]) -> dict:
    response = server.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def result_names(root: Element) -> list[str]:
    results = root.all("ol", id="results")
    if not results:
        return []
    return [li.one("h3").one("a").attrs["href"].removeprefix("/datasets/")
            for li in results[0].children if isinstance(li, Element)]  # fmt: skip


def facet_boxes(root: Element, facet: str) -> dict[str, tuple[str, bool]]:
    """value → (its label's text, checked) for the facet's checkboxes."""
    form = root.one("form", role="search")
    fieldset = next(f for f in form.all("fieldset") if f.one("legend").text == facet.title())
    return {box.attrs["value"]: (root.one("label", for_=box.attrs["id"]).text, "checked" in box.attrs)
            for box in fieldset.all("input", type="checkbox", name=facet)}  # fmt: skip


@pytest.fixture(scope="module")
def partner(demo_project: Path) -> str:
    return create_key(demo_project, "pages-partner", "partner")


def test_home_lists_every_public_dataset_with_facets_and_badges(demo_api: ApiServer) -> None:
    response, root = page(demo_api, "/")
    assert response.status_code == 200
    found = api(demo_api, "/datasets", limit="100")
    names = [d["name"] for d in found["datasets"]]
    assert result_names(root) == names and PARTNER not in names
    assert root.one("h2", id="result-count").text == f"{found['total']} datasets"
    form = root.one("form", role="search")
    assert form.attrs["method"] == "get" and form.attrs["action"] == "/"
    assert root.one("label", for_=form.one("input", type="search", name="q").attrs["id"]).text == (
        "Search datasets"
    )
    assert [b.text for b in form.all("button")] == ["Search", "Apply"]
    legends = [f.one("legend").text for f in form.all("fieldset")]
    assert legends == ["Domain", "Theme", "Publisher", "License", "Keyword"]
    for facet, counts in found["facets"].items():
        boxes = facet_boxes(root, facet)
        assert {v: label for v, (label, _) in boxes.items()} == {
            v: f"{v} ({n})" for v, n in counts.items()
        }
    first = root.one("ol", id="results").all("li")[0]
    badges = [b.text for b in first.all("span") if "badge" in b.attrs.get("class", "")]
    assert badges[0] in ("Fresh", "Stale", "Freshness not checked")
    assert badges[1].startswith("Quality ")
    assert "Domain: " in first.text and first.all("time")
    assert not root.all("a", rel="next")  # the demo's datasets fit on one page


def test_search_words_and_facets_narrow_the_results(demo_api: ApiServer) -> None:
    _, root = page(demo_api, "/?q=energy")
    found = api(demo_api, "/datasets", q="energy")
    assert 0 < found["total"] < len(result_names(page(demo_api, "/")[1]))
    assert result_names(root) == [d["name"] for d in found["datasets"]]
    assert root.one("h2", id="result-count").text == f"{found['total']} datasets"
    assert root.one("input", name="q").attrs["value"] == "energy"

    _, root = page(demo_api, "/?domain=waste&keyword=bins")
    found = api(demo_api, "/datasets", domain="waste", keyword="bins")
    names = result_names(root)
    assert names == [d["name"] for d in found["datasets"]] and names
    assert all(d["domain"] == "waste" and "bins" in d["keywords"] for d in found["datasets"])
    assert root.one("h2", id="result-count").text == f"{len(names)} datasets"
    assert facet_boxes(root, "domain") == {"waste": (f"waste ({len(names)})", True)}
    assert facet_boxes(root, "keyword")["bins"] == (f"bins ({len(names)})", True)
    # Each chosen value is shown with a link that removes it (and only it).
    removes = {a.text: a.attrs["href"] for a in root.all("a") if "Remove filter" in a.text}
    assert set(removes) == {"Remove filter: Domain: waste ×", "Remove filter: Keyword: bins ×"}
    query = parse_qs(urlsplit(removes["Remove filter: Domain: waste ×"]).query)
    assert query == {"keyword": ["bins"]}
    assert "Clear all filters" in [a.text for a in root.all("a")]

    _, root = page(demo_api, "/?q=no-such-words-anywhere")
    assert root.one("h2", id="result-count").text == "0 datasets" and not result_names(root)
    assert "No dataset matches" in root.one("main").text


def test_a_chosen_value_that_matches_nothing_stays_removable(demo_api: ApiServer) -> None:
    _, root = page(demo_api, "/?domain=waste&keyword=trams")
    assert result_names(root) == []
    assert facet_boxes(root, "keyword")["trams"] == ("trams (0)", True)


def test_pages_continue_after_a_name(demo_api: ApiServer) -> None:
    everything = [d["name"] for d in api(demo_api, "/datasets", limit="100")["datasets"]]
    _, root = page(demo_api, f"/?after={everything[2]}")
    assert result_names(root) == everything[3:]
    back = next(a for a in root.all("a") if a.text == "Back to the first datasets")
    assert back.attrs["href"] == "/"


def test_every_result_link_resolves(demo_api: ApiServer) -> None:
    _, root = page(demo_api, "/")
    for name in result_names(root):
        response = httpx.get(f"{demo_api.url}/datasets/{name}", headers=HTML, timeout=120)
        assert response.status_code == 200, (name, response.text[:500])


def test_status_shows_the_health_of_every_public_dataset(demo_api: ApiServer) -> None:
    response, root = page(demo_api, "/status")
    assert response.status_code == 200
    assert root.one("h1").text == "Data health"
    table = root.one("table")
    assert table.one("caption").text
    assert all(th.attrs.get("scope") == "col" for th in table.one("thead").all("th"))
    rows = table.one("tbody").all("tr")
    listed = [
        r.one("th", scope="row").one("a").attrs["href"].removeprefix("/datasets/") for r in rows
    ]
    public = [d["name"] for d in api(demo_api, "/datasets", limit="100")["datasets"]]
    assert listed == public and PARTNER not in listed
    states = []
    for row, name in zip(rows, listed, strict=True):
        shown = api(demo_api, f"/datasets/{name}")
        cells = row.all("td")
        freshness, age, target, quality, rows_cell, version = (c.text for c in cells)
        fresh = shown["freshness"]
        if fresh["max_age_seconds"] is None:
            assert (freshness, target) == ("Freshness not checked", "no freshness target")
        else:
            assert freshness == ("Stale" if fresh["stale"] else "Fresh")
            assert target.startswith("within ")
        assert age.endswith(" ago")
        score = shown["quality"]["score"]
        assert quality == (f"Quality {score:.0%}" if score is not None else "Quality not checked")
        assert rows_cell == f"{shown['rows']:,}"
        assert version.endswith(f"(version {shown['version']})")
        states.append(freshness)
    summary = {li.attrs["id"]: li.text for li in root.one("ul", class_="health-summary").all("li")}
    assert summary == {
        "count-fresh": f"{states.count('Fresh')} fresh",
        "count-stale": f"{states.count('Stale')} stale",
        "count-unchecked": f"{states.count('Freshness not checked')} not checked",
    }


def test_a_partner_signs_in_sees_partner_data_and_signs_out(
    demo_api: ApiServer, partner: str
) -> None:
    response, root = page(demo_api, "/signin")
    assert response.status_code == 200
    form = root.one("form", action="/signin")
    key = form.one("input", name="key")
    assert (form.attrs["method"], key.attrs["type"], key.attrs["autocomplete"]) == (
        "post", "password", "off")  # fmt: skip
    assert root.one("label", for_=key.attrs["id"]).text == "API key"
    assert form.one("button").text == "Sign in"

    anonymous = httpx.get(f"{demo_api.url}/datasets/{PARTNER}", headers=HTML, timeout=120)
    missing = httpx.get(f"{demo_api.url}/datasets/no-such-set", headers=HTML, timeout=120)
    assert anonymous.status_code == missing.status_code == 404
    # Exactly what a dataset that does not exist answers: nothing tells that it does.
    assert anonymous.text.replace(PARTNER, "no-such-set") == missing.text
    assert "404" in parse(anonymous.text).one("h1").text

    signed = httpx.post(f"{demo_api.url}/signin", data={"key": partner}, timeout=120)
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{KEY_COOKIE}={partner};")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=lax"} <= attributes
    assert "secure" not in attributes  # plain http on loopback: a Secure cookie would be lost

    _, root = page(demo_api, "/", key=partner)
    assert PARTNER in result_names(root)
    assert "Signed in as pages-partner" in root.one("header").text
    assert root.one("form", action="/signout").one("button").text == "Sign out"
    item = next(li for li in root.one("ol", id="results").all("li")
                if li.one("h3").one("a").attrs["href"] == f"/datasets/{PARTNER}")  # fmt: skip
    assert "Partners only" in item.text
    _, root = page(demo_api, "/status", key=partner)
    assert f"/datasets/{PARTNER}" in [a.attrs["href"] for a in root.one("table").all("a")]
    shown = httpx.get(f"{demo_api.url}/datasets/{PARTNER}", headers=HTML,
                      cookies={KEY_COOKIE: partner}, timeout=120)  # fmt: skip
    assert shown.status_code == 200

    out = httpx.post(f"{demo_api.url}/signout", cookies={KEY_COOKIE: partner}, timeout=120)
    assert out.status_code == 303 and out.headers["location"] == "/"
    cleared = out.headers["set-cookie"]
    assert cleared.startswith(f'{KEY_COOKIE}="";') and "max-age=0" in cleared.lower()


@pytest.mark.parametrize("key", ["ul_not-a-real-key", ""])
def test_a_bad_key_is_refused_with_the_form_and_no_cookie(demo_api: ApiServer, key: str) -> None:
    response = httpx.post(f"{demo_api.url}/signin", data={"key": key}, timeout=120)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    root = parse(response.text)
    alert = root.one("p", role="alert")
    field_ = root.one("input", name="key")
    assert field_.attrs["aria-describedby"] == alert.attrs["id"]
    assert field_.attrs["aria-invalid"] == "true"
    assert alert.text == ("Enter your API key." if not key else
                          "This key is not valid: it may be mistyped, expired or revoked.")  # fmt: skip
    assert "value" not in field_.attrs  # the key typed is never written back into the page


def test_another_site_cannot_sign_a_visitor_in_or_out(demo_api: ApiServer, partner: str) -> None:
    """A form posted from another site's page (its Origin) changes nothing; this site's own
    form (same Origin) works."""
    evil = {"origin": "http://attacker.example"}
    forced = httpx.post(f"{demo_api.url}/signin", data={"key": partner}, headers=evil, timeout=120)
    assert forced.status_code == 403 and "set-cookie" not in forced.headers
    assert "sent from another site" in forced.text
    out = httpx.post(f"{demo_api.url}/signout", headers=evil, timeout=120)
    assert out.status_code == 403 and "set-cookie" not in out.headers
    own = {"origin": demo_api.url}
    signed = httpx.post(f"{demo_api.url}/signin", data={"key": partner}, headers=own, timeout=120)
    assert signed.status_code == 303 and signed.headers["set-cookie"].startswith(KEY_COOKIE)
