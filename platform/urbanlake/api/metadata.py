"""Open metadata of the catalog: DCAT-AP 3 (JSON-LD and Turtle) for the catalog and each dataset,
``/data.json`` (DCAT-US, Project Open Data v1.1) and schema.org JSON-LD per dataset.

Included in the app before the datasets router, so that ``/api/v1/datasets/{name}.jsonld`` is
matched here and not taken by ``/api/v1/datasets/{name}`` as a dataset named ``x.jsonld``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from urbanlake.api.datasets import ERRORS, CallerDep, CatalogDep, Name, base_url, json_response
from urbanlake.catalog import data_json as pod
from urbanlake.catalog import dcat, schema_org

JSONLD = "application/ld+json"
TURTLE = "text/turtle; charset=utf-8"
# The documents differ by caller (a key sees more): shared caches must keep them apart.
VARY = {"Vary": "Authorization, X-API-Key"}

router = APIRouter(prefix="/api/v1", tags=["open metadata"], responses=ERRORS)
root = APIRouter(tags=["open metadata"], responses=ERRORS)


def _content(*types: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {t: {} for t in types}}}


def _rdf(body: bytes, media: str) -> Response:
    return Response(body, media_type=media, headers=VARY)


def _wants_turtle(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/turtle" in accept and JSONLD not in accept


@router.get("/catalog", summary="The catalog as DCAT-AP 3 (JSON-LD, or Turtle by Accept)",
            response_class=Response, responses=_content(JSONLD, "text/turtle"))  # fmt: skip
def catalog_document(request: Request, catalog: CatalogDep, caller: CallerDep) -> Response:
    graph = dcat.catalog_graph(catalog, caller, base_url(request, catalog))
    if _wants_turtle(request):
        return _rdf(dcat.as_turtle(graph), TURTLE)
    return _rdf(dcat.as_jsonld(graph), JSONLD)


@router.get("/catalog.jsonld", summary="The catalog as DCAT-AP 3 JSON-LD",
            response_class=Response, responses=_content(JSONLD))  # fmt: skip
def catalog_jsonld(request: Request, catalog: CatalogDep, caller: CallerDep) -> Response:
    graph = dcat.catalog_graph(catalog, caller, base_url(request, catalog))
    return _rdf(dcat.as_jsonld(graph), JSONLD)


@router.get("/catalog.ttl", summary="The catalog as DCAT-AP 3 Turtle",
            response_class=Response, responses=_content("text/turtle"))  # fmt: skip
def catalog_turtle(request: Request, catalog: CatalogDep, caller: CallerDep) -> Response:
    graph = dcat.catalog_graph(catalog, caller, base_url(request, catalog))
    return _rdf(dcat.as_turtle(graph), TURTLE)


@router.get("/datasets/{name}.jsonld", summary="A dataset as DCAT-AP 3 JSON-LD, with DQV quality",
            response_class=Response, responses=_content(JSONLD))  # fmt: skip
def dataset_jsonld(
    request: Request, name: Name, catalog: CatalogDep, caller: CallerDep
) -> Response:
    graph = dcat.dataset_graph(catalog, caller, name, base_url(request, catalog))
    return _rdf(dcat.as_jsonld(graph), JSONLD)


@router.get("/datasets/{name}.ttl", summary="A dataset as DCAT-AP 3 Turtle, with DQV quality",
            response_class=Response, responses=_content("text/turtle"))  # fmt: skip
def dataset_turtle(
    request: Request, name: Name, catalog: CatalogDep, caller: CallerDep
) -> Response:
    graph = dcat.dataset_graph(catalog, caller, name, base_url(request, catalog))
    return _rdf(dcat.as_turtle(graph), TURTLE)


@router.get("/datasets/{name}/schema.org.jsonld", summary="A dataset as schema.org JSON-LD",
            response_class=Response, responses=_content(JSONLD))  # fmt: skip
def dataset_schema_org(
    request: Request, name: Name, catalog: CatalogDep, caller: CallerDep
) -> Response:
    body = schema_org.schema_org(catalog, caller, name, base_url(request, catalog))
    response = json_response(body, headers=VARY)
    response.headers["content-type"] = JSONLD
    return response


@root.get("/data.json", summary="The catalog as data.json (DCAT-US, Project Open Data v1.1)",
          response_class=Response, responses=_content("application/json"))  # fmt: skip
def data_json(request: Request, catalog: CatalogDep, caller: CallerDep) -> Response:
    return json_response(pod.data_json(catalog, caller, base_url(request, catalog)), headers=VARY)
