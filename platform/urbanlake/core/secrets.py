"""``${ENV_VAR}`` references: the only way a secret enters a config, resolved at run time; and
the masking of every secret value known to the process, in messages and logs."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from urbanlake.core.errors import ConfigError

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MASK = "****"


class SecretRegistry:
    """Remembers resolved secret values so that every message can be masked before it is shown."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str, declared: bool = False) -> None:
        """Remember ``value``. A value that merely came from the environment is masked from six
        characters on (shorter ones, such as true or 8080, would mask ordinary words); a value
        declared secret (a password, a key) from three."""
        if len(value) >= (3 if declared else 6):
            self._values.add(value)

    def clear(self) -> None:
        """Forget every value (a process that serves several projects in turn, such as tests)."""
        self._values.clear()

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


PASSWORD_WORD = re.compile(r"(?:^|\s)password\s*=\s*(?:'([^']*)'|(\S+))", re.IGNORECASE)


def url_password(value: str) -> str | None:
    """The password inside a connection string: ``scheme://user:PASSWORD@host…`` or libpq's
    ``… password=PASSWORD …``; None when it holds none."""
    if "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            return None
        return password or None
    found = PASSWORD_WORD.search(value)
    if found:
        return found.group(1) if found.group(1) is not None else found.group(2)
    return None


def register_secret(value: str) -> None:
    """Mask ``value`` (a password or key of the settings) wherever it would be shown, in the
    form it was given and URL-decoded."""
    SECRETS.add(value, declared=True)
    SECRETS.add(unquote(value), declared=True)


class MaskingFilter(logging.Filter):
    """Masks secrets in a log record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


def mask_logs() -> None:
    """Put the masking filter on every handler of the root and uvicorn loggers (a handler's
    filter sees records propagated from every child logger; a logger's own filter would not)."""
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, MaskingFilter) for f in handler.filters):
                handler.addFilter(MaskingFilter())
