"""Shared fixtures: real lakes in temp folders, on local disk or a loopback S3 server, with the
catalog in SQLite or in this machine's PostgreSQL."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from urbanlake.core.secrets import SECRETS
from urbanlake.core.settings import Settings, load_settings

if TYPE_CHECKING:
    from tests.servers import ApiServer

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, os.environ.get("URBANLAKE_TEST_PGUSER", "postgres")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture(autouse=True)
def _each_test_registers_its_own_secrets() -> None:
    """Secrets are remembered per process: without this, a value one test resolved (a loopback
    server's URL given as ${ENV}) would mask another test's server that reuses its port."""
    SECRETS.clear()


# Loopback S3 credentials: any value works with the test server; these are long enough that
# masking them (every secret is masked in every message) never hides an ordinary word.
S3_KEY_ID = "urbanlake-test-key-id"
S3_SECRET = "urbanlake-test-secret"


@dataclass
class LakeTarget:
    """Where a test's lake lives; ``env`` gives the same to a subprocess."""

    project: Path
    env: dict[str, str]

    def settings(self, **overrides: object) -> Settings:
        return load_settings(self.project, env=self.env, **overrides)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


def s3_client(endpoint: str) -> Any:
    """A boto3 client for the loopback S3 server (test credentials)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=f"http://{endpoint}",
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    name = f"lake-{uuid.uuid4().hex[:12]}"
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def postgres_db() -> Iterator[str]:
    if not port_open(PG_HOST, PG_PORT):
        pytest.skip("PostgreSQL is not listening on 127.0.0.1:5432 (.ci/run starts it)")
    import psycopg

    name = f"ul_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _target(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> LakeTarget:
    storage, catalog = kind.split("-")
    project = tmp_path / "city"
    project.mkdir()
    env: dict[str, str] = {"URBANLAKE_PROJECT": str(project)}
    # One extension folder for the whole test session: installing from the wheels costs a second.
    extensions = Path(os.environ.get("URBANLAKE_TEST_EXTENSIONS", "/tmp/urbanlake-test-extensions"))
    (project / ".urbanlake").mkdir()
    if not (project / ".urbanlake" / "duckdb_extensions").exists():
        extensions.mkdir(parents=True, exist_ok=True)
        (project / ".urbanlake" / "duckdb_extensions").symlink_to(extensions)
    if storage == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        env.update(
            {
                "URBANLAKE_LAKE": f"s3://{bucket}/city",
                "URBANLAKE_S3_ENDPOINT": request.getfixturevalue("s3_endpoint"),
                "URBANLAKE_S3_ACCESS_KEY_ID": S3_KEY_ID,
                "URBANLAKE_S3_SECRET_ACCESS_KEY": S3_SECRET,
                "URBANLAKE_S3_USE_SSL": "false",
            }
        )
    else:
        env["URBANLAKE_LAKE"] = str(project / "lake")
    if catalog == "postgres":
        env["URBANLAKE_CATALOG"] = request.getfixturevalue("postgres_db")
    return LakeTarget(project=project, env=env)


LAKE_KINDS = ["local-sqlite", "s3-sqlite", "local-postgres", "s3-postgres"]


@pytest.fixture(params=LAKE_KINDS)
def lake_target(request: pytest.FixtureRequest, tmp_path: Path) -> LakeTarget:
    """Every lakehouse and connector test runs on each storage × catalog combination."""
    return _target(request.param, tmp_path, request)


@pytest.fixture
def local_lake(request: pytest.FixtureRequest, tmp_path: Path) -> LakeTarget:
    """A local-disk lake with a SQLite catalog, for tests that are about something else."""
    return _target("local-sqlite", tmp_path, request)


@pytest.fixture
def sample_data() -> Path:
    folder = SHARED / "sample-data"
    if not folder.is_dir():
        pytest.skip(f"sample data folder {folder} is absent (as in a fresh clone without shared/)")
    return folder


def which(name: str) -> str | None:
    return shutil.which(name)


def run_cli(
    target: LakeTarget, *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m urbanlake`` against the target's lake in a subprocess."""
    import sys

    env = {**os.environ, **target.env}
    result = subprocess.run(
        [sys.executable, "-m", "urbanlake", "--project", str(target.project), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"urbanlake {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo city, ingested and published, as `make demo` leaves it (without serving); one
    per session, shared by the API and web tests."""
    from rich.console import Console

    from tests.servers import new_project
    from urbanlake.demo import run_demo

    project = new_project(tmp_path_factory.mktemp("demo") / "city")
    out = io.StringIO()
    code = run_demo(load_settings(project, env={}), Console(file=out, width=200), serve=False)
    assert code == 0, out.getvalue()
    return project


@pytest.fixture(scope="session")
def demo_api(demo_project: Path) -> Iterator[ApiServer]:
    """One real API server over the demo city, shared by every test that only reads."""
    from tests.servers import start_server

    server = start_server(demo_project)
    yield server
    server.stop()
