"""Credentials in connector configs: which headers and query parameters carry one, and the rule
that a credential is never written into a config literally, only as a ``${ENV}`` reference."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from urbanlake.core.errors import ConfigError, ConfigProblem
from urbanlake.core.secrets import ENV_REF, mask
from urbanlake.core.spec import ConnectorConfig

# Header names that carry credentials. Broad on purpose: a false alarm costs one ``${ENV}``
# reference, a miss puts a credential in a file that is committed and published.
SECRET_HEADER = re.compile(r"authori[sz]ation|cookie|token|key|secret|password", re.IGNORECASE)
# Query parameters are named more loosely (``keyword``, ``sort_key``), so only the usual
# credential names count.
SECRET_PARAM = re.compile(
    r"^(api[_-]?key|key|access[_-]?token|auth[_-]?token|token|secret|client[_-]?secret|password)$",
    re.IGNORECASE,
)
# ``registry.validate_document`` resolves a source leniently before validating it, putting this
# stand-in where a variable is not set (see ``core.secrets.resolve``).
LENIENT_STAND_IN = re.compile(r"unset-[a-z_][a-z0-9_]*")


def came_from_reference(value: str) -> bool:
    """Best guess, from a possibly resolved value, that it came from a ``${NAME}`` reference.

    The spec model sees the source after ``${NAME}`` was replaced: by its value (which ``resolve``
    registers and ``mask`` hides) or by a stand-in. ``HttpConnector`` checks the unresolved config
    again before any request, where a reference is plain to see.
    """
    return bool(ENV_REF.search(value) or LENIENT_STAND_IN.search(value)) or mask(value) != value


def literal_secrets(
    headers: Mapping[str, Any], params: Mapping[str, Any], is_reference: Callable[[str], object]
) -> list[tuple[str, str]]:
    """(field, message) for each credential header or parameter whose value is not a reference."""
    problems = [
        ("headers", f"header '{name}' carries a credential, and secrets must be ${{ENV}} references: "
                    f'write e.g. {name}: "Bearer ${{API_TOKEN}}" and set API_TOKEN in the environment')
        for name, value in headers.items()
        if SECRET_HEADER.search(name) and not (isinstance(value, str) and is_reference(value))
    ]  # fmt: skip
    problems += [
        ("params", f"query parameter '{name}' carries a credential, and secrets must be ${{ENV}} references: "
                   f'write e.g. {name}: "${{API_KEY}}" and set API_KEY in the environment')
        for name, value in params.items()
        if SECRET_PARAM.match(name) and not (isinstance(value, str) and is_reference(value))
    ]  # fmt: skip
    return problems


def refuse_written_secrets(config: ConnectorConfig, params: Mapping[str, Any]) -> None:
    """Check the config as written (a reference is still a reference there), before any request.

    ``params`` are the source's query parameters as written (in ``params`` or in its URLs).
    """
    raw: dict[str, Any] = config.source
    literal = literal_secrets(raw.get("headers") or {}, params, ENV_REF.search)
    if literal:
        field_of = {
            "headers": "source.headers",
            "params": "source.params" if "params" in raw else "source.url",
        }
        where = str(config.path or config.table_name)
        raise ConfigError([ConfigProblem(where, None, field_of[f], m) for f, m in literal])
