"""The open-data read model: what the public API and the portal pages read, through the
same functions, so that a page and the API never disagree.

- sites, filtered by kind, region (a province or city code covers the codes below it)
  and bounding box;
- each air station's newest hourly AQI with its HJ 633 level and colour (the map);
- one parameter's hourly or daily rollups of a site or an outlet point, keyset-paged;
- an air station's hourly or daily AQI series;
- cities ranked by their hourly or daily AQI, per HJ 633-2012 from the mean of their
  stations' concentrations;
- each surface-water site's GB 3838-2002 class from its daily means.

Only derived, validated figures are public (rollups and AQI, with their validity).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ecohub.clock import day_start, hour_start, iso_z, utcnow
from ecohub.db.counters import change_counters
from ecohub.db.types import iso_utc
from ecohub.registry.models import AuditEntry, MonitoringPoint, Parameter, Region, Site, SiteKind
from ecohub.registry.parameters import display_unit, resolve_parameter
from ecohub.registry.regions import city_level_codes, city_of, region_prefix
from ecohub.standards.aqi import aqi_levels
from ecohub.standards.water import CLASS_NAMES, STATUS_COLOUR, assess, water_parameters
from ecohub.timeseries.aqi import DAILY_CODES, HOURLY_CODES, group_aqi
from ecohub.timeseries.tables import rollups, station_aqi, station_aqi_latest

SITE_FIELDS = ("code", "name", "kind", "region_code", "longitude", "latitude", "status")
SERIES_FIELDS = ("ts", "value", "unit", "valid", "samples", "statistic")
SERIES_NAMES = ("PM2.5", "PM10", "SO2", "NO2", "O3", "CO", "COD", "NH3-N", "TP", "pH")
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def fetch_sites(
    engine: Engine,
    kind: str | None,
    region: str | None,
    bbox: tuple[float, float, float, float] | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    query = select(*(getattr(Site, name) for name in SITE_FIELDS)).order_by(Site.code)
    if kind:
        query = query.where(Site.kind == kind)
    if region:
        query = query.where(Site.region_code.like(region_prefix(region) + "%"))
    if bbox:
        west, south, east, north = bbox
        query = query.where(Site.longitude.between(west, east), Site.latitude.between(south, north))
    with engine.connect() as connection:
        rows = connection.execute(query.limit(limit).offset(offset)).all()
    return [dict(zip(SITE_FIELDS, row, strict=True)) for row in rows]


def fetch_latest_aqi(engine: Engine) -> list[dict[str, Any]]:
    latest = station_aqi_latest
    query = (
        select(
            Site.code,
            Site.name,
            Site.region_code,
            Site.longitude,
            Site.latitude,
            latest.c.ts,
            latest.c.aqi,
            latest.c.level,
            latest.c.primary_pollutants,
        )
        .join(MonitoringPoint, MonitoringPoint.id == latest.c.point_id)
        .join(Site, Site.id == MonitoringPoint.site_id)
        .order_by(Site.code)
    )
    levels = {level.level: level for level in aqi_levels()}
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        {
            "site": code,
            "name": name,
            "region_code": region,
            "longitude": lon,
            "latitude": lat,
            "ts": iso_z(ts),
            "aqi": aqi,
            "level": level,
            "category": levels[level].category_zh if level in levels else None,
            "colour": levels[level].hex if level in levels else None,
            "primary_pollutants": primary.split(",") if primary else [],
        }
        for code, name, region, lon, lat, ts, aqi, level, primary in rows
    ]


def latest_version(engine: Engine) -> tuple[Any, ...]:
    """What the latest-AQI answer depends on: the newest-AQI rows (whose change counter
    the pipeline bumps with every change) and the sites (every registry change is
    audited)."""
    with engine.connect() as connection:
        return tuple(
            connection.execute(
                select(
                    select(change_counters.c.version)
                    .where(change_counters.c.name == "station_aqi_latest")
                    .scalar_subquery(),
                    select(func.max(AuditEntry.id)).scalar_subquery(),
                )
            ).one()
        )


@dataclass
class CachedAnswer:
    version: tuple[Any, ...]
    body: bytes
    etag: str


def latest_answer(engine: Engine, cache: dict[str, CachedAnswer]) -> CachedAnswer:
    version = latest_version(engine)
    cached = cache.get("latest_aqi")
    if cached is None or cached.version != version:
        body = json.dumps(fetch_latest_aqi(engine), ensure_ascii=False, separators=(",", ":"))
        encoded = body.encode()
        etag = '"' + hashlib.sha256(encoded).hexdigest()[:32] + '"'
        cached = cache["latest_aqi"] = CachedAnswer(version, encoded, etag)
    return cached


@dataclass
class SeriesPage:
    """One page of a series: the parameter it resolved to, the unit its values are in,
    the range asked (defaults filled in), the rows and the next page's cursor."""

    parameter: str
    unit: str
    start: dt.datetime
    end: dt.datetime
    rows: list[dict[str, Any]]
    following: dt.datetime | None


SERIES_SPAN = {"hour": dt.timedelta(hours=48), "day": dt.timedelta(days=31)}


def _newest_end(connection: Any, point_ids: list[int], code: str, period: str) -> dt.datetime:
    """The end of a range that holds the series' newest value (the present without one)."""
    newest = connection.execute(
        select(func.max(rollups.c.ts)).where(
            rollups.c.point_id.in_(point_ids),
            rollups.c.parameter_code == code,
            rollups.c.period == period,
        )
    ).scalar_one_or_none()
    return newest + (HOUR if period == "hour" else DAY) if newest else utcnow()


def fetch_series(
    engine: Engine,
    owner: str,
    site: str,
    parameter: str,
    period: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    after: dt.datetime | None,
    limit: int,
) -> SeriesPage:
    """A site's (or an outlet point's) hourly or daily rollups of one parameter, named by
    HJ 212 code or common name (PM2.5, SO2…), in the unit its medium's standard uses
    (ambient gases μg/m³, CO mg/m³). Without ``end`` the range ends after the newest
    value; without ``start`` it spans the 48 hours (days: 31 days) before ``end``."""
    code = resolve_parameter(parameter)
    with engine.connect() as connection:
        if owner == "site":
            points = (
                select(MonitoringPoint.id, Site.kind)
                .join(Site, Site.id == MonitoringPoint.site_id)
                .where(Site.code == site)
            )
        else:  # an outlet's monitoring point: emission data enterprises must disclose
            points = (
                select(MonitoringPoint.id, Site.kind)
                .outerjoin(Site, Site.id == MonitoringPoint.site_id)
                .where(MonitoringPoint.code == site, MonitoringPoint.outlet_id.is_not(None))
            )
        found = connection.execute(points).all()
        if not found:
            what = "site" if owner == "site" else "outlet monitoring point"
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} {site!r}")
        point_ids = [point_id for point_id, _kind in found]
        ambient = owner == "site" and found[0][1] == SiteKind.AIR.value
        base = code.split("-")[0] if code else None
        known = base and connection.execute(select(Parameter.code).where(Parameter.code == base))
        if code is None or not known or known.first() is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"no parameter {parameter!r}: give an HJ 212 code (a34004) or a common name "
                f"({', '.join(SERIES_NAMES)}); GET /api/v1/parameters lists them all",
            )
        if end is None:
            end = _newest_end(connection, point_ids, code, period)
        start = start if start is not None else end - SERIES_SPAN[period]
        query = (
            select(
                iso_utc(rollups.c.ts),
                rollups.c.value,
                rollups.c.valid,
                rollups.c.samples,
                rollups.c.statistic,
            )
            .where(
                rollups.c.point_id.in_(point_ids),
                rollups.c.parameter_code == code,
                rollups.c.period == period,
                rollups.c.ts >= (after if after is not None else start),
                rollups.c.ts < end,
            )
            .order_by(rollups.c.ts)
            .limit(limit + 1)
        )
        if after is not None:
            query = query.where(rollups.c.ts > after)
        rows = connection.execute(query).all()
    unit, factor = display_unit(code, ambient)
    page = [
        {
            "ts": ts,
            "value": value * factor if value is not None and factor != 1.0 else value,
            "valid": bool(valid),
            "samples": n,
            "statistic": stat,
        }
        for ts, value, valid, n, stat in rows[:limit]
    ]
    following = dt.datetime.fromisoformat(rows[limit - 1][0]) if len(rows) > limit else None
    return SeriesPage(code, unit, start, end, page, following)


def fetch_station_aqi(
    engine: Engine, code: str, period: str, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    levels = {level.level: level for level in aqi_levels()}
    with engine.connect() as connection:
        point_ids = list(
            connection.execute(
                select(MonitoringPoint.id)
                .join(Site, Site.id == MonitoringPoint.site_id)
                .where(Site.code == code, Site.kind == SiteKind.AIR.value)
            ).scalars()
        )
        if not point_ids:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no air station {code!r}")
        rows = connection.execute(
            select(
                station_aqi.c.ts,
                station_aqi.c.aqi,
                station_aqi.c.level,
                station_aqi.c.primary_pollutants,
                station_aqi.c.iaqi,
            )
            .where(
                station_aqi.c.point_id.in_(point_ids),
                station_aqi.c.period == period,
                station_aqi.c.ts >= start,
                station_aqi.c.ts < end,
            )
            .order_by(station_aqi.c.ts)
        ).all()
    return [
        {
            "ts": iso_z(ts),
            "aqi": aqi,
            "level": level,
            "category": levels[level].category_zh if level in levels else None,
            "colour": levels[level].hex if level in levels else None,
            "primary_pollutants": primary.split(",") if primary else [],
            "iaqi": json.loads(iaqi),
        }
        for ts, aqi, level, primary, iaqi in rows
    ]


def fetch_water_classes(engine: Engine, day: dt.datetime | None) -> list[dict[str, Any]]:
    """Each surface-water site's class from the valid daily means of one day: the given
    day, else the site's newest day with any valid GB 3838 value."""
    table = water_parameters()
    codes = sorted({p.hj212 for p in table.values() if p.hj212})
    base = (
        select(Site.code, Site.name, Site.region_code, Site.longitude, Site.latitude)
        .add_columns(rollups.c.ts, rollups.c.parameter_code, rollups.c.value)
        .join(MonitoringPoint, MonitoringPoint.site_id == Site.id)
        .join(rollups, rollups.c.point_id == MonitoringPoint.id)
        .where(
            Site.kind == SiteKind.SURFACE_WATER.value,
            rollups.c.period == "day",
            rollups.c.valid,
            rollups.c.parameter_code.in_(codes),
        )
    )
    if day is not None:
        query = base.where(rollups.c.ts == day)
    else:
        newest = (
            select(rollups.c.point_id, func.max(rollups.c.ts).label("ts"))
            .where(rollups.c.period == "day", rollups.c.valid, rollups.c.parameter_code.in_(codes))
            .group_by(rollups.c.point_id)
            .subquery()
        )
        query = base.join(
            newest, (newest.c.point_id == rollups.c.point_id) & (newest.c.ts == rollups.c.ts)
        )
    sites: dict[str, dict[str, Any]] = {}
    with engine.connect() as connection:
        for code, name, region, lon, lat, ts, parameter, value in connection.execute(query):
            site = sites.setdefault(
                code,
                {
                    "site": code,
                    "name": name,
                    "region_code": region,
                    "longitude": lon,
                    "latitude": lat,
                    "day": iso_z(ts),
                    "values": {},
                },
            )
            if value is not None:
                site["values"][parameter] = value
    result = []
    for site in sorted(sites.values(), key=lambda s: s["site"]):
        assessment = assess(site["values"])
        result.append(
            {
                **site,
                "water_class": assessment.water_class,
                "class_name": assessment.class_name,
                "status": assessment.status,
                "status_en": assessment.status_en,
                "colour": STATUS_COLOUR[assessment.water_class],
                "classes": assessment.classes,
                "worst": assessment.worst,
                "exceeding": assessment.exceeding,
            }
        )
    return result


def fetch_ranking(engine: Engine, period: str, at: dt.datetime | None) -> dict[str, Any]:
    codes = HOURLY_CODES if period == "hour" else DAILY_CODES
    air = (
        select(rollups.c.ts)
        .join(MonitoringPoint, MonitoringPoint.id == rollups.c.point_id)
        .join(Site, Site.id == MonitoringPoint.site_id)
        .where(Site.kind == SiteKind.AIR.value, rollups.c.period == period, rollups.c.valid)
    )
    with engine.connect() as connection:
        if at is None:
            at = connection.execute(select(func.max(air.subquery().c.ts))).scalar_one_or_none()
            if at is None:
                return {"period": period, "ts": None, "cities": []}
        query = (
            select(Site.region_code, Site.code, rollups.c.parameter_code, rollups.c.value)
            .join(MonitoringPoint, MonitoringPoint.id == rollups.c.point_id)
            .join(Site, Site.id == MonitoringPoint.site_id)
            .where(
                Site.kind == SiteKind.AIR.value,
                Site.control_point.is_(False),  # control sites are not in a city's AQI
                rollups.c.period == period,
                rollups.c.ts == at,
                rollups.c.valid,
                rollups.c.parameter_code.in_(codes),
            )
        )
        cities_known = city_level_codes(connection)
        groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        stations: dict[str, set[str]] = defaultdict(set)
        for region, site, code, value in connection.execute(query):
            city = city_of(region, cities_known)
            if city is None or value is None:
                continue
            groups[city][code].append(value)
            stations[city].add(site)
        names: dict[str, str] = {
            code: name
            for code, name in connection.execute(
                select(Region.code, Region.name).where(Region.code.in_(list(groups)))
            )
        }
    cities = sorted(groups)
    result = group_aqi([groups[city] for city in cities], period)
    primaries = result.primary_pollutants()
    levels = {level.level: level for level in aqi_levels()}
    rows = []
    for index, city in enumerate(cities):
        aqi = result.aqi[index]
        level = int(result.level[index])
        rows.append(
            {
                "city": city,
                "name": names.get(city, city),
                "aqi": None if math.isnan(aqi) else int(aqi),
                "level": level,
                "category": levels[level].category_zh if level in levels else None,
                "colour": levels[level].hex if level in levels else None,
                "primary_pollutants": primaries[index],
                "stations": len(stations[city]),
            }
        )
    rows.sort(key=lambda row: (row["aqi"] is None, row["aqi"] or 0, row["city"]))
    previous = None
    for position, row in enumerate(rows, start=1):
        # Standard competition ranking: equal AQIs share a rank.
        row["rank"] = previous["rank"] if previous and previous["aqi"] == row["aqi"] else position
        previous = row
    return {"period": period, "ts": iso_z(at), "cities": rows}


def fetch_station_page(engine: Any, code: str) -> dict[str, Any] | None:
    """A site and, for an air station, the time of its newest AQI (the charts end there)."""
    with Session(engine) as session:
        site = session.scalars(select(Site).where(Site.code == code)).first()
        if site is None:
            return None
        newest = session.execute(
            select(station_aqi_latest.c.ts, station_aqi_latest.c.aqi, station_aqi_latest.c.level)
            .join(MonitoringPoint, MonitoringPoint.id == station_aqi_latest.c.point_id)
            .where(MonitoringPoint.site_id == site.id)
        ).first()
        levels = {level.level: level for level in aqi_levels()}
        end = hour_start(newest.ts if newest else dt.datetime.now(dt.UTC)) + dt.timedelta(hours=1)
        return {
            "site": {
                "code": site.code,
                "name": site.name,
                "kind": site.kind,
                "region_code": site.region_code,
                "longitude": site.longitude,
                "latitude": site.latitude,
            },
            "is_air": site.kind == SiteKind.AIR.value,
            "newest": newest,
            "level": levels.get(newest.level) if newest else None,
            "end": end,
            "start_48h": end - dt.timedelta(hours=48),
            "start_30d": day_start(end) - dt.timedelta(days=30),
            "end_30d": day_start(end) + dt.timedelta(days=1),
        }


def map_context(engine: Any) -> dict[str, Any]:
    with engine.connect() as connection:
        newest = connection.execute(
            select(station_aqi_latest.c.ts).order_by(station_aqi_latest.c.ts.desc()).limit(1)
        ).scalar_one_or_none()
    return {
        "levels": aqi_levels(),
        "water_legend": [
            (name, STATUS_COLOUR[index]) for index, name in enumerate(CLASS_NAMES, start=1)
        ],
        "newest": newest,
    }
