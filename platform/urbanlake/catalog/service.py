"""The catalog as the API sees it: curated entries, the lake's read side, who may see what, and
caches of what never changes (a version's statistics, counts and facets per version and filter)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from urbanlake.catalog.entry import DatasetEntry, load_entries
from urbanlake.connectors.registry import load_configs
from urbanlake.core.errors import NotFound, UrbanLakeError
from urbanlake.core.settings import Settings
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.connection import open_connection
from urbanlake.lakehouse.raw import RawStore
from urbanlake.lakehouse.reader import LakeReader
from urbanlake.lakehouse.sql_sandbox import SqlSandbox
from urbanlake.quality.suite import suite_for

VERSIONS_TTL = 1.0  # seconds a list of published versions is reused before it is read again
TIERS = {"public": ("public",), "partner": ("public", "partner"),
         "internal": ("public", "partner", "internal")}  # fmt: skip


@dataclass(frozen=True)
class Caller:
    """Who asks: anonymous callers see public datasets only; a key's caller carries its name."""

    tier: str = "public"
    key: str | None = None  # the API key's name; None for an anonymous caller
    address: str | None = None  # the client's IP address, for per-IP quotas and usage

    def sees_live(self, entry: DatasetEntry) -> bool:
        """Whether the caller's tier reads the dataset's latest version."""
        return entry.access in TIERS.get(self.tier, ("public",))

    def may_see(self, entry: DatasetEntry) -> bool:
        """Live, or late by the dataset's ``public_delay``; otherwise it does not exist for them."""
        return self.sees_live(entry) or entry.delay is not None

    def delay(self, entry: DatasetEntry) -> timedelta | None:
        """How late the caller reads the dataset: None for live (or not at all, see may_see)."""
        return None if self.sees_live(entry) else entry.delay


ANONYMOUS = Caller()


class LruCache:
    """A thread-safe LRU map for answers that a version pins for good, bounded by the total
    weight of what it holds (about the number of values: a page of 100 rows × 8 columns
    weighs 800)."""

    def __init__(self, budget: int):
        self.budget = budget
        self.weight = 0
        self.items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key][0]
        return None

    def put(self, key: Any, value: Any, weight: int = 1) -> None:
        if weight > self.budget // 4:
            return  # one answer may not push out most of the others
        with self.lock:
            if key in self.items:
                self.weight -= self.items.pop(key)[1]
            self.items[key] = (value, weight)
            self.weight += weight
            while self.weight > self.budget and self.items:
                self.weight -= self.items.popitem(last=False)[1][1]


class Catalog:
    """Entries loaded once at start; the lake read through one connection, a cursor per call."""

    def __init__(self, settings: Settings):
        self.settings = settings
        connectors, _ = load_configs(settings.connectors_dir)
        entries, self.problems = load_entries(settings.catalog_dir, connectors)
        # By name, once: ``visible`` runs on every search, health check and SQL query.
        self.entries = {e.name: e for e in sorted(entries, key=lambda e: e.name)}
        # Each dataset's freshness SLA, read once: its own, else its source connector's suite's.
        by_table = {c.table_name: c for c in connectors}
        self.max_age = {
            e.name: freshness_limit(e, by_table.get(e.table), settings) for e in entries
        }
        self.connection = open_connection(settings)
        limit = settings.api.memory_limit
        if limit:
            self.connection.execute(f"SET memory_limit = '{limit}'")
        self.connection.execute(
            f"SET temp_directory = '{(settings.state_dir / 'duckdb_spill').as_posix()}'"
        )
        self.raw = RawStore(settings)
        self.answers = LruCache(settings.api.cache_values)
        self._versions: tuple[float, dict[str, list[dict[str, Any]]], int] | None = None
        self._versions_lock = threading.Lock()
        self._sandbox: SqlSandbox | None = None
        self._sandbox_lock = threading.Lock()

    def close(self) -> None:
        with self._sandbox_lock:
            if self._sandbox is not None:
                self._sandbox.close()
                self._sandbox = None
        self.connection.close()

    def sql_sandbox(self) -> SqlSandbox:
        """The worker's connection for public SQL, opened on first use, closed with the catalog."""
        with self._sandbox_lock:
            if self._sandbox is None:
                self._sandbox = SqlSandbox.open(self.settings, self.settings.sql.memory_limit)
            return self._sandbox

    def reader(self) -> LakeReader:
        """A reader on its own cursor: one per request, safe beside the others."""
        return LakeReader(self.connection.cursor(), self.raw)

    def entry(self, caller: Caller, name: str) -> DatasetEntry:
        """The entry, if the caller may see it; otherwise exactly what a missing one answers."""
        entry = self.entries.get(name)
        if entry is None or not caller.may_see(entry):
            raise NotFound(f"no dataset '{name}'")
        return entry

    def visible(self, caller: Caller) -> list[DatasetEntry]:
        """The entries the caller may see, by name."""
        return [e for e in self.entries.values() if caller.may_see(e)]

    def cutoff(self, caller: Caller, entry: DatasetEntry) -> datetime | None:
        """The moment the caller reads the dataset as of: now minus its public delay for a
        caller below its tier; None for a caller who reads it live."""
        delay = caller.delay(entry)
        return None if delay is None else datetime.now(UTC) - delay

    def versions_for(self, caller: Caller, name: str) -> list[dict[str, Any]]:
        """The versions of a dataset the caller may read, newest first: every published one, or
        for a caller who reads it late, those made at least its ``public_delay`` ago. The one
        place that decides; every surface (pins, cursors, version lists, changes, files,
        metadata) reads versions through it. Not visible: exactly a missing dataset's 404."""
        entry = self.entry(caller, name)
        versions = self.versions(name)
        cutoff = self.cutoff(caller, entry)
        if cutoff is None:
            return versions
        return [v for v in versions if v["made_at"] <= cutoff]

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every published version of a dataset, newest first, for no caller in particular
        (re-read at most once a second): what a caller sees comes from ``versions_for``."""
        return self._lake_state()[1].get(name, [])

    def lake_snapshot(self) -> int:
        """The lake's current snapshot, as of the last read (at most a second ago): answers
        derived from the whole lake (quality evidence) are kept under it."""
        return self._lake_state()[2]

    def _lake_state(self) -> tuple[float, dict[str, list[dict[str, Any]]], int]:
        now = time.monotonic()
        with self._versions_lock:
            cached = self._versions
        if cached is None or now - cached[0] > VERSIONS_TTL:
            reader = self.reader()
            try:
                snapshot = reader.current_snapshot()
                rows = reader.dataset_versions()
            finally:
                reader.close()
            grouped: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                grouped.setdefault(row["dataset"], []).append(row)
            cached = (now, grouped, snapshot)
            with self._versions_lock:
                self._versions = cached
        return cached


def freshness_limit(
    entry: DatasetEntry, connector: ConnectorConfig | None, settings: Settings
) -> timedelta | None:
    if entry.freshness is not None:
        return entry.freshness.limit
    if connector is None:
        return None
    try:
        suite = suite_for(connector, settings)
    except UrbanLakeError:
        return None  # a broken suite is `urbanlake check`'s to report, not the API's
    return suite.freshness.limit if suite is not None and suite.freshness is not None else None
