"""What the lakehouse speaks in: table names, and the records a commit takes and gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from urbanlake.core.errors import NotFound
from urbanlake.lakehouse.connection import LAKE
from urbanlake.lakehouse.normalize import quote

QUARANTINE_SUFFIX = "__quarantine"
KEY_ISSUES = "__row_key_issues"
COMMIT_RETRIES = 8


@dataclass(frozen=True)
class TableRef:
    domain: str
    name: str

    @classmethod
    def parse(cls, text: str) -> TableRef:
        domain, dot, name = text.partition(".")
        if not dot or not domain or not name:
            raise NotFound(f"'{text}' is not a table name: use <domain>.<table>")
        return cls(domain, name)

    @property
    def sql(self) -> str:
        return f"{LAKE}.{quote(self.domain)}.{quote(self.name)}"

    @property
    def quarantine(self) -> TableRef:
        return TableRef(self.domain, self.name + QUARANTINE_SUFFIX)

    def __str__(self) -> str:
        return f"{self.domain}.{self.name}"


@dataclass
class QuarantineRecord:
    """A row that will not enter its table: kept with why, where from and as it was received."""

    raw_record: str
    reason: str
    check_name: str
    line: int | None = None


@dataclass
class CommitRequest:
    table: TableRef
    rows: pa.Table
    connector: str
    run_id: str
    batch: int
    quarantined: list[QuarantineRecord] = field(default_factory=list)
    state: dict[str, Any] | None = None
    primary_key: list[str] = field(default_factory=list)
    event_time: str | None = None
    origin: str = ""
    payload_sha256: str | None = None
    payload_uri: str | None = None
    payload_size: int = 0
    payload_is_new: bool = True
    payload_was_failed: bool = False  # a set-aside payload decoded again: mark it loaded
    payload_seen: bool = False  # the same bytes were loaded before: nothing new to quarantine
    rows_in: int | None = None
    # One row per expectation checked on this batch (see quality.gate.RESULT_COLUMNS).
    quality_results: pa.Table | None = None
    quality_document_uri: str | None = None
    replace: bool = False  # the rows are the table's whole new content (e.g. a GTFS feed version)


@dataclass
class CommitResult:
    snapshot_id: int
    inserted: int
    quarantined: int
    duplicate: int
    total: int


@dataclass
class TableStats:
    name: str
    rows: int
    last_commit: datetime | None
    snapshot_id: int | None
    quarantined: int
