"""What the quality evidence says: per-dataset scores, freshness against SLAs, trends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from urbanlake.core.settings import Settings
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.lake import Lake
from urbanlake.quality.suite import suite_for

RECENT_BATCHES = 10


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


def quality_scores(lake: Lake) -> dict[str, tuple[float | None, datetime | None]]:
    """dataset → (score over its last batches, time of the last batch that passed entirely)."""
    rows = lake.query(
        f"""WITH batches AS (
                SELECT dataset, run_id, batch, max(validated_at) AS checked_at, bool_and(success) AS passed,
                       count(*) FILTER (WHERE success) AS ok, count(*) AS n,
                       row_number() OVER (PARTITION BY dataset ORDER BY max(validated_at) DESC) AS recent
                FROM platform.quality_results GROUP BY dataset, run_id, batch)
            SELECT dataset,
                   sum(ok) FILTER (WHERE recent <= {RECENT_BATCHES}) / sum(n) FILTER (WHERE recent <= {RECENT_BATCHES}) AS score,
                   max(checked_at) FILTER (WHERE passed) AS last_passed
            FROM batches GROUP BY dataset"""
    ).to_pylist()
    return {r["dataset"]: (r["score"], r["last_passed"]) for r in rows}


def dataset_status(
    lake: Lake, configs: list[ConnectorConfig], settings: Settings
) -> list[DatasetStatus]:
    """Every configured dataset (and any other table) with freshness and quality."""
    stats = {s.name: s for s in lake.table_stats()}
    scores = quality_scores(lake)
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


def latest_results(lake: Lake, dataset: str) -> list[dict[str, Any]]:
    """The latest result of each expectation of the dataset."""
    return lake.query(
        """SELECT expectation, column_name, kwargs, success, observed_value, unexpected_count,
                  unexpected_percent, validated_at, run_id, batch, snapshot_id, result_uri
           FROM platform.quality_results WHERE dataset = ?
           QUALIFY row_number() OVER (PARTITION BY expectation, kwargs ORDER BY validated_at DESC, batch DESC) = 1
           ORDER BY expectation, column_name""",
        [dataset],
    ).to_pylist()


def trend(lake: Lake, dataset: str, runs: int = 10) -> list[dict[str, Any]]:
    """Per recent run: batches validated, expectation results passed and failed, rows quarantined."""
    return lake.query(
        """SELECT q.run_id, min(q.validated_at) AS validated_at, count(DISTINCT q.batch) AS batches,
                  count(*) FILTER (WHERE q.success) AS passed, count(*) FILTER (WHERE NOT q.success) AS failed,
                  any_value(r.rows_quarantined) AS quarantined
           FROM platform.quality_results q LEFT JOIN platform.runs r USING (run_id)
           WHERE q.dataset = ? GROUP BY q.run_id ORDER BY validated_at DESC LIMIT ?""",
        [dataset, runs],
    ).to_pylist()
