"""Open metadata over HTTP on the demo city: DCAT-AP 3 (JSON-LD and Turtle) checked with the
official SHACL shapes, data.json with the Project Open Data schema, schema.org for search engines,
DQV quality measurements against /quality, and a partner dataset absent from all of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic

from tests.api.conftest import ApiServer
from tests.conftest import SHARED
from urbanlake.catalog import data_json, dcat, schema_org
from urbanlake.catalog.service import ANONYMOUS, Caller, Catalog
from urbanlake.core.settings import load_settings

# Plain namespaces: rdflib's closed ones warn when pytest inspects the module's names.
DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCTERMS = Namespace("http://purl.org/dc/terms/")
PROV = Namespace("http://www.w3.org/ns/prov#")
RDF = Namespace("http://www.w3.org/1999/02/22-rdf-syntax-ns#")
DQV = Namespace("http://www.w3.org/ns/dqv#")
SH = Namespace("http://www.w3.org/ns/shacl#")
DCAT_AP = SHARED / "conformance" / "dcat-ap" / "releases" / "3.0.1"
DATA_JSON = SHARED / "conformance" / "data-json" / "non-federal-v1.1"


@pytest.fixture(scope="module")
def demo_catalog(demo_api: ApiServer) -> Iterator[Catalog]:
    """The demo's catalog read in this process, beside the server (for who may see what)."""
    catalog = Catalog(load_settings(demo_api.project, env={}))
    yield catalog
    catalog.close()


@pytest.fixture(scope="module")
def hidden(demo_catalog: Catalog) -> list[str]:
    """Datasets the public may not see (the demo's partner meter readings)."""
    names = sorted(n for n, e in demo_catalog.entries.items() if not ANONYMOUS.may_see(e))
    assert names, "the demo city has no dataset hidden from the public"
    return names


def graph_of(response: httpx.Response) -> Graph:
    assert response.status_code == 200, response.text
    kind = response.headers["content-type"]
    fmt = "json-ld" if kind.startswith("application/ld+json") else "turtle"
    assert kind.startswith("application/ld+json") or kind.startswith("text/turtle"), kind
    return Graph().parse(data=response.text, format=fmt)


def visible_names(demo_api: ApiServer) -> set[str]:
    return {d["name"] for d in demo_api.get("/datasets", params={"limit": 100}).json()["datasets"]}


def distributions(graph: Graph, dataset: str) -> list[URIRef]:
    return [d for d in graph.objects(URIRef(dataset), DCAT.distribution) if isinstance(d, URIRef)]


# -- without the shared conformance files ---------------------------------------------------------


def test_catalog_has_one_dataset_per_visible_dataset_in_both_serializations(
    demo_api: ApiServer,
) -> None:
    names = visible_names(demo_api)
    as_jsonld = graph_of(demo_api.get("/catalog.jsonld"))
    as_turtle = graph_of(demo_api.get("/catalog.ttl"))
    assert isomorphic(as_jsonld, as_turtle)
    datasets = set(as_jsonld.subjects(RDF.type, DCAT.Dataset))
    assert datasets == {URIRef(f"{demo_api.api}/datasets/{n}") for n in names}
    [catalog] = as_jsonld.subjects(RDF.type, DCAT.Catalog)
    assert set(as_jsonld.objects(catalog, DCAT.dataset)) == datasets
    assert "Sample City" in str(as_jsonld.value(catalog, DCTERMS.title))
    # /catalog answers the same graph, as Turtle when asked for it.
    assert isomorphic(graph_of(demo_api.get("/catalog")), as_jsonld)
    turtle = demo_api.get("/catalog", headers={"Accept": "text/turtle"})
    assert turtle.headers["content-type"].startswith("text/turtle")
    assert isomorphic(graph_of(turtle), as_jsonld)


def test_dataset_document_routes_are_not_taken_for_dataset_names(demo_api: ApiServer) -> None:
    jsonld = demo_api.get("/datasets/bins-above-80.jsonld")
    assert jsonld.headers["content-type"].startswith("application/ld+json")
    turtle = demo_api.get("/datasets/bins-above-80.ttl")
    assert turtle.headers["content-type"].startswith("text/turtle")
    assert isomorphic(graph_of(jsonld), graph_of(turtle))
    # The dataset's own metadata is still JSON at /datasets/{name}.
    assert demo_api.get("/datasets/bins-above-80").json()["name"] == "bins-above-80"


def test_distributions_answer_with_their_media_type_and_parquet_byte_size(
    demo_api: ApiServer,
) -> None:
    name = "bins-above-80"
    url = f"{demo_api.api}/datasets/{name}"
    graph = graph_of(demo_api.get(f"/datasets/{name}.jsonld"))
    found = distributions(graph, url)
    downloads = {str(graph.value(d, DCAT.downloadURL)): d for d in found}
    version = demo_api.get(f"/datasets/{name}").json()["version"]
    assert set(downloads) >= {f"{url}/export?format={f}" for f in ("csv", "jsonl", "geojson")}
    assert f"{url}/versions/{version}/data.parquet" in downloads
    sizes: dict[str, int] = {}
    for link, node in downloads.items():
        assert graph.value(node, DCAT.accessURL) == URIRef(link)
        answer = httpx.get(link, timeout=120)
        assert answer.status_code == 200, (link, answer.text[:300])
        media = graph.value(node, DCAT.mediaType)
        if media is not None:  # IANA-registered types only (JSON Lines has none)
            assert str(media).endswith(answer.headers["content-type"].split(";")[0]), link
        else:
            assert answer.headers["content-type"] == "application/x-ndjson"
        assert graph.value(node, DCTERMS["format"]) is not None
        if link.endswith(".parquet"):
            sizes[link] = int(httpx.head(link, timeout=60).headers["content-length"])
            assert sizes[link] == len(answer.content)
        else:
            # A streamed export has no size known in advance: none is claimed.
            assert graph.value(node, DCAT.byteSize) is None
    # Each version's file has been written now: its size is given, as the server sends it.
    again = graph_of(demo_api.get(f"/datasets/{name}.jsonld"))
    for node in distributions(again, url):
        link = str(again.value(node, DCAT.downloadURL))
        if link in sizes:
            size = again.value(node, DCAT.byteSize)
            assert isinstance(size, Literal) and int(size) == sizes[link]
            assert str(size.datatype).endswith("#nonNegativeInteger")


def test_dcat_dataset_carries_the_catalog_metadata(demo_api: ApiServer) -> None:
    name = "vehicle-positions"
    detail = demo_api.get(f"/datasets/{name}").json()
    graph = graph_of(demo_api.get(f"/datasets/{name}.ttl"))
    node = URIRef(f"{demo_api.api}/datasets/{name}")
    assert str(graph.value(node, DCTERMS.title)) == detail["title"]
    assert {str(k) for k in graph.objects(node, DCAT.keyword)} >= set(detail["keywords"])
    assert graph.value(node, DCAT.theme) == URIRef(
        "http://publications.europa.eu/resource/authority/data-theme/TRAN"
    )
    assert graph.value(node, DCTERMS.accrualPeriodicity) == URIRef(
        "http://publications.europa.eu/resource/authority/frequency/UPDATE_CONT"
    )
    place = graph.value(node, DCTERMS.spatial)
    assert "POLYGON((10.6 59.85" in str(graph.value(place, DCAT.bbox))
    publisher = graph.value(node, DCTERMS.publisher)
    assert (publisher, RDF.type, URIRef("http://xmlns.com/foaf/0.1/Agent")) in graph
    modified = graph.value(node, DCTERMS.modified)
    assert isinstance(modified, Literal)
    assert modified.toPython() == datetime.fromisoformat(detail["updated"])
    assert str(graph.value(node, DCTERMS.identifier)) == str(node)
    for distribution in distributions(graph, str(node)):
        assert graph.value(distribution, DCTERMS.license) == URIRef(
            "https://creativecommons.org/licenses/by/4.0/"
        )


def test_quality_measurements_match_the_quality_endpoint(demo_api: ApiServer) -> None:
    name = "bin-fill-levels"
    quality = demo_api.get(f"/datasets/{name}/quality").json()
    expected = [(table, r) for table, t in quality["tables"].items() for r in t["expectations"]]
    assert expected and any(not r["success"] for _, r in expected)  # the demo plants a failure
    graph = graph_of(demo_api.get(f"/datasets/{name}.jsonld"))
    dataset = URIRef(f"{demo_api.api}/datasets/{name}")
    measurements = list(graph.objects(dataset, DQV.hasQualityMeasurement))
    assert len(measurements) == len(expected)
    by_key: dict[tuple[str, str], Any] = {}
    for node in measurements:
        assert (node, RDF.type, DQV.QualityMeasurement) in graph
        assert graph.value(node, DQV.computedOn) == dataset
        metric = graph.value(node, DQV.isMeasurementOf)
        assert (metric, RDF.type, DQV.Metric) in graph
        label = str(graph.value(metric, URIRef("http://www.w3.org/2004/02/skos/core#prefLabel")))
        comment = str(graph.value(node, URIRef("http://www.w3.org/2000/01/rdf-schema#comment")))
        column = comment.split("column ")[1].split(":")[0] if "column " in comment else ""
        by_key[(label, column)] = node
    for _, result in expected:
        node = by_key[(result["expectation"], result["column_name"] or "")]
        assert graph.value(node, DQV.value).toPython() is result["success"]
        generated = graph.value(node, PROV.generatedAtTime).toPython()
        assert generated == datetime.fromisoformat(result["validated_at"])


def test_partner_dataset_is_absent_and_its_documents_answer_as_missing(
    demo_api: ApiServer, hidden: list[str]
) -> None:
    for path in ("/catalog.jsonld", "/catalog.ttl", "/catalog", f"{demo_api.url}/data.json"):
        body = demo_api.get(path).text
        assert not [n for n in hidden if f"/datasets/{n}" in body or f"'{n}'" in body], path
    for name in hidden:
        for suffix in (".jsonld", ".ttl", "/schema.org.jsonld"):
            answer = demo_api.get(f"/datasets/{name}{suffix}")
            missing = demo_api.get(f"/datasets/no-such-dataset{suffix}")
            assert answer.status_code == missing.status_code == 404
            assert answer.headers["content-type"] == missing.headers["content-type"]
            assert answer.json() == json.loads(missing.text.replace("no-such-dataset", name))


def test_data_json_has_every_required_field(demo_api: ApiServer) -> None:
    answer = demo_api.get(f"{demo_api.url}/data.json")
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["conformsTo"] == "https://project-open-data.cio.gov/v1.1/schema"
    assert body["@context"] == "https://project-open-data.cio.gov/v1.1/schema/catalog.jsonld"
    assert {d["identifier"] for d in body["dataset"]} == {
        f"{demo_api.api}/datasets/{n}" for n in visible_names(demo_api)
    }
    for dataset in body["dataset"]:
        for key in ("title", "description", "keyword", "modified", "publisher", "contactPoint",
                    "identifier", "accessLevel", "license", "distribution"):  # fmt: skip
            assert dataset.get(key), (dataset["identifier"], key)
        assert dataset["accessLevel"] == "public"
        assert dataset["accrualPeriodicity"].startswith("R/P")
        for distribution in dataset["distribution"]:
            assert distribution["downloadURL"].startswith(demo_api.api)
            assert "/" in distribution["mediaType"]
    streetlights = next(d for d in body["dataset"] if d["identifier"].endswith("/streetlights"))
    assert streetlights["accrualPeriodicity"] == "R/P1D"
    bins = next(d for d in body["dataset"] if d["identifier"].endswith("/bin-fill-levels"))
    assert bins["spatial"] == "10.7,59.88,10.81,59.95"


def test_schema_org_dataset_has_what_google_dataset_search_reads(demo_api: ApiServer) -> None:
    answer = demo_api.get("/datasets/bin-fill-levels/schema.org.jsonld")
    assert answer.headers["content-type"].startswith("application/ld+json")
    body = answer.json()
    detail = demo_api.get("/datasets/bin-fill-levels").json()
    assert body["@context"] == "https://schema.org/" and body["@type"] == "Dataset"
    # Required by Google: name, description. Recommended: the rest below.
    assert body["name"] == detail["title"] and body["description"] == detail["description"]
    assert body["url"] == f"{demo_api.api}/datasets/bin-fill-levels"
    assert body["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert set(detail["keywords"]) <= set(body["keywords"])
    assert body["creator"]["@type"] == "Organization" and body["creator"]["name"]
    assert body["isAccessibleForFree"] is True
    assert body["dateModified"] == detail["updated"]
    assert body["spatialCoverage"]["geo"] == {"@type": "GeoShape", "box": "59.88 10.7 59.95 10.81"}
    formats = {d["encodingFormat"] for d in body["distribution"]}
    assert {"text/csv", "application/geo+json", "application/vnd.apache.parquet"} <= formats
    for download in body["distribution"]:
        assert download["@type"] == "DataDownload"
        assert httpx.head(download["contentUrl"], timeout=60).status_code in (200, 405)
    columns = {v["name"]: v for v in body["variableMeasured"]}
    assert set(columns) == {c["name"] for c in detail["schema"]}
    assert columns["fill_level"]["unitText"] == "%"


def test_partner_caller_sees_the_partner_dataset_as_restricted(
    demo_catalog: Catalog, hidden: list[str]
) -> None:
    """The builders themselves, with a partner caller (the API's keys are tested elsewhere)."""
    catalog, base = demo_catalog, "https://data.sample-city.example"
    partner = Caller(tier="partner", key="test-partner")
    [name, *_] = [n for n in hidden if catalog.entries[n].access == "partner"]
    body = data_json.data_json(catalog, partner, base)
    [shown] = [d for d in body["dataset"] if d["identifier"].endswith(f"/{name}")]
    assert shown["accessLevel"] == "restricted public" and shown["rights"]
    assert f"/{name}" not in json.dumps(data_json.data_json(catalog, ANONYMOUS, base))
    graph = dcat.dataset_graph(catalog, partner, name, base)
    node = URIRef(f"{base}/api/v1/datasets/{name}")
    assert graph.value(node, DCTERMS.accessRights) == URIRef(
        "http://publications.europa.eu/resource/authority/access-right/RESTRICTED"
    )
    assert schema_org.schema_org(catalog, partner, name, base)["conditionsOfAccess"]
    if DCAT_AP.is_dir():
        assert_conforms(graph, f"{name} for a partner")
        assert_conforms(dcat.catalog_graph(catalog, partner, base), "partner catalog")
    if DATA_JSON.is_dir():
        assert_valid_data_json(body)


# -- against the official shapes and schemas (../shared/conformance) ----------------------------


def load_shapes(*files: str, prune: bool = False) -> Graph:
    shapes = Graph()
    for name in files:
        shapes.parse(DCAT_AP / name, format="turtle")
    if prune:
        # SOURCES.md: the reusable template names property shapes it never defines (upstream
        # SEMICeu/DCAT-AP issue 448); drop the references so that pyshacl can load it.
        for shape, _, prop in list(shapes.triples((None, SH.property, None))):
            if (prop, SH.path, None) not in shapes:
                shapes.remove((shape, SH.property, prop))
    return shapes


def top_level_results(report: Graph, severity: URIRef) -> list[str]:
    return [
        f"{report.value(r, SH.focusNode)} {report.value(r, SH.resultPath)}: "
        f"{report.value(r, SH.resultMessage)}"
        for r in report.objects(None, SH.result)
        if report.value(r, SH.resultSeverity) == severity
    ]


_shapes: dict[str, Graph] = {}


def shapes(kind: str) -> Graph:
    if kind not in _shapes:
        _shapes[kind] = {
            "profile": lambda: load_shapes("html/shacl/shapes.ttl", "html/shacl/range.ttl"),
            "template": lambda: load_shapes(
                "shacl/dcat-ap-SHACL.ttl", "shacl/ranges.ttl", prune=True
            ),
            "vocabularies": lambda: load_shapes("html/shacl/mdr-vocabularies.shape.ttl"),
            "deprecated": lambda: load_shapes("html/shacl/deprecateduris.ttl"),
        }[kind]()
    return _shapes[kind]


def assert_conforms(graph: Graph, what: str) -> None:
    from pyshacl import validate

    for kind, inference in (("profile", None), ("template", "rdfs"), ("deprecated", None),
                            ("vocabularies", None)):  # fmt: skip
        _, report, _ = validate(graph, shacl_graph=shapes(kind), inference=inference)
        # No violation anywhere. The vocabularies' shapes warn (a city is not an EU corporate
        # body, a bbox is not a named place): warnings are allowed.
        violations = top_level_results(report, SH.Violation)
        assert not violations, f"{what} against the {kind} shapes:\n" + "\n".join(violations)


needs_dcat_ap = pytest.mark.skipif(
    not DCAT_AP.is_dir(), reason=f"DCAT-AP 3.0.1 shapes absent at {DCAT_AP} (shared/conformance)"
)


@needs_dcat_ap
def test_catalog_conforms_to_dcat_ap_3(demo_api: ApiServer) -> None:
    assert_conforms(graph_of(demo_api.get("/catalog.jsonld")), "catalog.jsonld")
    assert_conforms(graph_of(demo_api.get("/catalog.ttl")), "catalog.ttl")


@needs_dcat_ap
def test_every_dataset_conforms_to_dcat_ap_3(demo_api: ApiServer) -> None:
    for name in sorted(visible_names(demo_api)):
        assert_conforms(graph_of(demo_api.get(f"/datasets/{name}.jsonld")), f"{name}.jsonld")
    assert_conforms(graph_of(demo_api.get("/datasets/bins-above-80.ttl")), "bins-above-80.ttl")


@needs_dcat_ap
def test_the_shapes_catch_a_broken_graph(demo_api: ApiServer) -> None:
    """The check itself is not vacuous: the same graph without a mandatory property fails."""
    graph = graph_of(demo_api.get("/datasets/bins-above-80.jsonld"))
    graph.remove((URIRef(f"{demo_api.api}/datasets/bins-above-80"), DCTERMS.description, None))
    with pytest.raises(AssertionError, match="description"):
        assert_conforms(graph, "broken")


def assert_valid_data_json(body: dict[str, Any]) -> None:
    from jsonschema import Draft4Validator
    from referencing import Registry, Resource

    registry: Registry[Any] = Registry()
    schemas = {}
    for path in DATA_JSON.glob("*.json"):
        schema = json.loads(path.read_text())
        schemas[path.name] = schema
        registry = registry.with_resource(schema["id"].rstrip("#"), Resource.opaque(schema))
    validator = Draft4Validator(schemas["catalog.json"], registry=registry)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, "\n".join(errors)


@pytest.mark.skipif(
    not DATA_JSON.is_dir(), reason=f"Project Open Data schema absent at {DATA_JSON}"
)
def test_data_json_validates_against_project_open_data_v1_1(demo_api: ApiServer) -> None:
    assert_valid_data_json(demo_api.get(f"{demo_api.url}/data.json").json())
