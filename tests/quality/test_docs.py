"""`urbanlake.quality.docs`: GX Data Docs built from the validation results kept in a real lake
after real ingests with faults (GX itself renders the pages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import LakeTarget, s3_client
from tests.quality.test_gate import project_with_suite, write_batch
from urbanlake.cli import app
from urbanlake.core.errors import NotFound
from urbanlake.lakehouse.lake import Lake
from urbanlake.pipeline.run import ingest
from urbanlake.quality.docs import EXPECTATION_COLUMN, build_docs

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("great_expectations") is None,
    reason="great-expectations is not installed",
)

runner = CliRunner()

# Every expectation of tests/quality/test_gate.py's suite fails on write_batch's faults.
FAILED = [
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_unique",
    "expect_column_values_to_be_in_set",
]


def ingest_batches(target: LakeTarget, *names: str) -> list[str]:
    """One run per CSV file name (each with faults); the run ids, oldest first."""
    config = project_with_suite(target)
    settings = target.settings()
    run_ids = []
    with Lake.open(settings) as lake:
        for name in names:
            for old in (target.project / "data").glob("*.csv"):
                old.unlink()
            write_batch(target, name)
            summary = ingest(lake, config, settings)
            assert summary.status == "succeeded", summary.error
            run_ids.append(summary.run_id)
    return run_ids


def validation_pages(docs: Path) -> list[Path]:
    return sorted((docs / "validations" / "transport" / "vehicles").rglob("*.html"))


def test_docs_show_each_failed_expectation_by_name(local_lake: LakeTarget) -> None:
    (run_id,) = ingest_batches(local_lake, "a")
    settings = local_lake.settings()
    with Lake.open(settings) as lake:
        index = Path(build_docs(lake.reader, settings))
    assert index == Path(settings.lake_uri) / "docs" / "index.html"
    assert index.is_file() and "transport.vehicles" in index.read_text()
    (page,) = validation_pages(index.parent)
    assert page.parent.parent.name == run_id and page.name == "batch-00001.html"
    html = page.read_text()
    assert '<i class="fas fa-times text-danger" aria-hidden="true"></i> Failed' in html
    assert EXPECTATION_COLUMN in html
    for name in FAILED:
        assert name in html
    # The index links to the page, and the page to its suite's page.
    assert page.relative_to(index.parent).as_posix() in index.read_text()
    assert "expectations/transport/vehicles.html" in html
    assert (index.parent / "expectations" / "transport" / "vehicles.html").is_file()


def test_quality_docs_command_then_only_the_newest_batches(local_lake: LakeTarget) -> None:
    older, newer = ingest_batches(local_lake, "a", "b")
    shown = runner.invoke(
        app, ["--project", str(local_lake.project), "quality", "docs"], env=local_lake.env
    )
    assert shown.exit_code == 0, shown.output
    settings = local_lake.settings()
    index = Path(settings.lake_uri) / "docs" / "index.html"
    # Rich wraps a long path across lines.
    assert str(index) in "".join(shown.output.split())
    docs = index.parent
    assert [p.parent.parent.name for p in validation_pages(docs)] == sorted([older, newer])
    with Lake.open(settings) as lake:
        build_docs(lake.reader, settings, limit=1)
    assert [p.parent.parent.name for p in validation_pages(docs)] == [newer]
    assert newer in index.read_text() and older not in index.read_text()


def test_no_results_yet_is_not_found(local_lake: LakeTarget) -> None:
    settings = local_lake.settings()
    with Lake.open(settings) as lake, pytest.raises(NotFound, match="no validation results"):
        build_docs(lake.reader, settings)


@pytest.mark.s3
@pytest.mark.parametrize("lake_target", ["s3-sqlite"], indirect=True)
def test_docs_of_an_s3_lake_are_uploaded_as_web_pages(
    lake_target: LakeTarget, s3_endpoint: str
) -> None:
    older, newer = ingest_batches(lake_target, "a", "b")
    settings = lake_target.settings()
    bucket, prefix = settings.lake_uri.removeprefix("s3://").split("/", 1)
    client = s3_client(s3_endpoint)

    def pages() -> list[str]:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/docs/validations/")
        # pyarrow marks folders with empty "<folder>/" objects, as everywhere in the lake.
        return sorted(o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith(".html"))

    with Lake.open(settings) as lake:
        assert build_docs(lake.reader, settings) == f"{settings.lake_uri}/docs/index.html"
        assert len(pages()) == 2
        build_docs(lake.reader, settings, limit=1)
    (key,) = pages()
    assert f"/{newer}/" in key
    page = client.get_object(Bucket=bucket, Key=key)
    assert page["ContentType"] == "text/html"
    assert "expect_column_values_to_be_in_set" in page["Body"].read().decode()
    index = client.get_object(Bucket=bucket, Key=f"{prefix}/docs/index.html")
    assert older not in index["Body"].read().decode()
