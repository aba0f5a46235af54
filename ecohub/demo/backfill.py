"""Data for the demo: real CNEMC hourly files when ``../shared/data/cnemc`` holds them,
otherwise clearly labelled simulated air and water values, so that a newcomer's first
``make run`` shows a coloured map and filled charts.

Simulated values carry the source ``demo-sim`` in the store and the console says so; they
are shaped like real data (a daily cycle, persistence from hour to hour, a city's own
level) but are not measurements.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, func, select

from ecohub.clock import hour_start
from ecohub.ingest.cnemc_bulk import import_station_files
from ecohub.ingest.pipeline import Pipeline
from ecohub.registry.models import MonitoringPoint, Site, SiteKind
from ecohub.timeseries.observations import Observation
from ecohub.timeseries.tables import observations

SIMULATED_SOURCE = "demo-sim"
# City level of PM2.5 (μg/m³) by the first two digits of the region code: the simulation
# gives each city its own character.
PM25_LEVEL = {"11": 48.0, "31": 36.0, "44": 27.0, "13": 62.0, "23": 40.0}
WATER_LEVEL = {  # code → (typical value, spread)
    "w01018": (16.0, 3.0),  # COD, mg/L
    "w21003": (0.45, 0.15),  # NH3-N, mg/L
    "w21011": (0.12, 0.03),  # TP, mg/L
    "w01009": (6.8, 0.6),  # DO, mg/L
    "w01001": (7.4, 0.2),  # pH
}


@dataclass
class DemoData:
    source: str  # "cnemc" or "simulated"
    values: int
    files: int = 0
    days: list[dt.date | None] = field(default_factory=list)


def _points(engine: Engine, kind: SiteKind) -> dict[str, tuple[int, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Site.code, MonitoringPoint.id, Site.region_code)
            .join(MonitoringPoint, MonitoringPoint.site_id == Site.id)
            .where(Site.kind == kind.value)
        )
        return {code: (point_id, region or "") for code, point_id, region in rows}


def newest_run(paths: list[Path], days: int) -> list[Path]:
    """The newest daily files that follow each other day by day, at most ``days`` of them:
    the latest real days, with no gap for the moving averages and rollups to fall into."""
    dated = sorted((day, path) for path in paths if (day := _file_date(path)) is not None)
    run: list[Path] = []
    previous: dt.date | None = None
    for day, path in reversed(dated):
        if previous is not None and (previous - day).days != 1:
            break
        run.append(path)
        previous = day
        if len(run) >= days:
            break
    return run[::-1]


def _file_date(path: Path) -> dt.date | None:
    stem = path.stem.rsplit("_", 1)[-1]
    try:
        return dt.datetime.strptime(stem, "%Y%m%d").date()
    except ValueError:
        return None


def load_cnemc(
    engine: Engine, directory: Path, days: int, progress: Callable[[int], None] | None = None
) -> DemoData:
    """The newest run of consecutive CNEMC daily files (at most ``days``), for every
    station the registry holds, through the bulk import of ``ecohub import cnemc`` (the
    pipeline's flags, rollups and station AQI; no live alarms: they are judged after)."""
    paths = newest_run(sorted(directory.glob("china_sites_*.csv")), days)
    points = {code: point for code, (point, _region) in _points(engine, SiteKind.AIR).items()}
    result = import_station_files(
        engine, paths, points=points, on_file=lambda _name, _values: progress and progress(1)
    )
    return DemoData("cnemc", result.written, len(paths), [_file_date(path) for path in paths])


def _cycle(hours: np.ndarray, peak_hour: float) -> np.ndarray:
    """A daily cycle between -1 and 1 peaking at ``peak_hour`` local time."""
    local = (hours + 8) % 24
    return np.cos((local - peak_hour) / 24 * 2 * math.pi)


def _persistent_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """AR(1) noise (φ = 0.9): pollution persists from one hour to the next."""
    noise = np.empty(n)
    state = 0.0
    for index, shock in enumerate(rng.normal(0.0, sigma, n)):
        state = 0.9 * state + shock
        noise[index] = state
    return noise


def simulate(
    engine: Engine,
    days: int,
    now: dt.datetime | None = None,
    seed: int = 633,
    progress: Callable[[int], None] | None = None,
) -> DemoData:
    """Simulated hourly air values and 4-hourly water values for the last ``days`` days.

    Run again, it adds only the hours since the newest simulated one, so that values
    already stored are never rewritten with different numbers."""
    rng = np.random.default_rng(seed)
    end = hour_start(now or dt.datetime.now(dt.UTC))
    with engine.connect() as connection:
        newest = connection.execute(
            select(func.max(observations.c.ts)).where(observations.c.source == SIMULATED_SOURCE)
        ).scalar_one_or_none()
    count = days * 24
    if newest is not None:
        count = min(count, int((end - newest).total_seconds() // 3600))
    if count <= 0:
        return DemoData("simulated", 0)
    hours = np.arange(count)
    stamps = [end - dt.timedelta(hours=int(h)) for h in hours[::-1]]
    hour_of_day = np.array([stamp.hour for stamp in stamps], dtype=float)
    pipeline = Pipeline(engine)
    written = 0
    for _code, (point, region) in sorted(_points(engine, SiteKind.AIR).items()):
        level = PM25_LEVEL.get(region[:2], 40.0) * rng.uniform(0.8, 1.2)
        # An episode or two of heavier pollution, as winter brings.
        episode = np.zeros(len(hours))
        for centre in rng.integers(0, max(1, len(hours)), 2):
            episode += 2.2 * np.exp(-(((hours - centre) / 20.0) ** 2))
        pm25 = np.clip(
            level
            * (1 + 0.25 * _cycle(hour_of_day, 22) + _persistent_noise(rng, len(hours), 0.12))
            * (1 + episode),
            3,
            None,
        )
        o3 = np.clip(70 + 55 * _cycle(hour_of_day, 15) + rng.normal(0, 8, len(hours)), 2, None)
        no2 = np.clip(
            0.035 * (1 + 0.35 * _cycle(hour_of_day, 20)) * (pm25 / level) ** 0.5, 0.002, None
        )
        series = {
            "a34004": pm25,
            "a34002": pm25 * rng.uniform(1.4, 1.8),
            "a05024": o3,
            "a21004": no2,  # mg/m³
            "a21026": np.clip(
                0.006 * (pm25 / level) + rng.normal(0, 0.001, len(hours)), 0.002, None
            ),
            "a21005": np.clip(0.5 + 0.012 * pm25 + rng.normal(0, 0.05, len(hours)), 0.1, None),
        }
        rows = [
            Observation(
                point, code, "hour", stamps[i], round(float(values[i]), 4), "N", 0, SIMULATED_SOURCE
            )
            for code, values in series.items()
            for i in range(len(hours))
        ]
        written += pipeline.process(rows).written
        if progress:
            progress(1)
    for _code, (point, _region) in sorted(_points(engine, SiteKind.SURFACE_WATER).items()):
        rows = []
        for code, (typical, spread) in WATER_LEVEL.items():
            drift = _persistent_noise(rng, len(hours), 0.05)
            for i in range(0, len(hours), 4):
                value = max(0.0, typical + spread * (rng.normal() + 3 * drift[i]))
                rows.append(
                    Observation(
                        point, code, "hour", stamps[i], round(value, 3), "N", 0, SIMULATED_SOURCE
                    )
                )
        written += pipeline.process(rows).written
        if progress:
            progress(1)
    return DemoData("simulated", written)


def station_count(engine: Engine) -> int:
    return len(_points(engine, SiteKind.AIR)) + len(_points(engine, SiteKind.SURFACE_WATER))
