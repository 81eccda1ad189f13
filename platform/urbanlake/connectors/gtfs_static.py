"""``gtfs_static``: a GTFS Schedule feed (a zip of CSV files), one table per file.

One payload is the zip as published, from an HTTP(S) URL (through the shared retrying client) or
a file. Its SHA-256 identifies the feed version: a run that finds the same bytes as the last one
loaded commits nothing. Each file becomes table ``<domain>.<name>_<file stem>``, and every table
of a version is replaced in one snapshot, so a query never mixes two versions; older versions
stay readable through time travel.

Every value is read as text first, so that codes such as ``"007"`` keep their leading zeros; the
columns the GTFS reference defines as dates, numbers and service-day times are then typed here.
A value that does not parse quarantines its row with the file, line and column; the rest load.
"""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from urbanlake.connectors.base import (
    ConnectorContext,
    Decoded,
    Payload,
    TablePart,
)
from urbanlake.connectors.gtfs_files import (
    NOT_A_NAME,
    NOT_SPACE,
    REFERENCED,
    REFERENCES,
    REQUIRED_FILES,
    SERVICE_FILES,
    STANDARD_FILES,
    empty_part,
    gtfs_part,
    read_gtfs_file,
)
from urbanlake.connectors.remote import (
    RemoteConnector,
    RemoteSpecChecks,
    is_remote,
)
from urbanlake.core.errors import (
    DecodeError,
)
from urbanlake.core.spec import ConnectorConfig

log = logging.getLogger(__name__)


# -- the spec ------------------------------------------------------------------------------------


class GtfsStaticSpec(RemoteSpecChecks):
    type: Literal["gtfs_static"] = "gtfs_static"
    url: str = Field(
        description="http(s):// URL, file:// URL or a path relative to the project of the feed's "
        "zip; may hold ${ENV} references"
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="request headers for http(s) URLs; secrets as ${ENV}"
    )

    @model_validator(mode="after")
    def headers_need_http(self) -> GtfsStaticSpec:
        if self.headers and not is_remote(self.url):
            raise ValueError("headers apply to http:// and https:// URLs only")
        return self


# -- the zip -------------------------------------------------------------------------------------


def table_suffix(stem: str) -> str:
    """The table-name suffix for a file stem: lowercase letters, digits and ``_``."""
    return NOT_A_NAME.sub("_", stem.lower()).strip("_") or "file"


def open_feed(content: bytes, origin: str) -> dict[str, bytes]:
    """The feed's ``.txt`` files by table suffix; ``DecodeError`` if it is not a readable zip.

    Files may sit in one folder inside the zip (many publishers zip the folder, not its files);
    the folder holding the most required files is the feed, others are ignored with a warning.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        looks = (
            " (it starts like an HTML page: is the URL right?)"
            if content.lstrip()[:1] == b"<"
            else ""
        )
        raise DecodeError(
            f"{origin}: not a GTFS feed: {len(content)} bytes that are not a zip archive{looks}"
        ) from None
    by_folder: dict[str, dict[str, zipfile.ZipInfo]] = {}
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if info.is_dir() or path.suffix.lower() != ".txt" or "__MACOSX" in path.parts:
            continue
        if path.name.startswith("."):
            continue
        by_folder.setdefault(str(path.parent), {})[path.name] = info
    if not by_folder:
        listed = ", ".join(i.filename for i in archive.infolist()[:10]) or "nothing"
        raise DecodeError(f"{origin}: not a GTFS feed: the zip holds no .txt files ({listed})")

    def score(folder: str) -> tuple[int, int]:
        stems = {PurePosixPath(n).stem.lower() for n in by_folder[folder]}
        return len(stems & {*REQUIRED_FILES, *SERVICE_FILES}), -folder.count("/") - (folder != ".")

    folder = max(by_folder, key=score)
    ignored = [f for f in by_folder if f != folder]
    if ignored:
        log.warning("%s: feed files read from %s/; ignoring .txt files in %s",
                    origin, folder, ", ".join(f"{f}/" for f in ignored))  # fmt: skip
    files: dict[str, bytes] = {}
    file_of: dict[str, str] = {}
    for name, info in sorted(by_folder[folder].items()):
        suffix = table_suffix(PurePosixPath(name).stem)
        if suffix in file_of:
            raise DecodeError(
                f"{origin}: {file_of[suffix]} and {name} would both be table …_{suffix}"
            )
        file_of[suffix] = name
        try:
            files[suffix] = archive.read(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise DecodeError(f"{origin}: {name} cannot be read from the zip: {exc}") from None
        except (NotImplementedError, RuntimeError) as exc:  # unknown compression, encryption
            raise DecodeError(f"{origin}: {name} cannot be unpacked: {exc}") from None
    return files


def missing_files(present: set[str]) -> list[str]:
    """The required files a feed lacks, as file names."""
    missing = [f"{name}.txt" for name in REQUIRED_FILES if name not in present]
    if not present & set(SERVICE_FILES):
        missing.append("calendar.txt or calendar_dates.txt")
    return missing


# -- the feed as a whole -------------------------------------------------------------------------


def referential_orphans(tables: dict[str, pa.Table]) -> dict[str, tuple[int, list[str]]]:
    """For each foreign key both ends of which are present: orphan count and a few examples."""
    found: dict[str, tuple[int, list[str]]] = {}
    for child, column, parents, parent_column in REFERENCES:
        present = [p for p in parents if p in tables and parent_column in tables[p].column_names]
        if child not in tables or column not in tables[child].column_names or not present:
            continue
        known = pa.chunked_array(
            [chunk for p in present for chunk in tables[p].column(parent_column).chunks],
            type=pa.string(),
        )
        values = tables[child].column(column)
        orphan = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=known)))
        count = pc.sum(orphan).as_py() or 0
        examples = pc.unique(values.filter(orphan)).to_pylist()[:3] if count else []
        found[f"{child}.{column}"] = (count, examples)
    return found


def feed_info_state(tables: dict[str, pa.Table]) -> dict[str, Any]:
    """feed_version, feed_start_date and feed_end_date from feed_info.txt's first row."""
    info = tables.get("feed_info")
    if info is None or info.num_rows == 0:
        return {}
    row = info.slice(0, 1).to_pylist()[0]
    state: dict[str, Any] = {}
    for name in ("feed_version", "feed_start_date", "feed_end_date"):
        value = row.get(name)
        if value is not None:
            state[name] = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return state


# -- the connector -------------------------------------------------------------------------------


class GtfsStaticConnector(RemoteConnector[GtfsStaticSpec]):
    """A GTFS Schedule zip: one payload per new feed version, one table per file."""

    type_name = "gtfs_static"
    spec_model = GtfsStaticSpec
    example = {"type": "gtfs_static", "url": "https://transit.example/gtfs/google_transit.zip"}

    def __init__(self, spec: GtfsStaticSpec, config: ConnectorConfig, context: ConnectorContext):
        super().__init__(spec, config, context)
        self._previous_files: dict[str, list[str]] = {}
        self._previous_state: dict[str, Any] = {}
        # What ``decode`` learnt about the payload (feed info, orphans, files), for ``state_after``.
        self._learnt: tuple[Payload, dict[str, Any]] | None = None

    def fetch(self, state: dict[str, Any]) -> Iterator[Payload]:
        self._previous_state = dict(state)
        content, origin, media_type = self._read()
        digest = hashlib.sha256(content).hexdigest()
        if state.get("sha256") == digest:
            log.info(
                "%s: same feed as loaded last (sha256 %s…); nothing to load", origin, digest[:12]
            )
            return
        files = state.get("files")
        self._previous_files = dict(files) if isinstance(files, dict) else {}
        yield Payload(
            content=content,
            origin=origin,
            format="zip",
            state={"sha256": digest},
            media_type=media_type,
            sha256=digest,
        )

    def _read(self) -> tuple[bytes, str, str | None]:
        return self.read_location(self.spec.url, "GTFS zip")

    def decode(self, payload: Payload) -> Decoded:
        files = open_feed(payload.content, payload.origin)
        present = {suffix for suffix, content in files.items() if NOT_SPACE.search(content)}
        missing = missing_files(present)
        if missing:
            found = ", ".join(f"{s}.txt" for s in sorted(present)) or "none"
            raise DecodeError(
                f"{payload.origin}: not a complete GTFS feed: missing {', '.join(missing)} "
                f"(files found: {found})"
            )
        order = {name: i for i, name in enumerate(STANDARD_FILES)}
        parts: list[TablePart] = []
        headers: dict[str, list[str]] = {}
        for suffix in sorted(files, key=lambda s: (order.get(s, len(order)), s)):
            file_name = f"{suffix}.txt"
            read = read_gtfs_file(files[suffix], file_name, suffix in STANDARD_FILES)
            if not read.names:
                log.warning("%s: %s is empty (not even a header)", payload.origin, file_name)
                continue
            parts.append(gtfs_part(suffix, read.decoded, read.declared))
            headers[suffix] = read.names
        for suffix, names in sorted(self._previous_files.items()):
            if suffix not in headers and isinstance(names, list) and names:
                log.info("%s: %s.txt is gone from the feed; its table is emptied",
                         payload.origin, suffix)  # fmt: skip
                parts.append(empty_part(suffix, [str(n) for n in names]))
        tables = {part.suffix: part.decoded.table for part in parts if part.suffix in headers}
        orphans = referential_orphans(tables)
        broken = {name: found for name, found in orphans.items() if found[0]}
        if broken:
            log.warning(
                "%s: rows that refer to nothing (loaded all the same): %s", payload.origin,
                "; ".join(f"{count} {name} not in {REFERENCED[name]} (e.g. {', '.join(map(repr, ex))})"
                          for name, (count, ex) in broken.items()),
            )  # fmt: skip
        learnt = {
            **feed_info_state(tables),
            "files": headers,
            "referential": {name: count for name, (count, _) in orphans.items()},
        }
        self._learnt = (payload, learnt)
        return Decoded(table=pa.table({}), parts=parts)

    def state_after_failure(self, payload: Payload) -> dict[str, Any]:
        # The zip that cannot be read is not loaded again; what the last loaded version said
        # (its files, for emptying the tables of files a later version drops) stays.
        return {**self._previous_state, "sha256": payload.sha256}

    def state_after(self, payload: Payload, decoded: Decoded) -> dict[str, Any]:
        learnt = self._learnt[1] if self._learnt and self._learnt[0] is payload else {}
        return {**payload.state, **learnt}
