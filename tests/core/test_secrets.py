"""Secrets, whatever their source, never shown: a password in ``URBANLAKE_CATALOG``, S3 keys, a
literal secret in ``urbanlake.yaml`` refused with its key named."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.api.conftest import free_port
from urbanlake.core.errors import ConfigError
from urbanlake.core.secrets import MaskingFilter, mask, url_password
from urbanlake.core.settings import load_settings

PASSWORD = "Pw-7hQx2"  # the secret the tests look for in every output


def cli(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "urbanlake", "--project", str(project), *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=300,
    )  # fmt: skip


def new_city(tmp_path: Path) -> Path:
    project = tmp_path / "city"
    subprocess.run([sys.executable, "-m", "urbanlake", "init", str(project)], check=True,
                   capture_output=True)  # fmt: skip
    return project


def test_url_password_forms() -> None:
    assert url_password("postgresql://u:se%40cret@h:5432/db") == "se%40cret"
    assert url_password("postgresql://u@h/db") is None
    assert url_password("postgres:dbname=city host=h password=hunter22") == "hunter22"
    assert url_password("postgres:dbname=city password='two words'") == "two words"
    assert url_password("lake") is None


def test_a_password_from_the_environment_is_masked(tmp_path: Path) -> None:
    url = "postgresql://city:se%40cret-1@127.0.0.1:5432/db"
    settings = load_settings(tmp_path, env={"URBANLAKE_CATALOG": url})
    assert settings.catalog_url == url
    assert mask(f"cannot open {url}") == "cannot open postgresql://city:****@127.0.0.1:5432/db"
    assert "se@cret-1" not in mask("the password is se@cret-1")
    load_settings(tmp_path, env={"URBANLAKE_S3_SECRET_ACCESS_KEY": "abc123"})
    assert mask("key abc123") == "key ****"  # a declared secret, however short


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("name: x\ns3:\n  secret_access_key: plain-secret\n", "s3.secret_access_key", 3),
        ("s3:\n  access_key_id: AKIA1234\n", "s3.access_key_id", 2),
        ("catalog: postgresql://city:hunter22@db:5432/lake\n", "catalog", 1),
    ],
)
def test_a_literal_secret_in_the_settings_file_is_an_error(
    tmp_path: Path, text: str, key: str, line: int
) -> None:
    (tmp_path / "urbanlake.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, env={})
    [problem] = caught.value.problems
    assert (problem.field, problem.line) == (key, line)
    assert "may not be written in the settings file" in problem.message
    for secret in ("plain-secret", "AKIA1234", "hunter22"):
        assert secret not in str(caught.value)


def test_references_are_the_way_to_give_secrets(tmp_path: Path) -> None:
    (tmp_path / "urbanlake.yaml").write_text(
        "catalog: postgresql://city:${CITY_PW}@127.0.0.1:5432/lake\n"
        "s3:\n  secret_access_key: ${CITY_S3}\n"
    )
    settings = load_settings(tmp_path, env={"CITY_PW": "pw-from-env", "CITY_S3": "s3-from-env"})
    assert settings.s3.secret_access_key == "s3-from-env"
    assert mask(settings.catalog_url + " s3-from-env") == (
        "postgresql://city:****@127.0.0.1:5432/lake ****"
    )


def test_logs_and_tracebacks_are_masked(tmp_path: Path) -> None:
    load_settings(tmp_path, env={"URBANLAKE_CATALOG": "postgresql://u:log-secret-9@h/db"})
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %s", ("log-secret-9",),
                               None)  # fmt: skip
    try:
        raise RuntimeError("in the traceback: log-secret-9")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    MaskingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "log-secret-9" not in text and text.startswith("failed: ****")


def test_a_catalog_password_never_shows_when_the_database_is_down(tmp_path: Path) -> None:
    project = new_city(tmp_path)
    down = f"postgresql://city:{PASSWORD}@127.0.0.1:{free_port()}/lake"
    env = {"URBANLAKE_CATALOG": down}
    for args in (["-v", "ingest", "--all"], ["tables"], ["status"], ["history", "x.y"],
                 ["sql", "SELECT 1"], ["check"]):  # fmt: skip
        result = cli(project, env, *args)
        shown = result.stdout + result.stderr
        assert PASSWORD not in shown, (args, shown)
        if args[0] != "check":
            assert result.returncode == 1, (args, shown)
            assert "****" in shown, (args, shown)
    # The API: it cannot start, and its log says why without the password.
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "urbanlake", "--project", str(project), "serve", "--port",
             str(port)], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
        )  # fmt: skip
        try:
            server.wait(timeout=120)
        finally:
            if server.poll() is None:
                server.kill()
    text = log.read_text()
    assert "catalog" in text and "****" in text, text
    assert PASSWORD not in text


@pytest.mark.postgres
def test_a_catalog_password_never_shows_in_runs_or_logs(tmp_path: Path, postgres_db: str) -> None:
    project = new_city(tmp_path)
    # Trust authentication takes any password: the lake really opens with this one.
    with_password = postgres_db.replace("@", f":{PASSWORD}@", 1)
    env = {"URBANLAKE_CATALOG": with_password}
    outputs = []
    for args in (["-v", "ingest", "--all"], ["-v", "status"], ["tables"], ["check"],
                 ["history", "waste.bin_fill_levels"], ["-v", "publish"]):  # fmt: skip
        result = cli(project, env, *args)
        assert result.returncode == 0, (args, result.stdout + result.stderr)
        outputs.append(result.stdout + result.stderr)
    assert not [o for o in outputs if PASSWORD in o]
    # Every platform table, read back in full.
    tables = cli(project, env, "sql", "SELECT table_schema || '.' || table_name AS t FROM "
                 "information_schema.tables WHERE table_schema = 'platform'", "-f", "csv")  # fmt: skip
    names = [line.strip('"') for line in tables.stdout.split()[1:]]
    assert "platform.runs" in names
    for name in names:
        dump = cli(project, env, "sql", f"SELECT * FROM {name}", "-f", "json")
        assert dump.returncode == 0, dump.stderr
        assert PASSWORD not in dump.stdout + dump.stderr, name
    # The API over the same lake: its responses and its log.
    port = free_port()
    log = tmp_path / "serve.log"
    import httpx

    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "urbanlake", "--project", str(project), "-v", "serve",
             "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )  # fmt: skip
        try:
            bodies = []
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    bodies.append(httpx.get(f"http://127.0.0.1:{port}/healthz").text)
                    break
                except httpx.TransportError:
                    time.sleep(0.3)
            for path in ("/api/v1/datasets", "/api/v1/datasets/nope", "/metrics"):
                bodies.append(httpx.get(f"http://127.0.0.1:{port}{path}").text)
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert bodies and '"ok"' in bodies[0]
    assert not [b for b in bodies if PASSWORD in b]
    assert PASSWORD not in log.read_text()
