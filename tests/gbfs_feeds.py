"""Generated GBFS 2.3 and 3.0 systems, and a loopback HTTP server that publishes them.

``gbfs_documents(GbfsOptions(...), base_url)`` returns every file of one small bike and scooter
system as ``{path: document}``: ``/gbfs.json`` and, for 2.3, ``/<lang>/<feed>.json`` per language
(the auto-discovery is keyed by language), for 3.0 ``/<feed>.json`` (texts are localized lists).
With the default options the output validates against MobilityData's JSON Schemas; the ``quirks``
(``numeric_booleans``, ``times``, ``legacy_installed``) reproduce what older or sloppier
publishers send and are not schema-valid on purpose.

Every value follows from the record's number, so tests can state what a table must hold:

=====================  ==========================================================================
station ``n`` (1..N)   ``station_id`` ``st-00n``, name ``Main Street n`` (``Hovedgata n`` in nb),
                       lat ``59.91 + n/1000``, lon ``10.75 + n/1000``, capacity ``10 + n``; the
                       last station is virtual
station_status         available ``(n + round) % 5``, docks ``capacity - available``,
                       disabled ``n % 2``, installed ``n % 4 != 0``, renting ``n % 3 != 0``,
                       returning always; last_reported ``last_updated - 10·n s``
vehicle ``m`` (1..M)   ``veh-00m`` (``bike_id`` in 2.3), type ``bike``/``ebike``/``scooter`` in
                       turn; odd ``m`` docked at station ``(m % N) + 1``, even ``m`` free at
                       lat ``59.90 + m/1000``, lon ``10.70 + m/1000``; reserved ``m % 4 == 0``,
                       disabled ``m % 5 == 0``; electric ranges ``1000·m`` metres;
                       last_reported ``last_updated - 60·m s``
=====================  ==========================================================================
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

BASE_TIME = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
SYSTEM_ID = "testcity_bikes"
# The feeds a generated system publishes; ``system_alerts`` has no table in the lake.
FEEDS = {
    "2.3": ("system_information", "vehicle_types", "station_information", "station_status",
            "free_bike_status", "system_alerts"),
    "3.0": ("system_information", "vehicle_types", "station_information", "station_status",
            "vehicle_status", "system_alerts"),
}  # fmt: skip
VEHICLE_TYPES = [
    # id, form factor, propulsion, max range, names by language
    ("bike", "bicycle", "human", None, {"en": "City bike", "nb": "Bysykkel"}),
    ("ebike", "bicycle", "electric_assist", 60000, {"en": "E-bike", "nb": "Elsykkel"}),
    ("scooter", "scooter_standing", "electric", 25000.5, {"en": "E-scooter", "nb": "Elsparkesykkel"}),
]  # fmt: skip
# Feed file names of either version, as they may appear in a sample folder.
STANDARD_FEEDS = {
    "gbfs_versions", "system_information", "vehicle_types", "station_information",
    "station_status", "free_bike_status", "vehicle_status", "system_hours", "system_alerts",
    "system_calendar", "system_regions", "system_pricing_plans", "geofencing_zones",
}  # fmt: skip


@dataclass(frozen=True)
class GbfsOptions:
    """One system's shape. ``round`` makes a later publication: new availability, later times."""

    version: Literal["2.3", "3.0"] = "2.3"
    stations: int = 6
    vehicles: int = 8
    languages: tuple[str, ...] = ("en",)
    last_updated: datetime = BASE_TIME
    ttl: int = 60
    round: int = 0
    vehicle_last_reported: bool = True
    # Quirks (not schema-valid): 1/0 booleans (GBFS 1.0), the other version's time format,
    # ``installed`` for ``is_installed``.
    numeric_booleans: bool = False
    times: Literal["posix", "rfc3339"] | None = None
    legacy_installed: bool = False
    skip: tuple[str, ...] = field(default=())  # feeds left out of the system

    def later(self, seconds: int = 60) -> GbfsOptions:
        """The same system republished ``seconds`` later."""
        return replace(
            self,
            last_updated=self.last_updated + timedelta(seconds=seconds),
            round=self.round + 1,
        )


def station_id(n: int) -> str:
    return f"st-{n:03d}"


def vehicle_id(m: int) -> str:
    return f"veh-{m:03d}"


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _Writer:
    """Values in one version's forms."""

    def __init__(self, options: GbfsOptions, language: str):
        self.options = options
        self.v3 = options.version == "3.0"
        self.language = language

    def time(self, when: datetime) -> Any:
        style = self.options.times or ("rfc3339" if self.v3 else "posix")
        return rfc3339(when) if style == "rfc3339" else int(when.timestamp())

    def flag(self, value: bool) -> Any:
        return int(value) if self.options.numeric_booleans else value

    def text(self, by_language: dict[str, str]) -> Any:
        if self.v3:
            return [
                {"text": by_language[lang], "language": lang} for lang in self.options.languages
            ]
        return by_language[self.language]

    def envelope(self, data: dict[str, Any], ttl: int | None = None) -> dict[str, Any]:
        return {
            "last_updated": self.time(self.options.last_updated),
            "ttl": self.options.ttl if ttl is None else ttl,
            "version": self.options.version,
            "data": data,
        }


def _names(english: str, norwegian: str) -> dict[str, str]:
    return {"en": english, "nb": norwegian}


def _system_information(w: _Writer) -> dict[str, Any]:
    data: dict[str, Any] = {
        "system_id": SYSTEM_ID,
        "name": w.text(_names("Test City Bikes", "Testby Sykler")),
        "operator": w.text(_names("Test Mobility AS", "Test Mobilitet AS")),
        "url": "https://bikes.testcity.example",
        "start_date": "2020-04-01",
        "phone_number": "+4722000000",
        "email": "support@bikes.testcity.example",
        "feed_contact_email": "data@bikes.testcity.example",
        "timezone": "Europe/Oslo",
        "license_url": "https://bikes.testcity.example/licence",
    }
    if w.v3:
        data["languages"] = list(w.options.languages)
        data["opening_hours"] = "24/7"
    else:
        data["language"] = w.language
    return w.envelope(data, ttl=3600)


def _vehicle_types(w: _Writer) -> dict[str, Any]:
    types = []
    for type_id, form, propulsion, max_range, names in VEHICLE_TYPES:
        entry: dict[str, Any] = {
            "vehicle_type_id": type_id,
            "form_factor": form,
            "propulsion_type": propulsion,
            "name": w.text(names),
            "wheel_count": 2,
        }
        if max_range is not None:
            entry["max_range_meters"] = max_range
        types.append(entry)
    return w.envelope({"vehicle_types": types}, ttl=3600)


def _station_information(w: _Writer) -> dict[str, Any]:
    count = w.options.stations
    stations = []
    for n in range(1, count + 1):
        docks = {"bike": 10 + n - 3, "ebike": 3}
        station: dict[str, Any] = {
            "station_id": station_id(n),
            "name": w.text(_names(f"Main Street {n}", f"Hovedgata {n}")),
            "lat": round(59.91 + n / 1000, 6),
            "lon": round(10.75 + n / 1000, 6),
            "address": f"{n} Main Street",
            "region_id": "centre",
            "rental_methods": ["key", "creditcard"],
            "capacity": 10 + n,
            "is_virtual_station": w.flag(n == count),
        }
        if w.v3:
            station["vehicle_docks_capacity"] = [
                {"vehicle_type_ids": [k], "count": v} for k, v in docks.items()
            ]
        else:
            station["vehicle_type_capacity"] = docks
        stations.append(station)
    return w.envelope({"stations": stations}, ttl=3600)


def _station_status(w: _Writer) -> dict[str, Any]:
    o = w.options
    stations = []
    for n in range(1, o.stations + 1):
        available = (n + o.round) % 5
        vehicles = "num_vehicles" if w.v3 else "num_bikes"
        stations.append(
            {
                "station_id": station_id(n),
                f"{vehicles}_available": available,
                f"{vehicles}_disabled": n % 2,
                "num_docks_available": 10 + n - available,
                "installed" if o.legacy_installed else "is_installed": w.flag(n % 4 != 0),
                "is_renting": w.flag(n % 3 != 0),
                "is_returning": w.flag(True),
                "last_reported": w.time(o.last_updated - timedelta(seconds=10 * n)),
                "vehicle_types_available": [{"vehicle_type_id": "bike", "count": available}],
            }
        )
    return w.envelope({"stations": stations})


def _vehicle_status(w: _Writer) -> dict[str, Any]:
    o = w.options
    vehicles = []
    for m in range(1, o.vehicles + 1):
        type_id, _, propulsion, _, _ = VEHICLE_TYPES[(m - 1) % len(VEHICLE_TYPES)]
        vehicle: dict[str, Any] = {
            "vehicle_id" if w.v3 else "bike_id": vehicle_id(m),
            "is_reserved": w.flag(m % 4 == 0),
            "is_disabled": w.flag(m % 5 == 0),
            "vehicle_type_id": type_id,
        }
        if m % 2:
            vehicle["station_id"] = station_id(m % o.stations + 1)
        else:
            vehicle["lat"] = round(59.90 + m / 1000, 6)
            vehicle["lon"] = round(10.70 + m / 1000, 6)
        if propulsion != "human":
            vehicle["current_range_meters"] = 1000.0 * m
        if o.vehicle_last_reported:
            vehicle["last_reported"] = w.time(o.last_updated - timedelta(seconds=60 * m))
        vehicles.append(vehicle)
    return w.envelope({"vehicles" if w.v3 else "bikes": vehicles})


def _system_alerts(w: _Writer) -> dict[str, Any]:
    return w.envelope({"alerts": []})


BUILDERS = {
    "system_information": _system_information,
    "vehicle_types": _vehicle_types,
    "station_information": _station_information,
    "station_status": _station_status,
    "free_bike_status": _vehicle_status,
    "vehicle_status": _vehicle_status,
    "system_alerts": _system_alerts,
}


def gbfs_documents(options: GbfsOptions, base_url: str) -> dict[str, dict[str, Any]]:
    """Every file of the system, by the path it is served at under ``base_url``."""
    feeds = [f for f in FEEDS[options.version] if f not in options.skip]
    documents: dict[str, dict[str, Any]] = {}
    if options.version == "3.0":
        w = _Writer(options, options.languages[0])
        for name in feeds:
            documents[f"/{name}.json"] = BUILDERS[name](w)
        listed = [{"name": n, "url": f"{base_url}/{n}.json"} for n in feeds]
        documents["/gbfs.json"] = w.envelope({"feeds": listed})
        return documents
    by_language = {}
    for language in options.languages:
        w = _Writer(options, language)
        for name in feeds:
            documents[f"/{language}/{name}.json"] = BUILDERS[name](w)
        by_language[language] = {
            "feeds": [{"name": n, "url": f"{base_url}/{language}/{n}.json"} for n in feeds]
        }
    documents["/gbfs.json"] = _Writer(options, options.languages[0]).envelope(by_language)
    return documents


def write_folder(documents: dict[str, Any], folder: Path) -> Path:
    """The documents as files below ``folder`` (a local snapshot); returns the gbfs.json path."""
    for path, document in documents.items():
        target = folder / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return folder / "gbfs.json"


def folder_documents(folder: Path, base_url: str, list_all: bool = True) -> dict[str, Any]:
    """A recorded system folder as served files: bytes as stored, except ``gbfs.json``.

    ``gbfs.json`` is rewritten so that every listed feed points at ``<base_url>/<name>.json``;
    with ``list_all`` the folder's other files with a standard feed name are listed too (the
    published samples list two feeds but hold the whole set).
    """
    served: dict[str, Any] = {
        f"/{p.name}": p.read_bytes() for p in folder.glob("*.json") if p.name != "gbfs.json"
    }
    discovery = json.loads((folder / "gbfs.json").read_bytes())
    data = discovery["data"]
    blocks = [data] if isinstance(data.get("feeds"), list) else list(data.values())
    present = {p.stem for p in folder.glob("*.json")} & STANDARD_FEEDS
    for block in blocks:
        for feed in block["feeds"]:
            feed["url"] = f"{base_url}/{feed['name']}.json"
        if list_all:
            listed = {feed["name"] for feed in block["feeds"]}
            block["feeds"] += [
                {"name": name, "url": f"{base_url}/{name}.json"}
                for name in sorted(present - listed)
            ]
    served["/gbfs.json"] = discovery
    return served


@dataclass(frozen=True)
class Hit:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class GbfsServer:
    """Serves ``documents`` (path → JSON-able object, or bytes as they are) on 127.0.0.1.

    ``documents`` may be replaced between requests, to publish a newer state of the system;
    ``hits`` records every request, ``require_header`` answers 401 without a given header.
    """

    def __init__(self, documents: dict[str, Any] | None = None):
        self.documents: dict[str, Any] = dict(documents or {})
        self.hits: list[Hit] = []
        self.require_header: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="gbfs-server",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str = "/gbfs.json") -> str:
        return self.base_url + path

    def publish(self, options: GbfsOptions) -> dict[str, dict[str, Any]]:
        """Serve a generated system; returns its documents."""
        documents = gbfs_documents(options, self.base_url)
        self.documents = dict(documents)
        return documents

    def paths_hit(self) -> list[str]:
        with self._lock:
            return [hit.path for hit in self.hits]

    def start(self) -> GbfsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GbfsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.hits.append(Hit(path, dict(parse_qsl(query)), headers))
                required = server.require_header
                if required and self.headers.get(required[0]) != required[1]:
                    self._send(401, b"unauthorised", "text/plain")
                    return
                document = server.documents.get(path)
                if document is None:
                    self._send(404, b"not found", "text/plain")
                    return
                body = document if isinstance(document, bytes) else json.dumps(document).encode()
                self._send(200, body, "application/json")

            def _send(self, status: int, body: bytes, media_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
