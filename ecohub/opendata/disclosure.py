"""Enterprise disclosure routes (no key needed): the enterprises, and for each its
outlets, their monitoring points and its discharge permits with the permitted limits,
as 企业环境信息依法披露管理办法 (2021) requires them to be public. The outlets' measured
values are at ``GET /api/v1/points/{code}/series``, their emitted masses by month with the
permitted annual mass at ``GET /api/v1/enterprises/{uscc}/emissions``;
``GET /api/v1/sources`` puts the
enterprises on the map with their alarm state (whether an exceedance or data alarm is
open on any of their points, which the public may know; the alarm details need a key).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload

from ecohub.alarms.tables import alarms
from ecohub.clock import local_today, local_zone
from ecohub.registry.models import (
    Enterprise,
    MonitoringPoint,
    Outlet,
    Parameter,
    Permit,
    PermitLimit,
    Region,
    versions_shown,
)
from ecohub.registry.regions import region_prefix
from ecohub.registry.uscc import validate_uscc
from ecohub.supervision.credit import latest_published
from ecohub.timeseries.tables import rollups
from ecohub.web.params import MAX_ROW_ID, json_response, shared_as

router = APIRouter(prefix="/api/v1", tags=["enterprise disclosure"])
ENTERPRISE_FIELDS = ("uscc", "name", "region_code", "industry", "longitude", "latitude")


def fetch_enterprises(engine: Engine, region: str | None, limit: int, offset: int) -> list[dict]:
    query = select(*(getattr(Enterprise, name) for name in ENTERPRISE_FIELDS)).order_by(
        Enterprise.uscc
    )
    if region:
        query = query.where(Enterprise.region_code.like(region_prefix(region) + "%"))
    with engine.connect() as connection:
        rows = connection.execute(query.limit(limit).offset(offset)).all()
        names: dict[str, str] = {
            code: name for code, name in connection.execute(select(Region.code, Region.name))
        }
    found = [dict(zip(ENTERPRISE_FIELDS, row, strict=True)) for row in rows]
    for enterprise in found:
        enterprise["region_name"] = names.get(enterprise.get("region_code") or "")
    return found


@router.get(
    "/enterprises",
    summary="Enterprises under supervision",
    dependencies=shared_as("enterprise_disclosure"),
)
async def list_enterprises(
    request: Request,
    region: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> Response:
    return json_response(
        await run_in_threadpool(fetch_enterprises, request.app.state.engine, region, limit, offset)
    )


def fetch_disclosure(engine: Engine, uscc: str) -> dict[str, Any]:
    with Session(engine) as session:
        enterprise = session.scalars(
            select(Enterprise)
            .where(Enterprise.uscc == uscc)
            .options(
                selectinload(Enterprise.outlets),
                selectinload(Enterprise.permits).selectinload(Permit.limits),
            )
        ).one_or_none()
        if enterprise is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enterprise {uscc}")
        outlet_ids = [outlet.id for outlet in enterprise.outlets]
        points: dict[int, list[str]] = {}
        for outlet_id, code in session.execute(
            select(MonitoringPoint.outlet_id, MonitoringPoint.code)
            .where(MonitoringPoint.outlet_id.in_(outlet_ids))
            .order_by(MonitoringPoint.code)
        ):
            points.setdefault(outlet_id, []).append(code)
        names = {
            code: name for code, name in session.execute(select(Parameter.code, Parameter.name_zh))
        }
        outlets = {outlet.id: outlet for outlet in enterprise.outlets}
        region = session.get(Region, enterprise.region_code) if enterprise.region_code else None
        return {
            **{name: getattr(enterprise, name) for name in ENTERPRISE_FIELDS},
            "region_name": region.name if region else None,
            "outlets": [
                {
                    "code": outlet.code,
                    "name": outlet.name,
                    "kind": outlet.kind,
                    "longitude": outlet.longitude,
                    "latitude": outlet.latitude,
                    "points": points.get(outlet.id, []),
                }
                for outlet in sorted(enterprise.outlets, key=lambda o: o.code)
            ],
            "permits": [
                {
                    "permit_no": permit.permit_no,
                    "version": permit.version,
                    "status": permit.status,
                    "valid_from": permit.valid_from.isoformat(),
                    "valid_to": permit.valid_to.isoformat(),
                    "limits": [
                        {
                            "outlet": outlets[limit.outlet_id].code,
                            "parameter_code": limit.parameter_code,
                            "parameter": names.get(limit.parameter_code),
                            "concentration_limit": limit.concentration_limit,
                            "unit": limit.unit,
                            "reference_o2": limit.reference_o2,
                            "daily_mass_limit_kg": limit.daily_mass_limit_kg,
                            "annual_mass_limit_kg": limit.annual_mass_limit_kg,
                        }
                        for limit in sorted(
                            permit.limits, key=lambda x: (x.outlet_id, x.parameter_code)
                        )
                    ],
                }
                for permit in versions_shown(enterprise.permits, local_today())
            ],
            # The latest published environmental credit grade; red (环保不良) is the
            # blacklist, flagged wherever the enterprise is shown (its permits too).
            "credit": latest_published(engine, uscc),
        }


@router.get(
    "/enterprises/{uscc}",
    summary="An enterprise's outlets, monitoring points and permitted limits",
    dependencies=shared_as("enterprise_disclosure"),
)
async def enterprise_disclosure(request: Request, uscc: str) -> Response:
    try:
        validate_uscc(uscc)
    except ValueError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    return json_response(await run_in_threadpool(fetch_disclosure, request.app.state.engine, uscc))


def fetch_sources(engine: Engine) -> dict[str, Any]:
    unclosed = (
        select(alarms.c.enterprise_id, func.count().label("n"))
        .where(alarms.c.status != "closed", alarms.c.enterprise_id.is_not(None))
        .group_by(alarms.c.enterprise_id)
        .subquery()
    )
    query = (
        select(
            Enterprise.uscc,
            Enterprise.name,
            Enterprise.industry,
            Enterprise.region_code,
            Enterprise.longitude,
            Enterprise.latitude,
            func.coalesce(unclosed.c.n, 0),
        )
        .outerjoin(unclosed, unclosed.c.enterprise_id == Enterprise.id)
        .where(Enterprise.longitude.is_not(None), Enterprise.latitude.is_not(None))
        .order_by(Enterprise.uscc)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {
                    "uscc": uscc,
                    "name": name,
                    "industry": industry,
                    "region_code": region,
                    "open_alarms": int(count),
                    "alarm_state": "alarm" if count else "normal",
                },
            }
            for uscc, name, industry, region, lon, lat, count in rows
        ],
    }


@router.get(
    "/sources",
    summary="Pollution sources on the map with their alarm state (GeoJSON)",
    dependencies=shared_as("enterprise_disclosure"),
)
async def sources(request: Request) -> Response:
    document = await run_in_threadpool(fetch_sources, request.app.state.engine)
    response = json_response(document)
    response.media_type = "application/geo+json"
    response.headers["content-type"] = "application/geo+json"
    return response


def emissions(engine: Engine, uscc: str, year: int) -> dict[str, Any]:
    """An enterprise's emitted masses for a calendar year (local time), by outlet,
    parameter and month: the sums of the daily ``-Cou`` totals its loggers reported, with
    the permitted annual mass where its permit sets one. Days with incomplete data count
    what was received; ``complete_days`` says how many days were valid."""
    zone = local_zone()
    start = dt.datetime(year, 1, 1, tzinfo=zone).astimezone(dt.UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=zone).astimezone(dt.UTC)
    with engine.connect() as connection:
        enterprise_id = connection.execute(
            select(Enterprise.id).where(Enterprise.uscc == uscc)
        ).scalar_one_or_none()
        if enterprise_id is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enterprise {uscc}")
        rows = connection.execute(
            select(
                Outlet.code,
                MonitoringPoint.code,
                rollups.c.parameter_code,
                rollups.c.ts,
                rollups.c.value,
                rollups.c.valid,
            )
            .join(MonitoringPoint, MonitoringPoint.outlet_id == Outlet.id)
            .join(rollups, rollups.c.point_id == MonitoringPoint.id)
            .where(
                Outlet.enterprise_id == enterprise_id,
                rollups.c.period == "day",
                rollups.c.parameter_code.like("%-Cou"),
                rollups.c.ts >= start,
                rollups.c.ts < end,
            )
        ).all()
        permitted = {
            (outlet, parameter): limit
            for outlet, parameter, limit in connection.execute(
                select(Outlet.code, PermitLimit.parameter_code, PermitLimit.annual_mass_limit_kg)
                .join(Outlet, Outlet.id == PermitLimit.outlet_id)
                .join(Permit, Permit.id == PermitLimit.permit_id)
                .where(
                    Permit.enterprise_id == enterprise_id,
                    Permit.valid_from <= dt.date(year, 12, 31),
                    Permit.valid_to >= dt.date(year, 1, 1),
                )
                .order_by(Permit.valid_from)  # the latest version of the year wins
            )
            if limit is not None
        }
    totals: dict[tuple[str, str, str], dict[str, Any]] = {}
    for outlet, point, code, ts, value, valid in rows:
        parameter = code[: -len("-Cou")]
        entry = totals.setdefault(
            (outlet, point, parameter),
            {"months": defaultdict(float), "total": 0.0, "days": 0, "complete_days": 0},
        )
        if value is None:
            continue
        month = ts.astimezone(zone).month
        entry["months"][month] += value
        entry["total"] += value
        entry["days"] += 1
        entry["complete_days"] += 1 if valid else 0
    result = []
    for (outlet, point, parameter), entry in sorted(totals.items()):
        limit = permitted.get((outlet, parameter))
        result.append(
            {
                "outlet": outlet,
                "point": point,
                "parameter_code": parameter,
                "unit": "kg",
                "months": {str(m): round(v, 3) for m, v in sorted(entry["months"].items())},
                "total": round(entry["total"], 3),
                "days": entry["days"],
                "complete_days": entry["complete_days"],
                "annual_limit_kg": limit,
                "share_of_limit": round(entry["total"] / limit, 4) if limit else None,
            }
        )
    return {"uscc": uscc, "year": year, "emissions": result}


@router.get(
    "/enterprises/{uscc}/emissions",
    summary="An enterprise's emitted masses by outlet, parameter and month, with permitted totals",
    dependencies=shared_as("enterprise_disclosure"),
)
async def enterprise_emissions(
    request: Request, uscc: str, year: Annotated[int, Query(ge=1990, le=2199)]
) -> Response:
    try:
        validate_uscc(uscc)
    except ValueError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    return json_response(await run_in_threadpool(emissions, request.app.state.engine, uscc, year))
