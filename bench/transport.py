"""Transport bench: a big GTFS-Realtime snapshot and a big GTFS Schedule zip into the lake.

    .venv/bin/python bench/transport.py [--entities 100000] [--stop-times 1000000] [--keep]

Two paths, each measured best of ``--repeat`` (default 3), a round at a time:

- GTFS-RT: a vehicle-positions ``FeedMessage`` of ``--entities`` entities.
  - floor: ``FeedMessage.ParseFromString`` on the bytes, timed in this process (the parse alone);
  - floor, fresh process: a new interpreter imports the bindings, reads the file and parses it;
  - urbanlake: ``urbanlake --project DIR ingest --all`` in a fresh process, with a
    ``gtfs_realtime`` connector on the local ``.pb``, on a lake created beforehand with
    ``urbanlake tables``; ``platform.runs.seconds`` gives the run as urbanlake times it.
- GTFS static: a Schedule zip whose stop_times.txt has ``--stop-times`` rows.
  - floor: ``pyarrow.csv.read_csv`` of stop_times.txt from its extracted bytes, in this process;
  - floor, fresh process: a new interpreter imports pyarrow and reads the extracted file;
  - urbanlake: as above, with a ``gtfs_static`` connector on the zip (every file, one snapshot).

Afterwards ``urbanlake sql "select count(*) ..."`` must find every generated entity, stop time,
stop, route, trip, calendar and agency row; otherwise the bench says WRONG and exits 1. When a
ratio misses its goal, one more urbanlake run of that path goes under cProfile. Results go to
stdout and to bench/results/transport.json.

The data: the sandbox city (``urbanlake.sandbox``) serves a few dozen vehicles on four routes,
and its generators build every row as a Python dict, so they cannot make a million stop times
in a bench's time. This bench grows the sandbox's network instead, with numpy and the city's own
conventions (agency, centre, services, running speeds, dwell, half-minute timetables, GTFS
service-day times, fixed zip member times, vehicle entity ids). Every id in the realtime feed is
one of the schedule's: a vehicle runs one of its trips and sits between two consecutive stops of
that trip's pattern. A snapshot of 100,000 vehicles is bigger than any one city's, so its
vehicles run trips of every service and hour; only the ids and the places are consistent.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PYTHON,
    URBANLAKE,
    Measurement,
    ProcessRun,
    engine,
    fmt,
    format_table,
    machine,
    prepare_lake,
    ratio,
    run_measured,
    urbanlake_sql,
    write_results,
)

HERE = Path(__file__).resolve()
PATHS = {"rt": "GTFS-RT", "static": "GTFS static"}
TOOLS = {
    "floor": "floor (parse alone, in process)",
    "floor-process": "floor, fresh process",
    "urbanlake": "urbanlake end to end",
}
GOAL = 3.0  # urbanlake end to end within this many times the floor, for both paths
# The snapshot's moment: a Monday morning inside the sandbox's service period.
SNAPSHOT = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
SCHEDULE_FILES = ("agency", "stops", "routes", "trips", "stop_times", "calendar")
OCCUPANCY = {
    "EMPTY": 0.08,
    "MANY_SEATS_AVAILABLE": 0.42,
    "FEW_SEATS_AVAILABLE": 0.28,
    "STANDING_ROOM_ONLY": 0.15,
    "CRUSHED_STANDING_ROOM_ONLY": 0.05,
    "FULL": 0.02,
}
STOPPED_SHARE = 0.2  # vehicles standing at a stop rather than running between two


# -- the work done inside a measured child process ------------------------------------------------


def floor_worker(path_name: str, source: str) -> None:
    """The floor in a fresh process: import, read the file, parse; prints the inner seconds."""
    started = time.perf_counter()
    if path_name == "rt":
        from google.transit import gtfs_realtime_pb2 as rt

        message = rt.FeedMessage()
        message.ParseFromString(Path(source).read_bytes())
        count = len(message.entity)
    else:
        import pyarrow.csv as pacsv

        count = pacsv.read_csv(source).num_rows
    print(json.dumps({"inner_seconds": round(time.perf_counter() - started, 3), "rows": count}))


# -- the feeds ------------------------------------------------------------------------------------


@dataclass
class Network:
    """The grown sandbox network: stops, routes, trips and stop times as pyarrow tables, and the
    index arrays the realtime feed needs to place each vehicle on its trip."""

    agency: Any
    stops: Any
    routes: Any
    trips: Any
    stop_times: Any
    calendar: Any
    # per stop: lat, lon (degrees), east, north (km from the centre)
    stop_lat: Any
    stop_lon: Any
    stop_east: Any
    stop_north: Any
    # per trip: route index, direction, first departure (service-day seconds), stop count and
    # the first row of its stop times
    trip_route: Any
    trip_direction: Any
    trip_start: Any
    trip_length: Any
    trip_first_row: Any
    # per stop-time row: the stop's index
    row_stop: Any
    route_speed_kmh: Any

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name).num_rows for name in SCHEDULE_FILES}


def grow_network(stop_times: int, entities: int, seed: int) -> Network:
    """A seeded network whose stop_times has exactly ``stop_times`` rows, with about one trip
    per realtime entity (trips of ``stop_times / entities`` stops on average)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from urbanlake.sandbox import city

    rng = np.random.default_rng(seed)
    mean_stops = max(4, round(stop_times / max(1, entities)))
    n_routes = max(4, stop_times // 2500)
    route_stops = rng.integers(max(3, mean_stops // 2), mean_stops * 3 // 2 + 1, n_routes)
    tram = rng.random(n_routes) < 0.15
    route_type = np.where(tram, 0, 3)
    speed_kmh = np.where(tram, city.SPEED_KMH[0], city.SPEED_KMH[3])

    # Each route wanders from a start near the centre, a stop every 350-700 m; stops are its own.
    first_stop = np.concatenate([[0], np.cumsum(route_stops)[:-1]])
    n_stops = int(route_stops.sum())
    east = np.empty(n_stops)
    north = np.empty(n_stops)
    for r in range(n_routes):
        count = int(route_stops[r])
        radius, angle = 6.0 * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.35, count))
        step = rng.uniform(0.35, 0.7, count)
        step[0] = 0.0
        lo = int(first_stop[r])
        east[lo : lo + count] = radius * np.cos(angle) + np.cumsum(step * np.sin(heading))
        north[lo : lo + count] = radius * np.sin(angle) + np.cumsum(step * np.cos(heading))
    lat = np.round(city.CENTRE[0] + north / city.KM_PER_DEG_LAT, 6)
    lon = np.round(city.CENTRE[1] + east / city.KM_PER_DEG_LON, 6)
    stop_ids = np.array([f"{i:05d}" for i in range(n_stops)], dtype=object)  # leading zeros
    stop_names = np.array([f"Stopp {i}" for i in range(n_stops)], dtype=object)

    # Timetable offsets of every (route, direction): a half-minute-rounded run between stops at
    # the route's speed, dwell at the stops in between (the sandbox city's rules).
    offsets: dict[tuple[int, int], tuple[Any, Any, Any]] = {}
    for r in range(n_routes):
        lo, count = int(first_stop[r]), int(route_stops[r])
        for direction in (0, 1):
            order = np.arange(lo, lo + count)[:: 1 if direction == 0 else -1]
            hop_m = 1000 * np.hypot(np.diff(east[order]), np.diff(north[order]))
            run = np.ceil(hop_m / (speed_kmh[r] / 3.6) / 30) * 30
            dwell = np.full(count, city.DWELL_S)
            dwell[[0, -1]] = 0
            arrival = np.concatenate([[0], np.cumsum(run + dwell[:-1])]).astype(np.int64)
            along = np.round(np.concatenate([[0.0], np.cumsum(hop_m)]), 1)
            offsets[r, direction] = (arrival, arrival + dwell, along)

    # Trips round-robin over routes, directions and services until the stop times are all there.
    services = list(city.SERVICES)
    cycle = n_routes * 2 * len(services)
    upper = stop_times // int(route_stops.min()) + cycle
    t = np.arange(upper)
    t_route = t % n_routes
    t_length = route_stops[t_route].astype(np.int64)
    ends = np.cumsum(t_length)
    n_trips = int(np.searchsorted(ends, stop_times)) + 1
    t, t_route, t_length = t[:n_trips], t_route[:n_trips], t_length[:n_trips].copy()
    t_length[-1] = stop_times - (int(ends[n_trips - 2]) if n_trips > 1 else 0)  # a short turn
    if t_length[-1] == 1:  # a trip needs two stops: take one from the trip before
        t_length[-2] -= 1
        t_length[-1] = 2
    t_direction = (t // n_routes) % 2
    t_service = (t // (n_routes * 2)) % len(services)
    t_index = t // cycle
    per_pattern = int(t_index.max()) + 1
    span = city.LAST_DEPARTURE - city.FIRST_DEPARTURE
    headway = max(60, span // per_pattern // 60 * 60)
    route_offset = rng.integers(0, headway // 60, n_routes) * 60
    t_start = city.FIRST_DEPARTURE + route_offset[t_route] + t_index * headway
    t_start = t_start + t_direction * (headway // 2 // 30 * 30)
    route_ids = np.array([f"R{r:04d}" for r in range(n_routes)], dtype=object)
    trip_ids = np.array(
        [
            f"{route_ids[r]}-{services[s]}-{d}-{k:03d}"
            for r, s, d, k in zip(
                t_route.tolist(), t_service.tolist(), t_direction.tolist(), t_index.tolist(),
                strict=True,
            )
        ],
        dtype=object,
    )  # fmt: skip
    last_stop = first_stop + route_stops - 1
    headsign_stop = np.where(t_direction == 0, last_stop[t_route], first_stop[t_route])

    # Stop times, one row per (trip, position), without a Python loop over rows.
    first_row = np.concatenate([[0], np.cumsum(t_length)[:-1]])
    row_trip = np.repeat(np.arange(n_trips), t_length)
    position = np.arange(stop_times) - first_row[row_trip]
    row_route = t_route[row_trip]
    row_direction = t_direction[row_trip]
    stop_index = np.where(
        row_direction == 0,
        first_stop[row_route] + position,
        last_stop[row_route] - position,
    )
    # Offsets flattened by (route, direction): index = base[route, direction] + position.
    keys = [(r, d) for r in range(n_routes) for d in (0, 1)]
    base = np.zeros((n_routes, 2), dtype=np.int64)
    base.reshape(-1)[1:] = np.cumsum([len(offsets[k][0]) for k in keys])[:-1]
    flat_arrival = np.concatenate([offsets[k][0] for k in keys])
    flat_departure = np.concatenate([offsets[k][1] for k in keys])
    flat_along = np.concatenate([offsets[k][2] for k in keys])
    flat = base[row_route, row_direction] + position
    arrival = t_start[row_trip] + flat_arrival[flat]
    departure = t_start[row_trip] + flat_departure[flat]

    def gtfs_times(seconds: Any) -> Any:
        def two(values: Any) -> Any:
            return pc.utf8_lpad(pa.array(values).cast(pa.string()), 2, "0")

        return pc.binary_join_element_wise(
            two(seconds // 3600), two(seconds % 3600 // 60), two(seconds % 60), ":"
        )

    stop_id_array = pa.array(stop_ids, pa.string())
    trip_id_array = pa.array(trip_ids, pa.string())
    name_of_stop = pa.array(stop_names, pa.string())
    calendar_days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    return Network(
        agency=pa.table(
            {
                "agency_id": [city.AGENCY_ID],
                "agency_name": ["Fjordvik Transit"],
                "agency_url": ["https://transit.fjordvik.example"],
                "agency_timezone": [city.TIMEZONE],
                "agency_lang": ["nb"],
            }
        ),
        stops=pa.table(
            {
                "stop_id": stop_id_array,
                "stop_name": name_of_stop,
                "stop_lat": pa.array(lat),
                "stop_lon": pa.array(lon),
                "location_type": pa.array(np.zeros(n_stops, dtype=np.int8)),
                "wheelchair_boarding": pa.array(rng.choice([0, 1, 2], n_stops, p=[0.1, 0.8, 0.1])),
            }
        ),
        routes=pa.table(
            {
                "route_id": pa.array(route_ids, pa.string()),
                "agency_id": [city.AGENCY_ID] * n_routes,
                "route_short_name": [str(r + 1) for r in range(n_routes)],
                "route_long_name": [
                    f"{stop_names[first_stop[r]]} – {stop_names[last_stop[r]]}"
                    for r in range(n_routes)
                ],
                "route_type": pa.array(route_type),
                "route_color": [f"{c:06X}" for c in rng.integers(0, 2**24, n_routes).tolist()],
                "route_text_color": ["FFFFFF"] * n_routes,
            }
        ),
        trips=pa.table(
            {
                "route_id": pa.array(route_ids[t_route], pa.string()),
                "service_id": pa.array(np.array(services, dtype=object)[t_service], pa.string()),
                "trip_id": trip_id_array,
                "trip_headsign": name_of_stop.take(pa.array(headsign_stop)),
                "direction_id": pa.array(t_direction),
                "wheelchair_accessible": pa.array(np.ones(n_trips, dtype=np.int8)),
            }
        ),
        stop_times=pa.table(
            {
                "trip_id": trip_id_array.take(pa.array(row_trip)),
                "arrival_time": gtfs_times(arrival),
                "departure_time": gtfs_times(departure),
                "stop_id": stop_id_array.take(pa.array(stop_index)),
                "stop_sequence": pa.array(position + 1),
                "shape_dist_traveled": pa.array(flat_along[flat]),
                "timepoint": pa.array(np.ones(stop_times, dtype=np.int8)),
            }
        ),
        calendar=pa.table(
            {
                "service_id": services,
                **{
                    day: [city.SERVICES[s][i] for s in services]
                    for i, day in enumerate(calendar_days)
                },
                "start_date": [f"{city.SERVICE_START:%Y%m%d}"] * len(services),
                "end_date": [f"{city.SERVICE_END:%Y%m%d}"] * len(services),
            }
        ),
        stop_lat=lat,
        stop_lon=lon,
        stop_east=east,
        stop_north=north,
        trip_route=t_route,
        trip_direction=t_direction,
        trip_start=t_start,
        trip_length=t_length,
        trip_first_row=first_row,
        row_stop=stop_index,
        route_speed_kmh=speed_kmh,
    )


def write_schedule_zip(network: Network, path: Path) -> dict[str, int]:
    """The network as a GTFS zip (deflated, fixed member times as the sandbox's); file sizes."""
    import pyarrow.csv as pacsv

    from urbanlake.sandbox.feeds import ZIP_TIME

    options = pacsv.WriteOptions(
        batch_size=64 * 1024, eol="\r\n", quoting_style="none", quoting_header="none"
    )
    sizes = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in SCHEDULE_FILES:
            buffer = io.BytesIO()
            pacsv.write_csv(getattr(network, name), buffer, write_options=options)
            info = zipfile.ZipInfo(f"{name}.txt", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())
            sizes[f"{name}.txt"] = len(buffer.getvalue())
    return sizes


def vehicle_positions(network: Network, entities: int, seed: int) -> bytes:
    """A vehicle-positions snapshot: one entity per vehicle, each on one trip of the network
    (fields as the sandbox's feed sets them: ids, trip, position, bearing, speed, stop, status,
    occupancy and the vehicle's own timestamp a few seconds before the header's)."""
    import numpy as np
    from google.transit import gtfs_realtime_pb2 as rt

    from urbanlake.sandbox.city import gtfs_time

    rng = np.random.default_rng(seed + 1)
    n_trips = len(network.trip_length)
    # Distinct trips while there are enough of them; a vehicle per trip is what a feed shows.
    trip = rng.permutation(n_trips)[:entities] if n_trips >= entities else None
    if trip is None:
        trip = np.arange(entities) % n_trips
    length = network.trip_length[trip]
    hop = (rng.random(entities) * (length - 1)).astype(np.int64)  # between stop hop and hop + 1
    stopped = rng.random(entities) < STOPPED_SHARE
    share = np.where(stopped, 1.0, rng.random(entities))
    a = network.row_stop[network.trip_first_row[trip] + hop]
    b = network.row_stop[network.trip_first_row[trip] + hop + 1]
    lat = np.round(network.stop_lat[a] + share * (network.stop_lat[b] - network.stop_lat[a]), 6)
    lon = np.round(network.stop_lon[a] + share * (network.stop_lon[b] - network.stop_lon[a]), 6)
    east = network.stop_east[b] - network.stop_east[a]
    north = network.stop_north[b] - network.stop_north[a]
    bearing = np.round(np.degrees(np.arctan2(east, north)) % 360, 1)
    speed_ms = network.route_speed_kmh[network.trip_route[trip]] / 3.6
    speed = np.where(stopped, 0.0, np.round(speed_ms * rng.uniform(0.5, 1.4, entities), 1))
    occupancy = rng.choice(
        [rt.VehiclePosition.OccupancyStatus.Value(k) for k in OCCUPANCY],
        entities,
        p=list(OCCUPANCY.values()),
    )
    now = int(SNAPSHOT.timestamp())
    when = now - rng.integers(0, 30, entities)

    trips, routes, stops = network.trips, network.routes, network.stops
    trip_ids = trips.column("trip_id").to_pylist()
    headsigns = trips.column("trip_headsign").to_pylist()
    route_of_trip = network.trip_route.tolist()
    route_ids = routes.column("route_id").to_pylist()
    short_names = routes.column("route_short_name").to_pylist()
    stop_ids = stops.column("stop_id").to_pylist()
    direction = network.trip_direction.tolist()
    start = network.trip_start.tolist()
    start_date = f"{SNAPSHOT:%Y%m%d}"
    scheduled = rt.TripDescriptor.SCHEDULED
    at_stop, in_transit = rt.VehiclePosition.STOPPED_AT, rt.VehiclePosition.IN_TRANSIT_TO

    message = rt.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    message.header.incrementality = rt.FeedHeader.FULL_DATASET
    message.header.timestamp = now
    columns = zip(
        trip.tolist(), hop.tolist(), b.tolist(), stopped.tolist(), lat.tolist(), lon.tolist(),
        bearing.tolist(), speed.tolist(), occupancy.tolist(), when.tolist(), strict=True,
    )  # fmt: skip
    for i, (t, k, stop, still, y, x, heading, v, full, ts) in enumerate(columns):
        vehicle_id = str(10_000 + i)
        route = route_of_trip[t]
        entity = message.entity.add()
        entity.id = f"vehicle-{vehicle_id}"
        position = entity.vehicle
        position.vehicle.id = vehicle_id
        position.vehicle.label = f"{short_names[route]} {headsigns[t]}"
        position.trip.trip_id = trip_ids[t]
        position.trip.route_id = route_ids[route]
        position.trip.direction_id = direction[t]
        position.trip.start_date = start_date
        position.trip.start_time = gtfs_time(start[t])
        position.trip.schedule_relationship = scheduled
        position.position.latitude = y
        position.position.longitude = x
        position.position.bearing = heading
        position.position.speed = v
        position.current_stop_sequence = k + 2  # stop b, counted from 1
        position.stop_id = stop_ids[stop]
        position.current_status = at_stop if still else in_transit
        position.occupancy_status = full
        position.timestamp = ts
    return message.SerializeToString()


# -- measuring --------------------------------------------------------------------------------------


def in_process_run(work: Any) -> tuple[ProcessRun, Any]:
    """Time ``work()`` here: wall and CPU seconds (all threads), as a ``ProcessRun``."""
    cpu = time.process_time()
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    run = ProcessRun(0, seconds, 0.0, time.process_time() - cpu, 0.0, False, "", "")
    return run, result


def make_project(folder: Path, path_name: str, source: Path) -> None:
    """A fresh city project with one connector reading ``source``."""
    (folder / "connectors" / "bench").mkdir(parents=True)
    (folder / "urbanlake.yaml").write_text("name: bench\nlake: lake\n")
    if path_name == "rt":
        config = (
            "name: vehicle_positions\n"
            "domain: bench\n"
            f"source: {{type: gtfs_realtime, url: {json.dumps(str(source))}, "
            "feed_type: vehicle_positions}\n"
            "table: {primary_key: [entity_id, timestamp], event_time: timestamp}\n"
        )
        name = "vehicle_positions"
    else:
        config = f"name: schedule\ndomain: bench\nsource: {{type: gtfs_static, url: {json.dumps(str(source))}}}\n"
        name = "schedule"
    (folder / "connectors" / "bench" / f"{name}.yaml").write_text(config)


def expected_tables(path_name: str, counts: dict[str, int]) -> dict[str, int]:
    """Table name → the row count the lake must hold after one run of the path."""
    if path_name == "rt":
        return {"bench.vehicle_positions": counts["entities"]}
    return {f"bench.schedule_{name}": counts[name] for name in SCHEDULE_FILES}


class Bench:
    def __init__(self, work: Path, counts: dict[str, int], timeout: float):
        self.work = work
        self.counts = counts
        self.timeout = timeout

    def floor_in_process(self, m: Measurement, path_name: str, data: bytes) -> None:
        load = round(os.getloadavg()[0], 2)
        if path_name == "rt":
            from google.transit import gtfs_realtime_pb2 as rt

            def work() -> int:
                message = rt.FeedMessage()
                message.ParseFromString(data)
                return len(message.entity)
        else:
            import pyarrow as pa
            import pyarrow.csv as pacsv

            def work() -> int:
                return int(pacsv.read_csv(pa.BufferReader(data)).num_rows)

        run, found = in_process_run(work)
        m.add(run, load=load, rows_out=found)
        self._print(m, run, load)
        self._verify(m, found, "the floor's parse")

    def floor_process(self, m: Measurement, path_name: str, source: Path, i: int) -> None:
        load = round(os.getloadavg()[0], 2)
        run = run_measured(
            [PYTHON, str(HERE), "_floor", path_name, str(source)],
            timeout=self.timeout,
            log=self.work / "logs" / f"floor-{path_name}-{i}",
        )
        if not self._finished(m, run, load):
            return
        inner = json.loads(run.stdout.strip().splitlines()[-1])
        m.add(run, load=load, inner_seconds=inner["inner_seconds"], rows_out=inner["rows"])
        self._print(m, run, load)
        self._verify(m, inner["rows"], "the floor's parse")

    def urbanlake(self, m: Measurement, path_name: str, source: Path, i: int) -> None:
        project = self.work / f"urbanlake-{path_name}-{i}"
        make_project(project, path_name, source)
        prepare_lake(project)
        load = round(os.getloadavg()[0], 2)
        run = run_measured(
            [URBANLAKE, "--project", str(project), "ingest", "--all"],
            timeout=self.timeout,
            log=self.work / "logs" / project.name,
        )
        if not self._finished(m, run, load):
            return
        expected = expected_tables(path_name, self.counts)
        query = "select " + ", ".join(f"(select count(*) from {t})" for t in expected)
        found = dict(zip(expected, map(int, urbanlake_sql(project, query)[0]), strict=True))
        status, committed, quarantined, duplicate, seconds = urbanlake_sql(
            project,
            "select status, rows_committed, rows_quarantined, rows_duplicate, seconds "
            "from platform.runs",
        )[0]
        m.add(
            run,
            load=load,
            inner_seconds=float(seconds),  # the run as urbanlake times it (no start-up, no exit)
            rows_out=found,
            run_status=status,
            rows_committed=int(committed),
            rows_quarantined=int(quarantined),
            rows_duplicate=int(duplicate),
        )
        self._print(m, run, load, f", in-process run {float(seconds):.2f} s")
        wrong = {t: (n, expected[t]) for t, n in found.items() if n != expected[t]}
        orphans = "refer to nothing" in run.stderr
        if wrong or status != "succeeded" or int(quarantined) or int(duplicate) or orphans:
            m.status = "wrong"
            m.note = "; ".join(
                [f"{t}: {n:,} rows, expected {want:,}" for t, (n, want) in wrong.items()]
                + [f"run {status}"] * (status != "succeeded")
                + [f"{int(quarantined):,} quarantined"] * bool(int(quarantined))
                + [f"{int(duplicate):,} duplicate"] * bool(int(duplicate))
                + ["orphan references reported (the generator is inconsistent)"] * orphans
            )
            print(f"  {m.label}: WRONG RESULT - {m.note}; kept at {project}", flush=True)
            return
        shutil.rmtree(project)

    def _print(self, m: Measurement, run: ProcessRun, load: float, extra: str = "") -> None:
        print(
            f"  {m.path} / {m.label}: {run.seconds:.3f} s, CPU {run.user_s + run.sys_s:.2f} s"
            f"{extra} (load {load})",
            flush=True,
        )

    def _finished(self, m: Measurement, run: ProcessRun, load: float) -> bool:
        if run.returncode == 0 and not run.timed_out:
            return True
        m.add(run, load=load)
        last = (run.stderr.strip() or run.stdout.strip() or f"exit {run.returncode}").splitlines()
        m.status = "timeout" if run.timed_out else "failed"
        m.note = f"killed after {run.seconds:.0f} s" if run.timed_out else last[-1][:300]
        print(f"  {m.path} / {m.label}: {m.status.upper()} - {m.note}", flush=True)
        return False

    def _verify(self, m: Measurement, found: int, what: str) -> None:
        if found != m.rows:
            m.status = "wrong"
            m.note = f"{what} found {found:,} of {m.rows:,}"
            print(f"  {m.path} / {m.label}: WRONG RESULT - {m.note}", flush=True)


def profile_ingest(work: Path, path_name: str, source: Path, top: int = 15) -> dict[str, Any]:
    """cProfile of ``python -m urbanlake --project DIR ingest --all`` on a fresh, prepared lake."""
    project = work / f"profile-{path_name}"
    make_project(project, path_name, source)
    prepare_lake(project)
    out = work / f"profile-{path_name}.prof"
    run = run_measured(
        [PYTHON, "-m", "cProfile", "-o", str(out), "-m", "urbanlake", "--project", str(project),
         "ingest", "--all"],
        timeout=900,
        log=work / "logs" / project.name,
    )  # fmt: skip
    if run.returncode != 0 or not out.exists():
        return {"error": (run.stderr.strip() or f"exit {run.returncode}")[-500:]}
    shutil.rmtree(project)
    return {"seconds_under_profile": round(run.seconds, 3), **profile_tables(out, top)}


# Frames that only start the command (interpreter, runpy, typer/click) or import modules: left
# out of the cumulative list, where they would fill the top 15 with one-call wrappers. Imports
# get one line of their own.
LAUNCH_FRAMES = ("<frozen ", "<string>", "/typer/", "/click/", "urbanlake/__main__.py")
LAUNCH_BUILTINS = ("<built-in method builtins.exec>", "<built-in method builtins.__import__>")


def profile_tables(prof: Path, top: int) -> dict[str, Any]:
    """Top functions by cumulative and by own time, and who calls the costliest ones."""
    stats: dict[Any, Any] = pstats.Stats(str(prof)).stats  # type: ignore[attr-defined]
    prefixes = sorted({str(Path(p)) + os.sep for p in sys.path if p}, key=len, reverse=True)

    def where(key: tuple[str, int, str]) -> str:
        file, line, name = key
        if file == "~":
            return name
        for prefix in prefixes:
            if file.startswith(prefix):
                file = file[len(prefix) :]
                break
        return f"{file}:{line}({name})"

    def line(key: Any, values: Any) -> str:
        primitive, calls, own, cumulative = values[:4]
        count = str(calls) if calls == primitive else f"{calls}/{primitive}"
        return f"{count:>10} {own:9.3f} {cumulative:9.3f}  {where(key)}"

    def launch(key: tuple[str, int, str]) -> bool:
        file, _, name = key
        return (
            name in LAUNCH_BUILTINS
            or any(f in file for f in LAUNCH_FRAMES)
            or (file.endswith("urbanlake/cli.py") and name == "main")
        )

    header = f"{'ncalls':>10} {'tottime':>9} {'cumtime':>9}  function"
    by_cumulative = sorted(
        ((k, v) for k, v in stats.items() if not launch(k)), key=lambda kv: -kv[1][3]
    )
    by_own = sorted(stats.items(), key=lambda kv: -kv[1][2])
    callers = {}
    for key, values in by_own[:5]:
        shares = sorted(values[4].items(), key=lambda kv: -kv[1][2])[:4]
        callers[where(key)] = [
            f"{v[2]:7.3f} s own time when called from {where(k)}" for k, v in shares
        ]
    return {
        "total_s": round(max(v[3] for v in stats.values()), 3),
        "imports_s": round(sum(v[3] for k, v in stats.items() if k[2] == "_find_and_load"), 3),
        "cumulative": "\n".join([header, *(line(k, v) for k, v in by_cumulative[:top])]),
        "tottime": "\n".join([header, *(line(k, v) for k, v in by_own[:top])]),
        "callers_of_top_own_time": callers,
    }


# -- report -----------------------------------------------------------------------------------------


def ratios_of(measurements: list[Measurement]) -> list[dict[str, Any]]:
    by = {(m.path, m.tool): m for m in measurements}
    out = []
    for path in dict.fromkeys(m.path for m in measurements):
        floor, process, lake = by[path, "floor"], by[path, "floor-process"], by[path, "urbanlake"]
        entry: dict[str, Any] = {
            "name": f"{path}: urbanlake end to end / floor",
            "time": ratio(lake, floor),
            # CPU seconds are kept to 0.01 s: too coarse to divide by a floor of a few of them.
            "cpu": ratio(lake, floor, "cpu_seconds") if (floor.cpu_seconds or 0) >= 0.1 else None,
            "goal": f"<= {GOAL:g}",
            "met": None,
        }
        if entry["time"] is not None:
            entry["met"] = entry["time"] <= GOAL
        out.append(entry)
        inner = lake.best["inner_seconds"] if lake.best and lake.status == "ok" else None
        out.append(
            {
                "name": f"{path}: urbanlake in-process run / floor",
                "time": inner / floor.seconds if inner and floor.seconds else None,
                "cpu": None,
                "goal": None,
                "met": None,
            }
        )
        out.append(
            {
                "name": f"{path}: urbanlake end to end / floor, fresh process",
                "time": ratio(lake, process),
                "cpu": ratio(lake, process, "cpu_seconds"),
                "goal": None,
                "met": None,
            }
        )
    return out


def report(measurements: list[Measurement], ratios: list[dict[str, Any]]) -> str:
    rows = []
    for m in measurements:
        best = m.best or {}
        inner = best.get("inner_seconds")
        unit = "entities/s" if m.path == PATHS["rt"] else "rows/s"
        rows.append(
            [
                m.path,
                m.label,
                fmt(m.seconds, ".3f") + ("" if m.status == "ok" else f" {m.status.upper()}"),
                fmt(m.median_seconds, ".3f"),
                fmt(m.cpu_seconds, ".2f"),
                fmt(inner, ".3f"),
                f"{fmt(m.rows_per_s, ',.0f')} {unit}",
                "-" if m.tool == "floor" else fmt(m.peak_rss_mb, ",.0f"),
            ]
        )
    headers = ["path", "tool", "seconds", "median s", "CPU s", "inner s", "throughput", "peak MB"]
    lines = [
        format_table(headers, rows),
        "",
        "inner s: floor, fresh process = the read and parse inside the child;"
        " urbanlake = platform.runs.seconds",
        "",
        "ratios (best wall time; CPU time alongside):",
    ]
    for r in ratios:
        verdict = ""
        if r["goal"]:
            state = "n/a (a side failed)" if r["met"] is None else "met" if r["met"] else "NOT met"
            verdict = f"   goal {r['goal']}x: {state}"
        time_text = "-" if r["time"] is None else f"{r['time']:.1f}x"
        cpu_text = "" if r["cpu"] is None else f"  (CPU {r['cpu']:.1f}x)"
        lines.append(f"  {r['name']:<52} {time_text:>8}{cpu_text}{verdict}")
    problems = [m for m in measurements if m.status != "ok"]
    if problems:
        lines += ["", "problems:"]
        lines += [f"  {m.path} {m.label}: {m.status.upper()} - {m.note}" for m in problems]
    return "\n".join(lines)


def protobuf_versions() -> dict[str, str]:
    """The protobuf runtime the floor and the connector share (upb, C++ or pure Python)."""
    import importlib.metadata as md

    from google.protobuf.internal import api_implementation

    return {
        "protobuf": md.version("protobuf"),
        "implementation": api_implementation.Type(),
        "gtfs-realtime-bindings": md.version("gtfs-realtime-bindings"),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_floor"]:
        floor_worker(*argv[1:3])
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=100_000, help="vehicle-positions entities")
    parser.add_argument("--stop-times", type=int, default=1_000_000, help="rows of stop_times.txt")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated feeds")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (the best counts)")
    parser.add_argument("--paths", default="rt,static", help="comma-separated: rt, static")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run is killed")
    parser.add_argument("--no-profile", action="store_true", help="no cProfile on a missed goal")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--results", default="transport", help="name in bench/results/, no .json")
    args = parser.parse_args(argv)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if unknown := set(paths) - set(PATHS):
        parser.error(f"unknown path(s) {', '.join(sorted(unknown))}; valid: {', '.join(PATHS)}")
    if args.entities < 1 or args.stop_times < 10:
        parser.error("--entities must be at least 1 and --stop-times at least 10")

    work = Path(tempfile.mkdtemp(prefix="urbanlake-bench-transport-"))
    (work / "data").mkdir()
    print(
        f"transport bench: {args.entities:,} entities, {args.stop_times:,} stop times, "
        f"work folder {work}",
        flush=True,
    )
    print(f"engine: {engine()}", flush=True)
    keep = args.keep
    measurements: list[Measurement] = []
    profiles: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        network = grow_network(args.stop_times, args.entities, args.seed)
        counts = {**network.counts(), "entities": args.entities}
        zip_path = work / "data" / "schedule.zip"
        sizes = write_schedule_zip(network, zip_path)
        stop_times_bytes = zipfile.ZipFile(zip_path).read("stop_times.txt")
        stop_times_path = work / "data" / "stop_times.txt"
        stop_times_path.write_bytes(stop_times_bytes)
        pb = vehicle_positions(network, args.entities, args.seed)
        pb_path = work / "data" / "vehicle-positions.pb"
        pb_path.write_bytes(pb)
        del network
        files = {
            "vehicle-positions.pb": len(pb),
            "schedule.zip": zip_path.stat().st_size,
            **{f"schedule.zip/{k}": v for k, v in sizes.items()},
        }
        print(
            f"generated in {time.perf_counter() - started:.1f} s: vehicle-positions.pb "
            f"{len(pb) / 2**20:.1f} MiB; schedule.zip {files['schedule.zip'] / 2**20:.1f} MiB "
            f"(stop_times.txt {sizes['stop_times.txt'] / 2**20:.1f} MiB); "
            + ", ".join(f"{k} {v:,}" for k, v in counts.items()),
            flush=True,
        )

        bench = Bench(work, counts, args.timeout)
        rows = {"rt": args.entities, "static": args.stop_times}
        by: dict[tuple[str, str], Measurement] = {}
        for path_name in paths:
            for tool, label in TOOLS.items():
                m = Measurement(PATHS[path_name], tool, label, rows[path_name])
                by[path_name, tool] = m
                measurements.append(m)
        # A round at a time, so that a burst of load from other work hits every tool alike.
        for i in range(args.repeat):
            print(f"round {i + 1} of {args.repeat}", flush=True)
            for path_name in paths:
                # The floors read what urbanlake reads: the .pb, and stop_times.txt out of the zip.
                data, floor_file, source = (
                    (pb, pb_path, pb_path)
                    if path_name == "rt"
                    else (stop_times_bytes, stop_times_path, zip_path)
                )
                if by[path_name, "floor"].status == "ok":
                    bench.floor_in_process(by[path_name, "floor"], path_name, data)
                if by[path_name, "floor-process"].status == "ok":
                    bench.floor_process(by[path_name, "floor-process"], path_name, floor_file, i)
                if by[path_name, "urbanlake"].status == "ok":
                    bench.urbanlake(by[path_name, "urbanlake"], path_name, source, i)
        ratios = ratios_of(measurements)
        print("\n" + report(measurements, ratios), flush=True)

        missed = [r for r in ratios if r["met"] is False]
        if missed and not args.no_profile:
            for path_name in paths:
                if any(r["name"].startswith(PATHS[path_name]) for r in missed):
                    source = pb_path if path_name == "rt" else zip_path
                    print(f"\ncProfile of urbanlake, {PATHS[path_name]} (goal missed):", flush=True)
                    profile = profile_ingest(work, path_name, source)
                    profiles[PATHS[path_name]] = profile
                    if "error" in profile:
                        print(f"  profile failed: {profile['error']}", flush=True)
                        continue
                    print(
                        f"  {profile['seconds_under_profile']:.2f} s under the profiler "
                        f"(of which imports {profile['imports_s']:.2f} s)",
                        flush=True,
                    )
                    for order, name in (("cumulative", "cumulative time"), ("tottime", "own time")):
                        print(f"\n  top 15 by {name}:\n{profile[order]}", flush=True)
                    print("\n  who calls the five costliest by own time:")
                    for name, lines in profile["callers_of_top_own_time"].items():
                        print(f"    {name}")
                        print("\n".join(f"      {line}" for line in lines), flush=True)

        results = {
            "bench": "transport",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "entities": args.entities,
            "stop_times": args.stop_times,
            "seed": args.seed,
            "repeat": args.repeat,
            "headline": "best wall time of the runs; urbanlake from fork to exit of a fresh "
            "process, the floor the parse alone in the bench's process",
            "goal": f"urbanlake end to end <= {GOAL:g}x the floor",
            "machine": machine(),
            "protobuf": protobuf_versions(),
            "engine": engine(),
            "counts": counts,
            "files": files,
            "measurements": [m.to_dict() for m in measurements],
            "ratios": ratios,
            "profiles": profiles,
        }
        print(f"\nresults: {write_results(args.results, results)}")
    except BaseException:
        keep = True  # whatever went wrong is left to look at
        raise
    else:
        keep = keep or any(m.status != "ok" for m in measurements)
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    bad = [m for m in measurements if m.status != "ok"]
    if bad:
        print(
            "\nBENCH FAILED: " + "; ".join(f"{m.path} {m.label}: {m.status}" for m in bad),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
