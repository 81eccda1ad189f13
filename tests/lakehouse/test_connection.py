"""Several processes opening one new lake at once (API workers, ``run`` beside ``serve``): one
creates the SQLite catalog, the others wait for it instead of failing."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from tests.api.conftest import new_project
from urbanlake.core.settings import load_settings
from urbanlake.lakehouse.lake import Lake

OPENERS = 8


def open_when_told(project: str, go: multiprocessing.synchronize.Event) -> None:
    go.wait()
    with Lake.open(load_settings(project, env={})) as lake:
        lake.query("SELECT 1")


def test_processes_opening_a_new_lake_at_once_all_get_it(tmp_path: Path) -> None:
    project = new_project(tmp_path / "city", with_city=False)
    spawn = multiprocessing.get_context("spawn")
    go = spawn.Event()
    openers = [
        spawn.Process(target=open_when_told, args=(str(project), go)) for _ in range(OPENERS)
    ]
    for opener in openers:
        opener.start()
    go.set()
    for opener in openers:
        opener.join(120)
    assert [opener.exitcode for opener in openers] == [0] * OPENERS
