"""Quotas: requests per caller and tier (per address for anonymous callers, per key otherwise),
counted with the `limits` library in a storage every API worker sees, announced on every answer
in the IETF RateLimit fields, and a 429 in the one error shape once a quota is spent. Each
request is also counted for ``platform.api_usage`` (catalog.usage), in memory.

The fields follow draft-ietf-httpapi-ratelimit-headers-10 (the HTTPAPI working group's draft,
2025): ``RateLimit-Policy: "public";q=60;w=60`` (quota and window in seconds, the same on every
answer) and ``RateLimit: "public";r=59;t=42`` (remaining and seconds until the window resets).
"""

from __future__ import annotations

import logging
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from prometheus_client import Counter
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from urbanlake.api.access import resolve_caller
from urbanlake.api.errors import error_response, refused_response
from urbanlake.catalog.service import Caller
from urbanlake.catalog.usage import ApiUsage
from urbanlake.core.errors import ConfigError, UrbanLakeError
from urbanlake.core.secrets import mask
from urbanlake.core.settings import Settings

log = logging.getLogger("uvicorn.error")
TIERS = ("public", "partner", "internal")
UNLIMITED_PATHS = {"/healthz", "/metrics", "/api/v1/openapi.json"}
UNLIMITED_PREFIX = ("/api/v1/docs", "/static/")  # the docs page, the web pages' assets
STORAGE_PAUSE = 5.0  # seconds requests pass unlimited after the storage failed, before a new try
WARN_EVERY = 60.0  # seconds between two warnings that the storage is down
STORAGE_ERRORS = Counter(
    "urbanlake_quota_storage_errors_total",
    "quota storage calls that failed (the requests passed unlimited)",
)


class SqliteStorage(Storage):
    """Fixed-window counters in one SQLite file in WAL mode: the worker processes of one
    machine share the count without another service. ``sqlite:///relative/path`` or
    ``sqlite:////absolute/path``; one UPSERT per hit."""

    STORAGE_SCHEME = ["sqlite"]
    SWEEP_EVERY = 60.0  # seconds between two deletions of finished windows

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: float | str | bool):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        path = Path(uri.removeprefix("sqlite:///"))  # four slashes: an absolute path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(
            path,
            timeout=float(options.get("timeout", 1.0)),
            isolation_level=None,  # each statement its own transaction
            check_same_thread=False,
        )
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")  # counters need no fsync per hit
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS quota_counts "
            "(key TEXT PRIMARY KEY, hits INTEGER NOT NULL, expires REAL NOT NULL) WITHOUT ROWID"
        )
        self.lock = threading.Lock()
        # A window's end never moves until it has passed: the end the last hit returned is
        # reused, so a hit and its RateLimit field cost one statement.
        self.expiries: dict[str, float] = {}
        self.next_sweep = 0.0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self.lock:
            row = self.con.execute(
                "INSERT INTO quota_counts (key, hits, expires) VALUES (?1, ?2, ?3) "
                "ON CONFLICT (key) DO UPDATE SET "
                "hits = CASE WHEN expires <= ?4 THEN ?2 ELSE hits + ?2 END, "
                "expires = CASE WHEN expires <= ?4 THEN ?3 ELSE expires END "
                "RETURNING hits, expires",
                (key, amount, now + expiry, now),
            ).fetchone()
            if len(self.expiries) > 10_000:
                self.expiries.clear()
            self.expiries[key] = row[1]
            if now >= self.next_sweep:
                self.next_sweep = now + self.SWEEP_EVERY
                self.con.execute("DELETE FROM quota_counts WHERE expires <= ?", (now,))
        return int(row[0])

    def get(self, key: str) -> int:
        with self.lock:
            row = self.con.execute(
                "SELECT hits FROM quota_counts WHERE key = ? AND expires > ?", (key, time.time())
            ).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        known = self.expiries.get(key)
        if known is not None and known > now:
            return known
        with self.lock:
            row = self.con.execute(
                "SELECT expires FROM quota_counts WHERE key = ? AND expires > ?", (key, now)
            ).fetchone()
        return float(row[0]) if row else now

    def check(self) -> bool:
        try:
            with self.lock:
                self.con.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def reset(self) -> int | None:
        with self.lock:
            self.expiries.clear()
            return self.con.execute("DELETE FROM quota_counts").rowcount

    def clear(self, key: str) -> None:
        with self.lock:
            self.expiries.pop(key, None)
            self.con.execute("DELETE FROM quota_counts WHERE key = ?", (key,))


def storage_uri(settings: Settings) -> str:
    """``quota.storage``, or the SQLite file in the project's working folder."""
    uri = settings.quota.storage
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{(settings.project_dir / uri.removeprefix('sqlite:///')).resolve()}"
    if uri:
        return uri
    return f"sqlite:///{(settings.state_dir / 'quota.sqlite').resolve()}"


def open_storage(settings: Settings) -> Storage:
    uri = storage_uri(settings)
    options: dict[str, float | str | bool] = {}
    if uri.split("://", 1)[0] in ("redis", "rediss", "redis+unix", "valkey", "valkeys"):
        # A Redis that does not answer must not hold a request for long: fail fast, pass open.
        options = {"socket_timeout": 0.25, "socket_connect_timeout": 0.25}
    try:
        storage = storage_from_string(uri, wrap_exceptions=True, **options)
    except Exception as exc:
        raise ConfigError(mask(f"quota.storage {uri!r} cannot be used: {exc}")) from None
    if not isinstance(storage, Storage):
        raise ConfigError(f"quota.storage {mask(uri)!r} is an asynchronous storage: drop async+")
    return storage


@dataclass(frozen=True)
class Policy:
    """One limit of a tier, named in the RateLimit fields."""

    name: str
    item: RateLimitItem

    @property
    def field(self) -> str:
        return f'"{self.name}";q={self.item.amount};w={self.item.get_expiry()}'


@dataclass
class Decision:
    """What a hit answered: the fields to add, and the seconds to wait when a quota is spent."""

    headers: list[tuple[bytes, bytes]]
    retry_after: int | None = None
    spent: Policy | None = None


class Quotas:
    """Every tier's policies and the storage the counts live in."""

    def __init__(self, settings: Settings):
        self.policies: dict[str, list[Policy]] = {}
        self.policy_field: dict[str, bytes] = {}
        for tier in TIERS:
            notation = getattr(settings.quota, tier)
            items = parse_many(notation) if notation else []
            named = [
                Policy(tier if len(items) == 1 else f"{tier}-{item.get_expiry()}s", item)
                for item in items
            ]
            if named:
                self.policies[tier] = named
                self.policy_field[tier] = ", ".join(p.field for p in named).encode()
        self.storage = open_storage(settings) if self.policies else None
        self.paused_until = 0.0
        self.warned_at = 0.0

    def hit(self, tier: str, who: str) -> Decision | None:
        """Count one request of ``who`` (a key's name or an address) against its tier's
        policies; None when the tier has none."""
        policies = self.policies.get(tier)
        if not policies or self.storage is None:
            return None
        headers = [(b"ratelimit-policy", self.policy_field[tier])]
        now = time.time()
        if now < self.paused_until:
            return Decision(headers)  # the storage failed a moment ago: pass, uncounted
        limits = []
        retry_after: int | None = None
        spent = None
        try:
            for policy in policies:
                key = policy.item.key_for(tier, who)
                window = policy.item.get_expiry()
                hits = self.storage.incr(key, window)
                reset = min(window, max(0, math.ceil(self.storage.get_expiry(key) - now)))
                limits.append(f'"{policy.name}";r={max(0, policy.item.amount - hits)};t={reset}')
                if hits > policy.item.amount and (retry_after is None or reset > retry_after):
                    retry_after, spent = max(1, reset), policy
        except Exception as exc:  # a storage that is down must not take the API down
            self._storage_failed(exc, now)
            return Decision(headers)
        headers.append((b"ratelimit", ", ".join(limits).encode()))
        return Decision(headers, retry_after, spent)

    def _storage_failed(self, exc: Exception, now: float) -> None:
        STORAGE_ERRORS.inc()
        self.paused_until = now + STORAGE_PAUSE
        if now - self.warned_at >= WARN_EVERY:
            self.warned_at = now
            log.warning(
                "quota storage failed (%s); requests pass unlimited until it answers again",
                mask(str(exc)),
            )


class QuotaMiddleware:
    """Resolves the caller, hits its quota, adds the RateLimit fields to the answer (or answers
    429 or the key's 401 itself) and counts the request for usage. Plain ASGI: no extra task or
    copy of the body per request."""

    def __init__(
        self,
        app: ASGIApp,
        quotas: Quotas,
        usage: ApiUsage | None,
        openapi: Callable[[], dict[str, Any]],
    ):
        self.app = app
        self.quotas = quotas
        self.usage = usage
        self.openapi = openapi
        self.templates: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in UNLIMITED_PATHS or path.startswith(UNLIMITED_PREFIX):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refused: UrbanLakeError | None = None
        try:
            caller = await resolve_caller(request)
        except UrbanLakeError as exc:
            # A key that is not valid: the attempt counts against its address's public quota,
            # so guessing keys is as limited as anything else an anonymous caller does.
            refused = exc
            caller = Caller(address=request.client.host if request.client else None)
        who = caller.key if caller.key is not None else (caller.address or "unknown")
        decision = self.quotas.hit(caller.tier, who)
        fields = decision.headers if decision else []
        if decision is not None and decision.retry_after is not None:
            await self._refuse(scope, receive, send, caller, fields, *self._spent(decision))
            return
        if refused is not None:
            response = refused_response(refused, {k.decode(): v.decode() for k, v in fields})
            await self._answer(scope, receive, send, caller, response)
            return

        sent = [0, 0]  # status, body bytes

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent[0] = message["status"]
                if fields:
                    message["headers"] = [*message.get("headers", ()), *fields]
            elif message["type"] == "http.response.body":
                sent[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            if self.usage is not None:
                route = scope.get("route")
                endpoint = getattr(route, "path", None) or "unmatched"
                dataset = scope.get("path_params", {}).get("name")
                self.usage.count(caller.key, caller.tier, caller.address, dataset, endpoint,
                                 scope["method"], sent[0] or 500, sent[1])  # fmt: skip

    @staticmethod
    def _spent(decision: Decision) -> tuple[int, Policy]:
        assert decision.retry_after is not None and decision.spent is not None
        return decision.retry_after, decision.spent

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        caller: Caller,
        fields: list[tuple[bytes, bytes]],
        retry_after: int,
        policy: Policy,
    ) -> None:
        headers = {k.decode(): v.decode() for k, v in fields}
        headers["Retry-After"] = str(retry_after)
        item = policy.item
        whose = "this key's" if caller.key is not None else "this address's"
        message = (
            f"too many requests: {whose} quota of {item.amount} per {item.get_expiry()} s "
            f"({policy.name}) is spent; try again in {retry_after} s"
        )
        details = [{"policy": policy.name, "quota": item.amount, "window": item.get_expiry(),
                    "retry_after": retry_after}]  # fmt: skip
        # A person's browser asking for a page gets a page that says so (app.state.page_error).
        request = Request(scope)
        page_error = getattr(request.app.state, "page_error", None)
        response = page_error(request, 429, message) if page_error else None
        if response is not None:
            response.headers.update(headers)
        else:
            response = error_response(429, "rate_limited", message, details, headers=headers)
        await self._answer(scope, receive, send, caller, response)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, caller: Caller, response: Any
    ) -> None:
        """An answer made here, before routing: counted for usage with the route it asked for."""
        await response(scope, receive, send)
        if self.usage is not None:
            endpoint, dataset = self._route_of(scope["path"])
            self.usage.count(caller.key, caller.tier, caller.address, dataset, endpoint,
                             scope["method"], response.status_code, len(response.body))  # fmt: skip

    def _route_of(self, path: str) -> tuple[str, str | None]:
        """The route template and dataset a path asks for, as routing would find them (the
        OpenAPI document lists the routes in routing order)."""
        if self.templates is None:
            self.templates = [(compile_path(t)[0], t) for t in self.openapi().get("paths", {})]
        for pattern, template in self.templates:
            found = pattern.match(path)
            if found:
                return template, found.groupdict().get("name")
        return "unmatched", None
