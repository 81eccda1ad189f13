"""The dataset page's preview table and chart builder. The page's query parameters are the
records API's own (``col=value``, ``col__op=value``, ``order_by``, ``cursor``), read by the same
``parse_record_params`` and answered by the same actions, so a page of the preview is a page of
``/api/v1/datasets/{name}/records`` and a chart's numbers are its ``/aggregate``'s."""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse
from markupsafe import Markup

from urbanlake.catalog import actions
from urbanlake.catalog.params import RESERVED, RecordParams, parse_record_params
from urbanlake.catalog.service import Caller, Catalog
from urbanlake.core.errors import BadQuery
from urbanlake.web.render import strings_of
from urbanlake.web.strings import Strings
from urbanlake.web.svg import format_number, line_chart

PAGE_SIZE = 20
# Parameters of the dataset page that are not the records API's: the filter form's fields (folded
# into a filter by ``filter_redirect``), the preview's page counter (for display only), the
# versions form's; and every ``chart_*`` of the chart builder.
PAGE_PARAMETERS = frozenset({"fcol", "fop", "fval", "page", "from", "to"})
CHART_PREFIX = "chart_"
# Record parameters the preview does not take from the URL: its page size is fixed, and facets
# and formats are the API's.
IGNORED = frozenset({"limit", "facet", "facet_size", "format", "group_by", "bucket", "metrics"})
# The filter form's conditions: operator (as in ``col__op``) → the words' key.
CONDITIONS = (("eq", "preview.op_eq"), ("ne", "preview.op_ne"), ("gt", "preview.op_gt"),
              ("gte", "preview.op_gte"), ("lt", "preview.op_lt"), ("lte", "preview.op_lte"),
              ("contains", "preview.op_contains"))  # fmt: skip
SYMBOLS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤",
           "contains": "contains", "in": "in", "isnull": "is empty:"}  # fmt: skip
FUNCTIONS = ("avg", "sum", "min", "max", "count")
# Time buckets, with the least time between two of them (a month: 28 days).
BUCKETS = {"5m": timedelta(minutes=5), "15m": timedelta(minutes=15), "1h": timedelta(hours=1),
           "1d": timedelta(days=1), "1w": timedelta(weeks=1), "1mo": timedelta(days=28)}  # fmt: skip
MAX_POINTS = 400  # time buckets a default chart draws at most
MAX_CELLS = 1600  # buckets × series a chart draws at most: a page stays small (SVG, table, JSON)
MAX_SERIES = 8  # more groups than this: the largest ones are drawn, and the page says so
MAX_GROUP_VALUES = 12  # a column with more distinct values is not offered for grouping
MAX_TEXT = 200  # a longer text cell is cut (the downloads carry it whole)


def is_page_parameter(key: str) -> bool:
    """A query parameter of the page itself, not a records filter or option."""
    return key in PAGE_PARAMETERS or key.startswith(CHART_PREFIX)


def record_items(request: Request) -> list[tuple[str, str]]:
    """The page's records parameters, in order: filters, ``order_by``, ``cursor``, ``version``…"""
    return [(k, v) for k, v in request.query_params.multi_items()
            if not is_page_parameter(k) and k not in IGNORED]  # fmt: skip


def filter_items(request: Request) -> list[tuple[str, str]]:
    """The page's active record filters (``col=value``, ``col__op=value``), in order."""
    return [(k, v) for k, v in record_items(request) if k not in RESERVED]


def chart_items(request: Request) -> list[tuple[str, str]]:
    """What the chart reads: the page's filters, on the version the page reads."""
    return [(k, v) for k, v in record_items(request)
            if k not in RESERVED or k in ("version", "as_of", "bbox")]  # fmt: skip


def _url(path: str, items: list[tuple[str, str]], anchor: str = "") -> str:
    query = urlencode(items)
    return (f"{path}?{query}" if query else path) + anchor


def filter_redirect(request: Request) -> RedirectResponse | None:
    """A submitted filter form (fcol/fop/fval) as a 303 to the clean URL; None otherwise.

    The form's fields become one ``col__op=value`` parameter (replacing one of the same column
    and condition); the cursor and page counter go, since the rows are others now."""
    query = request.query_params
    if not any(k in query for k in ("fcol", "fop", "fval")):
        return None
    column, op, value = query.get("fcol", ""), query.get("fop", "eq"), query.get("fval", "")
    key = column if op in ("", "eq") else f"{column}__{op}"
    kept = [(k, v) for k, v in query.multi_items()
            if k not in ("fcol", "fop", "fval", "cursor", "page") and k != key]  # fmt: skip
    if column and value:
        kept.append((key, value))
    return RedirectResponse(_url(request.url.path, kept, "#preview"), status_code=303)


# -- preview ---------------------------------------------------------------------------------------


def cell(value: Any) -> dict[str, Any]:
    """One table cell: its text for a person, whether it is a number (aligned right) and, for a
    time, its ISO form for ``<time datetime>``."""
    if value is None:
        return {"text": "", "null": True}
    if isinstance(value, bool):
        return {"text": "true" if value else "false"}
    if isinstance(value, int | Decimal):
        return {"text": f"{value:,}", "number": True}
    if isinstance(value, float):
        return {"text": f"{value:,}", "number": True}
    if isinstance(value, datetime):
        shown = value.strftime("%Y-%m-%d %H:%M:%S").removesuffix(":00")
        if value.tzinfo is not None:
            shown += " " + (value.tzname() or "")
        return {"text": shown.strip(), "time": value.isoformat()}
    if isinstance(value, date):
        return {"text": value.isoformat(), "time": value.isoformat()}
    if isinstance(value, dict | list):
        value = json.dumps(value, default=str, ensure_ascii=False)
    text = str(value)
    if len(text) > MAX_TEXT:
        return {"text": text[:MAX_TEXT] + "…", "title": text[:2000]}
    return {"text": text}


def _page_number(request: Request) -> int | None:
    """The preview's page counter: 1 without a cursor, the ``page`` the next link carried with
    one, None when a cursor came without it (the rows' positions are then not known)."""
    if not request.query_params.get("cursor"):
        return 1
    try:
        number = int(request.query_params.get("page", ""))
    except ValueError:
        return None
    return number if number >= 2 else None


def _filter_label(t: Strings, key: str, value: str) -> str:
    column, _, op = key.partition("__")
    symbol = SYMBOLS.get(op or "eq", op)
    return t("preview.filter_label", column=column, op=symbol, value=value)


def _form(
    request: Request, t: Strings, columns: list[str], params: RecordParams | None
) -> dict[str, Any]:
    """The filter form: its choices and, as hidden fields, what the page keeps (other filters,
    order, version, the chart) so applying a filter changes only that."""
    hidden = [(k, v) for k, v in request.query_params.multi_items()
              if k not in ("fcol", "fop", "fval", "cursor", "page")]  # fmt: skip
    chosen = params.filters[-1] if params and params.filters else None
    return {
        "action": request.url.path,
        "columns": columns,
        "conditions": [(op, t(key)) for op, key in CONDITIONS],
        "hidden": hidden,
        "column": chosen.column if chosen else "",
    }


def preview_context(
    request: Request, catalog: Catalog, caller: Caller, detail: dict[str, Any]
) -> dict[str, Any]:
    """What `_preview.html` shows: a keyset page of rows of the pinned version.

    A filter or cursor the records API refuses (an unknown column, a value not of its column's
    type) is said in the preview, with the form to correct it; the rest of the page stands."""
    t = strings_of(request)
    name = detail["name"]
    path = request.url.path
    columns = [c["name"] for c in detail.get("schema") or []]
    items = record_items(request)
    filters = filter_items(request)
    active = [
        {"label": _filter_label(t, k, v),
         "remove_url": _url(path, [(k2, v2) for k2, v2 in request.query_params.multi_items()
                                   if (k2, v2) != (k, v) and k2 not in ("cursor", "page")],
                            "#preview")}
        for k, v in filters
    ]  # fmt: skip
    context: dict[str, Any] = {"filters": active, "error": None, "rows": [], "headers": [],
                               "form": _form(request, t, columns, None)}  # fmt: skip
    if detail.get("version") is None:
        context["error"] = t("preview.unpublished")
        return context
    try:
        params = parse_record_params(items, PAGE_SIZE)
        params.limit = PAGE_SIZE
        page = actions.records_page(catalog, caller, name, params)
    except BadQuery as exc:
        key = "preview.bad_cursor" if exc.parameter == "cursor" else "preview.bad_request"
        context["error"] = t(key, reason=str(exc))
        if request.query_params.get("cursor"):
            keep = [(k, v) for k, v in request.query_params.multi_items()
                    if k not in ("cursor", "page")]  # fmt: skip
            context["first_url"] = _url(path, keep, "#preview")
        return context
    context["form"] = _form(request, t, columns, params)
    shown = params.select or list(page["pinned"].types)
    order = dict(params.order_by[:1])  # the column the person sorted by leads the order
    clean = [(k, v) for k, v in request.query_params.multi_items()
             if k not in ("cursor", "page", "order_by")]  # fmt: skip
    kinds = {c: actions.column_kind(sql_type) for c, sql_type in page["pinned"].types.items()}
    headers = []
    for column in shown:
        descending = order.get(column)
        sort = None if descending is None else ("descending" if descending else "ascending")
        # A click sorts ascending; on the column sorted ascending, descending; and back.
        target = f"-{column}" if descending is False else column
        headers.append({
            "name": column, "sort": sort, "number": kinds.get(column) == "number",
            "action": t("preview.sort_desc" if target.startswith("-") else "preview.sort_asc"),
            "url": _url(path, [*clean, ("order_by", target)], "#preview"),
        })  # fmt: skip
    rows = [[cell(row.get(c)) for c in shown] for row in page["rows"]]
    number = _page_number(request)
    total = int(page["total"])
    if not rows:
        caption = t("preview.caption_none", total=f"{total:,}")
    elif number is None:
        caption = t("preview.caption_later", count=f"{len(rows):,}", total=f"{total:,}")
    else:
        first = (number - 1) * PAGE_SIZE + 1
        caption = t("preview.caption", first=f"{first:,}", last=f"{first + len(rows) - 1:,}",
                    total=f"{total:,}")  # fmt: skip
    keep = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "page")]
    next_url = None
    if page["next_cursor"]:
        after = [("cursor", page["next_cursor"]), ("page", str((number or 1) + 1))]
        next_url = _url(path, [*keep, *after], "#preview")
    on_later_page = bool(request.query_params.get("cursor"))
    context.update({
        "headers": headers, "rows": rows, "total": total, "caption": caption,
        "page": number, "version": page["version"], "next_url": next_url,
        "first_url": _url(path, keep, "#preview") if on_later_page else None,
        "filter_query": urlencode(filters),
    })  # fmt: skip
    return context


# -- chart -----------------------------------------------------------------------------------------


def time_column(detail: dict[str, Any]) -> str | None:
    """The dataset's event time: a timestamp in its primary key, else its first timestamp, else
    its first date column (the catalog's ``temporal`` is a coverage, not a column)."""
    types = {c["name"]: (c.get("type") or "") for c in detail.get("schema") or []}
    stamps = [c for c, kind in types.items() if kind.upper().startswith("TIMESTAMP")]
    keyed = [c for c in detail.get("primary_key") or [] if c in stamps]
    if keyed or stamps:
        return (keyed or stamps)[0]
    dates = [c for c, kind in types.items() if kind.upper() == "DATE"]
    return dates[0] if dates else None


def _choices(detail: dict[str, Any]) -> tuple[list[str], list[str], str | None]:
    """The numeric columns (positions last), the columns to group by (few values), and the one
    a first chart draws: the measure with the most values (a count of free spaces, not the
    garage's capacity; no position, no column without a value)."""
    geometry = detail.get("geometry") or {}
    position = {geometry.get("lon"), geometry.get("lat")}
    stats = (detail.get("statistics") or {}).get("columns") or {}
    numeric, groups = [], []
    distinct: dict[str, int] = {}
    for column in detail.get("schema") or []:
        name, sql_type = column["name"], (column.get("type") or "").upper()
        kind = actions.column_kind(sql_type)
        distinct[name] = int((stats.get(name) or {}).get("distinct_estimate") or 0)
        if kind == "number":
            numeric.append(name)
        few = 2 <= distinct[name] <= MAX_GROUP_VALUES
        if few and (kind in ("text", "boolean") or (kind == "number" and "INT" in sql_type)):
            groups.append(name)
    plain = [c for c in numeric if c not in position]
    measured = [c for c in plain if distinct[c] > 0] or plain or numeric
    first = max(measured, key=lambda c: distinct[c]) if measured else None
    return plain + [c for c in numeric if c in position], groups, first


def default_bucket(detail: dict[str, Any], column: str) -> str:
    """An hour, unless the data spans so little that hours make too few points, or so long
    that they make more than a page should draw."""
    stats = ((detail.get("statistics") or {}).get("columns") or {}).get(column) or {}
    types = {c["name"]: (c.get("type") or "").upper() for c in detail.get("schema") or []}
    try:
        low = datetime.fromisoformat(str(stats["min"]))
        high = datetime.fromisoformat(str(stats["max"]))
    except (KeyError, ValueError, TypeError):
        return "1d" if types.get(column) == "DATE" else "1h"
    span = high - low
    if types.get(column) != "DATE":
        if span < timedelta(hours=3):
            return "5m"
        if span < timedelta(hours=12):
            return "15m"
        if span / BUCKETS["1h"] <= MAX_POINTS:
            return "1h"
    return next((b for b in ("1d", "1w") if span / BUCKETS[b] <= MAX_POINTS), "1mo")


def _json_script(data: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` can end it)."""
    text = json.dumps(data, default=str, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def _unit(detail: dict[str, Any], column: str) -> str | None:
    for c in detail.get("schema") or []:
        if c["name"] == column:
            unit: str | None = c.get("unit")
            return unit
    return None


def chart_context(
    request: Request, catalog: Catalog, caller: Caller, detail: dict[str, Any]
) -> dict[str, Any]:
    """What `_chart.html` shows: the builder's form and, when asked, the chart.

    Without ``chart_y`` the page draws a default chart (the first numeric column's average per
    hour), so a dataset with a time shows one at once; the form then says how to change it."""
    t = strings_of(request)
    query = request.query_params
    time = time_column(detail)
    numeric, groups, first = _choices(detail)
    hidden = [(k, v) for k, v in query.multi_items() if not k.startswith(CHART_PREFIX)]
    context: dict[str, Any] = {
        "action": request.url.path, "hidden": hidden, "time": time,
        "numeric": numeric, "groups": groups, "functions": FUNCTIONS, "buckets": list(BUCKETS),
        "svg": None, "error": None, "note": None, "table": None, "json": None,
    }  # fmt: skip
    if time is None or not numeric:
        context["unavailable"] = t("chart.unavailable")
        return context
    asked = bool(query.get("chart_y"))
    y = query.get("chart_y") or first or numeric[0]
    fn = query.get("chart_fn") or "avg"
    bucket = query.get("chart_bucket") or default_bucket(detail, time)
    group = query.get("chart_group") or None
    context.update({"y": y, "fn": fn, "bucket": bucket, "group": group, "asked": asked})
    problems = []
    if y not in numeric:
        problems.append(t("chart.bad_column", column=y))
    if fn not in FUNCTIONS:
        problems.append(t("chart.bad_function", function=fn))
    if bucket not in BUCKETS:
        problems.append(t("chart.bad_bucket", bucket=bucket))
    if group is not None and group not in groups:
        problems.append(t("chart.bad_group", column=group))
    if problems:
        context["error"] = " ".join(problems)
        return context
    if detail.get("version") is None:
        return context
    metric = "count" if fn == "count" else f"{fn}:{y}"
    value_key = "count" if fn == "count" else f"{fn}_{y}"
    try:
        params = parse_record_params(chart_items(request), PAGE_SIZE)
        result = actions.records_aggregate(catalog, caller, detail["name"], params, group,
                                           f"{time}:{bucket}", metric)  # fmt: skip
    except BadQuery as exc:
        # A filter the preview already says is wrong is not said twice.
        own = exc.parameter in ("group_by", "bucket", "metrics")
        context["error"] = (
            t("chart.bad_request", reason=str(exc)) if own else t("chart.bad_filters")
        )
        return context
    context.update(draw(t, detail, result["rows"], time, value_key, y, fn, bucket, group))
    return context


def draw(
    t: Strings,
    detail: dict[str, Any],
    rows: list[dict[str, Any]],
    time: str,
    value_key: str,
    y: str,
    fn: str,
    bucket: str,
    group: str | None,
) -> dict[str, Any]:
    """The chart of aggregate rows: the SVG, the same numbers as a table and as JSON (for the
    script that redraws it interactively)."""
    by_group: dict[str, dict[Any, Any]] = {}
    for row in rows:
        name = y if group is None else ("" if row.get(group) is None else str(row[group]))
        if group is not None and name == "":
            name = t("chart.no_value")
        if row.get(time) is not None:
            by_group.setdefault(name, {})[row[time]] = row.get(value_key)
    ranked = sorted(by_group, key=lambda g: (-len(by_group[g]), g))
    kept = sorted(ranked[:MAX_SERIES])
    note = None
    if len(ranked) > MAX_SERIES:
        note = t("chart.capped", shown=MAX_SERIES, total=len(ranked))
    xs = sorted({x for g in kept for x in by_group[g]})
    # A stretch without rows is a gap in the line, not a straight line across it; data that
    # comes every two hours in hourly buckets is not a gap every other hour, so the grid's step
    # is the closest the buckets come.
    if len(xs) > 1 and all(isinstance(x, datetime) for x in xs):
        step = max(BUCKETS[bucket], min(b - a for a, b in itertools.pairwise(xs)))
        count = int((xs[-1] - xs[0]) / step) + 1
        if count <= 2000:
            grid = [xs[0] + i * step for i in range(count)]
            if set(xs) <= set(grid):
                xs = grid
    if len(xs) * max(1, len(kept)) > MAX_CELLS:
        return {"error": t("chart.too_many", points=f"{len(xs) * len(kept):,}")}
    series = {g: [(x, by_group[g].get(x)) for x in xs] for g in kept}
    unit = _unit(detail, y)
    y_label = t("chart.count") if fn == "count" else (f"{y} ({unit})" if unit else y)
    label = t(f"chart.title_{fn}", column=y, bucket=t(f"chart.bucket_{bucket}"))
    if group:
        label = t("chart.title_grouped", title=label, column=group)
    svg = line_chart(series, label=label, y_label=y_label, empty_text=t("chart.empty"))
    table = {
        "headers": [t("chart.time"), *kept],
        "rows": [[cell(x)["text"],
                  *(("" if (v := by_group[g].get(x)) is None else format_number(float(v)))
                    for g in kept)]
                 for x in xs if any(by_group[g].get(x) is not None for g in kept)],
    }  # fmt: skip
    data = {
        "x": [x.isoformat() if isinstance(x, date) else x for x in xs],
        "series": [{"name": g, "values": [_plain(by_group[g].get(x)) for x in xs]} for g in kept],
        "y_label": y_label,
        "title": label,
    }
    return {"svg": svg, "title": label, "note": note, "table": table, "json": _json_script(data)}


def _plain(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return float(value)
