"""Translating the portal: a YAML file of the same keys replaces the English words it names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import new_project, start_server
from urbanlake.core.errors import ConfigError
from urbanlake.web.strings import EN, Strings


def test_a_translation_replaces_the_words_it_names_and_keeps_the_rest(tmp_path: Path) -> None:
    words = tmp_path / "nb.yaml"
    words.write_text(
        'lang: nb\nnav.datasets: Datasett\nnav.signed_in_as: "Logget inn som {name}"\n'
    )
    strings = Strings.load(words)
    assert strings("nav.datasets") == "Datasett"
    assert strings("nav.signed_in_as", name="bymiljø") == "Logget inn som bymiljø"
    assert strings("nav.status") == EN["nav.status"]  # not translated: English


@pytest.mark.parametrize(
    ("text", "problem"),
    [("nav.datasets: [a, b]\nnav.typo: x\n", "unknown web string keys: nav.typo"),
     ("- a list\n", "must be a mapping"), ("nav: [\n", "cannot read")],
)  # fmt: skip
def test_a_broken_translation_is_an_error_naming_the_file(
    tmp_path: Path, text: str, problem: str
) -> None:
    words = tmp_path / "broken.yaml"
    words.write_text(text)
    with pytest.raises(ConfigError, match=problem) as raised:
        Strings.load(words)
    assert str(words) in str(raised.value)


def test_the_pages_speak_the_project_s_language(tmp_path: Path) -> None:
    project = new_project(tmp_path / "city", with_city=False)
    (project / "nb.yaml").write_text("lang: nb\nnav.datasets: Datasett\nnav.status: Datahelse\n")
    server = start_server(project, {"URBANLAKE_API_WEB_STRINGS": "nb.yaml"})
    try:
        page = server.get(f"{server.url}/status", headers={"accept": "text/html"})
    finally:
        server.stop()
    assert page.status_code == 200
    assert '<html lang="nb">' in page.text
    assert ">Datasett</a>" in page.text and ">Datahelse</a>" in page.text


def test_serve_refuses_a_broken_translation_before_it_starts(tmp_path: Path) -> None:
    project = new_project(tmp_path / "city", with_city=False)
    (project / "nb.yaml").write_text("nav.typo: x\n")
    done = subprocess.run(
        [sys.executable, "-m", "urbanlake", "--project", str(project), "serve", "--no-refresh"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "URBANLAKE_API_WEB_STRINGS": "nb.yaml"},
    )  # fmt: skip
    assert done.returncode == 1
    assert "unknown web string keys: nav.typo" in done.stderr + done.stdout
