"""Great Expectations Data Docs for the lake: static HTML pages of the latest validation results.

Every validated batch keeps GX's full validation result in the lake
(``quality/<domain>/<dataset>/<run_id>/batch-NNNNN.json``, found through
``platform.quality_results.result_uri``). ``build_docs`` reads the newest of them back into a
throwaway GX context and lets GX's own site builder render them to ``<lake>/docs/``: an index of
validations, one page per validated batch and one page per dataset's suite (as last run).

What GX's pages say, and what we add to them:

- The suite is named after the dataset (``transport.vehicles``), the run after urbanlake's run id,
  the run time is when the batch was validated and the batch is ``batch-NNNNN``; GX's own names
  (one suite and one data asset for every dataset, see ``gx_runner``) would all look alike.
- GX describes each expectation in prose ("values must never be null"); a last column gives its
  name (``expect_column_values_to_not_be_null``), as the suite YAML and
  ``platform.quality_results`` have it.
- An expectation suite page shows the dataset's expectations as its newest result ran them.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.fs as pafs

from urbanlake.core.errors import NotFound
from urbanlake.core.settings import Settings
from urbanlake.core.storage import filesystem_for, write_atomically
from urbanlake.lakehouse.reader import LakeReader

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.data_context.types.resource_identifiers import (
        ValidationResultIdentifier,
    )

log = logging.getLogger(__name__)

DOCS_FOLDER = "docs"
SITE_NAME = "urbanlake"
# The column of a validation page that names each expectation, and the GX table renderer (found
# by GX by module and class name, made on first use) that adds it.
EXPECTATION_COLUMN = "Expectation name"
_TABLE_RENDERER = "NamedExpectationTableRenderer"
# Fonts, images and styles GX copies into every site: the same bytes on every build.
_STATIC_FOLDER = "static"


@dataclass(frozen=True)
class StoredResult:
    """One validated batch and where its GX validation result is kept."""

    dataset: str  # <domain>.<table>
    run_id: str
    batch: int
    validated_at: datetime
    uri: str

    @property
    def batch_name(self) -> str:
        return f"batch-{self.batch:05d}"


def latest_stored_results(reader: LakeReader, limit: int) -> list[StoredResult]:
    """The newest ``limit`` validated batches that kept a GX result, newest first."""
    rows = reader.stored_quality_results(limit)
    return [
        StoredResult(r["dataset"], r["run_id"], r["batch"], r["validated_at"], r["result_uri"])
        for r in rows
    ]


def build_docs(reader: LakeReader, settings: Settings, limit: int = 200) -> str:
    """Build GX Data Docs for the newest ``limit`` validated batches into ``<lake>/docs/``.

    Returns the path (local lake) or URI (``s3://`` lake) of the site's ``index.html``. Raises
    ``NotFound`` when no batch has been validated yet.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    stored = latest_stored_results(reader, limit)
    if not stored:
        raise NotFound(
            "no validation results in platform.quality_results yet: give a connector a quality "
            "suite (quality/<domain>/<dataset>.yaml, see docs/quality.md) and run `urbanlake ingest`"
        )
    docs_uri = f"{settings.lake_uri}/{DOCS_FOLDER}"
    fs, docs_path = filesystem_for(docs_uri, settings.s3)
    if isinstance(fs, pafs.LocalFileSystem):
        # GX writes the files itself, and removes the pages of results no longer among the newest.
        _render_site(reader, stored, Path(docs_path))
        return str(Path(docs_path) / "index.html")
    # GX's site builder writes to a folder or to S3 through boto3 with its own credentials; the
    # lake's S3 settings reach pyarrow, so GX builds locally and pyarrow uploads.
    with tempfile.TemporaryDirectory(prefix="urbanlake-docs-") as folder:
        _render_site(reader, stored, Path(folder))
        _upload_site(Path(folder), fs, docs_path)
    return f"{docs_uri}/index.html"


def _render_site(reader: LakeReader, stored: list[StoredResult], folder: Path) -> None:
    """Render ``stored`` with GX's site builder into ``folder``."""
    from marshmallow.exceptions import MarshmallowError  # GX's (de)serialiser

    context = _docs_context(folder)
    suites: dict[str, dict[str, Any]] = {}  # dataset -> its newest GX result
    keys: dict[ValidationResultIdentifier, StoredResult] = {}
    for item in stored:
        try:
            document = json.loads(reader.document(item.uri))
            result = _validation_result(document, item)
        except (OSError, ValueError, TypeError, KeyError, MarshmallowError) as exc:
            # One unreadable result (deleted, or from a GX whose JSON this one cannot read) costs
            # its own page, not the site.
            log.warning("skipped the validation result %s: %s", item.uri, exc)
            continue
        suites.setdefault(item.dataset, document)
        key = _result_key(item)
        context.validation_results_store.set(key, result)
        keys[key] = item
    for dataset, document in suites.items():
        context.suites.add(_suite(dataset, document))
    context.build_data_docs(site_names=[SITE_NAME])
    # GX logs a page it could not render and goes on; say which batches have no page.
    missing = [
        f"{item.dataset} {item.run_id} {item.batch_name}"
        for key, item in keys.items()
        if not _page(folder, key).exists()
    ]
    if missing:
        log.warning("GX rendered no page for %d batch(es): %s", len(missing), "; ".join(missing))


def _docs_context(folder: Path) -> EphemeralDataContext:
    """An in-memory GX context whose one Data Docs site is ``folder``."""
    # Before the import: GX reads it when the module loads.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
    )

    # Built directly rather than with gx.get_context(), which would also make it GX's
    # process-wide current context, the one gx_runner's validations fall back on.
    context = EphemeralDataContext(
        project_config=DataContextConfig(
            analytics_enabled=False,
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        )
    )
    # GX's DataDocsSiteConfigTypedDict lists only some of SiteBuilder's arguments (it says so).
    context.add_data_docs_site(
        SITE_NAME,
        {  # type: ignore[typeddict-unknown-key]
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(folder),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "site_section_builders": {
                "validations": {
                    "renderer": {
                        "class_name": "ValidationResultsPageRenderer",
                        "column_section_renderer": {
                            "class_name": "ValidationResultsColumnSectionRenderer",
                            "table_renderer": {
                                "module_name": __name__,
                                "class_name": _named_table_renderer().__name__,
                            },
                        },
                    }
                }
            },
        },
    )
    return context


def _named_table_renderer() -> type:
    """GX's table of validation results with a last column naming each expectation.

    GX describes an expectation in prose ("values must never be null"); the name is what a suite
    YAML, ``platform.quality_results`` and quarantine reasons use. (GX's own way to add columns,
    "meta properties" in the suite's notes, fails in GX 1.24.1: every row then raises "extra fields
    not permitted" and the page is not rendered.) Made on first use so that importing this module
    does not import GX, and kept as a module attribute, where GX's class loader looks it up.
    """
    made: type | None = globals().get(_TABLE_RENDERER)
    if made is not None:
        return made
    from great_expectations.render.components import RenderedStringTemplateContent
    from great_expectations.render.renderer.content_block import (
        ValidationResultsTableContentBlockRenderer,
    )

    def name_cell(name: str) -> RenderedStringTemplateContent:
        return RenderedStringTemplateContent(
            content_block_type="string_template",
            string_template={
                "template": "$name",
                "params": {"name": name},
                "styling": {"params": {"name": {"tag": "code"}}},
            },
        )

    class NamedExpectationTableRenderer(ValidationResultsTableContentBlockRenderer):
        @classmethod
        def _process_content_block(
            cls, content_block: Any, has_failed_evr: Any, render_object: Any = None
        ) -> None:
            super()._process_content_block(content_block, has_failed_evr, render_object)
            content_block.header_row.append(EXPECTATION_COLUMN)
            content_block.header_row_options[EXPECTATION_COLUMN] = {"sortable": True}

        @classmethod
        def _get_content_block_fn(
            cls, expectation_type: str, expectation_config: Any = None
        ) -> Callable[..., Any] | None:
            make_rows = super()._get_content_block_fn(expectation_type, expectation_config)
            if make_rows is None:
                return None

            def rows_with_name(*args: Any, **kwargs: Any) -> list[list[Any]]:
                config = getattr(kwargs.get("result"), "expectation_config", None)
                name = getattr(config, "type", None) or expectation_type
                return [[*row, name_cell(name)] for row in make_rows(*args, **kwargs)]

            return rows_with_name

    globals()[_TABLE_RENDERER] = NamedExpectationTableRenderer
    return NamedExpectationTableRenderer


def _result_key(item: StoredResult) -> ValidationResultIdentifier:
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    return ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=item.dataset),
        run_id=RunIdentifier(run_name=item.run_id, run_time=item.validated_at),
        batch_identifier=item.batch_name,
    )


def _page(folder: Path, key: ValidationResultIdentifier) -> Path:
    """Where GX's site builder puts a validation's page."""
    # to_tuple(): the suite name split at its dots, run name, run time, batch.
    return folder.joinpath("validations", *map(str, key.to_tuple())).with_suffix(".html")


def _validation_result(
    document: dict[str, Any], item: StoredResult
) -> ExpectationSuiteValidationResult:
    """GX's validation result object from its stored JSON, named after the dataset, run and batch."""
    from great_expectations.core.expectation_validation_result import (
        expectationSuiteValidationResultSchema,
    )
    from marshmallow import EXCLUDE

    meta = dict(document.get("meta") or {})
    meta["run_id"] = {"run_name": item.run_id, "run_time": item.validated_at.isoformat()}
    meta["validation_time"] = item.validated_at.isoformat()
    # gx_runner validates every dataset as the one asset "batch"; the dataset is the asset here.
    meta["active_batch_definition"] = {
        **(meta.get("active_batch_definition") or {}),
        "data_asset_name": item.dataset,
    }
    meta["batch_spec"] = {**(meta.get("batch_spec") or {}), "data_asset_name": item.dataset}
    # EXCLUDE: a top-level field this GX does not know (written by another version) is dropped.
    loaded = expectationSuiteValidationResultSchema.load(
        {**document, "suite_name": item.dataset, "meta": meta}, unknown=EXCLUDE
    )
    result: ExpectationSuiteValidationResult = loaded
    return result


def _suite(dataset: str, document: dict[str, Any]) -> ExpectationSuite:
    """The dataset's suite as its newest result ran it."""
    from great_expectations import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    expectations = []
    for item in document.get("results") or []:
        config = item.get("expectation_config") or {}
        kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
        try:
            expectations.append(
                ExpectationConfiguration(
                    type=config["type"], kwargs=kwargs, meta=config.get("meta")
                ).to_domain_obj()
            )
        except Exception as exc:  # GX raises several kinds for arguments it does not accept
            log.warning("left %s out of the %s suite page: %s", config.get("type"), dataset, exc)
    return ExpectationSuite(name=dataset, expectations=expectations)


def _upload_site(folder: Path, fs: pafs.FileSystem, docs_path: str) -> None:
    """Copy the built site to ``docs_path`` on ``fs`` and remove the files it no longer has."""
    existing = {
        info.path: info.size
        for info in fs.get_file_info(
            pafs.FileSelector(docs_path, allow_not_found=True, recursive=True)
        )
        if info.type == pafs.FileType.File
    }
    written = set()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = file.relative_to(folder).as_posix()
        target = f"{docs_path}/{relative}"
        written.add(target)
        content = file.read_bytes()
        if relative.startswith(f"{_STATIC_FOLDER}/") and existing.get(target) == len(content):
            continue
        if isinstance(fs, pafs.S3FileSystem):
            # With its content type, a browser shows a page instead of downloading it (S3's
            # default is application/octet-stream); an S3 PUT is atomic on its own.
            kind = mimetypes.guess_type(relative)[0] or "application/octet-stream"
            with fs.open_output_stream(target, metadata={"Content-Type": kind}) as out:
                out.write(content)
        else:
            write_atomically(fs, target, content)
    # The pages of results no longer among the newest go, as GX removes them from a local site.
    # A folder left empty goes whole: deleting its files one by one would leave pyarrow's empty
    # marker object for the folder behind.
    kept = {parent for path in written for parent in _parents(path, docs_path)}
    doomed = set()
    for path in set(existing) - written:
        top = path
        for parent in _parents(path, docs_path):
            if parent in kept:
                break
            top = parent
        doomed.add(top)
    for path in sorted(doomed):
        if path in existing:
            fs.delete_file(path)
        else:
            fs.delete_dir(path)


def _parents(path: str, root: str) -> list[str]:
    """The folders between ``root`` and ``path``, nearest first (``root`` last)."""
    parents = []
    while "/" in path and path != root:
        path = path.rsplit("/", 1)[0]
        parents.append(path)
        if path == root:
            break
    return parents
