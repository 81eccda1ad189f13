"""A person over the public quota gets a page that says so, with the same Retry-After and
RateLimit fields a script gets in its JSON answer; the page's assets are never counted."""

from __future__ import annotations

from pathlib import Path

from tests.servers import new_project, start_server


def test_a_spent_quota_is_a_page_for_a_browser_and_json_for_a_script(tmp_path: Path) -> None:
    project = new_project(tmp_path / "city", with_city=False)
    server = start_server(project, {"URBANLAKE_QUOTA_PUBLIC": "2/minute"})
    browser = {"accept": "text/html"}
    try:
        pages = [server.get(f"{server.url}/status", headers=browser) for _ in range(3)]
        asset = server.get(f"{server.url}/static/site.css", headers=browser)
        script = server.get("/datasets")
    finally:
        server.stop()
    assert [p.status_code for p in pages] == [200, 200, 429]
    refused = pages[-1]
    assert refused.headers["content-type"].startswith("text/html")
    assert "quota of 2 per 60 s" in refused.text and "<h1>429" in refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-policy"] == '"public";q=2;w=60'
    assert asset.status_code == 200  # the stylesheet of the refusal page itself
    assert script.status_code == 429 and script.json()["error"]["code"] == "rate_limited"
