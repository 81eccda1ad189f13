"""The shape every connector type has: a ``Spec`` model for its ``source`` block and a class
that fetches payloads and decodes them to Arrow."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from urbanlake.core.errors import BadRecord
from urbanlake.core.settings import Settings
from urbanlake.core.spec import ConnectorConfig


class SourceSpec(BaseModel):
    """Base of every connector type's ``source`` model; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")
    type: str


@dataclass
class Payload:
    """One unit of fetched bytes: kept in the raw zone as received, then decoded."""

    content: bytes
    origin: str
    format: str
    state: dict[str, Any] = field(default_factory=dict)
    media_type: str | None = None
    sha256: str | None = None  # set by a connector that hashed the bytes already


@dataclass
class Decoded:
    """A payload as Arrow rows, plus the records that could not become rows.

    ``loose_columns`` are columns that arrived as text because their values had mixed types;
    the lakehouse picks their type and quarantines the values that do not fit.
    """

    table: pa.Table
    bad_records: list[BadRecord] = field(default_factory=list)
    loose_columns: set[str] = field(default_factory=set)
    # A source that fills several tables (a GTFS zip's files, GBFS feeds) returns them here;
    # they are committed together, with the state, in one snapshot. ``table`` is then unused.
    parts: list[TablePart] = field(default_factory=list)

    @property
    def rows_in(self) -> int:
        if self.parts:
            return sum(part.decoded.rows_in for part in self.parts)
        return self.table.num_rows + len(self.bad_records)


@dataclass
class TablePart:
    """One table's rows of a multi-table payload: table ``<domain>.<name>_<suffix>``."""

    suffix: str
    decoded: Decoded
    primary_key: list[str] = field(default_factory=list)
    event_time: str | None = None
    replace: bool = False  # these rows are the table's whole new content (a new feed version)
    declared: dict[str, str] = field(default_factory=dict)  # column types the format defines


@dataclass
class ConnectorContext:
    """What a connector may use besides its own spec."""

    settings: Settings
    run_id: str = ""


SpecT = TypeVar("SpecT", bound=SourceSpec)


class Connector(ABC, Generic[SpecT]):
    """A connector type. Subclasses set ``type_name``, ``spec_model`` and ``example``."""

    type_name: ClassVar[str]
    spec_model: ClassVar[type[SourceSpec]]
    # A minimal, valid ``source`` block: used by docs, ``urbanlake init`` and the conformance tests.
    example: ClassVar[dict[str, Any]]

    def __init__(self, spec: SpecT, config: ConnectorConfig, context: ConnectorContext):
        self.spec = spec
        self.config = config
        self.context = context

    @abstractmethod
    def fetch(self, state: dict[str, Any]) -> Iterator[Payload]:
        """Yield payloads not yet loaded, given the state committed with the last batch."""

    @abstractmethod
    def decode(self, payload: Payload) -> Decoded:
        """Turn one payload into Arrow rows; raise ``DecodeError`` if it cannot be read at all."""

    def state_after(self, payload: Payload, decoded: Decoded) -> dict[str, Any]:
        """The state to commit with this payload's rows (default: what ``fetch`` attached)."""
        return payload.state

    def state_after_failure(self, payload: Payload) -> dict[str, Any]:
        """The state to commit with a payload that could not be decoded (it is set aside).

        By default what ``fetch`` attached, so the payload is not fetched again; a source whose
        state is a cursor returns a state that does not move past the payload's data.
        """
        return payload.state

    def close(self) -> None:
        """Release connections; called once at the end of a run."""
