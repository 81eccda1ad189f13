"""A sign-in whose key has since been revoked: pages read as the public, say so and drop the
cookie; the same key sent in a header is still refused with 401, as the API promises."""

from __future__ import annotations

from tests.api.test_access import create_key, keys_command
from tests.servers import ApiServer
from urbanlake.web.render import KEY_COOKIE


def test_a_revoked_sign_in_reads_as_the_public_and_ends(demo_api: ApiServer) -> None:
    key = create_key(demo_api.project, "lapsing-partner", "partner")
    keys_command(demo_api.project, "revoke", "lapsing-partner")
    cookie = {KEY_COOKIE: key}

    page = demo_api.get(f"{demo_api.url}/", cookies=cookie, headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "Your sign-in has ended" in page.text
    assert f'{KEY_COOKIE}=""' in page.headers["set-cookie"]  # the browser forgets it
    assert "meter-readings" not in page.text  # the partner dataset is gone with the sign-in

    api = demo_api.get("/datasets/meter-readings", cookies=cookie)
    assert api.status_code == 404  # read as the public: no such dataset
    refused = demo_api.get("/datasets", headers={"X-API-Key": key})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_key"
