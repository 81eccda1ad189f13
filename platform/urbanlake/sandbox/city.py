"""The sandbox city, Fjordvik: stops, routes, timetable, bike stations and road segments.

Everything follows from the seed (``City.build(seed)``): the same seed gives the same city, and
the same city asked about the same instant gives the same vehicles, delays, bike counts and
speeds. Nothing here reads the wall clock; callers pass the moment they ask about.

Times of the timetable are GTFS service-day seconds: counted from local noon minus 12 hours of
the service date, so a trip that leaves at 24:20 belongs to the previous day's service.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_SEED = 2026
TIMEZONE = "Europe/Oslo"
ZONE = ZoneInfo(TIMEZONE)
CENTRE = (59.9139, 10.7522)  # the city sits where Oslo is; everything in it is invented
# Every stop, station, vehicle and segment of a normal day lies inside this box.
BBOX = (59.85, 10.60, 59.98, 10.90)  # min lat, min lon, max lat, max lon
AGENCY_ID = "FJT"
SERVICE_START = date(2024, 1, 1)
SERVICE_END = date(2035, 12, 31)
KM_PER_DEG_LAT = 111.2
KM_PER_DEG_LON = 111.2 * math.cos(math.radians(CENTRE[0]))

# stop_id, name, km east of the centre, km north of the centre
STOPS = [
    ("vestby", "Vestby", -4.0, 0.5),
    ("lindelokka", "Lindeløkka", -2.6, 0.3),
    ("radhuset", "Rådhuset", -1.2, 0.0),
    ("torget", "Torget", 0.0, 0.0),
    ("sentralstasjonen", "Sentralstasjonen", 1.2, -0.2),
    ("havnegata", "Havnegata", 2.5, -0.6),
    ("osthavn", "Østhavn", 3.8, -1.0),
    ("nordberg", "Nordberg", 0.3, 4.0),
    ("skolebakken", "Skolebakken", 0.2, 2.6),
    ("sykehuset", "Sykehuset", 0.1, 1.3),
    ("kirkeparken", "Kirkeparken", -0.2, -1.4),
    ("sorenga", "Sørenga", -0.4, -2.8),
    ("universitetet", "Universitetet", -2.0, 2.2),
    ("idrettsparken", "Idrettsparken", 2.2, 1.8),
    ("bryggen", "Bryggen", 1.5, -2.0),
]
# route_id, short name, long name, GTFS route_type (0 tram, 3 bus), colour, stops in direction 0
ROUTES = [
    ("T11", "11", "Vestby – Østhavn", 0, "0B6E4F",
     ["vestby", "lindelokka", "radhuset", "torget", "sentralstasjonen", "havnegata", "osthavn"]),
    ("T12", "12", "Universitetet – Bryggen", 0, "8E44AD",
     ["universitetet", "radhuset", "torget", "kirkeparken", "bryggen"]),
    ("B21", "21", "Nordberg – Sørenga", 3, "C0392B",
     ["nordberg", "skolebakken", "sykehuset", "torget", "kirkeparken", "sorenga"]),
    ("B32", "32", "Universitetet – Bryggen via Idrettsparken", 3, "2471A3",
     ["universitetet", "skolebakken", "idrettsparken", "sentralstasjonen", "bryggen"]),
]  # fmt: skip
SPEED_KMH = {0: 20.0, 3: 24.0}  # average running speed by route_type
DWELL_S = 30
SERVICES = {"WKD": (1, 1, 1, 1, 1, 0, 0), "WKE": (0, 0, 0, 0, 0, 1, 1)}  # Monday first
FIRST_DEPARTURE = 5 * 3600
LAST_DEPARTURE = 24 * 3600 + 30 * 60  # the last trips of the day run past midnight
# station_id, name, km east, km north, capacity
BIKE_STATIONS = [
    ("bs-01", "Torget", 0.1, 0.1, 24),
    ("bs-02", "Sentralstasjonen", 1.3, -0.1, 30),
    ("bs-03", "Rådhusplassen", -1.1, 0.1, 18),
    ("bs-04", "Havnegata", 2.4, -0.5, 15),
    ("bs-05", "Universitetet", -1.9, 2.3, 20),
    ("bs-06", "Sykehuset", 0.2, 1.4, 12),
    ("bs-07", "Kirkeparken", -0.1, -1.3, 16),
    ("bs-08", "Bryggen", 1.6, -1.9, 22),
]
FREE_VEHICLES = 6  # free-floating e-scooters
# segment_id, name, from (km east, km north), to, free-flow speed in km/h
ROAD_SEGMENTS = [
    ("seg-001", "Ringveien nord", (-3.0, 3.0), (0.0, 3.6), 60.0),
    ("seg-002", "Ringveien øst", (0.0, 3.6), (3.2, 1.5), 60.0),
    ("seg-003", "Havnegata", (1.2, -0.2), (3.8, -1.0), 40.0),
    ("seg-004", "Storgata", (-1.2, 0.0), (1.2, -0.2), 30.0),
    ("seg-005", "Kirkeveien", (0.3, 4.0), (0.0, 0.0), 50.0),
    ("seg-006", "Vestbyveien", (-4.0, 0.5), (-1.2, 0.0), 50.0),
    ("seg-007", "Sørengakaia", (0.0, 0.0), (-0.4, -2.8), 40.0),
    ("seg-008", "Tunnelen", (-2.0, 2.2), (2.2, 1.8), 70.0),
]


def to_latlon(east_km: float, north_km: float) -> tuple[float, float]:
    return (
        round(CENTRE[0] + north_km / KM_PER_DEG_LAT, 6),
        round(CENTRE[1] + east_km / KM_PER_DEG_LON, 6),
    )


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance between two (lat, lon) points; flat-earth is exact enough across one city."""
    north = (b[0] - a[0]) * KM_PER_DEG_LAT
    east = (b[1] - a[1]) * KM_PER_DEG_LON
    return 1000 * math.hypot(north, east)


def bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    north = (b[0] - a[0]) * KM_PER_DEG_LAT
    east = (b[1] - a[1]) * KM_PER_DEG_LON
    return round(math.degrees(math.atan2(east, north)) % 360, 1)


def draw(*parts: object) -> random.Random:
    """A generator for one decision, from the seed and what the decision is about.

    Hashing the parts (rather than drawing in sequence from one generator) keeps every decision
    stable when others are added: the delay of one trip does not move when a stop is added.
    """
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def gtfs_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def service_day_start(day: date) -> datetime:
    """The instant a service day's times count from: local noon minus 12 hours (GTFS)."""
    return datetime.combine(day, time(12), ZONE).astimezone(UTC) - timedelta(hours=12)


@dataclass(frozen=True)
class Stop:
    stop_id: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class StopTime:
    stop_id: str
    sequence: int  # 1, 2, …
    arrival: int  # service-day seconds
    departure: int
    dist: float  # metres along the shape


@dataclass(frozen=True)
class Trip:
    trip_id: str
    route_id: str
    service_id: str
    direction_id: int
    headsign: str
    shape_id: str
    block: int  # the vehicle running it: one vehicle per trip, numbered within route and direction
    stop_times: tuple[StopTime, ...]

    @property
    def start(self) -> int:
        return self.stop_times[0].departure

    @property
    def end(self) -> int:
        return self.stop_times[-1].arrival


@dataclass(frozen=True)
class Route:
    route_id: str
    short_name: str
    long_name: str
    route_type: int
    color: str
    stop_ids: tuple[str, ...]  # direction 0
    headway_min: dict[str, int]  # by service_id
    offset_min: int


@dataclass(frozen=True)
class Shape:
    shape_id: str
    points: tuple[tuple[float, float, float], ...]  # lat, lon, metres along


@dataclass(frozen=True)
class VehicleNow:
    """Where one vehicle is at one instant, running ``trip`` of ``service_date`` ``delay`` late."""

    vehicle_id: str
    trip: Trip
    route: Route
    service_date: date
    delay: int  # seconds, negative when early
    lat: float
    lon: float
    bearing: float
    speed: float  # m/s
    stop_sequence: int  # the stop it is at, or the next one
    stop_id: str
    stopped: bool
    timestamp: datetime


@dataclass(frozen=True)
class BikeStation:
    station_id: str
    name: str
    lat: float
    lon: float
    capacity: int


@dataclass(frozen=True)
class RoadSegment:
    segment_id: str
    name: str
    start: tuple[float, float]
    end: tuple[float, float]
    free_flow_kmh: float

    @property
    def length_m(self) -> float:
        return metres(self.start, self.end)


class City:
    """One seeded city; ``City.build(seed)`` is the only constructor callers need."""

    def __init__(self, seed: int):
        self.seed = seed
        self.stops: dict[str, Stop] = {}
        for stop_id, name, east, north in STOPS:
            r = draw(seed, "stop", stop_id)
            lat, lon = to_latlon(east + r.uniform(-0.15, 0.15), north + r.uniform(-0.15, 0.15))
            self.stops[stop_id] = Stop(stop_id, name, lat, lon)
        self.routes: dict[str, Route] = {}
        for route_id, short, long_name, route_type, color, stop_ids in ROUTES:
            r = draw(seed, "route", route_id)
            weekday = r.choice([10, 12, 15])
            self.routes[route_id] = Route(
                route_id, short, long_name, route_type, color, tuple(stop_ids),
                {"WKD": weekday, "WKE": weekday + 5}, r.randrange(10),
            )  # fmt: skip
        self.shapes: dict[str, Shape] = {}
        self.trips: dict[str, Trip] = {}
        for route in self.routes.values():
            for direction in (0, 1):
                self._add_trips(route, direction)
        self.bike_stations = [
            BikeStation(sid, name, *to_latlon(east, north), capacity)
            for sid, name, east, north, capacity in BIKE_STATIONS
        ]
        self.road_segments = [
            RoadSegment(sid, name, to_latlon(*a), to_latlon(*b), speed)
            for sid, name, a, b, speed in ROAD_SEGMENTS
        ]

    @classmethod
    def build(cls, seed: int = DEFAULT_SEED) -> City:
        return cls(seed)

    # -- timetable --------------------------------------------------------------------------------

    def _shape(self, route: Route, direction: int) -> tuple[Shape, list[float]]:
        """The route's line through its stops, bent between stops; also each stop's distance."""
        stop_ids = route.stop_ids if direction == 0 else tuple(reversed(route.stop_ids))
        points: list[tuple[float, float]] = []
        stop_points: list[int] = []
        for i, stop_id in enumerate(stop_ids):
            stop = self.stops[stop_id]
            if i:
                prev = self.stops[stop_ids[i - 1]]
                # The bend is drawn for the unordered pair, so both directions share one street.
                pair = "-".join(sorted((prev.stop_id, stop_id)))
                bend = draw(self.seed, "bend", pair).uniform(-0.0015, 0.0015)
                points.append(((prev.lat + stop.lat) / 2 + bend, (prev.lon + stop.lon) / 2 - bend))
            stop_points.append(len(points))
            points.append((stop.lat, stop.lon))
        along = [0.0]
        for a, b in itertools.pairwise(points):
            along.append(along[-1] + metres(a, b))
        shape = Shape(
            f"{route.route_id}-{direction}",
            tuple(
                (round(p[0], 6), round(p[1], 6), round(d, 1))
                for p, d in zip(points, along, strict=True)
            ),
        )
        self.shapes[shape.shape_id] = shape
        return shape, [round(along[i], 1) for i in stop_points]

    def _add_trips(self, route: Route, direction: int) -> None:
        shape, dists = self._shape(route, direction)
        stop_ids = route.stop_ids if direction == 0 else tuple(reversed(route.stop_ids))
        speed = SPEED_KMH[route.route_type] / 3.6
        offsets: list[tuple[int, int]] = []  # arrival, departure after the trip's start
        t = 0
        for i, dist in enumerate(dists):
            if i:
                run = (dist - dists[i - 1]) / speed
                t += int(math.ceil(run / 30) * 30)  # timetables publish whole half-minutes
            dwell = DWELL_S if 0 < i < len(dists) - 1 else 0
            offsets.append((t, t + dwell))
            t += dwell
        headsign = self.stops[stop_ids[-1]].name
        for service_id in SERVICES:
            headway = route.headway_min[service_id] * 60
            start = FIRST_DEPARTURE + route.offset_min * 60 + direction * headway // 2
            block = 0
            while start <= LAST_DEPARTURE:
                trip_id = f"{route.route_id}-{service_id}-{direction}-{gtfs_time(start)[:5].replace(':', '')}"
                self.trips[trip_id] = Trip(
                    trip_id, route.route_id, service_id, direction, headsign, shape.shape_id, block,
                    tuple(
                        StopTime(stop_id, i + 1, start + arr, start + dep, dists[i])
                        for i, (stop_id, (arr, dep)) in enumerate(zip(stop_ids, offsets, strict=True))
                    ),
                )  # fmt: skip
                start += headway
                block += 1

    @staticmethod
    def runs_on(service_id: str, day: date) -> bool:
        return SERVICE_START <= day <= SERVICE_END and SERVICES[service_id][day.weekday()] == 1

    def delay(self, trip: Trip, service_date: date) -> int:
        """How late this run of the trip is, all along: mostly a little, sometimes early."""
        r = draw(self.seed, "delay", trip.trip_id, service_date.isoformat())
        return r.choice([-60, 0, 0, 30, 60, 60, 90, 120, 180, 240, 300, 420])

    # -- the city at one instant ------------------------------------------------------------------

    def local(self, now: datetime) -> datetime:
        return now.astimezone(ZONE)

    def running(self, now: datetime) -> list[tuple[Trip, date, int, float]]:
        """Trips on the road at ``now``: (trip, service date, delay, service-day seconds late-adjusted)."""
        today = self.local(now).date()
        found = []
        for service_date in (today - timedelta(days=1), today):
            base = service_day_start(service_date)
            for trip in self.trips.values():
                if not self.runs_on(trip.service_id, service_date):
                    continue
                delay = self.delay(trip, service_date)
                # Where the timetable says the vehicle is, ``delay`` seconds ago.
                t = (now - base).total_seconds() - delay
                if trip.start <= t < trip.end:
                    found.append((trip, service_date, delay, t))
        found.sort(key=lambda item: (item[0].trip_id, item[1]))
        return found

    def vehicle_id(self, trip: Trip) -> str:
        route_index = list(self.routes).index(trip.route_id)
        # Vehicles on one route and direction at the same time run consecutive blocks, so the
        # block number modulo 100 keeps fleet numbers unique on the road.
        return str(1000 + 200 * route_index + 100 * trip.direction_id + trip.block % 100)

    def vehicles(self, now: datetime) -> list[VehicleNow]:
        """Every vehicle in service at ``now``, placed along its shape."""
        result = []
        for trip, service_date, delay, t in self.running(now):
            route = self.routes[trip.route_id]
            shape = self.shapes[trip.shape_id]
            stops = trip.stop_times
            nxt = next(i for i, st in enumerate(stops) if st.departure > t)
            current = stops[nxt]
            if current.arrival <= t:  # standing at the stop
                dist, stopped, speed = current.dist, True, 0.0
            else:
                prev = stops[nxt - 1]
                share = (t - prev.departure) / (current.arrival - prev.departure)
                dist = prev.dist + share * (current.dist - prev.dist)
                stopped = False
                speed = (current.dist - prev.dist) / (current.arrival - prev.departure)
            lat, lon, heading = _along(shape, dist)
            # Vehicles report every few seconds; each one's last report is a little behind now.
            age = draw(self.seed, "age", trip.trip_id, int(now.timestamp())).randrange(0, 20)
            result.append(
                VehicleNow(
                    self.vehicle_id(trip), trip, route, service_date, delay, lat, lon, heading,
                    round(speed, 1), current.sequence, current.stop_id, stopped,
                    now.replace(microsecond=0) - timedelta(seconds=age),
                )
            )  # fmt: skip
        return result

    def vehicles_per_route(self, now: datetime) -> dict[str, int]:
        """Route short name → vehicles in service at ``now`` (what the sandbox's feed shows)."""
        counts: dict[str, int] = {}
        for v in self.vehicles(now):
            counts[v.route.short_name] = counts.get(v.route.short_name, 0) + 1
        return counts

    def bikes_available(self, station: BikeStation, now: datetime) -> int:
        """Bikes at a station: a daily tide (centre fills in the morning) plus five-minute noise."""
        local = self.local(now)
        hour = local.hour + local.minute / 60
        central = metres((station.lat, station.lon), CENTRE) < 1500
        tide = math.sin((hour - 7) / 24 * 2 * math.pi)
        share = 0.5 + (0.35 if central else -0.35) * tide
        noise = draw(self.seed, "bikes", station.station_id, int(now.timestamp()) // 300).randint(
            -2, 2
        )
        return max(0, min(station.capacity, round(share * station.capacity) + noise))

    def segment_speed(self, segment: RoadSegment, now: datetime) -> float:
        """km/h on a segment: slower in the morning and afternoon rush, with minute-to-minute noise."""
        local = self.local(now)
        hour = local.hour + local.minute / 60
        rush = max(math.exp(-((hour - 8) ** 2) / 1.5), math.exp(-((hour - 16.5) ** 2) / 2))
        if local.weekday() >= 5:
            rush *= 0.3
        noise = draw(self.seed, "speed", segment.segment_id, int(now.timestamp()) // 60).uniform(
            0.9, 1.1
        )
        return round(max(0.0, segment.free_flow_kmh * (1 - 0.6 * rush) * noise), 1)


def _along(shape: Shape, dist: float) -> tuple[float, float, float]:
    """The point ``dist`` metres along the shape, and the heading there."""
    points = shape.points
    for a, b in itertools.pairwise(points):
        if dist <= b[2] or b is points[-1]:
            span = b[2] - a[2]
            share = 0.0 if span <= 0 else min(1.0, max(0.0, (dist - a[2]) / span))
            lat = a[0] + share * (b[0] - a[0])
            lon = a[1] + share * (b[1] - a[1])
            return round(lat, 6), round(lon, 6), bearing((a[0], a[1]), (b[0], b[1]))
    last = points[-1]
    return last[0], last[1], 0.0
