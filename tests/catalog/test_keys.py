"""The API key store, on a SQLite file and on PostgreSQL: keys shown once and kept only as salted
hashes, checked with one message for every failure, revoked, expired, and usage written in
batches rather than per request."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from urbanlake.catalog.keys import TABLE, KeyStore, store_location
from urbanlake.cli import app
from urbanlake.core.errors import InvalidKey, NotFound, UrbanLakeError
from urbanlake.core.settings import Settings, load_settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    overrides: dict[str, object] = {"key_cache_seconds": 30, "usage_flush_seconds": 3600}
    if request.param == "postgres":
        overrides["keys_store"] = request.getfixturevalue("postgres_db")
    return load_settings(tmp_path, env={}, access=overrides)


def stored_rows(settings: Settings) -> list[tuple[object, ...]]:
    location = store_location(settings)
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location) as conn:
            return list(conn.execute(f"SELECT * FROM {TABLE}").fetchall())
    with sqlite3.connect(location) as conn:
        return list(conn.execute(f"SELECT * FROM {TABLE}").fetchall())


def test_a_key_is_shown_once_and_kept_only_as_a_salted_hash(settings: Settings) -> None:
    store = KeyStore(settings)
    try:
        first = store.create("transit-vendor", "partner")
        second = store.create("university", "internal", timedelta(days=90))
        assert first.startswith("ul_") and first != second
        info = store.check(first)
        assert (info.name, info.tier, info.expires) == ("transit-vendor", "partner", None)
        assert store.check(f"  {second} ").tier == "internal"
        listed = {k.name: k for k in store.list_keys()}
        assert set(listed) == {"transit-vendor", "university"}
        assert listed["university"].expires is not None
        # Nothing stored holds the key or its secret part.
        text = repr(stored_rows(settings))
        for key in (first, second):
            assert key not in text and key.rsplit("_", 1)[-1] not in text
        salts = {row[3] for row in stored_rows(settings)}
        assert len(salts) == 2  # a salt per key
    finally:
        store.close()


def test_every_bad_key_gets_the_same_answer(settings: Settings) -> None:
    store = KeyStore(settings)
    try:
        key = store.create("vendor", "partner")
        key_id = key.split("_")[1]
        wrong_secret = f"ul_{key_id}_{'A' * 43}"
        unknown_id = f"ul_{'0' * 12}_{key.split('_', 2)[2]}"
        messages = set()
        for bad in (wrong_secret, unknown_id, "ul_short", "not-a-key", key + "x", ""):
            with pytest.raises(InvalidKey) as caught:
                store.check(bad)
            messages.add(str(caught.value))
            assert caught.value.status == 401 and caught.value.code == "invalid_key"
        assert len(messages) == 1 and "vendor" not in messages.pop()
        assert store.check(key).name == "vendor"  # the right one still works
    finally:
        store.close()


def test_revocation_and_expiry(settings: Settings) -> None:
    store = KeyStore(settings)
    try:
        key = store.create("vendor", "partner")
        short = store.create("trial", "partner", timedelta(seconds=3))
        assert store.check(key).name == "vendor" and store.check(short).name == "trial"
        store.revoke("vendor")
        with pytest.raises(InvalidKey):
            store.check(key)  # revoked in this process: its cached check is dropped at once
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                store.check(short)
            except InvalidKey:
                break  # expired, even though its check was cached for 30 s
            time.sleep(0.2)
        else:
            raise AssertionError("a key past its expiry was still accepted")
        with pytest.raises(NotFound, match="no key named 'nobody'"):
            store.revoke("nobody")
        with pytest.raises(UrbanLakeError, match="revoked already"):
            store.revoke("vendor")
        with pytest.raises(UrbanLakeError, match="exists already"):
            store.create("vendor", "partner")
        with pytest.raises(UrbanLakeError, match="unknown tier 'public'"):
            store.create("other", "public")
        with pytest.raises(UrbanLakeError, match="not a key name"):
            store.create("two words", "partner")
    finally:
        store.close()


def test_another_process_revoking_is_seen_once_the_cache_expires(
    settings: Settings, tmp_path: Path
) -> None:
    api = KeyStore(settings.model_copy(update={"access": settings.access.model_copy(
        update={"key_cache_seconds": 0})}))  # fmt: skip
    cli = KeyStore(settings)
    try:
        key = cli.create("vendor", "partner")
        assert api.check(key).name == "vendor"
        cli.revoke("vendor")
        with pytest.raises(InvalidKey):
            api.check(key)
    finally:
        api.close()
        cli.close()


def test_usage_is_counted_in_memory_and_written_in_batches(settings: Settings) -> None:
    store = KeyStore(settings)
    try:
        store.create("vendor", "partner")
        for _ in range(25):
            store.count_use("vendor")
        # Nothing written yet: the flush interval is an hour.
        assert {k.name: k.requests for k in store.list_keys()} == {"vendor": 0}
        store.flush()
        [info] = store.list_keys()
        assert info.requests == 25 and info.last_used is not None
        store.count_use("vendor")
    finally:
        store.close()  # writes what is still counted
    reopened = KeyStore(settings)
    try:
        assert reopened.list_keys()[0].requests == 26
    finally:
        reopened.close()


def test_the_background_flush_writes_without_being_asked(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={}, access={"usage_flush_seconds": 0.1})
    store = KeyStore(settings)
    try:
        store.create("vendor", "partner")
        store.count_use("vendor")
        deadline = time.monotonic() + 30
        while store.list_keys()[0].requests != 1:
            assert time.monotonic() < deadline, "the usage count was never written"
            time.sleep(0.05)
    finally:
        store.close()


def test_the_default_store_is_outside_the_lake(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={})
    location = Path(store_location(settings))
    assert location == (tmp_path / ".urbanlake" / "access.sqlite").resolve()
    assert not location.is_relative_to(Path(settings.lake_uri))
    relative = load_settings(tmp_path, env={"URBANLAKE_ACCESS_KEYS_STORE": "secrets/keys.db"})
    assert store_location(relative) == str((tmp_path / "secrets" / "keys.db").resolve())


def test_the_keys_commands(settings: Settings) -> None:
    runner = CliRunner()
    project = ["--project", str(settings.project_dir)]
    env = {"URBANLAKE_ACCESS_KEYS_STORE": settings.access.keys_store or ""}

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, [*project, "keys", *args], env=env)
        return result.exit_code, result.output

    code, out = run("create", "--name", "transit-vendor", "--tier", "partner", "--expires", "90d")
    assert code == 0, out
    key = next(line for line in out.splitlines() if line.startswith("ul_"))
    assert "will not be shown again" in out
    store = KeyStore(settings)
    try:
        assert store.check(key).tier == "partner"
    finally:
        store.close()
    code, out = run("create", "--name", "transit-vendor", "--tier", "partner")
    assert code == 1 and "exists already" in out
    code, out = run("create", "--name", "x", "--tier", "gold")
    assert code == 1 and "unknown tier 'gold'; valid: partner, internal" in out
    code, out = run("create", "--name", "x", "--tier", "partner", "--expires", "soon")
    assert code == 1 and "--expires" in out and "not a duration" in out
    code, out = run("list")
    assert code == 0 and "transit-vendor" in out and "partner" in out and key not in out
    code, out = run("revoke", "nobody")
    assert code == 1 and "no key named 'nobody'" in out
    code, out = run("revoke", "transit-vendor")
    assert code == 0 and "Revoked" in out
    store = KeyStore(settings)
    try:
        with pytest.raises(InvalidKey):
            store.check(key)
    finally:
        store.close()


def test_is_cached_tells_whether_a_check_would_cost_a_lookup_and_a_hash(settings: Settings) -> None:
    store = KeyStore(settings)
    try:
        key = store.create("transit-vendor", "partner")
        assert not store.is_cached(key)  # the API checks it in a worker thread
        store.check(key)
        assert store.is_cached(key)  # now a dictionary look-up, fine on the event loop
        assert not store.is_cached(key + "x")
    finally:
        store.close()
