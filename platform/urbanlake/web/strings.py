"""Every word the web catalog shows, in one place: a city translates its portal by giving
``web.strings`` (a YAML file of the same keys) in ``urbanlake.yaml``; a key it leaves out stays
in English."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from urbanlake.core.errors import ConfigError

EN: dict[str, str] = {
    "lang": "en",
    "site.tagline": "Open data of {city}",
    "nav.label": "Main",
    "nav.datasets": "Datasets",
    "nav.status": "Data health",
    "nav.api": "API",
    "nav.signin": "Sign in",
    "nav.signout": "Sign out",
    "nav.signed_in_as": "Signed in as {name}",
    "signin.lapsed": "Your sign-in has ended (its key expired or was revoked): you now see public data only.",
    "skip": "Skip to main content",
    "footer.api": "Everything here is also in the API",
    "footer.catalog": "Catalog metadata (DCAT-AP)",
    "error.title": "{status}: {reason}",
    "error.not_found": "There is no such page or dataset.",
    "error.back": "Back to the datasets",
}


class Strings:
    """``strings("key", name=value)``: the text of a key with its placeholders filled."""

    def __init__(self, overrides: dict[str, str] | None = None):
        self.table = {**EN, **(overrides or {})}

    def __call__(self, key: str, **values: Any) -> str:
        text = self.table.get(key, key)
        return text.format(**values) if values else text

    @classmethod
    def load(cls, path: Path | None) -> Strings:
        if path is None:
            return cls()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the web strings: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: web strings must be a mapping of key: text")
        unknown = sorted(set(data) - set(EN))
        if unknown:
            raise ConfigError(f"{path}: unknown web string keys: {', '.join(unknown)}")
        return cls({str(k): str(v) for k, v in data.items()})
