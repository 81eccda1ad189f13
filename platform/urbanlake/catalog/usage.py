"""The API's usage as lake data: requests counted in memory per worker on the request path (one
dict increment), appended to ``platform.api_usage`` in batches by a background thread, never by a
request. A failed write keeps its counts for the next one."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from urbanlake.core.secrets import mask
from urbanlake.core.settings import Settings
from urbanlake.lakehouse.lake import Lake
from urbanlake.lakehouse.schema import PLATFORM_TABLES, insert_sql, platform_table

log = logging.getLogger("uvicorn.error")
COLUMNS = list(PLATFORM_TABLES["api_usage"])
ROWS_PER_INSERT = 500  # rows of one INSERT … VALUES statement
MAX_GROUPS = 200_000  # counts held while the lake cannot be written; past this the oldest go

# (minute as epoch seconds, key, tier, address, dataset, endpoint, method, status)
Group = tuple[int, str | None, str, str | None, str | None, str, str, int]


@lru_cache(maxsize=4096)
def kept_address(address: str | None, how: str) -> str | None:
    """What usage keeps of an anonymous caller's address: its network (IPv4 /24, IPv6 /48), all
    of it, or nothing. A network says which organisation calls without naming a person."""
    if address is None or how == "none":
        return None
    if how == "full":
        return address
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None  # not an IP address (a test client, a Unix socket): nothing to keep
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class ApiUsage:
    """One API worker's request counts, flushed to ``platform.api_usage`` every
    ``quota.usage_flush_seconds`` and when the worker stops."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.interval = max(0.1, settings.quota.usage_flush_seconds)
        self.address_kept = settings.quota.usage_address
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.counts: dict[Group, list[int]] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.lake: Lake | None = None

    def count(
        self,
        key: str | None,
        tier: str,
        address: str | None,
        dataset: str | None,
        endpoint: str,
        method: str,
        status: int,
        size: int,
    ) -> None:
        """One request: the only work usage does on the request path."""
        kept = None if key is not None else kept_address(address, self.address_kept)
        group = (int(time.time()) // 60 * 60, key, tier, kept, dataset, endpoint, method, status)
        with self.lock:
            found = self.counts.get(group)
            if found is None:
                self.counts[group] = [1, size]
            else:
                found[0] += 1
                found[1] += size

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="api-usage", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Write what is counted, then stop the thread."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)
        else:
            self.flush()
        self._close()

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Append the counts so far to the lake; returns the rows written (0 when it failed:
        the counts are kept for the next flush)."""
        with self.lock:
            counts, self.counts = self.counts, {}
        if not counts:
            return 0
        rows = [
            [datetime.fromtimestamp(group[0], UTC), *group[1:], requests, size, self.worker]
            for group, (requests, size) in counts.items()
        ]
        try:
            self._write(rows)
        except Exception as exc:  # any failure: keep the counts, never lose a request
            log.warning("API usage not written, kept for the next try: %s", mask(str(exc)))
            self._close()
            self._keep(counts)
            return 0
        return len(rows)

    def _keep(self, counts: dict[Group, list[int]]) -> None:
        with self.lock:
            for group, (requests, size) in counts.items():
                found = self.counts.setdefault(group, [0, 0])
                found[0] += requests
                found[1] += size
            if len(self.counts) > MAX_GROUPS:
                dropped = sorted(self.counts)[: len(self.counts) - MAX_GROUPS]
                for group in dropped:
                    del self.counts[group]
                log.error("API usage: %d oldest counts dropped, the lake took none", len(dropped))

    def _write(self, rows: list[list[Any]]) -> None:
        if self.lake is None:
            self.lake = Lake.open(self.settings)  # opened by the thread that writes, kept open
        lake = self.lake
        statements = []
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start : start + ROWS_PER_INSERT]
            values = ", ".join(["(" + ", ".join("?" * len(COLUMNS)) + ")"] * len(chunk))
            sql = insert_sql(platform_table("api_usage"), COLUMNS, f"VALUES {values}")
            statements.append((sql, [value for row in chunk for value in row]))

        def work() -> None:
            for sql, parameters in statements:
                lake.con.execute(sql, parameters)

        # One snapshot for the batch, in the retried transaction every platform table is
        # written in (another writer may commit to the lake at the same moment).
        lake._retry(work)

    def _close(self) -> None:
        if self.lake is not None:
            with contextlib.suppress(Exception):
                self.lake.close()
            self.lake = None
