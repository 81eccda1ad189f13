"""``urbanlake init``: a new city project with commented examples of every file a user edits."""

from __future__ import annotations

from pathlib import Path

from urbanlake.core.errors import ConfigError

PROJECT_YAML = """\
# UrbanLake project settings. Every key can be overridden by an environment variable:
# URBANLAKE_ + the key path in capitals joined by _, e.g. URBANLAKE_LAKE, URBANLAKE_S3_ENDPOINT.
name: {name}

# Where the lakehouse lives: a folder (relative to this file) or s3://bucket/prefix.
lake: lake

# The DuckLake catalog: default is <lake>/catalog.sqlite. Several writers or machines?
# Use PostgreSQL:  catalog: postgresql://urbanlake@db.internal:5432/urbanlake
# catalog: lake/catalog.sqlite

# For an s3:// lake (MinIO or any S3-compatible server). Secrets only as ${{ENV}} references.
# s3:
#   endpoint: minio.internal:9000
#   access_key_id: ${{MINIO_ACCESS_KEY}}
#   secret_access_key: ${{MINIO_SECRET_KEY}}
#   use_ssl: false

defaults:
  schedule: 1h          # how often `urbanlake run` pulls a connector that does not say
  timezone: UTC         # zone of naive timestamps in sources
"""

CONNECTOR_EXAMPLE = """\
# A connector: one YAML file per dataset. `urbanlake check` validates it, `urbanlake ingest` runs it.
name: bin_fill_levels              # SQL name: waste.bin_fill_levels
domain: waste
title: Waste bin fill levels
description: Fill level of every smart bin, as reported by the bins every 15 minutes.
publisher: {name: City Waste Services, email: opendata@city.example}
source:
  type: file                       # file | http | ... (`urbanlake check` lists every type)
  url: data/bins/*.csv             # a path, glob, file:// or s3:// URL
  format: csv                      # csv | json | jsonl | parquet (guessed from the extension when absent)
schedule: {every: 15m}
table:
  primary_key: [bin_id, measured_at]
  event_time: measured_at
  timezone: UTC                    # zone of timestamps that carry none
columns:                           # optional: declared types win over what the source suggests
  fill_level: {type: double, unit: "%", description: Share of the bin that is full}
publish: {access: public, license: CC-BY-4.0}

# An HTTP API instead of files:
# source:
#   type: http
#   url: https://api.city.example/v1/bins
#   records_path: data.items
#   headers: {Authorization: "Bearer ${BINS_API_TOKEN}"}
#   pagination: {type: next_link, next_path: links.next}
#   incremental: {param: since, lookback: 10m}
"""

EXAMPLE_CSV = """\
bin_id,measured_at,fill_level,latitude,longitude
bin-001,2026-01-01T08:00:00Z,42.5,59.9139,10.7522
bin-002,2026-01-01T08:00:00Z,87.0,59.9150,10.7480
"""

QUALITY_README = """\
# Quality suites

One YAML file per dataset, `quality/<domain>/<dataset>.yaml`, listing Great Expectations
expectations by their own names and arguments. A connector refers to its suite with
`quality: {suite: <domain>/<dataset>}`.
"""

CATALOG_EXAMPLE = """\
# A curated dataset: what the catalog API publishes, at /api/v1/datasets/bin-fill-levels.
# `urbanlake check` validates it; `urbanlake publish` (and every `urbanlake ingest` that changes
# its table) records a new version. Nothing is published without an entry like this one.
name: bin-fill-levels              # the dataset's name in URLs: lowercase letters, digits, - and _
domain: waste
source: {table: waste.bin_fill_levels}   # a lake table, or {sql: <file>.sql} (see below)

# Title, description, publisher, primary key, column units and descriptions, and the
# `publish` block's access, license, keywords and theme come from the connector that fills the
# table (connectors/waste/bin_fill_levels.yaml). A field set here wins.
keywords: [waste, bins, sensors]
theme: environment
frequency: hourly                  # continuous | realtime | minutely | hourly | daily | ... | never
geometry: {lon: longitude, lat: latitude}   # where rows are: bbox= filters and GeoJSON
columns:
  latitude: {unit: degree, description: WGS 84 latitude}
  longitude: {unit: degree, description: WGS 84 longitude}

# access: partner                  # public | partner | internal; until API keys exist, a dataset
#                                  # that is not public answers 404, like one that does not exist
# license: CC0-1.0                 # an SPDX id
# spatial: {bbox: [10.70, 59.88, 10.81, 59.95]}   # min lon, min lat, max lon, max lat
# freshness: {max_age: 3h}         # stale after this (default: the connector's quality suite)

# A SQL model instead: a .sql file next to this one holds one DuckDB SELECT over lake tables
# (<domain>.<table>); `urbanlake publish` materializes it as a lake table (catalog.bins_above_80).
# name: bins-above-80
# title: Bins more than 80 % full
# publisher: {name: City Waste Services, email: opendata@city.example}
# license: CC-BY-4.0
# primary_key: [bin_id]
# source: {sql: bins-above-80.sql}
"""


def scaffold(directory: Path) -> list[Path]:
    """Create a project in ``directory`` (which may exist, but must not hold a project yet)."""
    if (directory / "urbanlake.yaml").exists():
        raise ConfigError(
            f"{directory / 'urbanlake.yaml'} already exists: this folder is a project already"
        )
    files = {
        "urbanlake.yaml": PROJECT_YAML.format(name=directory.resolve().name),
        "connectors/waste/bin_fill_levels.yaml": CONNECTOR_EXAMPLE,
        "data/bins/2026-01-01.csv": EXAMPLE_CSV,
        "quality/README.md": QUALITY_README,
        "catalog/waste/bin-fill-levels.yaml": CATALOG_EXAMPLE,
        ".gitignore": "lake/\n.urbanlake/\n",
    }
    created = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        created.append(path)
    return created
