"""What the quality evidence says: per-dataset scores, freshness against SLAs, trends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from urbanlake.core.settings import Settings
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.reader import LakeReader
from urbanlake.quality.suite import suite_for


@dataclass
class DatasetStatus:
    name: str
    rows: int
    quarantined: int
    last_commit: datetime | None
    max_age: timedelta | None
    stale: bool
    quality_score: float | None  # share of expectation results passed over the recent batches
    last_passed: datetime | None  # the last batch whose every expectation passed

    @property
    def age(self) -> timedelta | None:
        return datetime.now(UTC) - self.last_commit if self.last_commit else None


def dataset_status(
    reader: LakeReader, configs: list[ConnectorConfig], settings: Settings
) -> list[DatasetStatus]:
    """Every configured dataset (and any other table) with freshness and quality."""
    stats = {s.name: s for s in reader.table_stats()}
    scores = reader.quality_scores()
    now = datetime.now(UTC)
    out = []
    # A multi-table source (GTFS, GBFS) shows as its tables, <name>_<part>, not as itself.
    configured = [
        c.table_name
        for c in configs
        if c.table_name in stats or not any(n.startswith(f"{c.table_name}_") for n in stats)
    ]
    names = configured + sorted(set(stats) - set(configured))
    by_name = {c.table_name: c for c in configs}
    for name in names:
        stat = stats.get(name)
        config = by_name.get(name)
        suite = suite_for(config, settings) if config else None
        max_age = suite.freshness.limit if suite and suite.freshness else None
        last = stat.last_commit if stat else None
        stale = max_age is not None and (last is None or now - last > max_age)
        score, passed = scores.get(name, (None, None))
        out.append(DatasetStatus(name, stat.rows if stat else 0, stat.quarantined if stat else 0,
                                 last, max_age, stale, score, passed))  # fmt: skip
    return out


def latest_results(reader: LakeReader, dataset: str) -> list[dict[str, Any]]:
    """The latest result of each expectation of the dataset."""
    return reader.latest_quality_results(dataset)


def trend(reader: LakeReader, dataset: str, runs: int = 10) -> list[dict[str, Any]]:
    """Per recent run: batches validated, expectation results passed and failed, rows quarantined."""
    return reader.quality_trend(dataset, runs)
