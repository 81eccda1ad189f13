"""The sandbox city's feeds in their real formats: GTFS zip, GTFS-Realtime, GBFS 2.3/3.0, speeds.

Each function takes the city and the moment asked about and returns bytes or a JSON-able
document; the same city and moment give the same output. Fault switches (``duplicate``,
``impossible``) bend the output the way broken publishers do; ``truncate`` cuts protobuf bytes.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

from google.transit import gtfs_realtime_pb2 as rt

from urbanlake.sandbox.city import (
    AGENCY_ID,
    CENTRE,
    FREE_VEHICLES,
    SERVICE_END,
    SERVICE_START,
    SERVICES,
    TIMEZONE,
    City,
    draw,
    gtfs_time,
    service_day_start,
)

ZIP_TIME = (2024, 1, 1, 0, 0, 0)  # fixed member times: the same city always zips to the same bytes
IMPOSSIBLE = [(91.0, CENTRE[1]), (58.2, 3.9)]  # beyond the pole; in the North Sea
GBFS_FEEDS = {
    "2.3": ("system_information", "vehicle_types", "station_information", "station_status",
            "free_bike_status"),
    "3.0": ("system_information", "vehicle_types", "station_information", "station_status",
            "vehicle_status"),
}  # fmt: skip
GBFS_TTL = {"system_information": 3600, "vehicle_types": 3600, "station_information": 3600}
STATUS_TTL = 30

# -- GTFS Schedule ---------------------------------------------------------------------------------


def schedule_files(city: City) -> dict[str, list[dict[str, str]]]:
    """The timetable as GTFS files: file name → rows of text."""
    stops_used = {st.stop_id for trip in city.trips.values() for st in trip.stop_times}
    return {
        "agency.txt": [
            {"agency_id": AGENCY_ID, "agency_name": "Fjordvik Transit",
             "agency_url": "https://transit.fjordvik.example", "agency_timezone": TIMEZONE,
             "agency_lang": "nb"},
        ],
        "stops.txt": [
            {"stop_id": s.stop_id, "stop_code": f"{i + 1:03d}", "stop_name": s.name,
             "stop_lat": f"{s.lat:.6f}", "stop_lon": f"{s.lon:.6f}", "location_type": "0",
             "wheelchair_boarding": "1"}
            for i, s in enumerate(city.stops.values()) if s.stop_id in stops_used
        ],
        "routes.txt": [
            {"route_id": r.route_id, "agency_id": AGENCY_ID, "route_short_name": r.short_name,
             "route_long_name": r.long_name, "route_type": str(r.route_type),
             "route_color": r.color, "route_text_color": "FFFFFF"}
            for r in city.routes.values()
        ],
        "trips.txt": [
            {"route_id": t.route_id, "service_id": t.service_id, "trip_id": t.trip_id,
             "trip_headsign": t.headsign, "direction_id": str(t.direction_id),
             "shape_id": t.shape_id, "wheelchair_accessible": "1"}
            for t in city.trips.values()
        ],
        "stop_times.txt": [
            {"trip_id": t.trip_id, "arrival_time": gtfs_time(st.arrival),
             "departure_time": gtfs_time(st.departure), "stop_id": st.stop_id,
             "stop_sequence": str(st.sequence), "shape_dist_traveled": f"{st.dist:.1f}",
             "timepoint": "1"}
            for t in city.trips.values() for st in t.stop_times
        ],
        "calendar.txt": [
            {"service_id": sid, **dict(zip(
                ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
                (str(d) for d in days), strict=True)),
             "start_date": f"{SERVICE_START:%Y%m%d}", "end_date": f"{SERVICE_END:%Y%m%d}"}
            for sid, days in SERVICES.items()
        ],
        "shapes.txt": [
            {"shape_id": s.shape_id, "shape_pt_lat": f"{lat:.6f}", "shape_pt_lon": f"{lon:.6f}",
             "shape_pt_sequence": str(i + 1), "shape_dist_traveled": f"{d:.1f}"}
            for s in city.shapes.values() for i, (lat, lon, d) in enumerate(s.points)
        ],
        "feed_info.txt": [
            {"feed_publisher_name": "Fjordvik Transit",
             "feed_publisher_url": "https://transit.fjordvik.example", "feed_lang": "nb",
             "feed_start_date": f"{SERVICE_START:%Y%m%d}", "feed_end_date": f"{SERVICE_END:%Y%m%d}",
             "feed_version": f"sandbox-{city.seed}"},
        ],
    }  # fmt: skip


def schedule_zip(city: City) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, rows in schedule_files(city).items():
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(rows)
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.getvalue().encode())
    return buffer.getvalue()


# -- GTFS-Realtime ---------------------------------------------------------------------------------


def _message(now: datetime) -> rt.FeedMessage:
    message = rt.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    message.header.incrementality = rt.FeedHeader.FULL_DATASET
    message.header.timestamp = int(now.timestamp())
    return message


def _finish(message: rt.FeedMessage, duplicate: bool) -> bytes:
    if duplicate:
        # A publisher that sends each entity twice (same id, same content), as some do after a
        # botched merge of two feed sources.
        for entity in list(message.entity):
            message.entity.add().CopyFrom(entity)
    data: bytes = message.SerializeToString()
    return data


def vehicle_positions(
    city: City, now: datetime, duplicate: bool = False, impossible: bool = False
) -> bytes:
    message = _message(now)
    for i, v in enumerate(city.vehicles(now)):
        entity = message.entity.add()
        entity.id = f"vehicle-{v.vehicle_id}"
        position = entity.vehicle
        position.vehicle.id = v.vehicle_id
        position.vehicle.label = f"{v.route.short_name} {v.trip.headsign}"
        position.trip.trip_id = v.trip.trip_id
        position.trip.route_id = v.route.route_id
        position.trip.direction_id = v.trip.direction_id
        position.trip.start_date = f"{v.service_date:%Y%m%d}"
        position.trip.start_time = gtfs_time(v.trip.start)
        position.trip.schedule_relationship = rt.TripDescriptor.SCHEDULED
        lat, lon = IMPOSSIBLE[i] if impossible and i < len(IMPOSSIBLE) else (v.lat, v.lon)
        position.position.latitude = lat
        position.position.longitude = lon
        position.position.bearing = v.bearing
        position.position.speed = v.speed
        position.current_stop_sequence = v.stop_sequence
        position.stop_id = v.stop_id
        position.current_status = (
            rt.VehiclePosition.STOPPED_AT if v.stopped else rt.VehiclePosition.IN_TRANSIT_TO
        )
        position.timestamp = int(v.timestamp.timestamp())
        occupancy = draw(city.seed, "occupancy", v.trip.trip_id, v.service_date).choice(
            ["MANY_SEATS_AVAILABLE", "FEW_SEATS_AVAILABLE", "STANDING_ROOM_ONLY"]
        )
        position.occupancy_status = rt.VehiclePosition.OccupancyStatus.Value(occupancy)
    return _finish(message, duplicate)


def trip_updates(city: City, now: datetime, duplicate: bool = False) -> bytes:
    """A prediction for every stop still ahead of each running trip: its delay carried forward."""
    message = _message(now)
    for v in city.vehicles(now):
        entity = message.entity.add()
        entity.id = f"trip-{v.trip.trip_id}-{v.service_date:%Y%m%d}"
        update = entity.trip_update
        update.trip.trip_id = v.trip.trip_id
        update.trip.route_id = v.route.route_id
        update.trip.direction_id = v.trip.direction_id
        update.trip.start_date = f"{v.service_date:%Y%m%d}"
        update.trip.start_time = gtfs_time(v.trip.start)
        update.trip.schedule_relationship = rt.TripDescriptor.SCHEDULED
        update.vehicle.id = v.vehicle_id
        update.timestamp = int(now.timestamp())
        update.delay = v.delay
        base = int(service_day_start(v.service_date).timestamp())
        for st in v.trip.stop_times:
            if st.sequence < v.stop_sequence:
                continue
            stop = update.stop_time_update.add()
            stop.stop_sequence = st.sequence
            stop.stop_id = st.stop_id
            stop.arrival.delay = v.delay
            stop.arrival.time = base + st.arrival + v.delay
            stop.departure.delay = v.delay
            stop.departure.time = base + st.departure + v.delay
    return _finish(message, duplicate)


def alerts(city: City, now: datetime, duplicate: bool = False) -> bytes:
    """Two standing alerts: road works detouring one bus line, a closed lift at one stop."""
    message = _message(now)
    day = service_day_start(city.local(now).date())
    bus = next(r for r in city.routes.values() if r.route_type == 3)
    stop = list(city.stops.values())[draw(city.seed, "alert-stop").randrange(len(city.stops))]
    Periods = list[tuple[datetime, datetime | None]]
    entries: list[tuple[str, list[tuple[str, str]], int, int, dict[str, str], str, Periods, int]] = [
        ("alert-roadworks", [("route_id", bus.route_id)], rt.Alert.CONSTRUCTION, rt.Alert.DETOUR,
         {"nb": f"Linje {bus.short_name}: omkjøring", "en": f"Line {bus.short_name}: detour"},
         f"Road works: line {bus.short_name} runs a detour and may be a few minutes late.",
         [(day + timedelta(hours=6), day + timedelta(hours=20)), (day + timedelta(days=1, hours=6), None)],
         rt.Alert.WARNING),
        ("alert-lift", [("stop_id", stop.stop_id)], rt.Alert.MAINTENANCE, rt.Alert.ACCESSIBILITY_ISSUE,
         {"nb": f"{stop.name}: heisen er stengt", "en": f"{stop.name}: the lift is out of service"},
         "Step-free access is not available at this stop until the lift is repaired.",
         [(day, day + timedelta(days=3))], rt.Alert.INFO),
    ]  # fmt: skip
    for entity_id, informed, cause, effect, header, description, periods, severity in entries:
        entity = message.entity.add()
        entity.id = entity_id
        alert = entity.alert
        for field, value in informed:
            selector = alert.informed_entity.add()
            selector.agency_id = AGENCY_ID
            setattr(selector, field, value)
        for start, end in periods:
            period = alert.active_period.add()
            period.start = int(start.timestamp())
            if end is not None:
                period.end = int(end.timestamp())
        alert.cause = cause
        alert.effect = effect
        for language, text in header.items():
            translation = alert.header_text.translation.add()
            translation.text = text
            translation.language = language
        translation = alert.description_text.translation.add()
        translation.text = description
        translation.language = "en"
        alert.severity_level = severity
    return _finish(message, duplicate)


def truncate(data: bytes) -> bytes:
    """Cut a protobuf in the middle of a message, so that it cannot parse (as a dropped download)."""
    cut = len(data) // 2
    while cut > 1:
        try:
            rt.FeedMessage().ParseFromString(data[:cut])
        except Exception:
            return data[:cut]
        cut -= 1  # a cut exactly between two entities still parses: move off the boundary
    return data[:1]


# -- GBFS ------------------------------------------------------------------------------------------


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def gbfs_documents(
    city: City, now: datetime, version: str, base_url: str, duplicate: bool = False,
    impossible: bool = False,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Every file of the bike system in GBFS ``version`` (``2.3`` or ``3.0``), by file name.

    ``base_url`` is where the files are served (the URLs in ``gbfs.json`` are absolute).
    """
    v3 = version == "3.0"
    now = now.replace(microsecond=0)

    def when(moment: datetime) -> Any:
        return rfc3339(moment) if v3 else int(moment.timestamp())

    def text(value: str) -> Any:
        return [{"text": value, "language": "en"}] if v3 else value

    def envelope(feed: str, data: dict[str, Any]) -> dict[str, Any]:
        ttl = GBFS_TTL.get(feed, STATUS_TTL)
        return {"last_updated": when(now), "ttl": ttl, "version": version, "data": data}

    system: dict[str, Any] = {
        "system_id": f"fjordvik_bikes_{city.seed}",
        "name": text("Fjordvik City Bikes"),
        "operator": text("Fjordvik Mobility AS"),
        "url": "https://bikes.fjordvik.example",
        "start_date": "2024-04-01",
        "phone_number": "+4722000000",
        "email": "support@bikes.fjordvik.example",
        "feed_contact_email": "data@bikes.fjordvik.example",
        "timezone": TIMEZONE,
        "license_url": "https://data.norge.no/nlod/en/2.0",
    }
    if v3:
        system["languages"] = ["en"]
        system["opening_hours"] = "24/7"
    else:
        system["language"] = "en"
    types = [
        {"vehicle_type_id": "bike", "form_factor": "bicycle", "propulsion_type": "human",
         "name": text("City bike"), "wheel_count": 2},
        {"vehicle_type_id": "scooter", "form_factor": "scooter_standing",
         "propulsion_type": "electric", "name": text("E-scooter"), "wheel_count": 2,
         "max_range_meters": 25000.0},
    ]  # fmt: skip
    stations_info = []
    for s in city.bike_stations:
        info: dict[str, Any] = {
            "station_id": s.station_id, "name": text(s.name), "lat": s.lat, "lon": s.lon,
            "rental_methods": ["key", "creditcard", "applepay"], "capacity": s.capacity,
        }  # fmt: skip
        if v3:
            info["vehicle_docks_capacity"] = [{"vehicle_type_ids": ["bike"], "count": s.capacity}]
        else:
            info["vehicle_type_capacity"] = {"bike": s.capacity}
        stations_info.append(info)
    count = "num_vehicles" if v3 else "num_bikes"
    statuses = []
    for i, s in enumerate(city.bike_stations):
        available = city.bikes_available(s, now)
        disabled = draw(city.seed, "disabled", s.station_id, now.date()).choice([0, 0, 0, 1])
        docks = max(0, s.capacity - available - disabled)
        statuses.append({
            "station_id": s.station_id, f"{count}_available": available,
            f"{count}_disabled": disabled, "num_docks_available": docks, "is_installed": True,
            "is_renting": True, "is_returning": True,
            # Stations report in turn: each one a few seconds before the file was written.
            "last_reported": when(now - timedelta(seconds=5 * i)),
            "vehicle_types_available": [{"vehicle_type_id": "bike", "count": available}],
        })  # fmt: skip
    if duplicate:
        statuses += [dict(s) for s in statuses]
    free = []
    bucket = int(now.timestamp()) // 300  # scooters are moved and re-reported every five minutes
    for m in range(1, FREE_VEHICLES + 1):
        r = draw(city.seed, "scooter", m, bucket)
        lat = round(CENTRE[0] + r.uniform(-0.02, 0.02), 6)
        lon = round(CENTRE[1] + r.uniform(-0.04, 0.04), 6)
        if impossible and m == 1:
            lat, lon = IMPOSSIBLE[1]
        vehicle: dict[str, Any] = {
            "vehicle_id" if v3 else "bike_id": f"sc-{city.seed}-{m:03d}",
            "lat": lat, "lon": lon, "is_reserved": False, "is_disabled": False,
            "vehicle_type_id": "scooter", "current_range_meters": float(r.randrange(2000, 25000)),
            "last_reported": when(datetime.fromtimestamp(bucket * 300, UTC)),
        }  # fmt: skip
        free.append(vehicle)
    data = {
        "system_information": system,
        "vehicle_types": {"vehicle_types": types},
        "station_information": {"stations": stations_info},
        "station_status": {"stations": statuses},
        "vehicle_status" if v3 else "free_bike_status": {"vehicles" if v3 else "bikes": free},
    }
    documents = {f"{feed}.json": envelope(feed, body) for feed, body in data.items()}
    listed = [{"name": f, "url": f"{base_url}/{f}.json"} for f in GBFS_FEEDS[version]]
    discovery = {"feeds": listed} if v3 else {"en": {"feeds": listed}}
    documents["gbfs.json"] = envelope("gbfs", discovery)
    return documents


# -- traffic speeds --------------------------------------------------------------------------------


def traffic_speeds(city: City, now: datetime, duplicate: bool = False) -> dict[str, Any]:
    """Per road segment: speed (km/h) and travel time (s) as of the last whole minute, local time.

    ``data_as_of`` is local wall-clock time without an offset, as many traffic centres publish.
    """
    as_of = now.replace(second=0, microsecond=0)
    segments = []
    for s in city.road_segments:
        speed = city.segment_speed(s, as_of)
        travel = round(s.length_m / (speed / 3.6)) if speed > 0 else None
        segments.append(
            {"segment_id": s.segment_id, "name": s.name, "speed": speed, "travel_time": travel,
             "length_m": round(s.length_m), "data_as_of": f"{city.local(as_of):%Y-%m-%d %H:%M:%S}"}
        )  # fmt: skip
    if duplicate:
        segments += [dict(s) for s in segments]
    return {"segments": segments, "unit": "km/h", "timezone": TIMEZONE}
