"""schema.org ``Dataset`` JSON-LD for search engines (Google Dataset Search)."""

from __future__ import annotations

from typing import Any

from urbanlake.catalog.metadata import access_note, catalog_iri, dataset_facts, iso, license_url
from urbanlake.catalog.service import Caller, Catalog


def schema_org(catalog: Catalog, caller: Caller, name: str, base: str) -> dict[str, Any]:
    """A schema.org Dataset for search engines (the fields Google Dataset Search reads)."""
    entry = catalog.entry(caller, name)
    facts = dataset_facts(catalog, caller, entry, base, quality=False)
    publisher = entry.publisher
    organization: dict[str, Any] = {"@type": "Organization", "name": publisher.name}
    if publisher.url:
        organization["url"] = publisher.url
    if publisher.email:
        organization["email"] = publisher.email
    keywords = list(entry.keywords) + ([entry.theme] if entry.theme else [])
    out: dict[str, Any] = {
        "@context": "https://schema.org/",
        "@type": "Dataset",
        "@id": facts.url,
        "name": entry.title,
        "description": entry.description or entry.title,
        "url": facts.url,
        "identifier": facts.url,
        "keywords": list(dict.fromkeys(keywords)),
        "license": license_url(entry.license),
        "isAccessibleForFree": True,
        "creator": organization,
        "publisher": organization,
        "includedInDataCatalog": {
            "@type": "DataCatalog",
            "name": f"{catalog.settings.name} open data",
            "url": catalog_iri(base),
        },
    }
    if access_note(entry):
        out["conditionsOfAccess"] = access_note(entry)
    if facts.modified is not None:
        out["dateModified"] = iso(facts.modified)
        out["datePublished"] = iso(facts.issued)
        out["version"] = str(facts.latest)
    if entry.temporal is not None and (entry.temporal.start or entry.temporal.end):
        out["temporalCoverage"] = f"{entry.temporal.start or '..'}/{entry.temporal.end or '..'}"
    if entry.spatial is not None:
        min_lon, min_lat, max_lon, max_lat = entry.spatial.bbox
        out["spatialCoverage"] = {
            "@type": "Place",
            "geo": {"@type": "GeoShape", "box": f"{min_lat} {min_lon} {max_lat} {max_lon}"},
        }
    distributions = [d for d in facts.distributions if not d.stable]
    distributions += [d for d in facts.distributions if d.stable][:1]
    out["distribution"] = [
        {"@type": "DataDownload", "name": d.title, "encodingFormat": d.format.media_type,
         "contentUrl": d.url, **({"contentSize": f"{d.byte_size} B"} if d.byte_size else {})}
        for d in distributions
    ]  # fmt: skip
    latest = facts.versions[0] if facts.versions else None
    columns = latest["statistics"].get("columns", {}) if latest else {}
    variables = []
    for column in columns or entry.columns:
        doc = entry.columns.get(column)
        variable: dict[str, Any] = {"@type": "PropertyValue", "name": column}
        if doc is not None and doc.description:
            variable["description"] = doc.description
        if doc is not None and doc.unit:
            variable["unitText"] = doc.unit
        variables.append(variable)
    if variables:
        out["variableMeasured"] = variables
    return out
