"""``data.json`` (DCAT-US, Project Open Data v1.1) for US-style harvesters."""

from __future__ import annotations

from typing import Any

from urbanlake.catalog.metadata import (
    FREQUENCIES,
    DatasetFacts,
    access_note,
    access_of,
    dataset_facts,
    iso,
    license_url,
)
from urbanlake.catalog.service import Caller, Catalog


def data_json(catalog: Catalog, caller: Caller, base: str) -> dict[str, Any]:
    """The Project Open Data v1.1 catalog of what the caller may see; each dataset with its
    export formats and its latest version's Parquet file."""
    return {
        "@context": "https://project-open-data.cio.gov/v1.1/schema/catalog.jsonld",
        "@id": f"{base}/data.json",
        "@type": "dcat:Catalog",
        "conformsTo": "https://project-open-data.cio.gov/v1.1/schema",
        "describedBy": "https://project-open-data.cio.gov/v1.1/schema/catalog.json",
        "dataset": [
            _pod_dataset(dataset_facts(catalog, caller, entry, base, quality=False))
            for entry in catalog.visible(caller)
        ],
    }


def _pod_dataset(facts: DatasetFacts) -> dict[str, Any]:
    entry = facts.entry
    publisher = entry.publisher
    contact: dict[str, Any] = {"@type": "vcard:Contact", "fn": publisher.name}
    if publisher.email:
        contact["hasEmail"] = f"mailto:{publisher.email}"
    keywords = list(entry.keywords) or [entry.domain]
    out: dict[str, Any] = {
        "@type": "dcat:Dataset",
        "identifier": facts.url,
        "title": entry.title,
        "description": entry.description or entry.title,
        "keyword": keywords,
        "publisher": {"@type": "org:Organization", "name": publisher.name},
        "contactPoint": contact,
        "accessLevel": access_of(entry)[2],
        "license": license_url(entry.license),
        "landingPage": facts.url,
        "describedBy": facts.url,
        "describedByType": "application/json",
    }
    if access_note(entry):
        out["rights"] = access_note(entry)
    if facts.modified is not None:
        out["modified"] = iso(facts.modified)
    if facts.issued is not None:
        out["issued"] = iso(facts.issued)
    if entry.theme:
        out["theme"] = [entry.theme]
    periodicity = FREQUENCIES.get(entry.frequency, FREQUENCIES["irregular"])[2]
    if periodicity:
        out["accrualPeriodicity"] = periodicity
    if entry.spatial is not None:
        out["spatial"] = ",".join(str(v) for v in entry.spatial.bbox)
    if entry.temporal is not None and entry.temporal.start and entry.temporal.end:
        out["temporal"] = f"{entry.temporal.start}/{entry.temporal.end}"
    distributions = [d for d in facts.distributions if not d.stable]
    distributions += [d for d in facts.distributions if d.stable][:1]  # the latest version's file
    out["distribution"] = [
        {"@type": "dcat:Distribution", "title": d.title, "description": d.description,
         "downloadURL": d.url, "mediaType": d.format.media_type, "format": d.format.label}
        for d in distributions
    ]  # fmt: skip
    return out
