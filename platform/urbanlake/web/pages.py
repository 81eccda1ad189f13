"""The catalog's own pages: home and search with facets, data health (status), sign-in and
sign-out.

Lists come from ``actions.dataset_search``; a dataset's freshness and quality from the actions
``freshness`` and ``quality_summary`` (``health_of``), so a page shows exactly what the API
answers, for the same caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from urbanlake.catalog import actions
from urbanlake.catalog.keys import KeyStore
from urbanlake.catalog.service import Caller, Catalog
from urbanlake.core.errors import InvalidKey
from urbanlake.web.render import (
    KEY_COOKIE,
    caller_of,
    catalog_of,
    error_page,
    page,
    quality_class,
    render,
    strings_of,
    url_with,
)
from urbanlake.web.strings import Strings

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20  # datasets per page of results
STATUS_BATCH = 200  # datasets per search the status page makes (it lists them all)
MAX_FORM_BYTES = 4096  # a sign-in form is one key: anything longer is not one


# -- freshness and quality -------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    """A dataset's freshness against its SLA and its quality score, as the caller may know them."""

    last_updated: datetime | None  # the newest input data of the version the caller reads
    max_age: float | None  # the SLA in seconds; None: the dataset has none
    checked: bool  # quality expectations have run on its inputs
    score: float | None  # share of expectation results passed over recent batches

    def age(self, now: datetime) -> float | None:
        return (now - self.last_updated).total_seconds() if self.last_updated else None

    def state(self, now: datetime) -> str:
        """fresh, stale or unchecked: the rule of ``actions.freshness``, at ``now``."""
        if self.max_age is None:
            return "unchecked"
        age = self.age(now)
        return "stale" if age is None or age > self.max_age else "fresh"


def health_of(catalog: Catalog, caller: Caller, names: list[str]) -> dict[str, Health]:
    """Freshness and quality of visible datasets, from the catalog actions (which keep the lake's
    evidence per snapshot: a page of results costs no query while nothing commits)."""
    out: dict[str, Health] = {}
    reader = catalog.reader()
    try:
        for name in names:
            entry = catalog.entry(caller, name)
            versions = catalog.versions_for(caller, name)
            latest = versions[0] if versions else None
            until = catalog.cutoff(caller, entry)
            quality = actions.quality_summary(catalog, reader, entry, latest, until)
            fresh = actions.freshness(catalog, reader, entry, latest)
            out[name] = Health(
                last_updated=fresh["last_updated"],
                max_age=fresh["max_age_seconds"],
                checked=bool(quality["checked"]),
                score=quality["score"],
            )
    finally:
        reader.close()
    return out


def duration_words(t: Strings, seconds: float) -> str:
    """A duration as a person says it: 40 seconds, 5 minutes, 3 hours, 2 days."""
    for unit, size, up_to in (("second", 1, 90), ("minute", 60, 90 * 60),
                              ("hour", 3600, 36 * 3600), ("day", 86400, None)):  # fmt: skip
        if up_to is None or seconds < up_to:
            n = max(0, round(seconds / size))
            return t(f"time.{unit}" if n == 1 else f"time.{unit}s", n=n)
    raise AssertionError("unreachable")


def moment(value: datetime | None) -> dict[str, str] | None:
    """A time for ``<time datetime=...>``: machine-readable and as shown (UTC, to the minute)."""
    if value is None:
        return None
    utc = value.astimezone(UTC)
    return {"iso": utc.isoformat(timespec="seconds"), "text": utc.strftime("%Y-%m-%d %H:%M UTC")}


def freshness_badge(t: Strings, health: Health, now: datetime) -> dict[str, str]:
    """The freshness badge (its class and its words: colour never carries the meaning alone),
    the age and the SLA in words."""
    state = health.state(now)
    age = health.age(now)
    limit = health.max_age
    return {
        "state": state,
        "class": {"fresh": "ok", "stale": "bad", "unchecked": "none"}[state],
        "text": t(f"fresh.{state}"),
        "age": t("fresh.age", age=duration_words(t, age)) if age is not None else t("fresh.never"),
        "target": t("fresh.target", limit=duration_words(t, limit))
        if limit
        else t("fresh.no_target"),
    }


def quality_badge(t: Strings, health: Health) -> dict[str, str]:
    """The quality badge: the score in words and its class (ok, warn, bad; none if unchecked)."""
    if not health.checked or health.score is None:
        return {"class": "none", "text": t("quality.unchecked")}
    score = health.score
    kind = quality_class(score)
    return {"class": kind, "text": t("quality.score", score=f"{score:.0%}")}


def with_health(
    request: Request, datasets: list[dict[str, Any]], t: Strings
) -> list[dict[str, Any]]:
    """The datasets of a search answer, each with its badges, access and times ready to show."""
    catalog, caller = catalog_of(request), caller_of(request)
    healths = health_of(catalog, caller, [d["name"] for d in datasets])
    now = datetime.now(UTC)
    rows = []
    for d in datasets:
        health = healths[d["name"]]
        rows.append({**d, "fresh": freshness_badge(t, health, now),
                     "quality": quality_badge(t, health), "updated_at": moment(d["updated"]),
                     "partner": catalog.entry(caller, d["name"]).access != "public"})  # fmt: skip
    return rows


# -- home and search -------------------------------------------------------------------------------


def search_facets(
    request: Request, found: dict[str, Any], filters: dict[str, list[str]], t: Strings
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The facet fieldsets (every value with its count; a chosen value that no longer matches
    stays, checked, with 0) and the chosen values, each with the URL that removes it."""
    facets, chosen = [], []
    for facet in actions.FACETS:
        counts = dict(found["facets"].get(facet, {}))
        picked = filters.get(facet, [])
        for value in picked:
            counts.setdefault(value, 0)
        values = [{"value": value, "count": count, "checked": value in picked,
                   "id": f"f-{facet}-{i}"} for i, (value, count) in enumerate(counts.items())]  # fmt: skip
        if values:
            facets.append({"name": facet, "label": t(f"facet.{facet}"), "values": values})
        for value in picked:
            rest = [v for v in picked if v != value]
            chosen.append({"label": t(f"facet.{facet}"), "value": value,
                           "remove": url_with(request, after=None, **{facet: rest})})  # fmt: skip
    return facets, chosen


@router.get("/", response_class=HTMLResponse)
@page
def home(request: Request) -> HTMLResponse:
    t = strings_of(request)
    params = request.query_params
    q = params.get("q", "").strip()
    after = params.get("after") or None
    filters = {f: vs for f in actions.FACETS if (vs := [v for v in params.getlist(f) if v])}
    found = actions.dataset_search(catalog_of(request), caller_of(request), q, filters,
                                   PAGE_SIZE, after)  # fmt: skip
    facets, chosen = search_facets(request, found, filters, t)
    context = {
        "title": t("home.title"), "nav": "datasets", "q": q, "after": after,
        "total": found["total"], "facets": facets, "chosen": chosen,
        "results": with_health(request, found["datasets"], t),
        "more": url_with(request, after=found["next_after"]) if found["next_after"] else None,
        "first": url_with(request, after=None) if after else None,
        "clear": url_with(request, after=None, **{f: None for f in filters}) if chosen else None,
    }  # fmt: skip
    return render(request, "home.html", context)


# -- data health -----------------------------------------------------------------------------------


@router.get("/status", response_class=HTMLResponse)
@page
def status(request: Request) -> HTMLResponse:
    t = strings_of(request)
    catalog, caller = catalog_of(request), caller_of(request)
    datasets: list[dict[str, Any]] = []
    after = None
    while True:
        found = actions.dataset_search(catalog, caller, limit=STATUS_BATCH, after=after)
        datasets += found["datasets"]
        after = found["next_after"]
        if after is None:
            break
    rows = with_health(request, datasets, t)
    counts = {state: sum(1 for r in rows if r["fresh"]["state"] == state)
              for state in ("fresh", "stale", "unchecked")}  # fmt: skip
    return render(request, "status.html", {"title": t("status.title"), "nav": "status",
                                           "rows": rows, "counts": counts})  # fmt: skip


# -- sign-in ---------------------------------------------------------------------------------------


async def form_of(request: Request) -> dict[str, list[str]]:
    """A small urlencoded form body (no multipart parser needed for one field); a body larger
    than any sign-in form is read as an empty form."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    return parse_qs(body.decode("utf-8", errors="replace"))


def signin_page(request: Request, error: str | None = None) -> HTMLResponse:
    t = strings_of(request)
    response = render(request, "signin.html", {"title": t("signin.title"), "nav": "signin",
                                               "error": error}, status=401 if error else 200)  # fmt: skip
    if error:
        response.headers.update(InvalidKey.headers)
    return response


def same_origin(request: Request) -> bool:
    """Whether a form was posted from this site: browsers send ``Origin`` with every POST, so
    another site's page cannot sign a visitor in with its own key, or out."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # no Origin: not a browser's cross-site form; "null": opaque
    return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)


@router.get("/signin", response_class=HTMLResponse)
@page
def signin_form(request: Request) -> HTMLResponse:
    return signin_page(request)


@router.post("/signin", response_class=HTMLResponse)
@page
def signin(request: Request, form: Annotated[dict[str, list[str]], Depends(form_of)]) -> Response:
    """Check the key (a plain ``def``: the slow hash runs in a worker thread), keep it in an
    HttpOnly cookie and go home; a key that is not valid is the form again, with a 401."""
    t = strings_of(request)
    if not same_origin(request):
        return error_page(request, 403, t("signin.cross_site"))
    key = (form.get("key") or [""])[0].strip()
    if not key:
        return signin_page(request, t("signin.empty"))
    keys: KeyStore | None = getattr(request.app.state, "keys", None)
    try:
        if keys is None:
            raise InvalidKey("no key store")
        keys.check(key)
    except InvalidKey:
        return signin_page(request, t("signin.invalid"))
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(KEY_COOKIE, key, path="/", httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")  # fmt: skip
    return response


@router.post("/signout")
def signout(request: Request) -> Response:
    """Forget the sign-in: the cookie goes, the visitor is the public again."""
    if not same_origin(request):
        return error_page(request, 403, strings_of(request)("signin.cross_site"))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(KEY_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")  # fmt: skip
    return response
