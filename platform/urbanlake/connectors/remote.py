"""What the feed connector types share: a source that is an http(s) URL (read through the shared
``HttpClient``, with ``${ENV}`` secret headers) or a local file, and the rule that a credential is
never written into a config literally."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import field_validator

from urbanlake.connectors.base import Connector, ConnectorContext, SourceSpec
from urbanlake.connectors.credentials import (
    came_from_reference,
    literal_secrets,
    refuse_written_secrets,
)
from urbanlake.connectors.http_client import HttpClient
from urbanlake.core.errors import FatalSourceError
from urbanlake.core.secrets import mask
from urbanlake.core.spec import ConnectorConfig


def is_remote(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def query_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def check_location(value: str) -> str:
    """An http(s) URL with a host and no literal credential, a ``file://`` URL, or a path."""
    parts = urlsplit(value)
    if parts.scheme in ("http", "https"):
        if not parts.netloc:
            raise ValueError(f"'{mask(value)}' has no host")
        problems = literal_secrets({}, query_params(value), came_from_reference)
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
    elif parts.scheme not in ("", "file"):
        raise ValueError(f"'{mask(value)}' is not an http://, https:// or file:// URL, nor a path")
    elif not value.strip():
        raise ValueError("must not be empty")
    return value


class RemoteSpecChecks(SourceSpec):
    """Validators for a spec with ``url`` and ``headers`` fields (declared by the subclass)."""

    @field_validator("url", check_fields=False)
    @classmethod
    def check_url(cls, value: str) -> str:
        return check_location(value)

    @field_validator("headers", check_fields=False)
    @classmethod
    def secret_headers_are_references(cls, value: dict[str, str]) -> dict[str, str]:
        problems = literal_secrets(value, {}, came_from_reference)
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
        return value


SpecT = TypeVar("SpecT", bound=SourceSpec)


class RemoteConnector(Connector[SpecT]):
    """A connector reading URLs through one lazily created, shared-policy ``HttpClient``."""

    url_fields: tuple[str, ...] = ("url",)  # source fields holding URLs (with query parameters)
    written_params: tuple[str, ...] = ()  # source fields holding query parameters

    def __init__(self, spec: SpecT, config: ConnectorConfig, context: ConnectorContext):
        super().__init__(spec, config, context)
        self._client: HttpClient | None = None
        self.refuse_written_secrets(config)

    def refuse_written_secrets(self, config: ConnectorConfig) -> None:
        """No credential written literally in the config: in headers, URLs or ``params``."""
        raw: dict[str, Any] = config.source
        params: dict[str, Any] = {}
        for name in self.url_fields:
            if isinstance(raw.get(name), str):
                params.update(query_params(raw[name]))
        for name in self.written_params:
            params.update(raw.get(name) or {})
        refuse_written_secrets(config, params)

    def read_location(self, url: str, what: str = "feed file") -> tuple[bytes, str, str | None]:
        """The bytes at ``url`` (http(s), ``file://`` or a path from the project), where they came
        from (secrets masked) and their media type."""
        if is_remote(url):
            headers: dict[str, str] = getattr(self.spec, "headers", {})
            response = self.client.get(url, headers=headers)
            return response.content, mask(str(response.url)), response.headers.get("Content-Type")
        path = Path(unquote(urlsplit(url).path) if url.startswith("file://") else url)
        if not path.is_absolute():
            path = self.context.settings.project_dir / path
        try:
            return path.read_bytes(), str(path), None
        except FileNotFoundError:
            raise FatalSourceError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise FatalSourceError(f"{path}: is a folder, not a {what}") from None

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            self._client = HttpClient(self.context.settings.http)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
