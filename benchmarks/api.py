"""Open-data API latency on loopback, on SQLite and PostgreSQL.

A store with 2,000 air stations, 48 hours of hourly AQI each (and their newest-AQI rows,
as the pipeline keeps them), and one station with a year of hourly PM2.5 rollups is
served by uvicorn in a child process; this process sends ``--requests`` requests per
route, from one client and then from 4 at a time, and prints p50/p95/p99 (the server,
the load generator and the database share this machine):

- ``GET /api/v1/aqi/latest`` — the newest AQI of all 2,000 stations (target p95 < 50 ms),
  as the map polls it between data changes (the answer is kept until its change counter
  moves) and, separately, with the data changing before every request (rebuilt each
  time: the worst case);
- ``GET /api/v1/sites/{code}/series`` — a year of hourly values of one station in one
  response (8,760 rows; target p95 < 200 ms).

    python -m benchmarks.api [--requests 200] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
from sqlalchemy import Engine, insert, select, update

from benchmarks._common import scratch_store
from ecohub.db.counters import change_counters
from ecohub.registry.models import MonitoringPoint, Region, Site
from ecohub.timeseries.tables import rollups, station_aqi, station_aqi_latest

STATIONS = 2000
HOURS = 48
YEAR_START = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def populate(engine: Engine) -> None:
    rng = random.Random(633)
    with engine.begin() as connection:
        connection.execute(insert(Region), [{"code": "110000", "name": "北京市"}])
        connection.execute(
            insert(Site),
            [
                {
                    "code": f"B{index:04d}",
                    "name": f"站点{index}",
                    "kind": "air",
                    "region_code": "110000",
                    "longitude": 116 + rng.random(),
                    "latitude": 39.5 + rng.random(),
                    "status": "active",
                }
                for index in range(STATIONS)
            ],
        )
        sites = dict(connection.execute(select(Site.code, Site.id)).all())
        connection.execute(
            insert(MonitoringPoint),
            [
                {
                    "code": code,
                    "name": code,
                    "site_id": site_id,
                    "interval_seconds": 3600,
                    "minute_interval_seconds": 600,
                    "crc_tolerant": False,
                }
                for code, site_id in sites.items()
            ],
        )
        points = list(connection.execute(select(MonitoringPoint.id)).scalars())
        computed = NOW
        rows = []
        for point_id in points:
            for hour in range(HOURS):
                aqi = rng.randint(20, 300)
                rows.append(
                    {
                        "point_id": point_id,
                        "period": "hour",
                        "ts": NOW - dt.timedelta(hours=HOURS - hour),
                        "aqi": aqi,
                        "level": min(6, 1 + aqi // 50),
                        "primary_pollutants": "PM2.5",
                        "iaqi": json.dumps({"PM2.5": aqi}),
                        "computed_at": computed,
                    }
                )
        connection.execute(insert(station_aqi), rows)
        newest = {row["point_id"]: row for row in rows}  # rows are in time order
        connection.execute(
            insert(station_aqi_latest),
            [
                {k: v for k, v in row.items() if k not in ("period", "iaqi")}
                for row in newest.values()
            ],
        )
        year = []
        for hour in range(24 * 365):
            year.append(
                {
                    "point_id": points[0],
                    "parameter_code": "a34004",
                    "period": "hour",
                    "ts": YEAR_START + dt.timedelta(hours=hour),
                    "value": round(rng.uniform(5, 150), 1),
                    "statistic": "mean",
                    "samples": 1,
                    "received": 1,
                    "valid": True,
                    "basis": "hour",
                    "flags": 0,
                    "computed_at": computed,
                }
            )
        connection.execute(insert(rollups), year)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(url: str, port: int) -> subprocess.Popen[bytes]:
    code = (
        "import uvicorn; from ecohub.app import create_app; "
        "from ecohub.runtime import tune_garbage_collector; "
        "from ecohub.db.engine import make_engine; "
        f"app = create_app(make_engine({url!r})); tune_garbage_collector(); "
        f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning')"
    )
    # The benchmark is one anonymous caller far above the per-address limit.
    env = {**os.environ, "ECOHUB_API_ANONYMOUS_RATE_LIMIT": "0"}
    server = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the API did not start")


async def measure(
    base: str,
    path: str,
    params: dict[str, str],
    count: int,
    clients: int,
    before_each: Callable[[], None] | None = None,
) -> list[float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while not queue.empty():
                queue.get_nowait()
                if before_each is not None:
                    before_each()
                began = time.perf_counter()
                response = await http.get(path, params=params)
                latencies.append(time.perf_counter() - began)
                response.raise_for_status()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def _quantiles(latencies: list[float]) -> str:
    cuts = statistics.quantiles([1000 * value for value in latencies], n=100)
    return f"p50 {cuts[49]:6.1f} ms  p95 {cuts[94]:6.1f} ms  p99 {cuts[98]:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"API latency, {args.requests} requests per route and client count, loopback")
    series_params = {
        "parameter": "a34004",
        "start": "2023-01-01T00:00:00Z",
        "end": "2024-01-01T00:00:00Z",
        "limit": "10000",
    }
    for backend in args.backends.split(","):
        with scratch_store(backend) as engine:
            populate(engine)
            port = _free_port()
            server = serve(engine.url.render_as_string(hide_password=False), port)
            base = f"http://127.0.0.1:{port}"

            def change() -> None:
                # What the pipeline does when any station's newest AQI moves.
                with engine.begin() as connection:
                    connection.execute(
                        update(change_counters)
                        .where(change_counters.c.name == "station_aqi_latest")
                        .values(version=change_counters.c.version + 1)
                    )

            try:
                rebuilt = asyncio.run(
                    measure(base, "/api/v1/aqi/latest", {}, args.requests, 1, change)
                )
                print(
                    f"{backend:>10}, 1 client, data changed before each request: latest AQI: "
                    f"{_quantiles(rebuilt)}"
                )
                for clients in (1, 4):
                    latest = asyncio.run(
                        measure(base, "/api/v1/aqi/latest", {}, args.requests, clients)
                    )
                    series = asyncio.run(
                        measure(
                            base,
                            "/api/v1/sites/B0000/series",
                            series_params,
                            args.requests,
                            clients,
                        )
                    )
                    print(
                        f"{backend:>10}, {clients} client(s): latest AQI of {STATIONS} stations: "
                        f"{_quantiles(latest)}  (target p95 < 50)"
                    )
                    print(
                        f"{backend:>10}, {clients} client(s): one-year hourly series:       "
                        f"{_quantiles(series)}  (target p95 < 200)"
                    )
            finally:
                server.terminate()
                server.wait(10)


if __name__ == "__main__":
    main()
