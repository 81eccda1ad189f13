"""Opening DuckDB with the DuckLake catalog attached, extensions from their PyPI wheels only."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb
import duckdb_extensions

from urbanlake.core.errors import LakeError
from urbanlake.core.secrets import mask
from urbanlake.core.settings import Settings, is_postgres

LAKE = "lake"  # the attached catalog's name; `USE lake` makes tables `<domain>.<table>`
EXTENSIONS = ("ducklake", "sqlite", "postgres", "httpfs")
_install_lock = threading.Lock()
BUSY_WAIT = 15.0  # seconds an ATTACH waits for a catalog another process is creating or writing


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def postgres_dsn(url: str) -> str:
    """``postgresql://user:pw@host:port/db`` as the libpq key=value string DuckLake expects."""
    if url.startswith("postgres:") and "://" not in url:
        return url.removeprefix("postgres:")
    parsed = urlparse(url)
    parts = {
        "dbname": parsed.path.lstrip("/") or "postgres",
        "host": parsed.hostname or "127.0.0.1",
        "port": str(parsed.port or 5432),
        "user": unquote(parsed.username) if parsed.username else None,
        "password": unquote(parsed.password) if parsed.password else None,
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


def is_locked(exc: BaseException) -> bool:
    """A SQLite catalog busy with another transaction: worth another try in a moment."""
    return "database is locked" in str(exc)


def catalog_attach_uri(settings: Settings) -> str:
    url = settings.catalog_url
    if is_postgres(url):
        return f"ducklake:postgres:{postgres_dsn(url)}"
    Path(url).parent.mkdir(parents=True, exist_ok=True)
    use_wal(Path(url))
    return f"ducklake:sqlite:{url}"


def use_wal(path: Path) -> None:
    """Put a SQLite catalog in write-ahead-log mode (a setting kept in the file): readers — the
    API, analysts — then never block a committing ingest, and never wait for one."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode=WAL")


def data_path(settings: Settings) -> str:
    if settings.is_remote:
        return f"{settings.lake_uri}/data/"
    path = Path(settings.lake_uri) / "data"
    path.mkdir(parents=True, exist_ok=True)
    return f"{path}/"


def needed_extensions(settings: Settings) -> list[str]:
    """Only what this lake uses: each extension costs a fraction of a second to load."""
    catalog = "postgres" if is_postgres(settings.catalog_url) else "sqlite"
    return ["ducklake", catalog, *(["httpfs"] if settings.is_remote else [])]


def load_extensions(
    con: duckdb.DuckDBPyConnection, directory: Path, names: list[str] | None = None
) -> None:
    """Load extensions, installing them from their wheels on first use (never a download)."""
    directory.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET extension_directory = {sql_string(str(directory))}")
    con.execute("SET autoinstall_known_extensions = false")
    for name in names or EXTENSIONS:
        load_extension(con, name)


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load one extension, installed from its wheel on first use; also for those only some reads
    need (``spatial`` for WKT geometries), loaded then."""
    try:
        con.execute(f"LOAD {name}")
    except duckdb.Error:
        with _install_lock:
            duckdb_extensions.import_extension(name, con=con)
        con.execute(f"LOAD {name}")


def configure_s3(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    s3 = settings.s3
    options = ["TYPE s3", f"REGION {sql_string(s3.region)}", f"URL_STYLE {sql_string(s3.url_style)}",
               f"USE_SSL {'true' if s3.use_ssl else 'false'}"]  # fmt: skip
    if s3.endpoint:
        options.append(f"ENDPOINT {sql_string(s3.endpoint)}")
    if s3.access_key_id:
        options.append(f"KEY_ID {sql_string(s3.access_key_id)}")
    if s3.secret_access_key:
        options.append(f"SECRET {sql_string(s3.secret_access_key)}")
    con.execute(f"CREATE OR REPLACE SECRET urbanlake_s3 ({', '.join(options)})")


def attach(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    """Run the ATTACH, waiting while another process holds the SQLite catalog: two API workers,
    or ``run`` and ``serve``, starting on a new project race to create its tables, and the loser
    is told "database is locked" instead of waiting its turn."""
    deadline = time.monotonic() + BUSY_WAIT
    pause = 0.05
    while True:
        try:
            con.execute(statement)
            return
        except duckdb.Error as exc:
            if "database is locked" not in str(exc) or time.monotonic() > deadline:
                raise
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DETACH {LAKE}")
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def open_connection(
    settings: Settings, snapshot_version: int | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as ``lake`` and selected with ``USE``."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        load_extensions(con, settings.state_dir / "duckdb_extensions", needed_extensions(settings))
        if settings.is_remote:
            configure_s3(con, settings)
        options = [f"DATA_PATH {sql_string(data_path(settings))}",
                   f"DATA_INLINING_ROW_LIMIT {int(settings.data_inlining_row_limit)}"]  # fmt: skip
        if snapshot_version is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot_version)}")
        attach(con, f"ATTACH {sql_string(catalog_attach_uri(settings))} AS {LAKE} "
               f"({', '.join(options)})")  # fmt: skip
        con.execute(f"USE {LAKE}")
    except duckdb.Error as exc:
        con.close()
        raise LakeError(
            mask(
                f"cannot open the lake at {settings.lake_uri} (catalog {settings.catalog_url}): {exc}"
            )
        ) from exc
    return con
