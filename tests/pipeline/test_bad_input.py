"""Bad input never stalls a connector nor poisons a table: the corpus of malformed files in every
format, among good files in one folder, read from disk (``file``) and over HTTP (``http``)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LakeTarget
from tests.pipeline.corpus import BIG, FORMATS, INTERNALS, Case, write_corpus
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.lake import Lake
from urbanlake.pipeline.run import Ingestion, RunSummary, ingest


def file_config(fmt: str, **source: Any) -> ConnectorConfig:
    return ConnectorConfig.model_validate(
        {
            "name": f"readings_{fmt}",
            "domain": "city",
            "source": {"type": "file", "url": f"in/{fmt}", **source},
            "table": {"primary_key": ["id"], "event_time": "ts"},
            "columns": {"level": {"type": "double"}},
        }
    )


def assert_no_internals(*messages: str | None) -> None:
    for message in messages:
        for internal in INTERNALS:
            assert internal not in (message or ""), f"{internal!r} in {message!r}"


def assert_outcome(lake: Lake, summary: RunSummary, table: str, cases: list[Case]) -> None:
    """Every good row loaded, every unreadable payload set aside with its reason, every bad row
    quarantined with its reason, and rows in = committed + quarantined + duplicate per payload."""
    set_aside = [c for c in cases if c.set_aside]
    assert summary.status == "failed"
    assert summary.payloads_failed == len(set_aside)
    assert_no_internals(summary.error, *summary.failures)
    for case in set_aside:
        named = [f for f in summary.failures if f"{case.name}." in f]
        assert len(named) == 1 and case.set_aside in named[0], (case.name, summary.failures)
    kept = lake.query(
        "SELECT origin, status, error FROM platform.payloads WHERE connector = ?", [table]
    ).to_pylist()
    failed = {Path(r["origin"]).stem: r["error"] for r in kept if r["status"] == "failed"}
    assert set(failed) == {c.name for c in set_aside}
    for case in set_aside:
        assert case.set_aside in failed[case.name]
    assert_no_internals(*failed.values())

    loaded = {r["sensor"] for r in lake.query(f"SELECT sensor FROM {table}").to_pylist()}
    assert loaded == {s for c in cases for s in c.good}

    quarantined = lake.query(f"SELECT origin, reason FROM {table}__quarantine").to_pylist()
    assert_no_internals(*(q["reason"] for q in quarantined))
    by_case: dict[str, list[str]] = {}
    for q in quarantined:
        by_case.setdefault(Path(q["origin"]).stem, []).append(q["reason"])
    for case in cases:
        reasons = by_case.get(case.name, [])
        assert len(reasons) == len(case.bad), (case.name, reasons)
        for expected in case.bad:
            match = next((r for r in reasons if expected in r), None)
            assert match is not None, (case.name, expected, reasons)
            reasons.remove(match)

    for commit in lake.query(
        "SELECT * FROM platform.commits WHERE dataset = ?", [table]
    ).to_pylist():
        assert commit["rows_in"] == (
            commit["rows_inserted"] + commit["rows_quarantined"] + commit["rows_duplicate"]
        ), commit

    described = lake.query(f"SELECT column_name, column_type FROM (DESCRIBE {table})")
    types = {r["column_name"]: r["column_type"] for r in described.to_pylist()}
    assert types == {"id": "BIGINT", "ts": "TIMESTAMP WITH TIME ZONE", "sensor": "VARCHAR",
                     "level": "DOUBLE", "n": "BIGINT", "serial": "DECIMAL(38,0)"}  # fmt: skip
    # The 20-digit serials of the two rows that loaded, exactly.
    serials = lake.query(f"SELECT serial::VARCHAR AS s FROM {table} WHERE serial IS NOT NULL")
    exact = [r["s"] for r in serials.to_pylist()]
    assert len(exact) == 2 and all(len(s) == 20 and s.startswith(BIG[:-1]) for s in exact)
    instants = lake.query(f"SELECT ts FROM {table}").column("ts")
    # "2026-01-01T02:00:06+02:00" and "2026-01-01 01:00:08+0100" are 00:00:06 and 00:00:08 UTC.
    moments = {t.as_py().astimezone(UTC) for t in instants}
    assert datetime(2026, 1, 1, 0, 0, 6, tzinfo=UTC) in moments
    assert datetime(2026, 1, 1, 0, 0, 8, tzinfo=UTC) in moments


def assert_replayed(lake: Lake, table: str, cases: list[Case]) -> None:
    """After the fix and a replay: what became readable is loaded, the rest still set aside."""
    loaded = {r["sensor"] for r in lake.query(f"SELECT sensor FROM {table}").to_pylist()}
    assert {s for c in cases for s in c.after_fix} <= loaded
    still = {Path(r["origin"]).stem for r in lake.payload_records(table, status="failed")}
    assert still == {c.name for c in cases if c.set_aside and not c.after_fix}


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_corpus_in_one_folder(local_lake: LakeTarget, fmt: str) -> None:
    cases = write_corpus(local_lake.project / "in" / fmt, fmt, start=1000)
    settings = local_lake.settings()
    config = file_config(fmt)
    with Lake.open(settings) as lake:
        summary = ingest(lake, config, settings)
        assert_outcome(lake, summary, config.table_name, cases)

        again = ingest(lake, config, settings)
        assert again.status == "succeeded", again.error
        assert again.payloads == 0 and again.rows_committed == 0

        # The publisher opts in to renamed copies of a repeated column; the set-aside payloads
        # are decoded again from the raw zone.
        fixed = file_config(fmt, duplicate_columns="rename")
        records = lake.payload_records(fixed.table_name, status="failed")
        replayed = Ingestion(lake, fixed, settings).replay(records)
        became_readable = [c for c in cases if c.after_fix]
        assert replayed.payloads_failed == len([c for c in cases if c.set_aside]) - len(
            became_readable
        )
        assert_replayed(lake, fixed.table_name, cases)
        if became_readable:
            assert "level_2" in lake.query(f"SELECT * FROM {fixed.table_name} LIMIT 0").column_names


# -- over HTTP -------------------------------------------------------------------------------------

MEDIA = {"csv": "text/csv", "json": "application/json", "jsonl": "application/x-ndjson",
         "parquet": "application/vnd.apache.parquet"}  # fmt: skip


class CorpusServer:
    """Serves a folder's files in name order on 127.0.0.1, each page linking to the next
    (``Link: <…>; rel="next"``), with the media type of its format."""

    def __init__(self, folder: Path):
        self.folder = folder
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                files = sorted(p.name for p in server.folder.iterdir())
                name = self.path.split("?", 1)[0].rsplit("/", 1)[-1] or files[0]
                if name not in files:
                    self.send_error(404)
                    return
                body = (server.folder / name).read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", MEDIA[name.rsplit(".", 1)[-1]])
                self.send_header("Content-Length", str(len(body)))
                following = files.index(name) + 1
                if following < len(files):
                    self.send_header("Link", f'</feed/{files[following]}>; rel="next"')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """The first file's URL."""
        first = sorted(p.name for p in self.folder.iterdir())[0]
        return f"http://127.0.0.1:{self._server.server_address[1]}/feed/{first}"

    def __enter__(self) -> CorpusServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def http_config(fmt: str, url: str, **source: Any) -> ConnectorConfig:
    return ConnectorConfig.model_validate(
        {
            "name": f"polled_{fmt}",
            "domain": "city",
            "source": {"type": "http", "url": url, "pagination": "link_header", **source},
            "table": {"primary_key": ["id"], "event_time": "ts"},
            "columns": {"level": {"type": "double"}},
        }
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_corpus_over_http(local_lake: LakeTarget, fmt: str) -> None:
    folder = local_lake.project / "served" / fmt
    cases = write_corpus(folder, fmt, start=5000)
    settings = local_lake.settings()
    with CorpusServer(folder) as server, Lake.open(settings) as lake:
        config = http_config(fmt, server.url)
        summary = ingest(lake, config, settings)
        assert_outcome(lake, summary, config.table_name, cases)
        quarantined = lake.query(f"SELECT count(*) AS n FROM {config.table_name}__quarantine")

        # Polled again: the same pages come back; nothing is added, the set-aside pages are
        # recognised and not decoded again.
        again = ingest(lake, config, settings)
        assert again.status == "succeeded", again.error
        assert again.rows_committed == 0 and again.payloads_failed == 0
        assert again.payloads_held == len([c for c in cases if c.set_aside])
        assert (
            lake.query(f"SELECT count(*) AS n FROM {config.table_name}__quarantine") == quarantined
        )

        fixed = http_config(fmt, server.url, duplicate_columns="rename")
        records = lake.payload_records(fixed.table_name, status="failed")
        Ingestion(lake, fixed, settings).replay(records)
        assert_replayed(lake, fixed.table_name, cases)


def test_the_since_cursor_never_passes_a_page_that_did_not_load(local_lake: LakeTarget) -> None:
    folder = local_lake.project / "served" / "jsonl"
    write_corpus(folder, "jsonl", start=8000)
    settings = local_lake.settings()
    incremental = {"incremental": {"param": "since"}}
    with CorpusServer(folder) as server, Lake.open(settings) as lake:
        config = http_config("jsonl", server.url, **incremental)
        assert ingest(lake, config, settings).payloads_failed == 1
        assert "since" not in lake.read_state(config.table_name)
        assert ingest(lake, config, settings).payloads_held == 1
        assert "since" not in lake.read_state(config.table_name)

        # The publisher replaces the broken page: every page loads, and the cursor moves.
        (folder / "e_random.jsonl").unlink()
        summary = ingest(lake, config, settings)
        assert summary.status == "succeeded" and summary.payloads_held == 0
        newest = max(r["ts"] for r in lake.query(f"SELECT ts FROM {config.table_name}").to_pylist())
        since = lake.read_state(config.table_name)["since"]
        moved = datetime.fromisoformat(since.replace("Z", "+00:00"))
        # JSON Lines read by Arrow may give zone-less times: the connector compares them as UTC.
        assert (moved if moved.tzinfo else moved.replace(tzinfo=UTC)) == newest


def test_latin1_files_load_with_their_encoding(local_lake: LakeTarget) -> None:
    folder = local_lake.project / "in" / "latin"
    folder.mkdir(parents=True)
    rows = [{"id": 1, "ts": "2026-01-01T00:00:01Z", "sensor": "café"},
            {"id": 2, "ts": "2026-01-01T00:00:02Z", "sensor": "Ærøskøbing"}]  # fmt: skip
    header = "id,ts,sensor\n" + "".join(f"{r['id']},{r['ts']},{r['sensor']}\n" for r in rows)
    (folder / "a.csv").write_bytes(header.encode("latin-1"))
    (folder / "b.json").write_bytes(
        json.dumps([{**r, "id": r["id"] + 10} for r in rows], ensure_ascii=False).encode("latin-1")
    )
    (folder / "c.jsonl").write_bytes(
        "\n".join(json.dumps({**r, "id": r["id"] + 20}, ensure_ascii=False) for r in rows).encode(
            "latin-1"
        )
    )
    settings = local_lake.settings()
    with Lake.open(settings) as lake:
        summary = ingest(lake, file_config("latin", encoding="latin-1"), settings)
        assert summary.status == "succeeded" and summary.rows_quarantined == 0, summary.error
        sensors = lake.query("SELECT sensor FROM city.readings_latin ORDER BY id").column("sensor")
        assert sensors.to_pylist() == ["café", "Ærøskøbing"] * 3
