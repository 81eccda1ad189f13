"""API keys: made by ``urbanlake keys create``, checked on every request that carries one.

A key is ``ul_<id>_<secret>``: the id finds its one row, the secret is checked against a salted
scrypt hash of it (the key itself is never stored, and shown once). The store is a SQLite file
(``.urbanlake/access.sqlite`` by default) or a PostgreSQL table ``urbanlake_api_keys`` — never a
lake table, so nothing the SQL endpoint can read.

Checking a key costs a row lookup and a hash (tens of milliseconds), so an API worker trusts a key
it has checked for ``access.key_cache_seconds`` (30 s): a request then pays a dictionary lookup,
and a revoked key stops working within that time. Requests are counted in memory and written per
key every ``access.usage_flush_seconds`` by a background thread (and when the store closes),
never once per request.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from urbanlake.core.errors import InvalidKey, LakeError, NotFound, UrbanLakeError
from urbanlake.core.secrets import mask
from urbanlake.core.settings import Settings

TABLE = "urbanlake_api_keys"
KEY_TIERS = ("partner", "internal")  # anonymous callers are the public tier: no key needed
PREFIX = "ul_"
KEY = re.compile(r"^ul_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
INVALID = "the API key is not valid (unknown, expired or revoked)"
# scrypt's interactive-login cost (about 30 ms, 16 MB): the secret is random, so this is defence
# in depth for a stolen store, and the verification cache keeps it off the request path.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
MAX_CACHED = 10_000  # checked keys (valid or not) a worker remembers before it starts afresh


@dataclass(frozen=True)
class KeyInfo:
    """What is known of a key (never the key itself)."""

    name: str
    tier: str
    created: datetime
    expires: datetime | None
    revoked: datetime | None
    last_used: datetime | None
    requests: int

    def valid_at(self, moment: datetime) -> bool:
        return self.revoked is None and (self.expires is None or moment < self.expires)


def store_location(settings: Settings) -> str:
    """The key store: ``access.keys_store`` (a PostgreSQL URL or a SQLite path relative to the
    project), else ``.urbanlake/access.sqlite``."""
    where = settings.access.keys_store
    if where and where.startswith(("postgres://", "postgresql://")):
        return where
    if where:
        path = Path(where.removeprefix("sqlite:///").removeprefix("sqlite:"))
        return str(path if path.is_absolute() else (settings.project_dir / path).resolve())
    return str((settings.state_dir / "access.sqlite").resolve())


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, **SCRYPT)


def _now() -> datetime:
    return datetime.now(UTC)


def _time(value: Any) -> datetime | None:
    """A stored time: a datetime from PostgreSQL, ISO 8601 text from SQLite."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


class _Database:
    """One connection to the store, shared by a worker's threads behind a lock; SQL is written
    with ``?`` placeholders and the same text for SQLite and PostgreSQL."""

    def __init__(self, location: str):
        self.location = location
        self.postgres = location.startswith(("postgres://", "postgresql://"))
        self.lock = threading.Lock()
        self.connection: Any = None
        self.unique_violation: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)
        if self.postgres:
            import psycopg

            self.unique_violation = (psycopg.errors.UniqueViolation,)
        self.connect()
        moment = "TIMESTAMPTZ" if self.postgres else "TEXT"
        self.execute(
            f"""CREATE TABLE IF NOT EXISTS {TABLE} (
                key_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, tier TEXT NOT NULL,
                salt TEXT NOT NULL, hash TEXT NOT NULL, created {moment} NOT NULL,
                expires {moment}, revoked {moment}, last_used {moment},
                requests BIGINT NOT NULL DEFAULT 0)"""
        )

    def connect(self) -> None:
        try:
            if self.postgres:
                import psycopg

                self.connection = psycopg.connect(
                    self.location, autocommit=True, connect_timeout=10
                )
            else:
                path = Path(self.location)
                path.parent.mkdir(parents=True, exist_ok=True)
                fresh = not path.exists()
                self.connection = sqlite3.connect(
                    path, timeout=30, isolation_level=None, check_same_thread=False
                )
                if fresh:
                    path.chmod(0o600)  # hashes only, but nobody else's business
                self.connection.execute("PRAGMA journal_mode=WAL")
        except Exception as exc:
            raise LakeError(
                f"cannot open the API key store {mask(self.location)}: {mask(str(exc))}"
            ) from None

    def _parameter(self, value: Any) -> Any:
        if isinstance(value, datetime) and not self.postgres:
            return value.astimezone(UTC).isoformat(timespec="microseconds")
        return value

    def execute(
        self, sql: str, parameters: tuple[Any, ...] = ()
    ) -> tuple[list[tuple[Any, ...]], int]:
        """(rows, rows changed) of one statement, in its own transaction."""
        values = tuple(self._parameter(v) for v in parameters)
        if self.postgres:
            sql = sql.replace("?", "%s")
        with self.lock:
            for attempt in (1, 2):
                try:
                    cursor = self.connection.execute(sql, values)
                    rows = cursor.fetchall() if cursor.description else []
                    return rows, cursor.rowcount
                except self.unique_violation:
                    raise
                except Exception as exc:
                    if not self.postgres or attempt == 2 or not self.connection.closed:
                        raise LakeError(f"the API key store failed: {mask(str(exc))}") from None
                    self.connect()  # a PostgreSQL restart: connect again once
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self.lock:
            self.connection.close()


class KeyStore:
    """API keys of one project: create, list, revoke, and check the key of a request."""

    COLUMNS = "name, tier, created, expires, revoked, last_used, requests"

    def __init__(self, settings: Settings):
        self.location = store_location(settings)
        self.db = _Database(self.location)
        self.cache_seconds = max(0.0, settings.access.key_cache_seconds)
        self.flush_seconds = max(0.05, settings.access.usage_flush_seconds)
        self._checked: dict[bytes, tuple[float, KeyInfo | None]] = {}
        self._checked_lock = threading.Lock()
        self._usage: dict[str, tuple[int, datetime]] = {}
        self._usage_lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    # -- the command line's side ---------------------------------------------------------------

    def create(self, name: str, tier: str, expires_in: timedelta | None = None) -> str:
        """A new key for ``name``; returns the key, which is not kept and cannot be shown again."""
        if not KEY_NAME.match(name):
            raise UrbanLakeError(
                f"'{name}' is not a key name: 1–100 letters, digits, '.', '_' and '-', "
                "starting with a letter or digit"
            )
        if tier not in KEY_TIERS:
            raise UrbanLakeError(f"unknown tier '{tier}'; valid: {', '.join(KEY_TIERS)}")
        if expires_in is not None and expires_in <= timedelta(0):
            raise UrbanLakeError("a key's lifetime must be longer than 0")
        created = _now()
        expires = created + expires_in if expires_in is not None else None
        for _ in range(3):
            key_id, secret, salt = (
                secrets.token_hex(6),
                secrets.token_urlsafe(32),
                secrets.token_bytes(16),
            )
            try:
                self.db.execute(
                    f"INSERT INTO {TABLE} (key_id, name, tier, salt, hash, created, expires, requests) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                    (key_id, name, tier, salt.hex(), _hash(secret, salt).hex(), created, expires),
                )
            except self.db.unique_violation:
                if self._row(name) is not None:
                    raise UrbanLakeError(
                        f"a key named '{name}' exists already (a revoked key keeps its name); "
                        "choose another name"
                    ) from None
                continue  # the random id was taken: draw another
            return f"{PREFIX}{key_id}_{secret}"
        raise UrbanLakeError("could not draw an unused key id; try again")

    def list_keys(self) -> list[KeyInfo]:
        """Every key, by name (request counts as last written by the API workers)."""
        rows, _ = self.db.execute(f"SELECT {self.COLUMNS} FROM {TABLE} ORDER BY name")
        return [self._info(row) for row in rows]

    def revoke(self, name: str) -> KeyInfo:
        """Revoke a key: API workers refuse it once their cache of it expires."""
        _, changed = self.db.execute(
            f"UPDATE {TABLE} SET revoked = ? WHERE name = ? AND revoked IS NULL", (_now(), name)
        )
        found = self._row(name)
        if found is None:
            raise NotFound(f"no key named '{name}'; `urbanlake keys list` shows them")
        if not changed:
            raise UrbanLakeError(f"the key '{name}' was revoked already, at {found.revoked}")
        with self._checked_lock:
            self._checked = {
                d: c for d, c in self._checked.items() if c[1] is None or c[1].name != name
            }
        return found

    def _row(self, name: str) -> KeyInfo | None:
        rows, _ = self.db.execute(f"SELECT {self.COLUMNS} FROM {TABLE} WHERE name = ?", (name,))
        return self._info(rows[0]) if rows else None

    @staticmethod
    def _info(row: tuple[Any, ...]) -> KeyInfo:
        name, tier, created, expires, revoked, last_used, requests = row
        created_at = _time(created)
        assert created_at is not None
        return KeyInfo(name, tier, created_at, _time(expires), _time(revoked), _time(last_used),
                       int(requests))  # fmt: skip

    # -- the API's side ------------------------------------------------------------------------

    def is_cached(self, key: str) -> bool:
        """Whether ``check(key)`` would answer from memory (no lookup, no hash): a caller on an
        event loop checks a key that is not cached in a worker thread instead."""
        digest = hashlib.sha256(key.encode()).digest()
        with self._checked_lock:
            cached = self._checked.get(digest)
        return cached is not None and cached[0] > time.monotonic()

    def check(self, key: str) -> KeyInfo:
        """The valid key's record; ``InvalidKey`` for anything else, with one message whatever
        was wrong. Answers (either way) are trusted for ``key_cache_seconds``."""
        digest = hashlib.sha256(key.encode()).digest()
        now = time.monotonic()
        with self._checked_lock:
            cached = self._checked.get(digest)
        if cached is not None and cached[0] > now:
            info = cached[1]
        else:
            info = self._verify(key)
            if self.cache_seconds > 0:
                with self._checked_lock:
                    if len(self._checked) >= MAX_CACHED:
                        self._checked = {}
                    self._checked[digest] = (now + self.cache_seconds, info)
        if info is None or not info.valid_at(_now()):  # a key may expire while trusted
            raise InvalidKey(INVALID)
        return info

    def _verify(self, key: str) -> KeyInfo | None:
        match = KEY.match(key.strip())
        if match is None:
            return None
        key_id, secret = match.groups()
        rows, _ = self.db.execute(
            f"SELECT {self.COLUMNS}, salt, hash FROM {TABLE} WHERE key_id = ?", (key_id,)
        )
        if not rows:
            return None
        *fields, salt, stored = rows[0]
        info = self._info(tuple(fields))
        if not info.valid_at(_now()):
            return None
        if not hmac.compare_digest(_hash(secret, bytes.fromhex(salt)), bytes.fromhex(stored)):
            return None
        return info

    def count_use(self, name: str) -> None:
        """Count one request of a key, in memory; written by the background flush."""
        moment = _now()
        with self._usage_lock:
            count, _ = self._usage.get(name, (0, moment))
            self._usage[name] = (count + 1, moment)
            if self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_loop, name="urbanlake-key-usage", daemon=True
                )
                self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            # On a failure the counts stay in memory and go with the next flush.
            with contextlib.suppress(UrbanLakeError):
                self.flush()

    def flush(self) -> None:
        """Write the counted requests and last uses (one statement per key used since)."""
        with self._usage_lock:
            usage, self._usage = self._usage, {}
        for name, (count, last) in usage.items():
            try:
                self.db.execute(
                    f"UPDATE {TABLE} SET requests = requests + ?, last_used = CASE WHEN "
                    "last_used IS NULL OR last_used < ? THEN ? ELSE last_used END WHERE name = ?",
                    (count, last, last, name),
                )
            except UrbanLakeError:
                with self._usage_lock:  # keep them for the next flush
                    before, seen = self._usage.get(name, (0, last))
                    self._usage[name] = (before + count, max(seen, last))
                raise

    def close(self) -> None:
        """Stop the background flush, write what is counted, close the store."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=10)
        try:
            self.flush()
        finally:
            self.db.close()
