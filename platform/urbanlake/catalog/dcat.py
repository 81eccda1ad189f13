"""DCAT-AP 3 (an RDF graph, served as JSON-LD and Turtle) for the whole catalog and for each dataset:
every export format and every recent published version a ``dcat:Distribution`` with its stable
URL, media type and (for a version's Parquet file, once written) its byte size; each expectation's
latest result a W3C DQV ``dqv:QualityMeasurement``."""

from __future__ import annotations

import re
from datetime import date, datetime
from urllib.parse import quote

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, PROV, RDF, RDFS, SKOS, XSD

from urbanlake.catalog.metadata import (
    DATA_THEMES,
    FREQUENCIES,
    DatasetFacts,
    Distribution,
    access_of,
    catalog_iri,
    dataset_facts,
    license_url,
    moment_of,
)
from urbanlake.catalog.service import Caller, Catalog

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
    moment = moment_of(value.replace("Z", "+00:00"))
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
        moment = moment_of(result.get("validated_at"))
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
