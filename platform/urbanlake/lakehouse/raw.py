"""The raw zone: every fetched payload's bytes, once, content-addressed and immutable."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow.fs as pafs

from urbanlake.core.settings import Settings
from urbanlake.core.storage import filesystem_for, write_atomically


@dataclass(frozen=True)
class RawObject:
    sha256: str
    uri: str
    size: int
    stored: bool  # False when the same bytes were already there


class RawStore:
    """``raw/<domain>/<connector>/<yyyy>/<mm>/<dd>/<sha256>.<ext>`` under the lake URI."""

    def __init__(self, settings: Settings):
        self.base_uri = f"{settings.lake_uri}/raw"
        self.fs, self.base = filesystem_for(self.base_uri, settings.s3)
        self._seen: dict[str, str] = {}

    def put(
        self,
        content: bytes,
        domain: str,
        connector: str,
        ext: str,
        when: datetime | None = None,
        sha256: str | None = None,
    ) -> RawObject:
        digest = sha256 or hashlib.sha256(content).hexdigest()
        # The day folder is the day the bytes were first seen; a replay finds them through the index.
        key = f"{domain}/{connector}/{digest}"
        if key in self._seen:
            return RawObject(digest, self._seen[key], len(content), stored=False)
        day = (when or datetime.now(UTC)).strftime("%Y/%m/%d")
        relative = f"{domain}/{connector}/{day}/{digest}.{ext.lstrip('.') or 'bin'}"
        path = f"{self.base}/{relative}"
        uri = f"{self.base_uri}/{relative}"
        stored = self.fs.get_file_info(path).type == pafs.FileType.NotFound
        if stored:
            write_atomically(self.fs, path, content)
        self._seen[key] = uri
        return RawObject(digest, uri, len(content), stored=stored)

    def put_document(self, relative: str, content: bytes) -> str:
        """Write ``<lake>/<relative>`` (beside the raw zone, e.g. ``quality/...``); returns its URI."""
        write_atomically(self.fs, f"{self.base.removesuffix('/raw')}/{relative}", content)
        return f"{self.base_uri.removesuffix('/raw')}/{relative}"

    def get(self, uri: str) -> bytes:
        path = self.base.removesuffix("/raw") + uri.removeprefix(self.base_uri.removesuffix("/raw"))
        with self.fs.open_input_stream(path, compression=None) as stream:
            return bytes(stream.read())
