"""Small GTFS Schedule feeds for tests (and a sandbox): rows in, zip bytes out.

``small_feed()`` is a two-route, five-stop feed holding what GTFS loaders get wrong: stop codes
with leading zeros (``"007"``), a night trip past midnight (``25:10:00``), a parent station,
calendar exceptions, a shape, frequencies, ``feed_info.txt`` and ``vehicles.txt``, a file the
reference does not define. A ``Feed`` maps file names to rows of text; change a copy
(``renamed_stop``, ``without_route``) and zip it again, as a publisher's next version would.
``zip_feed`` is deterministic: the same feed always gives the same bytes (and so the same hash).

``GtfsServer`` publishes the current zip on ``127.0.0.1`` at a random port, in a background
thread; it counts requests and can demand a header.
"""

from __future__ import annotations

import copy
import csv
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Feed = dict[str, list[dict[str, str]]]

ZIP_TIME = (2024, 5, 1, 0, 0, 0)


def small_feed() -> Feed:
    """A complete feed: 1 agency, 5 stops, 2 routes, 3 trips, 8 stop times, 2 services."""
    return {
        "agency.txt": [
            {"agency_id": "UL", "agency_name": "UrbanLake Transit",
             "agency_url": "https://transit.example", "agency_timezone": "Europe/Oslo"},
        ],
        "stops.txt": [
            {"stop_id": "central", "stop_code": "", "stop_name": "Central Station",
             "stop_lat": "59.911100", "stop_lon": "10.752800", "location_type": "1",
             "parent_station": "", "wheelchair_boarding": "1"},
            {"stop_id": "S1", "stop_code": "007", "stop_name": "Central Platform A",
             "stop_lat": "59.911200", "stop_lon": "10.752500", "location_type": "0",
             "parent_station": "central", "wheelchair_boarding": "1"},
            {"stop_id": "S2", "stop_code": "012", "stop_name": "Harbour",
             "stop_lat": "59.907000", "stop_lon": "10.738000", "location_type": "",
             "parent_station": "", "wheelchair_boarding": "2"},
            {"stop_id": "S3", "stop_code": "100", "stop_name": "Old Town",
             "stop_lat": "59.905500", "stop_lon": "10.760100", "location_type": "0",
             "parent_station": "", "wheelchair_boarding": ""},
            {"stop_id": "S4", "stop_code": "0100", "stop_name": "Hospital",
             "stop_lat": "59.930000", "stop_lon": "10.770000", "location_type": "0",
             "parent_station": "", "wheelchair_boarding": "0"},
        ],
        "routes.txt": [
            {"route_id": "R1", "agency_id": "UL", "route_short_name": "1",
             "route_long_name": "Harbour line", "route_type": "3", "route_color": "0055A4"},
            {"route_id": "R2", "agency_id": "UL", "route_short_name": "12",
             "route_long_name": "Hospital tram", "route_type": "0", "route_color": "E30613"},
        ],
        "trips.txt": [
            {"route_id": "R1", "service_id": "WK", "trip_id": "T1", "trip_headsign": "Old Town",
             "direction_id": "0", "shape_id": "SH1"},
            {"route_id": "R1", "service_id": "WK", "trip_id": "T2", "trip_headsign": "Old Town",
             "direction_id": "0", "shape_id": "SH1"},
            {"route_id": "R2", "service_id": "WE", "trip_id": "T3", "trip_headsign": "Hospital",
             "direction_id": "1", "shape_id": ""},
        ],
        "stop_times.txt": [
            _stop_time("T1", "08:00:00", "S1", 1),
            _stop_time("T1", "08:05:00", "S2", 2),
            _stop_time("T1", "08:12:30", "S3", 3),
            _stop_time("T2", "24:50:00", "S1", 1),
            _stop_time("T2", "25:10:00", "S2", 2),  # 1:10 the next morning: 90600 seconds
            _stop_time("T2", "25:20:00", "S3", 3),
            _stop_time("T3", "10:00:00", "S3", 1),
            _stop_time("T3", "10:15:00", "S4", 2),
        ],
        "calendar.txt": [
            {"service_id": "WK", "monday": "1", "tuesday": "1", "wednesday": "1",
             "thursday": "1", "friday": "1", "saturday": "0", "sunday": "0",
             "start_date": "20240101", "end_date": "20241231"},
            {"service_id": "WE", "monday": "0", "tuesday": "0", "wednesday": "0",
             "thursday": "0", "friday": "0", "saturday": "1", "sunday": "1",
             "start_date": "20240101", "end_date": "20241231"},
        ],
        "calendar_dates.txt": [
            {"service_id": "WK", "date": "20240501", "exception_type": "2"},
            {"service_id": "WE", "date": "20240501", "exception_type": "1"},
        ],
        "shapes.txt": [
            {"shape_id": "SH1", "shape_pt_lat": "59.911200", "shape_pt_lon": "10.752500",
             "shape_pt_sequence": "1", "shape_dist_traveled": "0"},
            {"shape_id": "SH1", "shape_pt_lat": "59.907000", "shape_pt_lon": "10.738000",
             "shape_pt_sequence": "2", "shape_dist_traveled": "1003.5"},
            {"shape_id": "SH1", "shape_pt_lat": "59.905500", "shape_pt_lon": "10.760100",
             "shape_pt_sequence": "3", "shape_dist_traveled": "2270.25"},
        ],
        "frequencies.txt": [
            {"trip_id": "T3", "start_time": "10:00:00", "end_time": "22:00:00",
             "headway_secs": "900", "exact_times": "0"},
        ],
        "feed_info.txt": [
            {"feed_publisher_name": "UrbanLake Transit", "feed_publisher_url": "https://transit.example",
             "feed_lang": "en", "feed_start_date": "20240101", "feed_end_date": "20241231",
             "feed_version": "2024.05.01"},
        ],
        "vehicles.txt": [
            {"vehicle_id": "0042", "seats": "58", "model": "Citaro"},
            {"vehicle_id": "0043", "seats": "62", "model": "Citaro G"},
        ],
    }  # fmt: skip


def _stop_time(trip_id: str, time: str, stop_id: str, sequence: int) -> dict[str, str]:
    return {"trip_id": trip_id, "arrival_time": time, "departure_time": time,
            "stop_id": stop_id, "stop_sequence": str(sequence), "pickup_type": "0",
            "drop_off_type": "0", "timepoint": "1"}  # fmt: skip


def renamed_stop(feed: Feed, stop_id: str, name: str) -> Feed:
    """A copy of ``feed`` where one stop has a new name."""
    out = copy.deepcopy(feed)
    for stop in out["stops.txt"]:
        if stop["stop_id"] == stop_id:
            stop["stop_name"] = name
    return out


def without_route(feed: Feed, route_id: str) -> Feed:
    """A copy of ``feed`` without one route, its trips and everything about those trips."""
    out = copy.deepcopy(feed)
    gone = {t["trip_id"] for t in out["trips.txt"] if t["route_id"] == route_id}
    out["routes.txt"] = [r for r in out["routes.txt"] if r["route_id"] != route_id]
    out["trips.txt"] = [t for t in out["trips.txt"] if t["route_id"] != route_id]
    for name in ("stop_times.txt", "frequencies.txt"):
        if name in out:
            out[name] = [r for r in out[name] if r["trip_id"] not in gone]
    return out


def csv_text(rows: list[dict[str, str]], columns: list[str] | None = None) -> str:
    """Rows as GTFS CSV: a header of every column in first-seen order, ``\\r\\n`` line ends."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def zip_feed(feed: Feed, raw: dict[str, bytes] | None = None, folder: str = "") -> bytes:
    """The feed as a zip; ``raw`` adds or replaces files byte for byte (broken lines, encodings).

    A file with no rows is written as a header only, from ``raw`` if given there.
    """
    files = {name: csv_text(rows).encode() for name, rows in feed.items()}
    files.update(raw or {})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(folder + name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return out.getvalue()


class GtfsServer:
    """Serves ``content`` at every path; use as a context manager."""

    def __init__(self, content: bytes = b""):
        self.content = content
        self.require_header: tuple[str, str] | None = None
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                wanted = server.require_header
                if wanted is not None and self.headers.get(wanted[0]) != wanted[1]:
                    self._send(401, b"missing or wrong credentials", "text/plain")
                    return
                self._send(200, server.content, "application/zip")

            def _send(self, status: int, body: bytes, media_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def url(self, path: str = "/gtfs.zip") -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def __enter__(self) -> GtfsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
