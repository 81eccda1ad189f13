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
    # preview and chart
    "preview.column": "Column",
    "preview.condition": "Condition",
    "preview.value": "Value",
    "preview.apply": "Apply filter",
    "preview.op_eq": "is",
    "preview.op_ne": "is not",
    "preview.op_gt": ">",
    "preview.op_gte": "≥",
    "preview.op_lt": "<",
    "preview.op_lte": "≤",
    "preview.op_contains": "contains",
    "preview.active_filters": "Active filters",
    "preview.filter_label": "{column} {op} {value}",
    "preview.remove": "Remove",
    "preview.sort_asc": "sort ascending",
    "preview.sort_desc": "sort descending",
    "preview.null": "no value",
    "preview.caption": "Rows {first}–{last} of {total}",
    "preview.caption_later": "{count} rows of {total}",
    "preview.caption_none": "No rows match (0 of {total})",
    "preview.pages": "Pages of rows",
    "preview.first": "First page",
    "preview.next": "Next page",
    "preview.page": "Page {number}",
    "preview.unpublished": "The rows can be seen once the dataset is published.",
    "preview.bad_request": "These rows cannot be shown: {reason}. Change or remove the filter.",
    "chart.value": "Value",
    "chart.function": "Function",
    "chart.bucket": "Time bucket",
    "chart.group": "Group by",
    "chart.no_group": "(none)",
    "chart.draw": "Draw chart",
    "chart.fn_avg": "average",
    "chart.fn_sum": "sum",
    "chart.fn_min": "minimum",
    "chart.fn_max": "maximum",
    "chart.fn_count": "count of rows",
    "chart.bucket_5m": "5 minutes",
    "chart.bucket_15m": "15 minutes",
    "chart.bucket_1h": "1 hour",
    "chart.bucket_1d": "1 day",
    "chart.over_time": "Over time by {column}, with the filters of the rows above.",
    "chart.title_avg": "Average {column} per {bucket}",
    "chart.title_sum": "Sum of {column} per {bucket}",
    "chart.title_min": "Lowest {column} per {bucket}",
    "chart.title_max": "Highest {column} per {bucket}",
    "chart.title_count": "Rows per {bucket}",
    "chart.title_grouped": "{title}, by {column}",
    "chart.count": "rows",
    "chart.time": "Time",
    "chart.default": "a first look: choose above what to draw",
    "chart.as_table": "The chart's numbers as a table",
    "chart.table_label": "Numbers of the chart: {title}",
    "chart.empty": "No rows to draw",
    "chart.no_value": "(no value)",
    "chart.capped": "The {shown} largest of {total} groups are drawn.",
    "chart.unavailable": "This dataset has no time column and a number to draw over it.",
    "chart.bad_column": "'{column}' is not a numeric column of this dataset.",
    "chart.bad_function": "'{function}' is not a function the chart knows.",
    "chart.bad_bucket": "'{bucket}' is not a time bucket the chart knows.",
    "chart.bad_group": "'{column}' cannot group this chart: choose a column with few values.",
    "chart.bad_request": "The chart cannot be drawn: {reason}.",
    # pages
    "home.title": "Datasets",
    "home.intro": "Find the open data of {city}: search, narrow by topic, look at the rows, download.",
    "search.label": "Search datasets",
    "search.submit": "Search",
    "search.filters": "Narrow the results",
    "search.apply": "Apply",
    "search.selected": "Selected filters",
    "search.remove": "Remove filter",
    "search.clear": "Clear all filters",
    "search.count_one": "1 dataset",
    "search.count": "{n} datasets",
    "search.none": "No dataset matches. Try fewer words or remove a filter.",
    "search.more": "More datasets",
    "search.first": "Back to the first datasets",
    "facet.domain": "Domain",
    "facet.theme": "Theme",
    "facet.publisher": "Publisher",
    "facet.license": "License",
    "facet.keyword": "Keyword",
    "dataset.domain": "Domain",
    "dataset.updated": "Updated",
    "dataset.never": "not published yet",
    "dataset.partner": "Partners only",
    "fresh.fresh": "Fresh",
    "fresh.stale": "Stale",
    "fresh.unchecked": "Freshness not checked",
    "fresh.age": "{age} ago",
    "fresh.never": "no data yet",
    "fresh.target": "within {limit}",
    "fresh.no_target": "no freshness target",
    "quality.score": "Quality {score}",
    "quality.unchecked": "Quality not checked",
    "time.second": "{n} second",
    "time.seconds": "{n} seconds",
    "time.minute": "{n} minute",
    "time.minutes": "{n} minutes",
    "time.hour": "{n} hour",
    "time.hours": "{n} hours",
    "time.day": "{n} day",
    "time.days": "{n} days",
    "status.title": "Data health",
    "status.intro": "Is the data healthy? Each dataset's freshness against its target, and its quality score: the share of quality checks its data passed over the recent batches.",
    "status.summary": "At a glance",
    "status.count.fresh": "{n} fresh",
    "status.count.stale": "{n} stale",
    "status.count.unchecked": "{n} not checked",
    "status.caption": "Freshness and quality of every dataset",
    "status.col.dataset": "Dataset",
    "status.col.freshness": "Freshness",
    "status.col.age": "Age of the data",
    "status.col.target": "Freshness target",
    "status.col.quality": "Quality",
    "status.col.rows": "Rows",
    "status.col.version": "Last published version",
    "status.version": "version {n}",
    "status.none": "No dataset is published yet.",
    "signin.title": "Sign in",
    "signin.intro": "Partners sign in with their API key to see the datasets shared with them. The key is kept in a cookie of this site until you sign out or close the browser.",
    "signin.key": "API key",
    "signin.submit": "Sign in",
    "signin.invalid": "This key is not valid: it may be mistyped, expired or revoked.",
    "signin.empty": "Enter your API key.",
    "signin.already": "You are signed in as {name}.",
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
