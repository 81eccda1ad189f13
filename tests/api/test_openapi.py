"""schemathesis against /api/v1/openapi.json: no 5xx, and no response that violates the schema
(status codes, content types and bodies as documented)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.api.conftest import ApiServer

CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    demo_api: ApiServer, tmp_path: Path
) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [str(schemathesis), "run", f"{demo_api.api}/openapi.json", "--checks", CHECKS,
         "--max-examples", "40", "--seed", "2026", "--no-color", "--workers", "2"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )  # fmt: skip
    tail = result.stdout[-6000:]
    assert result.returncode == 0, tail
    assert "passed" in tail and "failures" not in tail.split("SUMMARY")[-1].lower(), tail


def test_keys_and_quota_answers_are_documented(demo_api: ApiServer) -> None:
    schema = httpx.get(f"{demo_api.api}/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}
    records = schema["paths"]["/api/v1/datasets/{name}/records"]["get"]
    assert {} in records["security"]  # anonymous callers are welcome
    assert {"401", "429", "400", "404"} <= set(records["responses"])
    assert "security" not in schema["paths"]["/healthz"]["get"]
    assert "429" in schema["paths"]["/api/v1/sql"]["post"]["responses"]


def test_every_operation_has_an_id_of_its_own(demo_api: ApiServer) -> None:
    """Client generators name their methods after operation ids: two alike collide."""
    schema = httpx.get(f"{demo_api.api}/openapi.json").json()
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    parquet = schema["paths"]["/api/v1/datasets/{name}/versions/{version}/data.parquet"]
    assert set(parquet) == {"get", "head"}
