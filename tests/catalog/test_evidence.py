"""Quality evidence is read once per lake snapshot: a page view costs no query while nothing
commits, and the next commit is seen within the catalog's refresh interval."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from tests.servers import new_project
from urbanlake.catalog.actions import lake_evidence
from urbanlake.catalog.service import VERSIONS_TTL, Catalog
from urbanlake.core.settings import load_settings
from urbanlake.lakehouse.lake import Lake


def test_evidence_is_read_once_per_snapshot_and_again_after_a_commit(tmp_path: Path) -> None:
    settings = load_settings(new_project(tmp_path / "city", with_city=False), env={})
    with Lake.open(settings):
        pass  # the lake and its platform tables exist
    catalog = Catalog(settings)
    reads: list[int] = []

    def read() -> list[int]:
        reads.append(1)
        return [len(reads)]

    try:
        assert lake_evidence(catalog, ("scores",), None, read) == [1]
        assert lake_evidence(catalog, ("scores",), None, read) == [1]  # from memory
        assert len(reads) == 1
        # A caller who reads late asks of a moment that moves: read every time.
        lake_evidence(catalog, ("scores",), datetime.now(UTC), read)
        assert len(reads) == 2
        with Lake.open(settings) as lake:
            lake.connection().execute("CREATE SCHEMA waste")  # a commit: a new snapshot
        time.sleep(VERSIONS_TTL + 0.2)
        assert lake_evidence(catalog, ("scores",), None, read) == [3]
    finally:
        catalog.close()
