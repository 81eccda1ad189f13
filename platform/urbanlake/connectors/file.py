"""``file``: CSV, JSON, JSON Lines and Parquet files from a path, glob, ``file://`` or ``s3://`` URL.

Each file is one payload. The state remembers each loaded file's content hash, so a file is
loaded again only when its content changes. A file that cannot be decoded is set aside with its
hash in the state too: it is not read again until its content changes or it is replayed.
"""

from __future__ import annotations

import fnmatch
import glob
import gzip
import hashlib
from collections.abc import Iterator
from typing import Any, Literal

import pyarrow.fs as pafs
from pydantic import Field

from urbanlake.connectors.base import Connector, Decoded, Payload, SourceSpec
from urbanlake.connectors.formats import DuplicateColumns, Encoding, decode, guess_format
from urbanlake.core.errors import DecodeError, FatalSourceError
from urbanlake.core.storage import filesystem_for

GLOB_CHARS = set("*?[")
GZIP_MAGIC = b"\x1f\x8b"


class FileSpec(SourceSpec):
    type: Literal["file"] = "file"
    url: str = Field(
        description="a path, glob, file:// or s3:// URL; relative paths start at the project"
    )
    format: Literal["csv", "json", "jsonl", "parquet"] | None = Field(
        None, description="guessed from the extension when absent"
    )
    records_path: str | None = Field(
        None, description="dotted path to the list of records in a JSON file"
    )
    delimiter: str = Field(",", max_length=1, description="CSV field separator")
    encoding: Encoding = Field(
        "utf-8",
        description="text encoding of CSV and JSON files, as Python names it (latin-1, cp1252)",
    )
    duplicate_columns: DuplicateColumns = Field(
        "fail",
        description="a repeated column name: fail (the file is set aside) or rename (v, v_2)",
    )


class FileConnector(Connector[FileSpec]):
    """Files on disk or in a bucket."""

    type_name = "file"
    spec_model = FileSpec
    example = {"type": "file", "url": "data/bins/*.csv", "format": "csv"}

    def _matches(self) -> tuple[pafs.FileSystem, list[str]]:
        settings = self.context.settings
        fs, path = filesystem_for(self.spec.url, settings.s3, base=settings.project_dir)
        if not GLOB_CHARS & set(path):
            info = fs.get_file_info(path)
            if info.type == pafs.FileType.NotFound:
                raise FatalSourceError(f"{self.spec.url}: no such file")
            if info.type == pafs.FileType.Directory:
                selector = pafs.FileSelector(path, recursive=True)
                return fs, sorted(
                    i.path for i in fs.get_file_info(selector) if i.type == pafs.FileType.File
                )
            return fs, [path]
        if isinstance(fs, pafs.LocalFileSystem):
            return fs, sorted(glob.glob(path, recursive=True))
        # Object stores have no glob: list below the fixed prefix and match the rest.
        prefix = path[: min(path.index(c) for c in GLOB_CHARS if c in path)].rsplit("/", 1)[0]
        selector = pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
        found = [i.path for i in fs.get_file_info(selector) if i.type == pafs.FileType.File]
        return fs, sorted(p for p in found if fnmatch.fnmatchcase(p, path))

    def fetch(self, state: dict[str, Any]) -> Iterator[Payload]:
        fs, paths = self._matches()
        loaded: dict[str, str] = dict(state.get("files", {}))
        for path in paths:
            with fs.open_input_stream(path, compression=None) as stream:  # raw bytes, as stored
                content = stream.read()
            digest = hashlib.sha256(content).hexdigest()
            if loaded.get(path) == digest:
                continue
            fmt = self.spec.format or guess_format(path)
            if fmt is None:
                raise FatalSourceError(
                    f"{path}: cannot tell the format from the name; set source.format"
                )
            loaded[path] = digest
            yield Payload(
                content=content,
                origin=path,
                format=fmt,
                state={"files": dict(loaded)},
                sha256=digest,
            )

    def decode(self, payload: Payload) -> Decoded:
        content = payload.content
        if content[:2] == GZIP_MAGIC:
            try:
                content = gzip.decompress(content)
            except (OSError, EOFError) as exc:
                raise DecodeError(f"{payload.origin}: broken gzip data: {exc}") from None
        spec = self.spec
        return decode(content, payload.format, payload.origin, spec.records_path, spec.delimiter,
                      spec.encoding, spec.duplicate_columns)  # fmt: skip
