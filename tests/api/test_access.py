"""Access tiers over HTTP on a real server: one public, one partner, one internal dataset (and one
partner dataset the public reads an hour late) × anonymous, partner, internal and revoked callers
× every surface. A dataset a caller may not see answers exactly what a missing one answers (404,
never 403), and nothing of it shows in search results, facet counts, totals or error messages.

Keys are made, listed and revoked with the real `urbanlake keys` commands; the server trusts a
checked key for 0 s here (``access.key_cache_seconds``), so a revocation is seen at once.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from rich.console import Console

from tests.api.conftest import ApiServer, new_project, start_server
from urbanlake.catalog.checks import catalog_entries
from urbanlake.catalog.publish import publish
from urbanlake.core.settings import load_settings
from urbanlake.demo import run_demo
from urbanlake.lakehouse.lake import Lake
from urbanlake.lakehouse.schema import platform_table

PUBLIC = "bin-fill-levels"  # the demo's own public dataset
PARTNER = "bins-for-partners"
INTERNAL = "bins-for-staff"
DELAYED = "bins-an-hour-late"  # partner live, the public an hour late
MISSING = "no-such-dataset"
DATASETS = {"public": PUBLIC, "partner": PARTNER, "internal": INTERNAL}
# What must never show to a caller who may not see the dataset: name, title, keyword, publisher.
MARKERS = {
    PARTNER: [PARTNER, "Bin sensors for partners", "partner-only-keyword", "Partner Desk"],
    INTERNAL: [INTERNAL, "Bin sensors for staff", "staff-only-keyword", "Staff Desk"],
}
ENTRIES = {
    PARTNER: ("partner", "Bin sensors for partners", "partner-only-keyword", "Partner Desk", ""),
    INTERNAL: ("internal", "Bin sensors for staff", "staff-only-keyword", "Staff Desk", ""),
    DELAYED: ("partner", "Bin sensors, live for partners", "late-keyword", "Late Desk", "1h"),
}
SEES = {"anonymous": {"public"}, "partner": {"public", "partner"},
        "internal": {"public", "partner", "internal"}}  # fmt: skip


@dataclass(frozen=True)
class Surface:
    """One way to ask about one dataset. ``{name}`` and ``{version}`` in the path, parameters and
    JSON body are filled in; ``visible`` is the status a caller who may see it gets, ``hidden``
    the one a caller who may not see it gets — the same as for a dataset that does not exist."""

    label: str
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    visible: int = 200
    hidden: int = 404


# Every surface that names a dataset. A new one is a new row here; the matrix does the rest.
SURFACES = [
    Surface("show", "GET", "/api/v1/datasets/{name}"),
    Surface("records", "GET", "/api/v1/datasets/{name}/records", {"limit": "5"}),
    Surface("records csv", "GET", "/api/v1/datasets/{name}/records", {"format": "csv"}),
    Surface("records geojson", "GET", "/api/v1/datasets/{name}/records", {"format": "geojson"}),
    Surface("records of a version", "GET", "/api/v1/datasets/{name}/records", {"version": "{version}"}),
    Surface("records, unknown column", "GET", "/api/v1/datasets/{name}/records",
            {"no_such_column": "1"}, visible=400),
    Surface("records facets", "GET", "/api/v1/datasets/{name}/records", {"facet": "bin_id", "limit": "1"}),
    Surface("aggregate", "GET", "/api/v1/datasets/{name}/aggregate", {"group_by": "bin_id"}),
    Surface("aggregate, unknown metric column", "GET", "/api/v1/datasets/{name}/aggregate",
            {"metrics": "sum:no_such_column"}, visible=400),
    *[Surface(f"export {f}", "GET", "/api/v1/datasets/{name}/export", {"format": f})
      for f in ("csv", "jsonl", "geojson", "parquet")],
    Surface("versions", "GET", "/api/v1/datasets/{name}/versions"),
    Surface("version file", "GET", "/api/v1/datasets/{name}/versions/{version}/data.parquet"),
    Surface("version file range", "GET", "/api/v1/datasets/{name}/versions/{version}/data.parquet"),
    Surface("changes", "GET", "/api/v1/datasets/{name}/changes", {"from": "{version}", "to": "{version}"}),
    Surface("quality", "GET", "/api/v1/datasets/{name}/quality"),
    Surface("sql", "POST", "/api/v1/sql", json={"sql": 'SELECT count(*) FROM "{name}"'}, hidden=400),
    Surface("sql csv", "POST", "/api/v1/sql", {"format": "csv"}, json={"sql": 'SELECT * FROM "{name}"'},
            hidden=400),
    Surface("sql through a CTE", "POST", "/api/v1/sql", hidden=400,
            json={"sql": 'WITH t AS (SELECT * FROM "{name}") SELECT count(*) FROM t'}),
    Surface("sql in a subquery", "POST", "/api/v1/sql", hidden=400,
            json={"sql": 'SELECT (SELECT count(*) FROM "{name}") AS n'}),
    Surface("DCAT-AP JSON-LD", "GET", "/api/v1/datasets/{name}.jsonld"),
    Surface("DCAT-AP Turtle", "GET", "/api/v1/datasets/{name}.ttl"),
    Surface("schema.org", "GET", "/api/v1/datasets/{name}/schema.org.jsonld"),
]  # fmt: skip

# Surfaces that list datasets: a caller finds every dataset they may see, and no trace of others.
LISTINGS = [
    Surface("search", "GET", "/api/v1/datasets", {"limit": "1000"}),
    Surface("search by word", "GET", "/api/v1/datasets", {"q": "bin sensors"}),
    Surface("search by keyword facet", "GET", "/api/v1/datasets",
            {"keyword": "partner-only-keyword", "limit": "1000"}),
    Surface("search by publisher facet", "GET", "/api/v1/datasets",
            {"publisher": "Staff Desk", "limit": "1000"}),
    Surface("DCAT-AP catalog JSON-LD", "GET", "/api/v1/catalog.jsonld"),
    Surface("DCAT-AP catalog Turtle", "GET", "/api/v1/catalog.ttl"),
    Surface("DCAT-AP catalog", "GET", "/api/v1/catalog"),
    Surface("data.json", "GET", "/data.json"),
]  # fmt: skip


@dataclass
class Tiered:
    server: ApiServer
    keys: dict[str, str]  # caller → key ("anonymous" has none)
    versions: dict[str, list[int]]  # dataset → every version, newest first

    def ask(self, surface: Surface, caller: str, name: str = "", version: int = 0,
            via: str = "x-api-key") -> httpx.Response:  # fmt: skip
        def fill(text: str) -> str:
            return text.replace("{name}", name).replace("{version}", str(version))

        headers = {}
        key = self.keys.get(caller)
        if key is not None:
            headers = (
                {"X-API-Key": key} if via == "x-api-key" else {"Authorization": f"Bearer {key}"}
            )
        if surface.label.endswith("range"):
            headers["Range"] = "bytes=0-3"
        body = json.loads(fill(json.dumps(surface.json))) if surface.json is not None else None
        return httpx.request(surface.method, f"{self.server.url}{fill(surface.path)}",
                             params={k: fill(v) for k, v in surface.params.items()},
                             json=body, headers=headers, timeout=120)  # fmt: skip


def keys_command(project: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "urbanlake", "--project", str(project), "keys", *args],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def create_key(project: Path, name: str, tier: str, *extra: str) -> str:
    out = keys_command(project, "create", "--name", name, "--tier", tier, *extra)
    return next(line.strip() for line in out.splitlines() if line.startswith("ul_"))


def write_entries(project: Path) -> None:
    for name, (access, title, keyword, publisher, delay) in ENTRIES.items():
        lines = [f"name: {name}", "domain: waste", f"title: {title}", f"access: {access}",
                 f"keywords: [{keyword}]", f"publisher: {{name: {publisher}}}",
                 "geometry: {lon: longitude, lat: latitude}",
                 "source: {table: waste.bin_fill_levels}"]  # fmt: skip
        if delay:
            lines.append(f"public_delay: {delay}")
        (project / "catalog" / "waste" / f"{name}.yaml").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def tiered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tiered]:
    """A demo city of its own with three more datasets, their versions published, keys made by the CLI,
    and its own server (the one extra server of these tests)."""
    project = new_project(tmp_path_factory.mktemp("access") / "city")
    out = io.StringIO()
    assert run_demo(load_settings(project, env={}), Console(file=out), serve=False) == 0, (
        out.getvalue()
    )
    write_entries(project)
    settings = load_settings(project, env={})
    with Lake.open(settings) as lake:
        entries = catalog_entries(settings)
        made = publish(lake, entries, list(ENTRIES))
        assert {p.status for p in made} == {"new version"}, made
        # The delayed dataset's first version was made two hours ago; its second one now.
        lake.connection().execute(
            f"UPDATE {platform_table('dataset_versions')} SET made_at = made_at - INTERVAL 2 HOURS "
            "WHERE dataset = ?",
            [DELAYED],
        )
        [again] = publish(lake, entries, [DELAYED], force=True)
        assert again.status == "new version"
        versions: dict[str, list[int]] = {}
        for row in lake.reader.dataset_versions():
            versions.setdefault(row["dataset"], []).append(int(row["version"]))
    keys = {"partner": create_key(project, "transit-vendor", "partner", "--expires", "90d"),
            "internal": create_key(project, "city-analyst", "internal"),
            "revoked": create_key(project, "former-vendor", "partner")}  # fmt: skip
    keys_command(project, "revoke", "former-vendor")
    server = start_server(project, {"URBANLAKE_ACCESS_KEY_CACHE_SECONDS": "0",
                                    "URBANLAKE_ACCESS_USAGE_FLUSH_SECONDS": "0.2"})  # fmt: skip
    yield Tiered(server, keys, versions)
    server.stop()


def same_as_missing(tiered: Tiered, surface: Surface, caller: str, name: str) -> None:
    """The hidden dataset's answer is the missing dataset's, byte for byte but the name."""
    version = tiered.versions[name][0]
    hidden = tiered.ask(surface, caller, name, version)
    missing = tiered.ask(surface, caller, MISSING, version)
    assert hidden.status_code == missing.status_code == surface.hidden, (
        surface.label,
        caller,
        name,
    )
    assert hidden.text == missing.text.replace(MISSING, name), (surface.label, hidden.text)
    assert hidden.headers.get("content-type") == missing.headers.get("content-type")
    for marker in MARKERS.get(name, [])[1:]:
        assert marker not in hidden.text


@pytest.mark.parametrize("caller", ["anonymous", "partner", "internal"])
@pytest.mark.parametrize("tier", ["public", "partner", "internal"])
@pytest.mark.parametrize("surface", SURFACES, ids=[s.label for s in SURFACES])
def test_every_surface_answers_a_hidden_dataset_as_a_missing_one(
    tiered: Tiered, surface: Surface, caller: str, tier: str
) -> None:
    name = DATASETS[tier]
    if tier in SEES[caller]:
        answer = tiered.ask(surface, caller, name, tiered.versions[name][0])
        expected = 206 if surface.label.endswith("range") else surface.visible
        assert answer.status_code == expected, (surface.label, answer.text[:500])
    else:
        same_as_missing(tiered, surface, caller, name)


@pytest.mark.parametrize("surface", SURFACES + LISTINGS, ids=[s.label for s in SURFACES + LISTINGS])
def test_a_revoked_key_is_refused_everywhere(tiered: Tiered, surface: Surface) -> None:
    answer = tiered.ask(surface, "revoked", PUBLIC, tiered.versions[PUBLIC][0])
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    error = answer.json()["error"]
    assert error["code"] == "invalid_key" and "former-vendor" not in answer.text


@pytest.mark.parametrize("caller", ["anonymous", "partner", "internal"])
@pytest.mark.parametrize("surface", LISTINGS, ids=[s.label for s in LISTINGS])
def test_listings_show_what_the_caller_may_see_and_no_trace_of_the_rest(
    tiered: Tiered, surface: Surface, caller: str
) -> None:
    answer = tiered.ask(surface, caller)
    assert answer.status_code == 200, answer.text
    for tier, name in DATASETS.items():
        if tier in SEES[caller]:
            continue
        for marker in MARKERS[name]:
            assert marker.lower() not in answer.text.lower(), (surface.label, caller, marker)


@pytest.mark.parametrize("caller", ["anonymous", "partner", "internal"])
def test_search_totals_and_facets_count_only_visible_datasets(tiered: Tiered, caller: str) -> None:
    body = tiered.ask(LISTINGS[0], caller).json()
    found = body["datasets"]
    names = {d["name"] for d in found}
    assert body["total"] == len(found) and body["next"] is None
    for tier, name in DATASETS.items():
        assert (name in names) == (tier in SEES[caller])
    assert DELAYED in names  # the public may see it, an hour late
    # Every facet count is exactly what the listed datasets hold.
    recount: dict[str, dict[str, int]] = {f: {} for f in body["facets"]}
    for d in found:
        values = {"domain": [d["domain"]], "theme": [d["theme"]] if d["theme"] else [],
                  "publisher": [d["publisher"]["name"]], "license": [d["license"]],
                  "keyword": d["keywords"]}  # fmt: skip
        for facet, vals in values.items():
            for v in vals:
                recount[facet][v] = recount[facet].get(v, 0) + 1
    assert body["facets"] == recount
    if caller == "anonymous":
        hidden = tiered.ask(
            Surface("", "GET", "/api/v1/datasets", {"keyword": "staff-only-keyword"}), caller
        )
        assert hidden.json()["total"] == 0 and hidden.json()["datasets"] == []


def test_both_headers_carry_a_key_and_a_bad_one_is_a_401(tiered: Tiered) -> None:
    show = SURFACES[0]
    for via in ("x-api-key", "bearer"):
        assert tiered.ask(show, "internal", INTERNAL, via=via).status_code == 200
    url = f"{tiered.server.api}/datasets/{PUBLIC}"
    key = tiered.keys["partner"]
    for headers in ({"X-API-Key": key[:-2] + "xx"}, {"Authorization": "Bearer nonsense"},
                    {"X-API-Key": key, "Authorization": f"Bearer {tiered.keys['internal']}"}):  # fmt: skip
        answer = httpx.get(url, headers=headers)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_key"
        assert answer.headers["www-authenticate"].startswith("Bearer")
    # A key for a name that exists and one that never did read the same.
    wrong = httpx.get(url, headers={"X-API-Key": key[:-2] + "xx"}).json()
    unknown = httpx.get(url, headers={"X-API-Key": "ul_000000000000_" + "A" * 43}).json()
    assert wrong == unknown
    # Another scheme is not a key: the caller stays anonymous.
    assert httpx.get(url, headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 200


def test_revocation_and_expiry_take_effect_on_a_running_server(tiered: Tiered) -> None:
    project = tiered.server.project
    key = create_key(project, "short-lived", "partner", "--expires", "3s")
    late = create_key(project, "to-revoke", "internal")
    url = f"{tiered.server.api}/datasets/{INTERNAL}"
    assert httpx.get(url, headers={"X-API-Key": late}).status_code == 200
    keys_command(project, "revoke", "to-revoke")
    assert httpx.get(url, headers={"X-API-Key": late}).status_code == 401  # cache time 0 here
    deadline = time.monotonic() + 60
    partner_url = f"{tiered.server.api}/datasets/{PARTNER}"
    while httpx.get(partner_url, headers={"X-API-Key": key}).status_code == 200:
        assert time.monotonic() < deadline, "a key past its expiry was still accepted"
        time.sleep(0.2)
    answer = httpx.get(partner_url, headers={"X-API-Key": key})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_key"


def test_usage_per_key_reaches_keys_list(tiered: Tiered) -> None:
    project = tiered.server.project
    key = create_key(project, "counted", "partner")
    for _ in range(7):
        assert (
            httpx.get(f"{tiered.server.api}/datasets", headers={"X-API-Key": key}).status_code
            == 200
        )
    deadline = time.monotonic() + 60
    while True:
        row = next(line for line in keys_command(project, "list").splitlines() if "counted" in line)
        cells = [c.strip() for c in row.split("│") if c.strip()]
        if cells[5] == "7":
            break
        assert time.monotonic() < deadline, row
        time.sleep(0.2)
    assert cells[1] == "partner" and cells[4] != "-"  # last used is set


# -- public delay ----------------------------------------------------------------------------------


def test_the_public_reads_a_delayed_dataset_an_hour_late(tiered: Tiered) -> None:
    newest, oldest = tiered.versions[DELAYED][0], tiered.versions[DELAYED][-1]
    assert newest != oldest
    base = f"{tiered.server.api}/datasets/{DELAYED}"
    partner = {"X-API-Key": tiered.keys["partner"]}

    def get(path: str = "", headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        return httpx.get(f"{base}{path}", params=params, headers=headers or {}, timeout=120)

    assert get().json()["version"] == oldest
    assert get(headers=partner).json()["version"] == newest
    assert get("/records").json()["version"] == oldest
    assert get("/records", headers=partner).json()["version"] == newest
    assert get("/aggregate").json()["version"] == oldest
    assert get("/export", format="csv").headers["x-dataset-version"] == str(oldest)
    assert [v["version"] for v in get("/versions").json()["versions"]] == [oldest]
    assert [v["version"] for v in get("/versions", headers=partner).json()["versions"]] == [
        newest,
        oldest,
    ]
    listed = {d["name"]: d for d in httpx.get(f"{tiered.server.api}/datasets").json()["datasets"]}
    assert listed[DELAYED]["version"] == oldest
    # The newest version does not exist for the public, by number, time or file.
    missing = get("/records", version=9_999_999)
    held_back = get("/records", version=newest)
    assert held_back.status_code == missing.status_code == 404
    assert held_back.json() == json.loads(missing.text.replace("9999999", str(newest)))
    assert get(f"/versions/{newest}/data.parquet").status_code == 404
    assert get(f"/versions/{oldest}/data.parquet").status_code == 200
    assert get(f"/versions/{newest}/data.parquet", headers=partner).status_code == 200
    assert get("/records", as_of="2100-01-01T00:00:00Z").json()["version"] == oldest
    assert get("/changes", **{"from": str(oldest), "to": str(newest)}).status_code == 400
    assert (
        get("/changes", headers=partner, **{"from": str(oldest), "to": str(newest)}).status_code
        == 200
    )
    # A partner's cursor on the newest version is no way in either.
    page = get("/records", headers=partner, limit=1).json()
    cursor = parse_qs(urlsplit(page["next"]).query)["cursor"][0]
    assert get("/records", limit=1, cursor=cursor).status_code == 404
    # Quality as known an hour ago: the demo's checks ran minutes ago, so none yet for the public.
    assert get("/quality").json()["summary"]["checked"] is False
    assert get("/quality", headers=partner).json()["summary"]["checked"] is True
    # SQL and the open metadata read the same versions.
    sql = {"sql": f'SELECT count(*) AS n FROM "{DELAYED}"'}
    public_sql = httpx.post(f"{tiered.server.api}/sql", json=sql, timeout=120).json()
    partner_sql = httpx.post(f"{tiered.server.api}/sql", json=sql, headers=partner, timeout=120)
    assert public_sql["datasets"] == {DELAYED: oldest}
    assert partner_sql.json()["datasets"] == {DELAYED: newest}
    public_dcat = get(".jsonld").text
    assert f"/versions/{oldest}/data.parquet" in public_dcat
    assert f"/versions/{newest}/data.parquet" not in public_dcat
    assert f"/versions/{newest}/data.parquet" in get(".jsonld", headers=partner).text
