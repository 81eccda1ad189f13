"""Settings: file, then URBANLAKE_… environment, then overrides; every setting documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from urbanlake.core.errors import ConfigError
from urbanlake.core.secrets import mask, resolve
from urbanlake.core.settings import documented_settings, find_project, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    (tmp_path / "urbanlake.yaml").write_text(
        "lake: here\ns3: {endpoint: 'a:1', access_key_id: '${KEY}'}\n"
    )
    env = {"URBANLAKE_LAKE": "s3://bucket/city", "URBANLAKE_S3_USE_SSL": "false", "KEY": "k-123456"}
    settings = load_settings(tmp_path, env=env)
    assert settings.lake_uri == "s3://bucket/city"
    assert (
        settings.s3.use_ssl is False
        and settings.s3.endpoint == "a:1"
        and settings.s3.access_key_id == "k-123456"
    )
    assert settings.catalog_url == str((tmp_path / ".urbanlake" / "catalog.sqlite").resolve())
    assert mask("key is k-123456") == "key is ****"


def test_project_is_found_from_option_then_environment_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_project(None, env={}) == tmp_path.resolve()
    assert find_project(None, env={"URBANLAKE_PROJECT": "/srv/city"}) == Path("/srv/city")
    assert find_project("/other", env={"URBANLAKE_PROJECT": "/srv/city"}) == Path("/other")


def test_local_lake_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={})
    assert settings.lake_uri == str(tmp_path.resolve() / "lake")
    assert settings.catalog_url.endswith("lake/catalog.sqlite")
    pg = load_settings(tmp_path, env={"URBANLAKE_CATALOG": "postgresql://u@127.0.0.1:5432/city"})
    assert pg.catalog_url == "postgresql://u@127.0.0.1:5432/city"


def test_bad_settings_name_the_field(tmp_path: Path) -> None:
    (tmp_path / "urbanlake.yaml").write_text("lakes: typo\n")
    with pytest.raises(ConfigError, match="lakes"):
        load_settings(tmp_path, env={})


def test_missing_secret_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE is not set"):
        resolve({"headers": {"Authorization": "Bearer ${NOT_SET_ANYWHERE}"}}, env={})
    assert resolve("${A:-fallback}", env={}) == "fallback"


def test_every_setting_is_documented() -> None:
    docs = (ROOT / "docs" / "settings.md").read_text()
    for key, env_name, description in documented_settings():
        assert description, f"setting {key} has no description"
        assert f"`{key}`" in docs and f"`{env_name}`" in docs, (
            f"docs/settings.md does not document {key}"
        )
