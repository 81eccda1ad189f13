"""UrbanLake: city feeds into a DuckDB + Parquet lakehouse, checked and published."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    import duckdb


def connect(project: str | None = None, **overrides: Any) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every lake table visible as ``<domain>.<table>``.

    ``project`` is the city project folder (default: ``URBANLAKE_PROJECT`` or the current folder);
    keyword overrides replace settings, e.g. ``connect(lake="s3://bucket/city")``.
    """
    from urbanlake.core.settings import load_settings
    from urbanlake.lakehouse.lake import Lake

    return Lake.open(load_settings(project, **overrides)).connection()


__all__ = ["__version__", "connect"]
