"""``${ENV_VAR}`` references: the only way a secret enters a config, resolved at run time."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from urbanlake.core.errors import ConfigError

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MASK = "****"


class SecretRegistry:
    """Remembers resolved secret values so that every message can be masked before it is shown."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        if len(value) >= 6:  # shorter values (true, 8080) would mask ordinary words
            self._values.add(value)

    def mask(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text


SECRETS = SecretRegistry()


def resolve(
    value: Any, env: Mapping[str, str] | None = None, where: str = "", lenient: bool = False
) -> Any:
    """Replace ``${NAME}`` (or ``${NAME:-default}``) in strings, recursively through lists and dicts.

    ``lenient`` puts a stand-in where a variable is not set (for checking a config's shape).
    """
    env = os.environ if env is None else env
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                secret = env[name]
                SECRETS.add(secret)
                return secret
            if default is not None:
                return default
            if lenient:
                return f"unset-{name.lower()}"
            raise ConfigError(f"{where or 'config'}: environment variable {name} is not set")

        return ENV_REF.sub(substitute, value)
    if isinstance(value, list):
        return [resolve(v, env, where, lenient) for v in value]
    if isinstance(value, dict):
        return {
            k: resolve(v, env, f"{where}.{k}" if where else str(k), lenient)
            for k, v in value.items()
        }
    return value


def mask(text: str) -> str:
    """``text`` with every resolved secret replaced by ``****``."""
    return SECRETS.mask(text)
