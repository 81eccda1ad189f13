"""Open metadata: the catalog described in the vocabularies portals and search engines read.

- DCAT-AP 3 (an RDF graph, served as JSON-LD and Turtle) for the whole catalog and for each
  dataset: every export format and every recent published version a ``dcat:Distribution`` with
  its stable URL, media type and (for a version's Parquet file, once written) its byte size; each
  expectation's latest result a W3C DQV ``dqv:QualityMeasurement``.
- ``data.json`` (DCAT-US, Project Open Data v1.1) for US-style harvesters.
- schema.org ``Dataset`` JSON-LD for search engines (Google Dataset Search).

Every builder starts from what the caller may see (``catalog.visible`` / ``catalog.entry``), so a
hidden dataset is absent from catalog-level documents and answers exactly like a missing one.
Nothing here is fetched from the network: the controlled vocabularies' terms we use are spelt out
below with their labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import pyarrow.fs as pafs
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, PROV, RDF, RDFS, SKOS, XSD

from urbanlake.catalog import actions
from urbanlake.catalog.entry import DatasetEntry
from urbanlake.catalog.service import Caller, Catalog
from urbanlake.core.storage import filesystem_for

DCATAP = Namespace("http://data.europa.eu/r5r/")
DQV = Namespace("http://www.w3.org/ns/dqv#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"
DCAT_VERSION = URIRef(f"{DCAT}version")  # DCAT 3; rdflib's DCAT namespace is DCAT 2

# The prefixes the JSON-LD and Turtle documents are written with (no remote context is needed).
PREFIXES = {
    "dcat": str(DCAT), "dct": str(DCTERMS), "dcatap": str(DCATAP), "foaf": str(FOAF),
    "vcard": str(VCARD), "dqv": str(DQV), "prov": str(PROV), "skos": str(SKOS), "rdfs": str(RDFS),
    "xsd": str(XSD), "locn": str(LOCN), "gsp": str(GSP),
}  # fmt: skip

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
        return _moment(self.versions[0]["made_at"]) if self.versions else None

    @property
    def issued(self) -> datetime | None:
        return _moment(self.versions[-1]["made_at"]) if self.versions else None

    @property
    def latest(self) -> int | None:
        return int(self.versions[0]["version"]) if self.versions else None


def _moment(value: Any) -> datetime | None:
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
            issued=_moment(version["made_at"]), byte_size=sizes.get(number)))  # fmt: skip
    if quality:
        report = actions.dataset_quality(catalog, caller, entry.name, runs=1)
        for table, found in report["tables"].items():
            facts.quality += [{**result, "table": table} for result in found["expectations"]]
    return facts


# -- DCAT-AP 3 -------------------------------------------------------------------------------------


def new_graph() -> Graph:
    graph = Graph()
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, Namespace(namespace), override=True)
    return graph


def _concept(graph: Graph, iri: str, label: str, scheme: str, *types: URIRef) -> URIRef:
    """A term of a controlled vocabulary, typed and labelled so that the shapes' class and
    label checks hold without fetching the vocabulary."""
    node = URIRef(iri)
    graph.add((node, RDF.type, SKOS.Concept))
    for kind in types:
        graph.add((node, RDF.type, kind))
    graph.add((node, SKOS.prefLabel, Literal(label, lang="en")))
    graph.add((node, SKOS.inScheme, URIRef(scheme)))
    return node


def _agent(graph: Graph, base: str, name: str, email: str | None, url: str | None) -> URIRef:
    slug = quote(re.sub(r"\s+", "-", name.strip().lower()), safe="-")
    node = URIRef(f"{catalog_iri(base)}#publisher-{slug}")
    graph.add((node, RDF.type, FOAF.Agent))
    graph.add((node, FOAF.name, Literal(name)))
    if email:
        graph.add((node, FOAF.mbox, URIRef(f"mailto:{email}")))
    if url:
        graph.add((node, FOAF.homepage, _document(graph, url)))
    return node


def _document(graph: Graph, url: str) -> URIRef:
    node = URIRef(url)
    graph.add((node, RDF.type, FOAF.Document))
    return node


def _dated(value: str | None) -> Literal | None:
    """A temporal bound as xsd:date or xsd:dateTime; None when it is neither."""
    if not value:
        return None
    try:
        return Literal(date.fromisoformat(value), datatype=XSD.date)
    except ValueError:
        pass
    moment = _moment(value.replace("Z", "+00:00"))
    return Literal(moment, datatype=XSD.dateTime) if moment else None


def data_service(graph: Graph, base: str) -> URIRef:
    """The catalog API as a dcat:DataService: every distribution is reached through it."""
    node = URIRef(f"{base}/api/v1")
    graph.add((node, RDF.type, DCAT.DataService))
    graph.add((node, DCTERMS.title, Literal("Catalog API (UrbanLake)")))
    graph.add((node, DCAT.endpointURL, URIRef(f"{base}/api/v1")))
    graph.add((node, DCAT.endpointDescription, URIRef(f"{base}/api/v1/openapi.json")))
    graph.add((node, DCAT.landingPage, _document(graph, f"{base}/api/v1/docs")))
    openapi = URIRef("https://spec.openapis.org/oas/v3.1.0")  # the version FastAPI writes
    graph.add((openapi, RDF.type, DCTERMS.Standard))
    graph.add((node, DCTERMS.conformsTo, openapi))
    for keyword in ("open data", "API"):
        graph.add((node, DCAT.keyword, Literal(keyword)))
    return node


def add_dataset(graph: Graph, base: str, facts: DatasetFacts, service: URIRef) -> URIRef:
    entry = facts.entry
    node = URIRef(facts.url)
    graph.add((node, RDF.type, DCAT.Dataset))
    graph.add((node, DCTERMS.title, Literal(entry.title)))
    graph.add((node, DCTERMS.description, Literal(entry.description or entry.title)))
    graph.add((node, DCTERMS.identifier, Literal(facts.url)))
    graph.add((node, DCAT.landingPage, _document(graph, facts.url)))
    keywords = list(entry.keywords)
    theme = DATA_THEMES.get((entry.theme or "").lower())
    if theme is not None:
        graph.add((node, DCAT.theme, _concept(graph, f"{EU}data-theme/{theme[0]}", theme[1],
                                              f"{EU}data-theme")))  # fmt: skip
    elif entry.theme and entry.theme not in keywords:
        keywords.append(entry.theme)
    for keyword in keywords:
        graph.add((node, DCAT.keyword, Literal(keyword)))
    publisher = entry.publisher
    graph.add((node, DCTERMS.publisher,
               _agent(graph, base, publisher.name, publisher.email, publisher.url)))  # fmt: skip
    if publisher.email or publisher.url:
        contact = BNode()
        graph.add((contact, RDF.type, VCARD.Kind))
        graph.add((contact, RDF.type, VCARD.Organization))
        graph.add((contact, VCARD.fn, Literal(publisher.name)))
        if publisher.email:
            graph.add((contact, VCARD.hasEmail, URIRef(f"mailto:{publisher.email}")))
        if publisher.url:
            graph.add((contact, VCARD.hasURL, URIRef(publisher.url)))
        graph.add((node, DCAT.contactPoint, contact))
    code, label, _ = FREQUENCIES.get(entry.frequency, FREQUENCIES["irregular"])
    graph.add((node, DCTERMS.accrualPeriodicity,
               _concept(graph, f"{EU}frequency/{code}", label, f"{EU}frequency",
                        DCTERMS.Frequency)))  # fmt: skip
    right, right_label, _ = access_of(entry)
    graph.add((node, DCTERMS.accessRights,
               _concept(graph, f"{EU}access-right/{right}", right_label, f"{EU}access-right",
                        DCTERMS.RightsStatement)))  # fmt: skip
    if entry.spatial is not None:
        min_lon, min_lat, max_lon, max_lat = entry.spatial.bbox
        place = BNode()
        graph.add((place, RDF.type, DCTERMS.Location))
        polygon = (f"POLYGON(({min_lon} {min_lat}, {max_lon} {min_lat}, {max_lon} {max_lat}, "
                   f"{min_lon} {max_lat}, {min_lon} {min_lat}))")  # fmt: skip
        graph.add((place, DCAT.bbox, Literal(polygon, datatype=GSP.wktLiteral)))
        graph.add((node, DCTERMS.spatial, place))
    if entry.temporal is not None:
        start, end = _dated(entry.temporal.start), _dated(entry.temporal.end)
        if start is not None or end is not None:
            period = BNode()
            graph.add((period, RDF.type, DCTERMS.PeriodOfTime))
            if start is not None:
                graph.add((period, DCAT.startDate, start))
            if end is not None:
                graph.add((period, DCAT.endDate, end))
            graph.add((node, DCTERMS.temporal, period))
    if facts.modified is not None:
        graph.add((node, DCTERMS.modified, Literal(facts.modified, datatype=XSD.dateTime)))
    if facts.issued is not None:
        graph.add((node, DCTERMS.issued, Literal(facts.issued, datatype=XSD.dateTime)))
    if facts.latest is not None:
        graph.add((node, DCAT_VERSION, Literal(str(facts.latest))))
    licence = URIRef(license_url(entry.license))
    graph.add((licence, RDF.type, DCTERMS.LicenseDocument))
    graph.add((licence, DCTERMS.identifier, Literal(entry.license)))
    graph.add((licence, RDFS.label, Literal(entry.license)))
    for dist in facts.distributions:
        graph.add((node, DCAT.distribution, add_distribution(graph, facts, dist, licence, service)))
    graph.add((service, DCAT.servesDataset, node))
    add_quality(graph, base, facts, node)
    return node


def add_distribution(
    graph: Graph, facts: DatasetFacts, dist: Distribution, licence: URIRef, service: URIRef
) -> URIRef:
    node = URIRef(f"{facts.url}#{dist.key}")
    fmt = dist.format
    graph.add((node, RDF.type, DCAT.Distribution))
    graph.add((node, DCTERMS.title, Literal(dist.title)))
    graph.add((node, DCTERMS.description, Literal(dist.description)))
    url = URIRef(dist.url)
    graph.add((node, DCAT.accessURL, url))
    graph.add((node, DCAT.downloadURL, url))
    graph.add((node, DCAT.accessService, service))
    graph.add((node, DCTERMS.format,
               _concept(graph, f"{EU}file-type/{fmt.file_type}", fmt.file_type, f"{EU}file-type",
                        DCTERMS.MediaTypeOrExtent)))  # fmt: skip
    if fmt.registered:
        media = URIRef(f"{IANA}{fmt.media_type}")
        graph.add((media, RDF.type, DCTERMS.MediaType))
        graph.add((node, DCAT.mediaType, media))
    if dist.byte_size is not None:
        graph.add((node, DCAT.byteSize, Literal(dist.byte_size, datatype=XSD.nonNegativeInteger)))
    if dist.issued is not None:
        graph.add((node, DCTERMS.issued, Literal(dist.issued, datatype=XSD.dateTime)))
    graph.add((node, DCTERMS.license, licence))
    availability = ("STABLE", "stable") if dist.stable else ("AVAILABLE", "available")
    graph.add((node, DCATAP.availability,
               _concept(graph, f"{EU}planned-availability/{availability[0]}", availability[1],
                        f"{EU}planned-availability")))  # fmt: skip
    return node


def add_quality(graph: Graph, base: str, facts: DatasetFacts, dataset: URIRef) -> None:
    """Each expectation's latest result as a dqv:QualityMeasurement of the dataset: its value is
    whether the expectation held (as ``success`` in /quality); one dqv:Metric per expectation."""
    for result in facts.quality:
        expectation = str(result["expectation"])
        metric = URIRef(f"{catalog_iri(base)}#metric-{quote(expectation, safe='_-')}")
        graph.add((metric, RDF.type, DQV.Metric))
        graph.add((metric, SKOS.prefLabel, Literal(expectation)))
        graph.add((metric, SKOS.definition, Literal(
            f"Whether the Great Expectations expectation {expectation} held for the latest "
            "validated batch.")))  # fmt: skip
        graph.add((metric, DQV.expectedDataType, XSD.boolean))
        column = result.get("column_name")
        key = "-".join(
            quote(str(p), safe="_-.") for p in (result["table"], expectation, column or "")
        )
        node = URIRef(f"{facts.url}#quality-{key.rstrip('-')}")
        graph.add((node, RDF.type, DQV.QualityMeasurement))
        graph.add((node, DQV.isMeasurementOf, metric))
        graph.add((node, DQV.computedOn, dataset))
        graph.add((node, DQV.value, Literal(bool(result["success"]), datatype=XSD.boolean)))
        moment = _moment(result.get("validated_at"))
        if moment is not None:
            graph.add((node, PROV.generatedAtTime, Literal(moment, datatype=XSD.dateTime)))
        about = f"{expectation} on {result['table']}" + (f", column {column}" if column else "")
        if result.get("unexpected_percent") is not None:
            about += (f": {result['unexpected_count']} unexpected values "
                      f"({float(result['unexpected_percent']):.3f} %)")  # fmt: skip
        graph.add((node, RDFS.comment, Literal(about)))
        graph.add((dataset, DQV.hasQualityMeasurement, node))


def catalog_graph(catalog: Catalog, caller: Caller, base: str) -> Graph:
    """The whole catalog the caller may see, as one DCAT-AP 3 graph."""
    graph = new_graph()
    node = URIRef(catalog_iri(base))
    name = catalog.settings.name
    graph.add((node, RDF.type, DCAT.Catalog))
    graph.add((node, DCTERMS.title, Literal(f"{name} open data")))
    graph.add((node, DCTERMS.description, Literal(
        f"Curated datasets of {name}: each with its versions, downloads and quality evidence.")))  # fmt: skip
    graph.add((node, DCTERMS.publisher, _agent(graph, base, name, None, None)))
    graph.add((node, FOAF.homepage, _document(graph, f"{base}/api/v1/docs")))
    scheme = URIRef(f"{EU}data-theme")
    graph.add((scheme, RDF.type, SKOS.ConceptScheme))
    graph.add((scheme, DCTERMS.title, Literal("Data theme", lang="en")))
    graph.add((node, DCAT.themeTaxonomy, scheme))
    service = data_service(graph, base)
    graph.add((node, DCAT.service, service))
    graph.add((service, DCTERMS.publisher, _agent(graph, base, name, None, None)))
    modified: list[datetime] = []
    for entry in catalog.visible(caller):
        facts = dataset_facts(catalog, caller, entry, base)
        graph.add((node, DCAT.dataset, add_dataset(graph, base, facts, service)))
        if facts.modified is not None:
            modified.append(facts.modified)
    if modified:
        graph.add((node, DCTERMS.modified, Literal(max(modified), datatype=XSD.dateTime)))
    return graph


def dataset_graph(catalog: Catalog, caller: Caller, name: str, base: str) -> Graph:
    """One dataset's DCAT-AP 3 graph (NotFound, as for a missing one, if the caller may not see
    it), with the catalog it belongs to."""
    entry = catalog.entry(caller, name)
    graph = new_graph()
    service = data_service(graph, base)
    node = add_dataset(graph, base, dataset_facts(catalog, caller, entry, base), service)
    graph.add((node, DCTERMS.isPartOf, URIRef(catalog_iri(base))))
    return graph


def as_jsonld(graph: Graph) -> bytes:
    return graph.serialize(format="json-ld", context=PREFIXES, indent=2).encode()


def as_turtle(graph: Graph) -> bytes:
    return graph.serialize(format="turtle").encode()


# -- data.json (DCAT-US / Project Open Data v1.1) ---------------------------------------------------


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


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


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
        out["modified"] = _iso(facts.modified)
    if facts.issued is not None:
        out["issued"] = _iso(facts.issued)
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


# -- schema.org ------------------------------------------------------------------------------------


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
        out["dateModified"] = _iso(facts.modified)
        out["datePublished"] = _iso(facts.issued)
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
