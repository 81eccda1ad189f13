"""Local folders and ``s3://`` buckets behind one interface (pyarrow filesystems)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.fs as pafs

from urbanlake.core.settings import S3Settings


def s3_filesystem(s3: S3Settings) -> pafs.S3FileSystem:
    scheme = "https" if s3.use_ssl else "http"
    return pafs.S3FileSystem(
        access_key=s3.access_key_id,
        secret_key=s3.secret_access_key,
        region=s3.region,
        endpoint_override=f"{scheme}://{s3.endpoint}" if s3.endpoint else None,
        scheme=scheme,
        force_virtual_addressing=s3.url_style == "vhost",
    )


def filesystem_for(
    uri: str, s3: S3Settings, base: Path | None = None
) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding ``uri`` and the path inside it (relative paths resolve from ``base``)."""
    if uri.startswith("s3://"):
        return s3_filesystem(s3), uri.removeprefix("s3://")
    if uri.startswith("file://"):
        uri = unquote(urlparse(uri).path)
    path = Path(uri)
    if not path.is_absolute() and base is not None:
        path = base / path
    return pafs.LocalFileSystem(), str(path.resolve())


def write_atomically(fs: pafs.FileSystem, path: str, content: bytes) -> None:
    """Write ``content`` so that a reader (or a crash) never sees half a file."""
    parent = path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        temporary = f"{path}.part"
        with fs.open_output_stream(temporary) as out:
            out.write(content)
        fs.move(temporary, path)
    else:  # an S3 PUT is atomic on its own
        with fs.open_output_stream(path) as out:
            out.write(content)
