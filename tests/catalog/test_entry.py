"""Catalog entries: validation with file:line, connector defaults, 'did you mean' for tables and
columns, and `urbanlake check` over connectors and catalog together."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import LakeTarget, run_cli
from urbanlake.catalog.entry import load_entries
from urbanlake.connectors.registry import load_configs

CONNECTOR = """\
name: bins
domain: waste
title: Bin fill levels
description: Every bin, every hour.
publisher: {name: Waste Services, email: waste@city.example}
source: {type: file, url: data/*.csv}
table: {primary_key: [bin_id, measured_at], event_time: measured_at}
columns:
  fill_level: {type: double, unit: "%", description: Share of the bin that is full}
publish: {access: public, license: CC-BY-4.0, keywords: [waste]}
"""


def project(target: LakeTarget, entries: dict[str, str]) -> Path:
    root = target.project
    (root / "connectors").mkdir(exist_ok=True)
    (root / "connectors" / "bins.yaml").write_text(CONNECTOR)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "a.csv").write_text(
        "bin_id,measured_at,fill_level,latitude,longitude\nb1,2026-01-01T00:00:00Z,40,59.9,10.7\n"
    )
    for relative, text in entries.items():
        path = root / "catalog" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_connector_gives_its_entries_defaults(local_lake: LakeTarget) -> None:
    root = project(
        local_lake, {"waste/bins.yaml": "name: bins\ndomain: waste\nsource: {table: waste.bins}\n"}
    )
    configs, _ = load_configs(root / "connectors")
    [entry], problems = load_entries(root / "catalog", configs)
    assert problems == []
    assert (entry.title, entry.license, entry.access, entry.keywords) == (
        "Bin fill levels",
        "CC-BY-4.0",
        "public",
        ["waste"],
    )
    assert entry.publisher.name == "Waste Services" and entry.primary_key == [
        "bin_id",
        "measured_at",
    ]
    assert entry.columns["fill_level"].unit == "%"


def test_every_problem_with_file_and_line(local_lake: LakeTarget) -> None:
    root = project(local_lake, {
        "waste/bad-name.yaml": "name: Bad Name!\ndomain: waste\nsource: {table: waste.bins}\n",
        "waste/no-sql.yaml": "name: no-sql\ndomain: waste\ntitle: T\npublisher: {name: P}\nlicense: CC0-1.0\nsource: {sql: missing.sql}\n",
        "waste/one.yaml": "name: bins\ndomain: waste\nsource: {table: waste.bins}\n",
        "waste/two.yaml": "name: bins\ndomain: waste\nsource: {table: waste.bins}\n",
        "waste/often.yaml": "name: often\ndomain: waste\nsource: {table: waste.bins}\nfrequency: sometimes\n",
        "waste/extra.yaml": "name: extra\ndomain: waste\nsource: {table: waste.bins}\ncolour: blue\n",
        "waste/both.yaml": "name: both\ndomain: waste\nsource: {table: waste.bins, sql: x.sql}\n",
    })  # fmt: skip
    configs, _ = load_configs(root / "connectors")
    _, problems = load_entries(root / "catalog", configs)
    text = "\n".join(str(p) for p in problems)
    assert "bad-name.yaml:1: name: 'Bad Name!' is not a dataset name" in text
    assert "no-sql.yaml:6: source.sql: no SQL file" in text
    assert "often.yaml:4: frequency: unknown frequency 'sometimes'" in text
    assert "extra.yaml:4: colour: unknown field" in text
    assert "both.yaml:3: source: give exactly one of 'table'" in text
    assert "two.yaml:1: name: dataset bins is already defined in" in text


def test_check_names_misspelt_tables_and_columns(local_lake: LakeTarget) -> None:
    project(local_lake, {
        "waste/typo-table.yaml": "name: typo-table\ndomain: waste\nsource: {table: waste.binz}\n",
        "waste/typo-column.yaml": "name: typo-column\ndomain: waste\nsource: {table: waste.bins}\ngeometry: {lon: longitud, lat: latitude}\n",
        "waste/model.yaml": "name: model\ndomain: waste\ntitle: M\npublisher: {name: P}\nlicense: CC0-1.0\nprimary_key: [bin]\nsource: {sql: model.sql}\n",
        "waste/model.sql": "SELECT bin_id, max(fill_level) AS top FROM waste.bins GROUP BY 1\n",
    })  # fmt: skip
    first = run_cli(local_lake, "check", check=False)
    assert first.returncode == 1
    assert (
        "typo-table.yaml:3: source.table: no table waste.binz; did you mean 'waste.bins'?"
        in first.stderr
    )
    run_cli(local_lake, "ingest", "waste.bins", check=False)
    second = run_cli(local_lake, "check", check=False)
    assert (
        "typo-column.yaml:4: geometry: no column 'longitud' in waste.bins; did you mean 'longitude'?"
        in second.stderr
    )
    assert (
        "model.yaml:6: primary_key: no column 'bin' in catalog.model; did you mean 'bin_id'?"
        in second.stderr
    )


def test_publish_and_ingest_make_versions(local_lake: LakeTarget) -> None:
    root = project(local_lake, {
        "waste/bins.yaml": "name: bins\ndomain: waste\nsource: {table: waste.bins}\n",
        "waste/top.yaml": "name: top\ndomain: waste\ntitle: M\npublisher: {name: P}\nlicense: CC0-1.0\nprimary_key: [bin_id]\nsource: {sql: top.sql}\n",
        "waste/top.sql": "SELECT bin_id, max(fill_level) AS top FROM waste.bins GROUP BY 1\n",
    })  # fmt: skip
    ingested = run_cli(local_lake, "ingest", "waste.bins")
    assert "new version" in ingested.stdout  # ingest refreshes what its tables feed
    again = run_cli(local_lake, "publish")
    assert again.stdout.count("up to date") == 2
    (root / "data" / "b.csv").write_text(
        "bin_id,measured_at,fill_level,latitude,longitude\nb2,2026-01-01T00:00:00Z,90,59.9,10.7\n"
    )
    run_cli(local_lake, "ingest", "waste.bins")
    from urbanlake.lakehouse.lake import Lake

    with Lake.open(local_lake.settings()) as lake:
        versions = lake.reader.dataset_versions("top")
        rows = lake.query("SELECT * FROM catalog.top ORDER BY bin_id").to_pylist()
    assert [v["row_count"] for v in versions] == [2, 1]
    assert versions[0]["inputs"][0]["table"] == "waste.bins" and versions[0]["how"] == "model"
    assert rows == [{"bin_id": "b1", "top": 40.0}, {"bin_id": "b2", "top": 90.0}]
    failed = run_cli(local_lake, "publish", "nope", check=False)
    assert failed.returncode == 1 and "no dataset 'nope'" in failed.stderr


def test_a_public_delay_only_on_a_tiered_dataset(local_lake: LakeTarget) -> None:
    root = project(local_lake, {
        # The connector makes it public: a delay has nothing to hold back.
        "waste/public.yaml": "name: public\ndomain: waste\nsource: {table: waste.bins}\npublic_delay: 1h\n",
        "waste/never.yaml": "name: never\ndomain: waste\naccess: partner\nsource: {table: waste.bins}\npublic_delay: 0s\n",
        "waste/vague.yaml": "name: vague\ndomain: waste\naccess: internal\nsource: {table: waste.bins}\npublic_delay: soon\n",
        "waste/late.yaml": "name: late\ndomain: waste\naccess: partner\nsource: {table: waste.bins}\npublic_delay: 90m\n",
    })  # fmt: skip
    configs, _ = load_configs(root / "connectors")
    entries, problems = load_entries(root / "catalog", configs)
    text = "\n".join(str(p) for p in problems)
    assert "public.yaml:4: public_delay: public_delay is for a partner or internal dataset" in text
    assert "never.yaml:5: public_delay: public_delay must be longer than 0" in text
    assert "vague.yaml:5: public_delay: 'soon' is not a duration" in text
    [late] = entries
    assert late.delay is not None and late.delay.total_seconds() == 5400
