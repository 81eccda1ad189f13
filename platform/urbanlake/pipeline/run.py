"""One connector run: fetch → raw zone → decode → type → quality gate → commit, batch by batch.

Each payload is one commit holding its rows, its quarantined rows and the connector's new state,
so a run killed at any moment resumes where the last whole batch left it. A payload that cannot be
decoded at all is set aside (kept in the raw zone, recorded as ``failed`` with its reason, with the
connector's state) and the run goes on with the next one; the run still ends as failed, naming it.
``replay`` decodes kept payloads again from the raw zone, after the config or the code was fixed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from urbanlake.connectors.base import ConnectorContext, Decoded, Payload, TablePart
from urbanlake.connectors.registry import build_connector
from urbanlake.core.errors import DecodeError, SchemaConflict, SourceError, UrbanLakeError
from urbanlake.core.secrets import mask
from urbanlake.core.settings import Settings
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.lake import Lake
from urbanlake.lakehouse.normalize import ROW
from urbanlake.lakehouse.records import CommitRequest, QuarantineRecord, TableRef
from urbanlake.quality.gate import check_batch, document_bytes
from urbanlake.quality.suite import Suite, suite_for

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What one run did; also the row it leaves in ``platform.runs``."""

    run_id: str
    connector: str
    status: str = "running"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    payloads: int = 0
    rows_in: int = 0
    rows_committed: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    snapshot_id: int | None = None
    quality_failures: int = 0
    payloads_failed: int = 0  # set aside in this run: not decodable
    payloads_held: int = 0  # fetched again but set aside by an earlier run: not decoded again
    failures: list[str] = field(default_factory=list)  # each failure, e.g. each set-aside payload


ProgressCallback = Callable[[RunSummary], None]


def new_run_id() -> str:
    """Sortable by start time, unique across machines."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _as_quarantine(record: Any, check: str) -> QuarantineRecord:
    return QuarantineRecord(
        raw_record=record.raw, reason=record.reason, check_name=check, line=record.line
    )


class Ingestion:
    """Runs one connector against an open lake."""

    def __init__(
        self,
        lake: Lake,
        config: ConnectorConfig,
        settings: Settings,
        progress: ProgressCallback | None = None,
    ):
        self.lake = lake
        self.config = config
        self.settings = settings
        self.progress = progress or (lambda summary: None)
        self.table = TableRef(config.domain, config.name)
        self.timezone = config.table.timezone or settings.defaults.timezone
        self.summary = RunSummary(run_id=new_run_id(), connector=config.table_name)
        self.unrecorded_payloads: list[tuple[str, str, int, str]] = []
        self.known_payloads: dict[str, str] = {}
        self.set_aside: set[str] = set()  # sha256 of this connector's payloads that are set aside
        self.replaying = False
        self.suite: Suite | None = None
        self._gx_warm_up: threading.Thread | None = None
        self._raw_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-zone")

    def run(self) -> RunSummary:
        """Fetch what is new and load it."""
        return self._run(lambda connector, state: connector.fetch(state))

    def replay(self, payloads: list[dict[str, Any]]) -> RunSummary:
        """Decode kept payloads (rows of ``Lake.payload_records``) again from the raw zone.

        The connector's state is left as it is; rows already in a table with a primary key come
        out as duplicates, so replaying a loaded payload adds nothing twice.
        """
        self.replaying = True

        def kept(connector: Any, state: dict[str, Any]) -> Iterator[Payload]:
            for record in payloads:
                yield Payload(
                    content=self.lake.raw.get(record["uri"]),
                    origin=record["origin"],
                    format=record["uri"].rsplit(".", 1)[-1],
                    sha256=record["sha256"],
                )

        return self._run(kept)

    def _run(self, payloads: Callable[[Any, dict[str, Any]], Iterable[Payload]]) -> RunSummary:
        summary = self.summary
        summary.started_at = datetime.now(UTC)
        started = time.perf_counter()
        failures: list[str] = []
        connector = None
        try:
            connector = build_connector(
                self.config, ConnectorContext(self.settings, summary.run_id)
            )
            self.suite = suite_for(self.config, self.settings)
            if self.suite is not None and self.suite.expectations:
                # GX takes seconds to import: do it beside the fetch and decode, not after them.
                from urbanlake.quality.gx_runner import warm_up

                self._gx_warm_up = threading.Thread(target=warm_up, name="gx-warm-up", daemon=True)
                self._gx_warm_up.start()
            state = self.lake.read_state(self.config.table_name)
            self.known_payloads = self.lake.known_payloads(self.config.table_name)
            self.set_aside = {
                p["sha256"]
                for p in self.lake.payload_records(self.config.table_name, status="failed")
            }
            for payload in payloads(connector, state):
                failure = self._ingest_payload(connector, payload)
                if failure:
                    failures.append(failure)
                self.progress(summary)
        except (SourceError, UrbanLakeError) as exc:
            failures.append(mask(str(exc)))
        except Exception as exc:  # a bug must still leave a failed run on record
            log.exception("run %s of %s crashed", summary.run_id, self.config.table_name)
            # The first line only: a library's message may go on with a dump of its structures.
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            failures.append(mask(f"{type(exc).__name__}: {first}"))
        finally:
            self._raw_writer.shutdown(wait=True)
            if connector is not None:
                connector.close()
        summary.seconds = round(time.perf_counter() - started, 3)
        summary.finished_at = datetime.now(UTC)
        summary.status = "failed" if failures else "succeeded"
        summary.error = "; ".join(str(f) for f in failures) or None
        summary.failures = [str(f) for f in failures]
        self.lake.record_run(asdict(summary), self.unrecorded_payloads)
        self.progress(summary)
        return summary

    def _ingest_payload(self, connector: Any, payload: Payload) -> str | None:
        summary = self.summary
        payload.sha256 = payload.sha256 or hashlib.sha256(payload.content).hexdigest()
        was_failed = payload.sha256 in self.set_aside
        if was_failed and not self.replaying:
            # A cursor source asked for the same window again and got the same bytes: they stay
            # set aside until replayed, and the cursor stays behind them.
            connector.state_after_failure(payload)
            summary.payloads_held += 1
            return None
        seen = payload.sha256 in self.known_payloads and not was_failed and not self.replaying
        summary.payloads += 1
        summary.bytes += len(payload.content)
        batch = summary.payloads
        # The raw copy is written while the payload decodes (I/O beside CPU); it is durable before
        # the commit that refers to it.
        pending_raw = self._raw_writer.submit(self._keep_raw, payload)
        try:
            decoded = connector.decode(payload)
        except DecodeError as exc:
            return self._set_aside(connector, payload, batch, pending_raw.result(), str(exc))
        except SourceError:
            pending_raw.result()
            raise
        except Exception as exc:  # a decoder's bug must not stall the connector either
            log.exception("decoding %s failed", payload.origin)
            reason = f"{payload.origin}: could not be decoded ({type(exc).__name__}; a bug, please report it)"
            return self._set_aside(connector, payload, batch, pending_raw.result(), reason)
        except BaseException:
            pending_raw.result()
            raise
        raw = pending_raw.result()
        summary.rows_in += decoded.rows_in
        if self._gx_warm_up is not None:
            # GX's modules must finish importing in one thread before another touches them.
            self._gx_warm_up.join()
        parts = decoded.parts or [
            TablePart("", decoded, self.config.table.primary_key, self.config.table.event_time)
        ]
        failures: list[str] = []
        requests = []
        for part in parts:
            request, failure = self._request_for(part, payload, batch, raw)
            requests.append(request)
            if failure:
                failures.append(failure)
        # The connector's new state rides with the last table's rows: all or nothing. The payload
        # is recorded once, with it. A replay leaves the state as it is.
        state = connector.state_after(payload, decoded)
        requests[-1].state = None if self.replaying else state
        requests[-1].payload_was_failed = was_failed
        for request in requests:
            request.payload_seen = seen
        for request in requests[:-1]:
            request.payload_is_new = False
        for result in self.lake.commit_batches(requests):
            summary.rows_committed += result.inserted
            summary.rows_quarantined += result.quarantined
            summary.rows_duplicate += result.duplicate
            summary.snapshot_id = result.snapshot_id
        return "; ".join(failures) or None

    def _set_aside(
        self, connector: Any, payload: Payload, batch: int, raw: tuple[str, str, bool], reason: str
    ) -> str:
        """Record an undecodable payload as failed, with the connector's state; go on."""
        reason = mask(reason)
        request = CommitRequest(
            table=self.table, rows=pa.table({}), connector=self.config.table_name,
            run_id=self.summary.run_id, batch=batch, origin=payload.origin, payload_sha256=raw[0],
            payload_uri=raw[1], payload_size=len(payload.content), payload_is_new=raw[2],
        )  # fmt: skip
        state = None if self.replaying else connector.state_after_failure(payload)
        self.lake.set_aside_payload(request, reason, state)
        self.set_aside.add(raw[0])
        self.summary.payloads_failed += 1
        return f"{reason} (set aside; payload kept at {raw[1]})"

    def _request_for(
        self, part: TablePart, payload: Payload, batch: int, raw: tuple[str, str, bool]
    ) -> tuple[CommitRequest, str | None]:
        """Type, check and package one table's rows of a payload for the commit."""
        summary = self.summary
        decoded = part.decoded
        table = (
            TableRef(self.config.domain, f"{self.config.name}_{part.suffix}")
            if part.suffix
            else self.table
        )
        quarantined = [_as_quarantine(r, "decode") for r in decoded.bad_records]
        failure = None
        declared = {**part.declared, **self.config.declared_types}
        event_time = part.event_time
        if event_time and event_time not in declared and event_time in decoded.table.column_names:
            kind = decoded.table.schema.field(event_time).type
            if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
                # The event time is a timestamp whatever a first batch's odd value suggests.
                declared[event_time] = "TIMESTAMP WITH TIME ZONE"
        try:
            prepared = self.lake.prepare_batch(
                table, decoded.table, declared, decoded.loose_columns, self.timezone
            )
            rows = prepared.rows
            quarantined += [
                QuarantineRecord(
                    raw_record=raw_json, reason=f"record {pos + 1}: {why}", check_name="type"
                )
                for pos, raw_json, why in prepared.bad
            ]
        except SchemaConflict as exc:
            failure = mask(f"{table}: {exc}; the batch from {payload.origin} is in quarantine")
            quarantined += self._whole_batch(decoded, str(exc), "schema")
            rows = pa.table({ROW: pa.array([], pa.int64())})
        # The dataset's suite judges the connector's own table; tables of a multi-table source
        # (a GTFS feed's files) are typed and key-checked, and get suites of their own later.
        gate = check_batch(self.suite if not part.suffix else None, rows, self.settings)
        rows, quarantined = gate.rows, quarantined + gate.quarantined
        document_uri = None
        if gate.document is not None:
            document_uri = self.lake.keep_document(
                f"quality/{table.domain}/{table.name}/{summary.run_id}/batch-{batch:05d}.json",
                document_bytes(gate.document),
            )
        if gate.rejected:
            failure = failure or f"{table} batch {batch} ({payload.origin}): {gate.rejected}"
        elif gate.failures:
            summary.quality_failures += len(gate.failures)
        request = CommitRequest(
            table=table, rows=rows, connector=self.config.table_name, run_id=summary.run_id, batch=batch,
            quarantined=quarantined, primary_key=part.primary_key, event_time=part.event_time,
            origin=payload.origin, payload_sha256=raw[0], payload_uri=raw[1], payload_size=len(payload.content),
            payload_is_new=raw[2], rows_in=decoded.rows_in, quality_results=gate.results,
            quality_document_uri=document_uri, replace=part.replace,
        )  # fmt: skip
        return request, failure

    def _keep_raw(self, payload: Payload) -> tuple[str, str, bool]:
        """Keep the payload's bytes (once: a payload seen before is found by its hash)."""
        digest = payload.sha256 or hashlib.sha256(payload.content).hexdigest()
        if digest in self.known_payloads:
            return digest, self.known_payloads[digest], False
        stored = self.lake.raw.put(
            payload.content, self.config.domain, self.config.name, payload.format, sha256=digest
        )
        self.known_payloads[digest] = stored.uri
        return stored.sha256, stored.uri, True

    @staticmethod
    def _whole_batch(decoded: Decoded, reason: str, check: str) -> list[QuarantineRecord]:
        return [
            QuarantineRecord(
                raw_record=orjson.dumps(row, default=str).decode(), reason=reason, check_name=check
            )
            for row in decoded.table.to_pylist()
        ]


def ingest(
    lake: Lake,
    config: ConnectorConfig,
    settings: Settings,
    progress: ProgressCallback | None = None,
) -> RunSummary:
    """Run one connector now; returns its summary (also stored in ``platform.runs``)."""
    return Ingestion(lake, config, settings, progress).run()


def worker_id() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"
