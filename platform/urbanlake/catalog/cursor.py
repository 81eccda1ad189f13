"""Keyset cursors: where a page ended, pinned to one version of one query.

A cursor is base64url-encoded JSON: ``{"v": version, "k": [the ordering values of the last row
returned], "q": a digest of the filters and order}``. A cursor only continues the query it came
from; a cursor for another query, or one that was altered, is refused.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import orjson

from urbanlake.core.errors import BadQuery


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def query_digest(parts: list[str]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def encode_cursor(version: int, values: list[Any], digest: str = "") -> str:
    """A cursor that continues after the row whose ordering values are ``values``."""
    body = {"v": int(version), "k": [_plain(v) for v in values], "q": digest}
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


@dataclass(frozen=True)
class Position:
    """Where a cursor continues: after ``after`` (the ordering values of the last row returned)
    in ``version``, for the query whose digest is ``digest``."""

    version: int
    after: list[Any]
    digest: str


def decode_cursor(token: str) -> Position:
    """The cursor's position; a malformed cursor is a 400 naming ``cursor``."""
    try:
        padded = token + "=" * (-len(token) % 4)
        body = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        version, values, digest = int(body["v"]), list(body["k"]), str(body.get("q", ""))
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise BadQuery(
            "the cursor is not one this API made: follow the 'next' URL as given",
            "cursor",
            "bad_cursor",
        ) from None
    return Position(version, values, digest)
