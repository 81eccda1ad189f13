"""'Did you mean …?': the closest of the known names to a misspelt one."""

from __future__ import annotations

import difflib


def closest(name: str, known: list[str]) -> str | None:
    """The known name nearest to ``name``, if any is near enough to be a likely typo."""
    found = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return found[0] if found else None
