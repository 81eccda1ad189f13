"""Every error the platform raises, grouped by what the caller should do about it."""

from __future__ import annotations

from dataclasses import dataclass, field


class UrbanLakeError(Exception):
    """Base of every error the platform raises on purpose."""


@dataclass
class ConfigProblem:
    """One thing wrong in one config file: where it is and what is wrong."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        at = f" {self.field}:" if self.field else ""
        return f"{where}:{at} {self.message}"


class ConfigError(UrbanLakeError):
    """Fail fast: a config is wrong. Carries every problem found, each with file, line and field."""

    def __init__(self, problems: list[ConfigProblem] | str):
        if isinstance(problems, str):
            problems = [ConfigProblem(file="", line=None, field="", message=problems)]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SourceError(UrbanLakeError):
    """A source could not deliver."""


class RetriableSourceError(SourceError):
    """Back off and try again: timeouts, 429, 5xx."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class FatalSourceError(SourceError):
    """Stop this run and tell the publisher: 4xx other than 429, unreadable payloads."""


class DecodeError(FatalSourceError):
    """A payload could not be decoded at all; its raw bytes are kept in the raw zone."""


@dataclass
class BadRecord:
    """One record that cannot be loaded: quarantined with its reason, the run goes on."""

    raw: str
    reason: str
    line: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


class SchemaConflict(UrbanLakeError):
    """A batch's column types cannot be reconciled with the table's: the batch goes to quarantine."""


class LakeError(UrbanLakeError):
    """The lakehouse could not be opened or written."""


class NotFound(UrbanLakeError):
    """A table, connector, dataset or snapshot that does not exist (or that the caller may not see)."""

    status = 404
    code = "not_found"


class BadQuery(UrbanLakeError):
    """A request names a column, operator, value or cursor that cannot be used; ``parameter`` is
    the request parameter at fault."""

    status = 400

    def __init__(self, message: str, parameter: str, code: str = "bad_parameter"):
        super().__init__(message)
        self.parameter = parameter
        self.code = code


class InvalidKey(UrbanLakeError):
    """An API key that is not valid: unknown, wrong, expired or revoked (the message never says
    which, nor whether a key of that name exists)."""

    status = 401
    code = "invalid_key"
    headers = {"WWW-Authenticate": 'Bearer realm="urbanlake"'}
