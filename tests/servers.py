"""The demo city and real API servers for the tests that need them: project folders, ``urbanlake
serve`` subprocesses on free loopback ports, and the lake asked directly to compare with."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from urbanlake.core.settings import Settings, load_settings
from urbanlake.lakehouse.lake import Lake

ROOT = Path(__file__).resolve().parents[1]
EXTENSIONS = Path(os.environ.get("URBANLAKE_TEST_EXTENSIONS", "/tmp/urbanlake-test-extensions"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_project(folder: Path, with_city: bool = True) -> Path:
    """A project folder; with the bundled demo city's configs, suites and catalog."""
    folder.mkdir(parents=True, exist_ok=True)
    if with_city:
        for part in ("connectors", "quality", "catalog"):
            shutil.copytree(ROOT / part, folder / part)
        shutil.copy(ROOT / "urbanlake.yaml", folder / "urbanlake.yaml")
    (folder / ".urbanlake").mkdir(exist_ok=True)
    EXTENSIONS.mkdir(parents=True, exist_ok=True)
    link = folder / ".urbanlake" / "duckdb_extensions"
    if not link.exists():
        link.symlink_to(EXTENSIONS)
    return folder


@dataclass
class ApiServer:
    """``urbanlake serve`` in a subprocess; its log is kept in a file the tests can read."""

    project: Path
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(
            path if path.startswith("http") else f"{self.api}{path}", timeout=120, **kwargs
        )

    def settings(self) -> Settings:
        return load_settings(self.project, env={})

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_mb(self) -> float:
        """The server's resident memory now (it runs as one process: no workers)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


# Every test talks from 127.0.0.1: the shared servers keep quotas on (their headers and
# accounting run on every request) but far above what a test session asks.
ROOMY_QUOTAS = {
    "URBANLAKE_QUOTA_PUBLIC": "1000000/minute",
    "URBANLAKE_QUOTA_PARTNER": "1000000/minute",
}


def start_server(project: Path, env: dict[str, str] | None = None) -> ApiServer:
    port = free_port()
    log = project / "server.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "urbanlake", "--project", str(project), "serve",
         "--host", "127.0.0.1", "--port", str(port), "--no-refresh"],
        stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **ROOMY_QUOTAS, **(env or {})},
    )  # fmt: skip
    server = ApiServer(project, process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the API server exited: {server.log_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"the API server did not answer in 60 s: {server.log_text()}")


def sql(project: Path, query: str, parameters: list[Any] | None = None) -> list[dict[str, Any]]:
    """The same question asked of the lake directly, to hold the API's answers against."""
    with Lake.open(load_settings(project, env={})) as lake:
        return lake.query(query, parameters).to_pylist()
