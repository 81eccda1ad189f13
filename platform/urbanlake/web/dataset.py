"""A dataset's page: what it is, how fresh and how good, its rows, chart, map, versions,
downloads and snippets; and the "what changed" page between two of its versions.

Everything comes from the catalog actions the API answers with (``dataset_show``,
``dataset_quality``, ``dataset_versions``, ``dataset_changes``), so the page and ``/api/v1``
never disagree. The preview, chart and map are built by ``explore`` and ``geo``; this module
places them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from urbanlake.catalog import actions, schema_org
from urbanlake.catalog.metadata import FREQUENCIES, license_url, moment_of
from urbanlake.catalog.service import Catalog
from urbanlake.core.errors import BadQuery
from urbanlake.web import explore, geo, svg
from urbanlake.web.render import caller_of, catalog_of, page, quality_class, render, strings_of
from urbanlake.web.strings import Strings

router = APIRouter(include_in_schema=False)

QUALITY_RUNS = 10  # recent validation runs in the quality trend
CHANGES_SHOWN = 50  # rows of each kind (inserted, updated, deleted) the changes page lists


def base_url(request: Request, catalog: Catalog) -> str:
    """The catalog's public address (``api.url``), else the request's own: snippets and the
    stable Parquet URL are absolute, to be copied elsewhere."""
    return (catalog.settings.api.url or str(request.base_url)).rstrip("/")


def _query(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs)


# -- words for numbers and times -------------------------------------------------------------------


def duration(t: Strings, seconds: float | None) -> str | None:
    """A length of time in words, to the largest whole unit: "3 minutes", "2 days"."""
    if seconds is None:
        return None
    seconds = max(0.0, seconds)
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return t(f"ds.time.{unit}" if n == 1 else f"ds.time.{unit}s", n=n)
    return t("ds.time.under_minute")


def moment(value: Any) -> str:
    """A time as people read it (UTC, to the minute); other values as they are."""
    when = moment_of(value)
    if when is None:
        return "" if value is None else str(value)
    if when.utcoffset() is None:
        return when.strftime("%Y-%m-%d %H:%M")  # a local time without zone, as stored
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(value: Any) -> str:
    when = moment_of(value)
    return when.isoformat() if when else ""


def number(value: Any) -> str:
    """Counts with thousands separators; floats without trailing noise; the rest as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def percent(share: float | None) -> str:
    if share is None:
        return ""
    value = share * 100
    return f"{value:.0f}%" if value in (0, 100) or value >= 10 else f"{value:.2g}%"


# -- sections --------------------------------------------------------------------------------------


def about_view(detail: dict[str, Any], t: Strings) -> dict[str, Any]:
    """The facts of #about that need words: frequency, license link, coverage."""
    frequency = FREQUENCIES.get(detail["frequency"])
    spatial = detail.get("spatial")
    temporal = detail.get("temporal")
    coverage_time = None
    if temporal and (temporal.get("start") or temporal.get("end")):
        coverage_time = t("ds.about.temporal_range", start=temporal.get("start") or "…",
                          end=temporal.get("end") or t("ds.about.ongoing"))  # fmt: skip
    if coverage_time is None:
        coverage_time = observed_span(detail, t)
    coverage_space = None
    if spatial:
        min_lon, min_lat, max_lon, max_lat = spatial["bbox"]
        coverage_space = t("ds.about.bbox", min_lon=min_lon, min_lat=min_lat, max_lon=max_lon,
                           max_lat=max_lat)  # fmt: skip
    return {
        "frequency": frequency[1] if frequency else detail["frequency"],
        "license_url": license_url(detail["license"]),
        "temporal": coverage_time,
        "spatial": coverage_space,
    }


def observed_span(detail: dict[str, Any], t: Strings) -> str | None:
    """The time the rows cover when the entry does not say: the range of its first time column
    in the latest version's statistics."""
    stats = detail["statistics"]["columns"]
    for column in detail["schema"]:
        kind = (column.get("type") or "").upper()
        s = stats.get(column["name"], {})
        if kind.startswith(("TIMESTAMP", "DATE")) and s.get("min") is not None:
            return t("ds.about.observed", start=moment(s["min"]), end=moment(s.get("max")))
    return None


def freshness_view(fresh: dict[str, Any], t: Strings) -> dict[str, Any]:
    """The freshness badge: fresh (within the SLA), stale, or not checked (no SLA or no data)."""
    stale = fresh.get("stale")
    state = "unknown" if stale is None else ("stale" if stale else "fresh")
    return {
        "state": state,
        "badge": {"fresh": "ok", "stale": "bad", "unknown": "none"}[state],
        "last_updated": fresh.get("last_updated"),
        "age": duration(t, fresh.get("age_seconds")),
        "sla": duration(t, fresh.get("max_age_seconds")),
    }


def score_badge(score: float | None, checked: bool) -> dict[str, str]:
    """A quality score as a word and a class: the word carries the meaning, the colour helps."""
    if not checked or score is None:
        return {"word": "ds.quality.not_checked", "class": "none", "percent": ""}
    css = quality_class(score)
    word = {"ok": "ds.quality.good", "warn": "ds.quality.fair", "bad": "ds.quality.poor"}[css]
    return {"word": word, "class": css, "percent": percent(score)}


def quality_view(report: dict[str, Any], t: Strings) -> dict[str, Any]:
    """#quality: the score, the expectations that failed at their latest run, and the trend of
    recent runs (passed / failed results and quarantined rows per run, per input table)."""
    summary = report["summary"]
    failed = []
    trend = []
    series: dict[str, Sequence[tuple[datetime, float]]] = {}
    for table, found in report["tables"].items():
        for result in found["expectations"]:
            if result.get("success") is False:
                failed.append({"table": table, "expectation": result.get("expectation"),
                               "column": result.get("column_name") or _columns(result),
                               "unexpected": result.get("unexpected_count"),
                               "share": result.get("unexpected_percent"),
                               "validated_at": result.get("validated_at")})  # fmt: skip
        points = []
        for run in found["trend"]:
            passed, failing = int(run.get("passed") or 0), int(run.get("failed") or 0)
            share = passed / (passed + failing) if passed + failing else None
            trend.append({"table": table, "validated_at": run.get("validated_at"),
                          "passed": passed, "failed": failing, "share": share,
                          "quarantined": run.get("quarantined")})  # fmt: skip
            when = moment_of(run.get("validated_at"))
            if when is not None and share is not None:
                points.append((when, round(share * 100, 2)))
        if points:
            series[table] = sorted(points)
    return {"summary": summary, "badge": score_badge(summary.get("score"), summary["checked"]),
            "failed": failed, "trend": trend, "chart": trend_chart(series, t),
            "several_tables": len(report["tables"]) > 1}  # fmt: skip


def _columns(result: dict[str, Any]) -> str:
    kwargs = result.get("kwargs")
    if isinstance(kwargs, dict) and isinstance(kwargs.get("column_list"), list):
        return ", ".join(str(c) for c in kwargs["column_list"])
    return ""


def trend_chart(series: dict[str, Sequence[tuple[Any, Any]]], t: Strings) -> Markup | None:
    """The trend as an inline SVG line chart (its numbers are in the table beside it), when
    there are at least two runs to join."""
    if not series or max(len(points) for points in series.values()) < 2:
        return None
    return svg.line_chart(
        series, label=t("ds.quality.trend_label"), y_label=t("ds.quality.trend_axis")
    )


def schema_view(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """#schema: per column its type, unit, description, share of nulls, min and max."""
    rows = detail["statistics"]["rows"]
    stats = detail["statistics"]["columns"]
    out = []
    for column in detail["schema"]:
        s = stats.get(column["name"], {})
        nulls = s.get("null_count")
        share = nulls / rows if rows and nulls is not None else None
        shown = moment if (column.get("type") or "").upper().startswith("TIMESTAMP") else number
        out.append({**column, "nulls": percent(share) if share is not None else "",
                    "min": shown(s.get("min")), "max": shown(s.get("max"))})  # fmt: skip
    return out


def downloads_view(
    base: str, detail: dict[str, Any], filters: list[tuple[str, str]]
) -> dict[str, Any]:
    """#downloads: every export format with the page's filters, and the version's stable file."""
    name = detail["name"]
    formats = [("csv", "CSV"), ("jsonl", "JSON Lines"), ("geojson", "GeoJSON"),
               ("parquet", "Parquet")]  # fmt: skip
    links = [
        {"format": key, "label": label,
         "url": f"/api/v1/datasets/{name}/export?{_query([('format', key), *filters])}"}
        for key, label in formats
        if key != "geojson" or detail.get("geometry")
    ]  # fmt: skip
    stable = None
    if detail["version"] is not None:
        stable = f"{base}/api/v1/datasets/{name}/versions/{detail['version']}/data.parquet"
    return {"links": links, "stable": stable, "filtered": bool(filters)}


def snippets_view(
    base: str, detail: dict[str, Any], filters: list[tuple[str, str]], stable: str | None
) -> list[dict[str, str]]:
    """#snippets: the same data from a shell, Python, pandas, DuckDB and R, with absolute URLs
    and the page's filters. A partner dataset's snippets read the key from the environment."""
    name = detail["name"]
    api = f"{base}/api/v1/datasets/{name}"
    keyed = detail.get("access") != "public"
    csv_url = f"{api}/export?{_query([('format', 'csv'), *filters])}"
    parquet_url = f"{api}/export?{_query([('format', 'parquet'), *filters])}"
    curl_key = ' -H "X-API-Key: $URBANLAKE_API_KEY"' if keyed else ""
    pairs = [("limit", "100"), *filters]
    # A dict reads best; a filter given twice (two bounds of one column) needs the pairs.
    params: Any = dict(pairs) if len(dict(pairs)) == len(pairs) else pairs
    headers = ', headers={"X-API-Key": os.environ["URBANLAKE_API_KEY"]}' if keyed else ""
    python = ("import os\n" if keyed else "") + (
        "import httpx\n\n"
        f"response = httpx.get(\n    {_py(api + '/records')},\n    params={_py(params)}{headers},\n)\n"
        "response.raise_for_status()\n"
        "page = response.json()  # rows, total, next (the URL of the next page)\n"
        'print(page["total"], page["rows"][:3])'
    )
    storage = ('storage_options={"X-API-Key": os.environ["URBANLAKE_API_KEY"]}'
               if keyed else "")  # fmt: skip
    pandas = ("import os\n" if keyed else "") + (
        "import pandas as pd\n\n"
        f"df = pd.read_parquet({_py(parquet_url)}{', ' + storage if storage else ''})\n"
        "print(df.describe())"
    )
    snippets = [
        {"key": "curl", "code": f"curl -L{curl_key} -o {name}.csv {_sh(csv_url)}"},
        {"key": "python", "code": python},
        {"key": "pandas", "code": pandas},
    ]
    if stable is not None:
        secret = ("CREATE SECRET (TYPE http, EXTRA_HTTP_HEADERS MAP {'X-API-Key': "
                  "getenv('URBANLAKE_API_KEY')});\n" if keyed else "")  # fmt: skip
        duckdb = f"{secret}SELECT * FROM read_parquet({_sql(stable)}) LIMIT 10;"
        snippets.append({"key": "duckdb", "code": duckdb})
    r_header = (', headers = c("X-API-Key" = Sys.getenv("URBANLAKE_API_KEY"))'
                if keyed else "")  # fmt: skip
    r = f"data <- read.csv(url({_r(csv_url)}{r_header}))\nsummary(data)"
    snippets.append({"key": "r", "code": r})
    return snippets


def _py(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(f"({_py(k)}, {_py(v)})" for k, v in value) + "]"


def _sh(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _sql(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _r(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def json_ld(document: dict[str, Any]) -> Markup:
    """JSON for a ``<script type="application/ld+json">``: ``<``, ``>`` and ``&`` escaped, so no
    value can close the script element."""
    text = orjson.dumps(document, default=str).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # safe: escaped above for the script element


# -- routes ----------------------------------------------------------------------------------------


@router.get("/datasets/{name}", response_class=HTMLResponse)
def dataset_page(request: Request, name: str) -> Response:
    """The page; a submitted filter form first goes to its clean URL (a 303)."""
    redirect = explore.filter_redirect(request)
    if redirect is not None:
        return redirect
    return dataset_view(request=request, name=name)


@page
def dataset_view(request: Request, name: str) -> HTMLResponse:
    catalog, caller, t = catalog_of(request), caller_of(request), strings_of(request)
    detail = actions.dataset_show(catalog, caller, name)
    base = base_url(request, catalog)
    filters = explore.filter_items(request)  # the preview's own rule: downloads match it
    downloads = downloads_view(base, detail, filters)
    versions = actions.dataset_versions(catalog, caller, name)["versions"]
    context = {
        "title": detail["title"],
        "nav": "datasets",
        "detail": detail,
        "about": about_view(detail, t),
        "freshness": freshness_view(detail["freshness"], t),
        "quality": quality_view(actions.dataset_quality(catalog, caller, name, QUALITY_RUNS), t),
        "columns": schema_view(detail),
        "preview": explore.preview_context(request, catalog, caller, detail),
        "chart": explore.chart_context(request, catalog, caller, detail),
        "map": geo.map_context(request, catalog, caller, detail),
        "versions": versions,
        "downloads": downloads,
        "snippets": snippets_view(base, detail, filters, downloads["stable"]),
        "page_url": f"{base}/datasets/{name}",
        "json_ld": json_ld(schema_org.schema_org(catalog, caller, name, base)),
        "moment": moment,
        "iso": iso,
        "number": number,
    }
    return render(request, "dataset.html", context)


def _version_parameter(request: Request, parameter: str) -> int:
    text = request.query_params.get(parameter, "").strip()
    if not text.isdigit():
        raise BadQuery(f"{parameter} must be a version number (pick two versions to compare)",
                       parameter)  # fmt: skip
    return int(text)


@router.get("/datasets/{name}/changes", response_class=HTMLResponse)
@page
def changes_page(request: Request, name: str) -> HTMLResponse:
    """What changed between two versions: counts of rows inserted, updated and deleted (by the
    primary key) and the first rows of each."""
    catalog, caller, t = catalog_of(request), caller_of(request), strings_of(request)
    detail = actions.dataset_show(catalog, caller, name)
    before, after = _version_parameter(request, "from"), _version_parameter(request, "to")
    changes = actions.dataset_changes(catalog, caller, name, before, after, CHANGES_SHOWN)
    columns = [c["name"] for c in detail["schema"]]
    first = (changes["inserted"] or changes["deleted"] or [None])[0]
    if not columns and first:
        columns = list(first)
    updated = []
    for row in changes["updated"]:
        old, new = row.get("before") or {}, row.get("after") or {}
        updated.append([{"old": number(old.get(c)), "new": number(new.get(c)),
                         "changed": old.get(c) != new.get(c)} for c in columns])  # fmt: skip
    times = {
        v["version"]: v["time"] for v in actions.dataset_versions(catalog, caller, name)["versions"]
    }
    return render(request, "changes.html", {
        "title": t("ds.changes.title", title=detail["title"], before=before, after=after),
        "nav": "datasets", "detail": detail, "changes": changes, "columns": columns,
        "updated": updated, "shown": CHANGES_SHOWN, "times": times, "moment": moment,
        "iso": iso, "number": number,
        "api_url": f"/api/v1/datasets/{name}/changes?{_query([('from', str(before)), ('to', str(after))])}",
    })  # fmt: skip
