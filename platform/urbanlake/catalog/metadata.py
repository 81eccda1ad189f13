"""What the open-metadata documents say of the catalog and its datasets, read once per document:
each visible dataset's facts (versions the caller may read, their Parquet files' sizes, quality),
and the controlled vocabularies' terms we use, spelt out with their labels so that nothing is
fetched from the network. The documents are built from these facts by ``catalog.dcat`` (DCAT-AP 3
with W3C DQV quality), ``catalog.data_json`` (DCAT-US / Project Open Data v1.1) and
``catalog.schema_org`` (schema.org ``Dataset`` for search engines).

Every builder starts from what the caller may see (``catalog.visible`` / ``catalog.entry``), so a
hidden dataset is absent from catalog-level documents and answers exactly like a missing one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow.fs as pafs

from urbanlake.catalog import actions
from urbanlake.catalog.entry import DatasetEntry
from urbanlake.catalog.service import Caller, Catalog
from urbanlake.core.storage import filesystem_for

VERSIONS_DESCRIBED = 20  # newest versions per dataset given as distributions; all are in /versions

# Our themes → the EU data-theme authority (code, English label). A theme not listed here is
# given as a keyword instead: dcat:theme takes only concepts of that vocabulary.
DATA_THEMES = {
    "agriculture": ("AGRI", "Agriculture, fisheries, forestry and food"),
    "economy": ("ECON", "Economy and finance"), "finance": ("ECON", "Economy and finance"),
    "education": ("EDUC", "Education, culture and sport"),
    "culture": ("EDUC", "Education, culture and sport"),
    "sport": ("EDUC", "Education, culture and sport"),
    "energy": ("ENER", "Energy"),
    "environment": ("ENVI", "Environment"), "climate": ("ENVI", "Environment"),
    "government": ("GOVE", "Government and public sector"),
    "health": ("HEAL", "Health"),
    "international": ("INTR", "International issues"),
    "justice": ("JUST", "Justice, legal system and public safety"),
    "safety": ("JUST", "Justice, legal system and public safety"),
    # Streets, lighting, buildings and other city infrastructure: the vocabulary's urban theme.
    "infrastructure": ("REGI", "Regions and cities"), "housing": ("REGI", "Regions and cities"),
    "urban": ("REGI", "Regions and cities"), "regions": ("REGI", "Regions and cities"),
    "population": ("SOCI", "Population and society"), "society": ("SOCI", "Population and society"),
    "science": ("TECH", "Science and technology"), "technology": ("TECH", "Science and technology"),
    "transport": ("TRAN", "Transport"), "mobility": ("TRAN", "Transport"),
}  # fmt: skip

# Our frequencies → (EU frequency authority code, label, ISO 8601 repeating interval for
# data.json; None where data.json has no interval).
FREQUENCIES = {
    "continuous": ("CONT", "continuous", "R/PT1S"),
    "realtime": ("UPDATE_CONT", "continuously updated", "R/PT1S"),
    "minutely": ("1MIN", "every minute", "R/PT1M"),
    "hourly": ("HOURLY", "hourly", "R/PT1H"),
    "daily": ("DAILY", "daily", "R/P1D"),
    "weekly": ("WEEKLY", "weekly", "R/P1W"),
    "monthly": ("MONTHLY", "monthly", "R/P1M"),
    "quarterly": ("QUARTERLY", "quarterly", "R/P3M"),
    "annual": ("ANNUAL", "annual", "R/P1Y"),
    "irregular": ("IRREG", "irregular", "irregular"),
    "never": ("NEVER", "never", None),
}

# access → (EU access-right code, label, data.json accessLevel)
ACCESS = {
    "public": ("PUBLIC", "public", "public"),
    "partner": ("RESTRICTED", "restricted", "restricted public"),
    "internal": ("NON_PUBLIC", "non-public", "non-public"),
}

# SPDX ids whose licence has a canonical page of its own; others link to the SPDX list's page.
LICENSE_PAGES = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC-BY-3.0": "https://creativecommons.org/licenses/by/3.0/",
    "ODbL-1.0": "https://opendatacommons.org/licenses/odbl/1-0/",
    "ODC-By-1.0": "https://opendatacommons.org/licenses/by/1-0/",
    "PDDL-1.0": "https://opendatacommons.org/licenses/pddl/1-0/",
}


@dataclass(frozen=True)
class Format:
    """A download format: its media type (IANA-registered or not) and EU file-type concept."""

    key: str
    label: str
    media_type: str
    registered: bool  # in the IANA media-type registry, so it may be a dcat:mediaType
    file_type: str  # EU file-type authority code


EXPORT_FORMATS = (
    Format("csv", "CSV", "text/csv", True, "CSV"),
    # JSON Lines has no registered media type (the export answers application/x-ndjson); its
    # closest EU file type is JSON.
    Format("jsonl", "JSON Lines", "application/x-ndjson", False, "JSON"),
    Format("geojson", "GeoJSON", "application/geo+json", True, "GEOJSON"),
)
PARQUET = Format("parquet", "Parquet", "application/vnd.apache.parquet", True, "PARQUET")


@dataclass
class Distribution:
    """One download of a dataset: a format of the latest version, or one version's file."""

    key: str  # fragment of its IRI: export-csv, version-41
    title: str
    description: str
    url: str
    format: Format
    stable: bool  # a version's file never changes; an export follows the latest version
    issued: datetime | None = None
    byte_size: int | None = None


@dataclass
class DatasetFacts:
    """What every document says about one dataset, gathered once."""

    entry: DatasetEntry
    url: str
    versions: list[dict[str, Any]]
    distributions: list[Distribution] = field(default_factory=list)
    quality: list[dict[str, Any]] = field(default_factory=list)  # expectations, with their table

    @property
    def modified(self) -> datetime | None:
        return moment_of(self.versions[0]["made_at"]) if self.versions else None

    @property
    def issued(self) -> datetime | None:
        return moment_of(self.versions[-1]["made_at"]) if self.versions else None

    @property
    def latest(self) -> int | None:
        return int(self.versions[0]["version"]) if self.versions else None


def moment_of(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def access_of(entry: DatasetEntry) -> tuple[str, str, str]:
    """(EU access-right code, label, data.json accessLevel): a partner or internal dataset that
    the public reads late (``public_delay``) is public, as its delayed versions are."""
    return ACCESS["public" if entry.delay is not None else entry.access]


def access_note(entry: DatasetEntry) -> str | None:
    if entry.access == "public":
        return None
    if entry.delay is not None:
        return (f"The public reads the version current {entry.public_delay} ago; API key "
                "holders read the latest.")  # fmt: skip
    return "Shared with API key holders only; ask the publisher for a key."


def license_url(spdx: str) -> str:
    return LICENSE_PAGES.get(spdx, f"https://spdx.org/licenses/{spdx}.html")


def dataset_url(base: str, name: str) -> str:
    return f"{base}/api/v1/datasets/{name}"


def catalog_iri(base: str) -> str:
    return f"{base}/api/v1/catalog"


def _version_file_sizes(catalog: Catalog, name: str) -> dict[int, int]:
    """version → size in bytes of each version's Parquet file written so far (one listing; a
    metadata request never writes one: the first download does, see exports.version_file)."""
    fs, folder = filesystem_for(f"{catalog.settings.lake_uri}/exports/{name}", catalog.settings.s3)
    sizes: dict[int, int] = {}
    try:
        infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    except OSError:
        return sizes  # sizes are optional: an unreadable folder only leaves them out
    for info in infos:
        match = re.fullmatch(r"(\d+)\.parquet", info.base_name)
        if match and info.type == pafs.FileType.File and info.size is not None:
            sizes[int(match.group(1))] = int(info.size)
    return sizes


def dataset_facts(
    catalog: Catalog, caller: Caller, entry: DatasetEntry, base: str, quality: bool = True
) -> DatasetFacts:
    """The dataset's versions, distributions and (with ``quality``) latest quality results."""
    url = dataset_url(base, entry.name)
    facts = DatasetFacts(entry, url, catalog.versions_for(caller, entry.name))
    if not facts.versions:
        return facts  # nothing to download until it is published
    for fmt in EXPORT_FORMATS:
        if fmt.key == "geojson" and entry.geometry is None:
            continue
        facts.distributions.append(Distribution(
            f"export-{fmt.key}", f"{entry.title} ({fmt.label}, latest version)",
            f"Every row of the latest version as {fmt.label}, streamed.",
            f"{url}/export?format={fmt.key}", fmt, stable=False, issued=facts.modified))  # fmt: skip
    sizes = _version_file_sizes(catalog, entry.name)
    for version in facts.versions[:VERSIONS_DESCRIBED]:
        number = int(version["version"])
        facts.distributions.append(Distribution(
            f"version-{number}", f"{entry.title} (version {number}, Parquet)",
            f"Version {number}: {int(version['row_count'])} rows as one Parquet file that never "
            "changes (HTTP Range requests supported).",
            f"{url}/versions/{number}/data.parquet", PARQUET, stable=True,
            issued=moment_of(version["made_at"]), byte_size=sizes.get(number)))  # fmt: skip
    if quality:
        report = actions.dataset_quality(catalog, caller, entry.name, runs=1)
        for table, found in report["tables"].items():
            facts.quality += [{**result, "table": table} for result in found["expectations"]]
    return facts


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
