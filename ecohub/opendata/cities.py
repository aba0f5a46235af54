"""The open-data read model of cities: which air stations make up a city (control sites
left out, a city being the region the registry marks as one), the cities with their
station counts, a city's hourly or daily AQI (HJ 633-2012 5.2-5.3: from the mean of its
stations' concentrations), and the newest data of a station or a city."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import Engine, func, select

from ecohub.clock import iso_z, utcnow
from ecohub.opendata.queries import DAY, HOUR
from ecohub.registry.models import MonitoringPoint, Region, Site, SiteKind
from ecohub.registry.regions import city_level_codes, city_of
from ecohub.standards.aqi import aqi_levels
from ecohub.timeseries.aqi import DAILY_CODES, HOURLY_CODES, group_aqi
from ecohub.timeseries.tables import rollups


def _city_stations(connection: Any, city: str) -> dict[int, str]:
    """The non-control air stations of a city: point id → site code."""
    cities_known = city_level_codes(connection)
    found = {}
    for point_id, code, region in connection.execute(
        select(MonitoringPoint.id, Site.code, Site.region_code)
        .join(Site, Site.id == MonitoringPoint.site_id)
        .where(Site.kind == SiteKind.AIR.value, Site.control_point.is_(False))
    ):
        if city_of(region, cities_known) == city:
            found[point_id] = code
    return found


def station_points(connection: Any, code: str) -> list[int]:
    """The monitoring points of the air station ``code``."""
    return list(
        connection.execute(
            select(MonitoringPoint.id)
            .join(Site, Site.id == MonitoringPoint.site_id)
            .where(Site.code == code, Site.kind == SiteKind.AIR.value)
        ).scalars()
    )


def city_points(connection: Any, city: str) -> list[int]:
    """The monitoring points of the city's non-control air stations."""
    return list(_city_stations(connection, city))


def newest_end(
    engine: Engine, points: Callable[[Any, str], list[int]], code: str, period: str
) -> dt.datetime:
    """The end of a range holding the newest rollup of the station's or city's points
    (the present when there is none)."""
    with engine.connect() as connection:
        ids = points(connection, code)
        newest = None
        if ids:
            newest = connection.execute(
                select(func.max(rollups.c.ts)).where(
                    rollups.c.point_id.in_(ids[:2000]), rollups.c.period == period
                )
            ).scalar_one_or_none()
    return newest + (HOUR if period == "hour" else DAY) if newest else utcnow()


def fetch_cities(engine: Engine) -> list[dict[str, Any]]:
    """Every city with air stations: code, name, province, stations (control sites
    apart)."""
    with engine.connect() as connection:
        cities_known = city_level_codes(connection)
        names: dict[str, str] = {
            code: name for code, name in connection.execute(select(Region.code, Region.name))
        }
        counted: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for region, control in connection.execute(
            select(Site.region_code, Site.control_point).where(Site.kind == SiteKind.AIR.value)
        ):
            city = city_of(region, cities_known)
            if city is not None:
                counted[city][1 if control else 0] += 1
    return [
        {
            "city": city,
            "name": names.get(city, city),
            "province": city[:2] + "0000",
            "stations": stations,
            "control_sites": control,
        }
        for city, (stations, control) in sorted(counted.items())
    ]


def fetch_city_aqi(
    engine: Engine, city: str, period: str, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """A city's hourly or daily AQI (HJ 633-2012 §5.2-5.3: from the mean of its
    stations' valid concentrations of each pollutant, control sites left out), with
    IAQI per pollutant and the stations that contributed."""
    codes = HOURLY_CODES if period == "hour" else DAILY_CODES
    with engine.connect() as connection:
        stations = _city_stations(connection, city)
        if not stations:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no air stations in city {city!r}")
        groups: dict[dt.datetime, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        contributing: dict[dt.datetime, set[int]] = defaultdict(set)
        ids = sorted(stations)
        for chunk in range(0, len(ids), 500):
            for point_id, ts, code, value in connection.execute(
                select(
                    rollups.c.point_id, rollups.c.ts, rollups.c.parameter_code, rollups.c.value
                ).where(
                    rollups.c.point_id.in_(ids[chunk : chunk + 500]),
                    rollups.c.period == period,
                    rollups.c.parameter_code.in_(codes),
                    rollups.c.valid,
                    rollups.c.ts >= start,
                    rollups.c.ts < end,
                )
            ):
                if value is not None:
                    groups[ts][code].append(value)
                    contributing[ts].add(point_id)
    moments = sorted(groups)
    if not moments:
        return []
    result = group_aqi([groups[ts] for ts in moments], period)
    primaries = result.primary_pollutants()
    levels = {level.level: level for level in aqi_levels()}
    rows = []
    for index, ts in enumerate(moments):
        aqi = result.aqi[index]
        level = int(result.level[index])
        rows.append(
            {
                "ts": iso_z(ts),
                "aqi": None if math.isnan(aqi) else int(aqi),
                "level": level,
                "category": levels[level].category_zh if level in levels else None,
                "colour": levels[level].hex if level in levels else None,
                "primary_pollutants": primaries[index],
                "iaqi": {
                    name: int(series[index])
                    for name, series in result.iaqi.items()
                    if not math.isnan(series[index])
                },
                "stations": len(contributing[ts]),
            }
        )
    return rows
