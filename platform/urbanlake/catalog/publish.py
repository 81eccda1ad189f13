"""Making versions of curated datasets: SQL models materialized when an input changed, and a
version (with lineage and statistics) recorded for every dataset whose data moved on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from urbanlake.catalog.entry import DatasetEntry
from urbanlake.core.errors import LakeError, UrbanLakeError
from urbanlake.lakehouse.lake import Lake
from urbanlake.lakehouse.records import TableRef
from urbanlake.lakehouse.versions import (
    VersionRecord,
    materialize_model,
    model_inputs,
    record_version,
)


@dataclass
class Published:
    dataset: str
    status: str  # "new version", "up to date", "waiting" (no input yet), "failed"
    version: int | None = None
    rows: int | None = None
    detail: str = ""


def _inputs_now(
    lake: Lake, entry: DatasetEntry, upto: int | None = None
) -> list[dict[str, Any]] | None:
    """Each input table with the snapshot of its last change (up to ``upto``); None if an input
    is missing."""
    names = [entry.source.table] if entry.source.table else model_inputs(lake, entry.model_sql())
    inputs = []
    for name in names:
        assert name is not None
        last = lake.reader.last_change(TableRef.parse(name), upto)
        if last is None:
            return None
        inputs.append({"table": name, "snapshot": last})
    return inputs


def is_stale(lake: Lake, entry: DatasetEntry, latest: dict[str, Any] | None) -> bool:
    inputs = _inputs_now(lake, entry)
    if inputs is None:
        return False
    return latest is None or latest["inputs"] != inputs


def publish_entry(
    lake: Lake, entry: DatasetEntry, latest: dict[str, Any] | None, force: bool = False
) -> Published:
    """A new version of one dataset if its inputs moved on since its latest version (or ``force``)."""
    pinned = lake.reader.current_snapshot()
    inputs = _inputs_now(lake, entry, pinned)
    if inputs is None:
        missing = entry.source.table or "an input table of its SQL model"
        return Published(entry.name, "waiting", detail=f"{missing} has no data yet")
    if latest is not None and latest["inputs"] == inputs and not force:
        return Published(entry.name, "up to date", latest["version"], latest["row_count"])
    if entry.is_model:
        tables = [i["table"] for i in inputs]
        version, seen = materialize_model(
            lake, TableRef.parse(entry.table), entry.model_sql(), tables
        )
        record = VersionRecord(entry.name, version, entry.table, seen, "model")
        previous = None  # a rebuilt model is a new table: its statistics are made afresh
    else:
        version = pinned  # read at this snapshot, whatever an ingest commits meanwhile
        record = VersionRecord(entry.name, version, entry.table, inputs, "table")
        previous = latest
    made = record_version(lake, record, previous)
    return Published(entry.name, "new version", version, made["row_count"])


def publish(
    lake: Lake,
    entries: list[DatasetEntry],
    names: list[str] | None = None,
    force: bool = False,
    tables: set[str] | None = None,
    progress: Callable[[Published], None] | None = None,
) -> list[Published]:
    """Refresh what is stale: every entry, the ``names`` given, or those fed by ``tables``."""
    latest = lake.reader.latest_dataset_versions()
    chosen = [e for e in entries if names is None or e.name in names]
    results = []
    for entry in chosen:
        if tables is not None and not _fed_by(lake, entry, tables):
            continue
        try:
            result = publish_entry(lake, entry, latest.get(entry.name), force)
        except (LakeError, UrbanLakeError, OSError) as exc:
            result = Published(entry.name, "failed", detail=str(exc))
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def _fed_by(lake: Lake, entry: DatasetEntry, tables: set[str]) -> bool:
    if entry.source.table:
        return entry.source.table in tables
    try:
        return bool(set(model_inputs(lake, entry.model_sql())) & tables)
    except LakeError:
        return True  # let publish_entry report the broken model
