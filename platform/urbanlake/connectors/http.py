"""``http``: JSON or CSV over HTTP(S). (Being written.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from urbanlake.connectors.base import Connector, Decoded, Payload, SourceSpec


class HttpSpec(SourceSpec):
    type: Literal["http"] = "http"
    url: str


class HttpConnector(Connector[HttpSpec]):
    type_name = "http"
    spec_model = HttpSpec
    example = {"type": "http", "url": "https://api.city.example/v1/parking"}

    def fetch(self, state: dict[str, Any]) -> Iterator[Payload]:
        raise NotImplementedError

    def decode(self, payload: Payload) -> Decoded:
        raise NotImplementedError
