"""The catalog's actions: plain typed functions every surface calls (the API, later the web pages
and the CKAN adapter), each checking first that the caller may see the dataset.

A dataset's version is the lake snapshot it was published at; every read of a version reads that
snapshot, so pages, counts and exports of one version never change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from urbanlake.catalog.cursor import encode_cursor, query_digest
from urbanlake.catalog.entry import DatasetEntry
from urbanlake.catalog.params import (
    RecordParams,
    parse_bucket,
    parse_metrics,
)
from urbanlake.catalog.service import Caller, Catalog
from urbanlake.core.errors import BadQuery, NotFound
from urbanlake.lakehouse.reader import LakeReader
from urbanlake.lakehouse.record_query import (
    Geometry,
    RecordQuery,
    RecordReader,
    check_column,
    kind_of,
)
from urbanlake.lakehouse.records import TableRef

FACETS = ("domain", "theme", "publisher", "license", "keyword")


class NotPublished(NotFound):
    """The dataset is in the catalog but has no published version yet."""

    code = "not_published"


@dataclass
class Pinned:
    """One version of one dataset, ready to read."""

    entry: DatasetEntry
    version: dict[str, Any]
    types: dict[str, str]

    @property
    def number(self) -> int:
        return int(self.version["version"])

    def query(self, params: RecordParams | None = None) -> RecordQuery:
        stats = self.version["statistics"].get("columns", {})
        not_null = {c for c, s in stats.items() if s.get("null_count") == 0}
        geometry = None
        if self.entry.geometry is not None:
            g = self.entry.geometry
            geometry = Geometry(lon=g.lon, lat=g.lat, wkt=g.wkt)
        query = RecordQuery(TableRef.parse(self.entry.table), self.number, self.types,
                            geometry=geometry, not_null=not_null)  # fmt: skip
        if params is None:
            return query
        query.filters = params.filters
        query.bbox = params.bbox
        if params.select is not None:
            for column in params.select:
                check_column(query, column, "select")
            query.select = params.select
        for column, _ in params.order_by:
            check_column(query, column, "order_by")
        # The primary key (else every column) ends the order, so that it is total and a keyset
        # cursor never skips or repeats a row.
        tail = self.entry.primary_key or list(self.types)
        ordered = [c for c, _ in params.order_by]
        query.order_by = list(params.order_by) + [(c, False) for c in tail if c not in ordered]
        return query


def pin(catalog: Catalog, caller: Caller, name: str, params: RecordParams | None = None) -> Pinned:
    """The version a request reads: ``version=``, ``as_of=``, a cursor's, or the latest — among
    the versions the caller may read (``Catalog.versions_for``: a public delay holds back the
    newest ones)."""
    entry = catalog.entry(caller, name)
    versions = catalog.versions_for(caller, name)
    if not versions:
        raise NotPublished(f"dataset '{name}' has no published version yet (`urbanlake publish`)")
    chosen = versions[0]
    wanted = params.version if params else None
    if params and params.position:
        if wanted is not None and wanted != params.position.version:
            raise BadQuery("version and the cursor's version differ; drop one", "version")
        wanted = params.position.version
    if wanted is not None:
        match = [v for v in versions if int(v["version"]) == wanted]
        if not match:
            raise NotFound(
                f"dataset '{name}' has no version {wanted}; see /api/v1/datasets/{name}/versions"
            )
        chosen = match[0]
    elif params and params.as_of is not None:
        older = [v for v in versions if v["made_at"] <= params.as_of]
        if not older:
            raise NotFound(f"dataset '{name}' had no version yet at {params.as_of.isoformat()}")
        chosen = older[0]
    key = ("types", name, int(chosen["version"]))
    types = catalog.answers.get(key)
    if types is None:
        types = {c: s["type"] for c, s in chosen["statistics"].get("columns", {}).items()}
        if not types:
            reader = catalog.reader()
            try:
                types = reader.column_types(TableRef.parse(entry.table), int(chosen["version"]))
            finally:
                reader.close()
        catalog.answers.put(key, types)
    return Pinned(entry, chosen, types)


# -- search ----------------------------------------------------------------------------------------


def _facet_values(entry: DatasetEntry, facet: str) -> list[str]:
    if facet == "domain":
        return [entry.domain]
    if facet == "theme":
        return [entry.theme] if entry.theme else []
    if facet == "publisher":
        return [entry.publisher.name]
    if facet == "license":
        return [entry.license]
    return list(entry.keywords)


def _matches(entry: DatasetEntry, terms: list[str]) -> bool:
    text = " ".join([entry.name, entry.title, entry.description, *entry.keywords,
                     *entry.columns, *(d.description or "" for d in entry.columns.values())]).lower()  # fmt: skip
    return all(term in text for term in terms)


def dataset_search(
    catalog: Catalog,
    caller: Caller,
    q: str = "",
    filters: dict[str, list[str]] | None = None,
    limit: int = 20,
    after: str | None = None,
) -> dict[str, Any]:
    """Datasets matching every word of ``q`` and every facet filter, by name; facet counts over
    all matches. Pages continue after a name (``after``), so a new dataset never shifts a page."""
    filters = filters or {}
    for facet in filters:
        if facet not in FACETS:
            raise BadQuery(f"unknown facet '{facet}'; valid: {', '.join(FACETS)}", facet)
    terms = [t for t in q.lower().split() if t]
    found = [
        e for e in catalog.visible(caller)
        if _matches(e, terms)
        and all(set(values) & set(_facet_values(e, f)) for f, values in filters.items())
    ]  # fmt: skip
    facets: dict[str, dict[str, int]] = {}
    for facet in FACETS:
        counts: dict[str, int] = {}
        for entry in found:
            for value in _facet_values(entry, facet):
                counts[value] = counts.get(value, 0) + 1
        facets[facet] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    rest = [e for e in found if after is None or e.name > after]
    page = rest[:limit]
    return {
        "datasets": [summary(catalog, e, caller) for e in page],
        "total": len(found),
        "facets": facets,
        "next_after": page[-1].name if len(rest) > limit else None,
    }


def summary(
    catalog: Catalog,
    entry: DatasetEntry,
    caller: Caller,
    versions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A visible entry's description and the newest version the caller may read (of
    ``versions``, when the caller has them already)."""
    if versions is None:
        versions = catalog.versions_for(caller, entry.name)
    latest = versions[0] if versions else None
    return {
        "name": entry.name, "title": entry.title, "description": entry.description,
        "domain": entry.domain, "theme": entry.theme, "keywords": entry.keywords,
        "publisher": entry.publisher.model_dump(exclude_none=True), "license": entry.license,
        "frequency": entry.frequency,
        "version": int(latest["version"]) if latest else None,
        "rows": int(latest["row_count"]) if latest else None,
        "updated": latest["made_at"] if latest else None,
    }  # fmt: skip


# -- metadata --------------------------------------------------------------------------------------


def dataset_show(catalog: Catalog, caller: Caller, name: str) -> dict[str, Any]:
    """Metadata, schema, statistics, quality, freshness, lineage and the current version."""
    entry = catalog.entry(caller, name)
    versions = catalog.versions_for(caller, name)
    out = summary(catalog, entry, caller, versions)
    latest = versions[0] if versions else None
    until = catalog.cutoff(caller, entry)
    stats = latest["statistics"].get("columns", {}) if latest else {}
    out["access"] = entry.access
    out["spatial"] = entry.spatial.model_dump() if entry.spatial else None
    out["temporal"] = entry.temporal.model_dump() if entry.temporal else None
    out["primary_key"] = entry.primary_key
    out["geometry"] = entry.geometry.model_dump(exclude_none=True) if entry.geometry else None
    out["schema"] = [
        {"name": column, "type": s.get("type"),
         "unit": entry.columns[column].unit if column in entry.columns else None,
         "description": entry.columns[column].description if column in entry.columns else None}
        for column, s in stats.items()
    ]  # fmt: skip
    out["statistics"] = {
        "rows": int(latest["row_count"]) if latest else None,
        "columns": {
            c: {"min": s["min"], "max": s["max"], "null_count": s["null_count"],
                "distinct_estimate": s["distinct_estimate"]}
            for c, s in stats.items()
        },
        "distinct_counts_are_estimates": True,
    }  # fmt: skip
    out["source"] = (
        {"table": entry.source.table}
        if entry.source.table
        else {"sql_model": entry.source.sql, "table": entry.table}
    )
    out["lineage"] = latest["inputs"] if latest else []
    reader = catalog.reader()
    try:
        out["quality"] = quality_summary(catalog, reader, entry, latest, until)
        out["freshness"] = freshness(catalog, reader, entry, latest)
    finally:
        reader.close()
    return out


def column_kind(sql_type: str) -> str:
    """number, time, boolean or text: how a surface shows, sorts and filters a column's values."""
    return kind_of(sql_type)


def lake_evidence(
    catalog: Catalog, key: tuple[Any, ...], until: datetime | None, read: Callable[[], Any]
) -> Any:
    """Quality evidence (scores, latest results, trends) as of the lake's current snapshot,
    read once per snapshot: a page view that shows it costs no query while nothing commits.
    A caller who reads late (``until``) asks of a moment that moves, and is read each time."""
    if until is not None:
        return read()
    full = ("evidence", catalog.lake_snapshot(), *key)
    found = catalog.answers.get(full)
    if found is None:
        found = read()
        catalog.answers.put(full, found, max(1, 8 * len(found)))
    return found


def snapshot_time(catalog: Catalog, reader: LakeReader, snapshot: int) -> datetime | None:
    """When a snapshot was committed: it never changes, so it is read once."""
    key = ("snapshot_time", snapshot)
    found = catalog.answers.get(key)
    if found is None:
        found = reader.snapshot_time(snapshot)
        if found is not None:
            catalog.answers.put(key, found)
    return found


def _quality_tables(entry: DatasetEntry, latest: dict[str, Any] | None) -> list[str]:
    if entry.source.table:
        return [entry.source.table]
    return [i["table"] for i in (latest["inputs"] if latest else [])]


def quality_summary(
    catalog: Catalog,
    reader: LakeReader,
    entry: DatasetEntry,
    latest: dict[str, Any] | None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The input tables' quality scores (as known at ``until``, for a caller who reads late)."""
    scores = lake_evidence(catalog, ("scores",), until, lambda: reader.quality_scores(until))
    tables = _quality_tables(entry, latest)
    known = [t for t in tables if t in scores]
    if not known:
        return {"checked": False, "score": None, "last_passed": None, "tables": tables}
    values: list[float] = [s for t in known if (s := scores[t][0]) is not None]
    passed: list[datetime] = [p for t in known if (p := scores[t][1]) is not None]
    return {"checked": True, "score": min(values) if values else None,
            "last_passed": min(passed) if len(passed) == len(known) else None,
            "tables": tables}  # fmt: skip


def freshness(
    catalog: Catalog, reader: LakeReader, entry: DatasetEntry, latest: dict[str, Any] | None
) -> dict[str, Any]:
    """How old the newest input data is, against the dataset's SLA (its own ``freshness`` or its
    source connector's quality suite)."""
    limit = catalog.max_age.get(entry.name)
    last = None
    if latest is not None:
        moments = [snapshot_time(catalog, reader, int(i["snapshot"])) for i in latest["inputs"]]
        known = [m for m in moments if m is not None]
        last = min(known) if known else None
    age = (datetime.now(UTC) - last).total_seconds() if last else None
    return {
        "last_updated": last,
        "age_seconds": age,
        "max_age_seconds": limit.total_seconds() if limit else None,
        "stale": (age is None or age > limit.total_seconds()) if limit else None,
    }


# -- records ---------------------------------------------------------------------------------------


def _digest(query: RecordQuery, with_order: bool = True) -> str:
    """What a cursor or a cached answer is for: the filters (and the order)."""
    parts = [f"{f.column}|{f.op}|{f.value}" for f in query.filters] + [f"bbox:{query.bbox}"]
    if with_order:
        parts += [f"order:{c}:{d}" for c, d in query.order_by]
    return query_digest(parts)


def _count(catalog: Catalog, records: RecordReader, pinned: Pinned, query: RecordQuery) -> int:
    key = ("count", pinned.entry.name, pinned.number, _digest(query, with_order=False))
    total = catalog.answers.get(key)
    if total is None:
        total = records.count(query)
        catalog.answers.put(key, total)
    return int(total)


def records_page(
    catalog: Catalog, caller: Caller, name: str, params: RecordParams
) -> dict[str, Any]:
    """One keyset page of a pinned version, with the exact total for the filters and facets."""
    pinned = pin(catalog, caller, name, params)
    query = pinned.query(params)
    digest = _digest(query)
    after = params.position.after if params.position else None
    if params.position and params.position.digest != digest:
        raise BadQuery(
            "the cursor belongs to a request with other filters or order", "cursor", "bad_cursor"
        )
    # A version never changes: the same page of it is the same answer (rows are shared, read-only).
    page_key = ("page", name, pinned.number, digest, tuple(query.columns()), params.limit,
                params.cursor, tuple(params.facets), params.facet_size)  # fmt: skip
    cached = catalog.answers.get(page_key)
    if cached is not None:
        return {**cached, "pinned": pinned}
    reader = catalog.reader()
    try:
        records = RecordReader(reader)
        table = records.page(query, params.limit + 1, after)
        total = _count(catalog, records, pinned, query)
        facets = {}
        for column in params.facets:
            key = (
                "facet",
                name,
                pinned.number,
                _digest(query, with_order=False),
                column,
                params.facet_size,
            )
            found = catalog.answers.get(key)
            if found is None:
                found = records.facet(query, column, params.facet_size)
                catalog.answers.put(key, found, 2 * len(found["values"]) + 1)
            facets[column] = found
    finally:
        reader.close()
    more = table.num_rows > params.limit
    rows = table.slice(0, params.limit).to_pylist()
    keys = [f"__key_{i}" for i in range(len(query.order_by))]
    next_cursor = None
    if more and rows:
        next_cursor = encode_cursor(pinned.number, [rows[-1][k] for k in keys], digest)
    for row in rows:
        for k in keys:
            row.pop(k, None)
    answer = {"rows": rows, "total": total, "version": pinned.number, "next_cursor": next_cursor,
              "facets": facets}  # fmt: skip
    catalog.answers.put(page_key, answer, max(1, len(rows) * len(query.columns())))
    return {**answer, "pinned": pinned}


def records_aggregate(
    catalog: Catalog,
    caller: Caller,
    name: str,
    params: RecordParams,
    group_by: str | None,
    bucket: str | None,
    metrics: str | None,
) -> dict[str, Any]:
    """Exact metrics per group over the filtered rows of a pinned version."""
    pinned = pin(catalog, caller, name, params)
    query = pinned.query(params)
    groups = [g.strip() for g in (group_by or "").split(",") if g.strip()]
    parsed_bucket = parse_bucket(bucket) if bucket else None
    parsed_metrics = parse_metrics(metrics or "count")
    key = ("aggregate", name, pinned.number, _digest(query, with_order=False), tuple(groups), parsed_bucket,
           tuple(parsed_metrics))  # fmt: skip
    rows = catalog.answers.get(key)
    if rows is None:
        reader = catalog.reader()
        try:
            table = RecordReader(reader).aggregate(
                query, groups, parsed_bucket, parsed_metrics, catalog.settings.api.max_groups
            )
        finally:
            reader.close()
        rows = table.to_pylist()
        catalog.answers.put(key, rows, max(1, table.num_rows * table.num_columns))
    return {"rows": rows, "version": pinned.number}


def stream_query(pinned: Pinned, params: RecordParams) -> RecordQuery:
    """The query an export of a pinned version runs: every column, filter and order named is
    checked here, before anything streams."""
    query = pinned.query(params)
    if not params.order_by:
        query.order_by = []  # an export in storage order streams without a sort
    return query


def stream_records(
    catalog: Catalog, query: RecordQuery, expression: str | None = None
) -> Iterator[Any]:
    """Every row of a query over a pinned version as Arrow record batches, in constant memory
    (``stream_query`` makes the query; ``pin`` has checked the caller may read the version)."""
    reader = catalog.reader()
    try:
        batches = RecordReader(reader).stream(query, expression)
    except BaseException:
        reader.close()
        raise

    def run() -> Iterator[Any]:
        try:
            yield from batches
        finally:
            reader.close()

    return run()


# -- versions, changes, quality --------------------------------------------------------------------


def dataset_versions(catalog: Catalog, caller: Caller, name: str) -> dict[str, Any]:
    """The versions the caller may read, newest first."""
    return {
        "versions": [
            {"version": int(v["version"]), "time": v["made_at"], "rows": int(v["row_count"]),
             "inputs": v["inputs"], "how": v["how"]}
            for v in catalog.versions_for(caller, name)
        ]
    }  # fmt: skip


def dataset_changes(
    catalog: Catalog, caller: Caller, name: str, before: int, after: int, limit: int
) -> dict[str, Any]:
    """Rows inserted, updated and deleted between two published versions, by primary key."""
    entry = catalog.entry(caller, name)
    known = {int(v["version"]) for v in catalog.versions_for(caller, name)}
    for parameter, number in (("from", before), ("to", after)):
        if number not in known:
            raise BadQuery(
                f"{parameter}={number} is not a published version of '{name}'",
                parameter,
                "unknown_version",
            )
    # Two published versions never change: neither does what changed between them.
    cache_key = ("changes", name, before, after, limit)
    cached = catalog.answers.get(cache_key)
    if cached is not None:
        return dict(cached)
    pinned = pin(catalog, caller, name)
    key = entry.primary_key or list(pinned.types)
    reader = catalog.reader()
    try:
        found = RecordReader(reader).changes(TableRef.parse(entry.table), before, after, key, limit)
    finally:
        reader.close()
    counts = found.pop("counts")
    out: dict[str, Any] = {"from": before, "to": after, "key": key, "counts": counts}
    for part, table in found.items():
        rows = table.to_pylist()
        out[part] = rows
    out["complete"] = all(counts[p] <= limit for p in counts)
    shown = sum(len(out[p]) for p in found)
    catalog.answers.put(cache_key, out, max(1, shown * max(1, len(pinned.types))))
    return dict(out)


def dataset_quality(catalog: Catalog, caller: Caller, name: str, runs: int = 10) -> dict[str, Any]:
    """The latest result of each expectation and the trend over recent runs, per input table."""
    entry = catalog.entry(caller, name)
    versions = catalog.versions_for(caller, name)
    latest = versions[0] if versions else None
    until = catalog.cutoff(caller, entry)
    reader = catalog.reader()
    try:
        tables: dict[str, Any] = {}
        for table in _quality_tables(entry, latest):
            results = lake_evidence(
                catalog,
                ("latest", table),
                until,
                partial(reader.latest_quality_results, table, until),
            )
            trend = lake_evidence(catalog, ("trend", table, runs), until,
                                  partial(reader.quality_trend, table, runs, until))  # fmt: skip
            tables[table] = {"expectations": [_public_result(r) for r in results], "trend": trend}
        return {"summary": quality_summary(catalog, reader, entry, latest, until), "tables": tables}
    finally:
        reader.close()


def _public_result(result: dict[str, Any]) -> dict[str, Any]:
    """An expectation's result as the public sees it: arguments and observations as JSON, and no
    location of the stored validation document."""
    out = {k: v for k, v in result.items() if k != "result_uri"}
    for key in ("kwargs", "observed_value"):
        text = out.get(key)
        if isinstance(text, str):
            with contextlib.suppress(orjson.JSONDecodeError):
                out[key] = orjson.loads(text)
    return out
