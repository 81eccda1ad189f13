"""``urbanlake check`` for the catalog: every entry valid, every table and column it names known
(against the lake when it exists, else against the connector configs), with 'did you mean'."""

from __future__ import annotations

from pathlib import Path

from urbanlake.catalog.entry import DatasetEntry, check_against_lake, load_entries
from urbanlake.connectors.registry import load_configs
from urbanlake.core.errors import ConfigError, ConfigProblem, UrbanLakeError
from urbanlake.core.settings import Settings, is_postgres
from urbanlake.core.spec import ConnectorConfig
from urbanlake.lakehouse.lake import Lake
from urbanlake.lakehouse.versions import model_columns


def catalog_entries(settings: Settings) -> list[DatasetEntry]:
    """The catalog's entries; raises ``ConfigError`` with every problem if any entry is wrong."""
    configs, _ = load_configs(settings.connectors_dir)
    entries, problems = load_entries(settings.catalog_dir, configs)
    if problems:
        raise ConfigError(problems)
    return entries


def _lake_exists(settings: Settings) -> bool:
    url = settings.catalog_url
    return is_postgres(url) or Path(url).exists()


def check_catalog(
    settings: Settings, configs: list[ConnectorConfig]
) -> tuple[list[DatasetEntry], list[ConfigProblem]]:
    # Tables the connectors declare, loaded or not (a multi-table connector's parts are known
    # once loaded), and the lake's tables with their columns.
    tables: dict[str, list[str]] = {c.table_name: [] for c in configs}
    problems: list[ConfigProblem] = []
    lake = None
    if _lake_exists(settings):
        try:
            lake = Lake.open(settings)
        except UrbanLakeError as exc:
            problems.append(
                ConfigProblem(str(settings.catalog_dir), None, "", f"cannot read the lake: {exc}")
            )
    try:
        if lake is not None:
            for table in lake.reader.table_names():
                tables[str(table)] = list(lake.reader.column_types(table))
        entries, found = load_entries(settings.catalog_dir, configs, set(tables))
        problems += found
        models: dict[str, list[str]] = {}
        for entry in entries:
            if lake is None or not entry.is_model:
                continue
            try:
                models[entry.name] = model_columns(lake, entry.model_sql())
            except Exception as exc:  # the model's own SQL error, said as such
                if "does not exist" in str(exc):
                    continue  # an input not loaded yet: checked once it is
                problems.append(ConfigProblem(str(entry.sql_path()), None, "source.sql",
                                              f"the SQL model does not run: {exc}".split("\n")[0]))  # fmt: skip
    finally:
        if lake is not None:
            lake.close()
    problems += check_against_lake(entries, tables, models)
    return entries, problems
