"""The evidence beside a complaint, from what the platform already holds: the enterprises
and outlets near the place (distance, bearing), the wind where the data has it (for an
air complaint the sources upwind of the complainant come first: a source lies upwind
when the bearing from the complainant to it is within ``UPWIND_DEG`` of the direction
the wind blows from), the sources' hourly monitoring data and alarms in the hours around
the complaint's time, the nearest ambient station's values, and earlier complaints
there. For the handling agency only (it names the complaint's place).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, Engine, and_, or_, select

from ecohub.alarms.tables import alarms
from ecohub.complaints.geo import angle_between, bearing_deg, box, distance_m
from ecohub.complaints.rules import Medium
from ecohub.complaints.tables import complaints
from ecohub.registry.models import Enterprise, MonitoringPoint, Outlet, Parameter, Site
from ecohub.timeseries.tables import observations, rollups

UPWIND_DEG = 45.0
WIND_DIRECTION, WIND_SPEED = "a01008", "a01007"
WIND_SEARCH_M = 50_000.0
STATION_SEARCH_M = 30_000.0
# The ambient network whose values sit beside a complaint of each medium.
STATION_KIND = {Medium.AIR.value: "air", Medium.WATER.value: "surface_water"}


def evidence_for(
    engine: Engine,
    complaint_id: int,
    radius_m: float = 3000.0,
    hours: int = 6,
    history_days: int = 180,
) -> dict[str, Any] | None:
    """The evidence beside one complaint (None: no such complaint). Sources within
    ``radius_m``; data in ``hours`` either side of the time observed; complaints of the
    ``history_days`` before it within the radius."""
    with engine.connect() as connection:
        row = connection.execute(select(complaints).where(complaints.c.id == complaint_id)).first()
        if row is None:
            return None
        at = row.observed_at
        start, end = at - dt.timedelta(hours=hours), at + dt.timedelta(hours=hours)
        wind = _wind(connection, row.longitude, row.latitude, start, end)
        sources = _sources(connection, row.longitude, row.latitude, radius_m, wind)
        if row.medium == Medium.AIR.value:
            sources.sort(key=lambda item: (not item["upwind"], item["distance_m"]))
        _monitoring(connection, sources, start, end)
        station = _station(connection, row, start, end)
        earlier = _earlier(connection, row, radius_m, history_days)
    return {
        "complaint_id": row.id,
        "medium": row.medium,
        "observed_at": at,
        "window": {"start": start, "end": end, "hours": hours},
        "radius_m": radius_m,
        "wind": wind,
        "sources": sources,
        "station": station,
        "earlier": earlier,
    }


def _near_points(
    connection: Connection, longitude: float, latitude: float, radius_m: float, table: Any
) -> list[tuple[Any, float]]:
    west, south, east, north = box(longitude, latitude, radius_m)
    rows = connection.execute(
        select(table).where(
            table.longitude.between(west, east), table.latitude.between(south, north)
        )
    ).all()  # Core rows of the model's columns
    found = []
    for item in rows:
        distance = distance_m(longitude, latitude, item.longitude, item.latitude)
        if distance <= radius_m:
            found.append((item, distance))
    return sorted(found, key=lambda pair: pair[1])


def _wind(
    connection: Connection, longitude: float, latitude: float, start: dt.datetime, end: dt.datetime
) -> dict[str, Any] | None:
    """The mean wind of the window at the nearest point measuring it within 50 km: the
    vector mean of the hourly directions weighted by speed (unit vectors when no speed
    is measured)."""
    for site, distance in _near_points(connection, longitude, latitude, WIND_SEARCH_M, Site):
        points = select(MonitoringPoint.id).where(MonitoringPoint.site_id == site.id)
        values = connection.execute(
            select(observations.c.ts, observations.c.parameter_code, observations.c.value).where(
                observations.c.point_id.in_(points.scalar_subquery()),
                observations.c.parameter_code.in_((WIND_DIRECTION, WIND_SPEED)),
                observations.c.ts.between(start, end),
                observations.c.value.is_not(None),
            )
        ).all()
        directions = {ts: value for ts, code, value in values if code == WIND_DIRECTION}
        if not directions:
            continue
        speeds = {ts: value for ts, code, value in values if code == WIND_SPEED}
        east = sum(speeds.get(ts, 1.0) * math.sin(math.radians(d)) for ts, d in directions.items())
        north = sum(speeds.get(ts, 1.0) * math.cos(math.radians(d)) for ts, d in directions.items())
        return {
            "site": site.name,
            "site_code": site.code,
            "distance_m": round(distance),
            "from_deg": round((math.degrees(math.atan2(east, north)) + 360) % 360, 1),
            "speed_m_s": round(sum(speeds.values()) / len(speeds), 1) if speeds else None,
            "hours": len(directions),
        }
    return None


def _sources(
    connection: Connection,
    longitude: float,
    latitude: float,
    radius_m: float,
    wind: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    out = []
    for enterprise, distance in _near_points(connection, longitude, latitude, radius_m, Enterprise):
        bearing = bearing_deg(longitude, latitude, enterprise.longitude, enterprise.latitude)
        upwind = wind is not None and angle_between(bearing, wind["from_deg"]) <= UPWIND_DEG
        out.append(
            {
                "enterprise_id": enterprise.id,
                "uscc": enterprise.uscc,
                "name": enterprise.name,
                "industry": enterprise.industry,
                "distance_m": round(distance),
                "bearing_deg": round(bearing),
                "upwind": upwind,
                "outlets": [],
                "alarms": [],
            }
        )
    return out


def _monitoring(
    connection: Connection, sources: list[dict[str, Any]], start: dt.datetime, end: dt.datetime
) -> None:
    """Each source's outlets with the hourly maxima of their points in the window, and
    the alarms of the enterprise active in it."""
    if not sources:
        return
    by_id = {item["enterprise_id"]: item for item in sources}
    outlets = connection.execute(
        select(Outlet.id, Outlet.enterprise_id, Outlet.code, Outlet.name, Outlet.kind).where(
            Outlet.enterprise_id.in_(by_id)
        )
    ).all()
    points = connection.execute(
        select(MonitoringPoint.id, MonitoringPoint.outlet_id).where(
            MonitoringPoint.outlet_id.in_([outlet.id for outlet in outlets])
        )
    ).all()
    hourly = _hourly(connection, [point.id for point in points], start, end)
    per_outlet: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for point in points:
        per_outlet[point.outlet_id].extend(hourly.get(point.id, []))
    for outlet in outlets:
        by_id[outlet.enterprise_id]["outlets"].append(
            {
                "code": outlet.code,
                "name": outlet.name,
                "kind": outlet.kind,
                "values": per_outlet.get(outlet.id, []),
            }
        )
    rows = connection.execute(
        select(alarms).where(
            alarms.c.enterprise_id.in_(by_id),
            alarms.c.started_at <= end,
            or_(alarms.c.ended_at.is_(None), alarms.c.ended_at >= start),
        )
    ).all()
    for alarm in rows:
        by_id[alarm.enterprise_id]["alarms"].append(
            {
                "id": alarm.id,
                "kind": alarm.kind,
                "status": alarm.status,
                "parameter_code": alarm.parameter_code,
                "summary": alarm.summary,
                "started_at": alarm.started_at,
                "ended_at": alarm.ended_at,
            }
        )


def _hourly(
    connection: Connection, point_ids: list[int], start: dt.datetime, end: dt.datetime
) -> dict[int, list[dict[str, Any]]]:
    """Per point: each parameter's hourly mean values in the window (max, mean, hours)
    with its unit."""
    if not point_ids:
        return {}
    rows = connection.execute(
        select(rollups.c.point_id, rollups.c.parameter_code, rollups.c.ts, rollups.c.value)
        .where(
            rollups.c.point_id.in_(point_ids),
            rollups.c.period == "hour",
            rollups.c.statistic == "mean",
            rollups.c.valid.is_(True),
            rollups.c.ts.between(start, end),
            rollups.c.value.is_not(None),
        )
        .order_by(rollups.c.ts)
    ).all()
    units = dict(connection.execute(select(Parameter.code, Parameter.unit)).tuples().all())
    names = dict(connection.execute(select(Parameter.code, Parameter.name_zh)).tuples().all())
    series: dict[tuple[int, str], list[tuple[dt.datetime, float]]] = defaultdict(list)
    for point, code, ts, value in rows:
        series[(point, code)].append((ts, value))
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for (point, code), values in sorted(series.items()):
        peak = max(values, key=lambda pair: pair[1])
        out[point].append(
            {
                "parameter_code": code,
                "name": names.get(code, code),
                "unit": units.get(code, ""),
                "hours": len(values),
                "mean": round(sum(value for _, value in values) / len(values), 3),
                "max": round(peak[1], 3),
                "max_at": peak[0],
                "series": [{"ts": ts, "value": value} for ts, value in values],
            }
        )
    return out


def _station(
    connection: Connection, row: Any, start: dt.datetime, end: dt.datetime
) -> dict[str, Any] | None:
    kind = STATION_KIND.get(row.medium)
    if kind is None:
        return None
    near = [
        (site, distance)
        for site, distance in _near_points(
            connection, row.longitude, row.latitude, STATION_SEARCH_M, Site
        )
        if site.kind == kind and not site.control_point
    ]
    for site, distance in near:
        points = connection.execute(
            select(MonitoringPoint.id).where(MonitoringPoint.site_id == site.id)
        ).scalars()
        values = [
            item
            for found in _hourly(connection, list(points), start, end).values()
            for item in found
        ]
        if values:
            return {
                "site": site.name,
                "code": site.code,
                "distance_m": round(distance),
                "values": values,
            }
    return None


def _earlier(
    connection: Connection, row: Any, radius_m: float, history_days: int
) -> list[dict[str, Any]]:
    west, south, east, north = box(row.longitude, row.latitude, radius_m)
    found = connection.execute(
        select(complaints)
        .where(
            complaints.c.id != row.id,
            complaints.c.observed_at < row.observed_at,
            complaints.c.observed_at >= row.observed_at - dt.timedelta(days=history_days),
            and_(
                complaints.c.longitude.between(west, east),
                complaints.c.latitude.between(south, north),
            ),
        )
        .order_by(complaints.c.observed_at.desc())
        .limit(200)
    ).all()
    out = []
    for other in found:
        distance = distance_m(row.longitude, row.latitude, other.longitude, other.latitude)
        if distance <= radius_m:
            out.append(
                {
                    "id": other.id,
                    "event_id": other.event_id,
                    "medium": other.medium,
                    "observed_at": other.observed_at,
                    "distance_m": round(distance),
                    "text": other.text[:120],
                    "same_event": other.event_id == row.event_id,
                }
            )
    return out[:50]
