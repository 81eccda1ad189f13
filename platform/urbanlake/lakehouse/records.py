"""What the lakehouse speaks in: table names, the platform's own tables, and the records a commit takes and gives back."""

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
PLATFORM = "platform"
COMMIT_RETRIES = 8

PLATFORM_TABLES = {
    "runs": """run_id VARCHAR, connector VARCHAR, status VARCHAR, started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ, payloads BIGINT, rows_in BIGINT, rows_committed BIGINT,
        rows_quarantined BIGINT, rows_duplicate BIGINT, bytes BIGINT, seconds DOUBLE, error VARCHAR,
        quality_failures BIGINT""",
    "commits": """dataset VARCHAR, run_id VARCHAR, batch INTEGER, committed_at TIMESTAMPTZ,
        rows_in BIGINT, rows_inserted BIGINT, rows_quarantined BIGINT, rows_duplicate BIGINT,
        rows_total BIGINT, payload_sha256 VARCHAR, origin VARCHAR""",
    "connector_state": "connector VARCHAR, run_id VARCHAR, batch INTEGER, committed_at TIMESTAMPTZ, state VARCHAR",
    "payloads": """sha256 VARCHAR, connector VARCHAR, uri VARCHAR, size BIGINT, origin VARCHAR,
        run_id VARCHAR, first_seen TIMESTAMPTZ""",
    "quality_results": """dataset VARCHAR, run_id VARCHAR, batch INTEGER, snapshot_id BIGINT,
        validated_at TIMESTAMPTZ, expectation VARCHAR, column_name VARCHAR, kwargs VARCHAR,
        success BOOLEAN, row_level BOOLEAN, observed_value VARCHAR, unexpected_count BIGINT,
        unexpected_percent DOUBLE, on_failure VARCHAR, result_uri VARCHAR""",
}
QUARANTINE_COLUMNS = """run_id VARCHAR, batch INTEGER, quarantined_at TIMESTAMPTZ, origin VARCHAR,
    payload_sha256 VARCHAR, line BIGINT, check_name VARCHAR, reason VARCHAR, raw_record VARCHAR"""


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
