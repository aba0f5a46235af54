"""Public open-data routes (no key needed): monitoring sites, the latest station AQI, and
the hourly or daily series of a site.

- ``GET /api/v1/sites`` — filter by kind, region (a province or city code covers the
  codes below it) and bounding box; JSON, CSV or GeoJSON;
- ``GET /api/v1/aqi/latest`` — each air station's newest hourly AQI with its HJ 633
  level and colour (what the map draws);
- ``GET /api/v1/sites/{code}/series`` — one parameter's hourly or daily values in a time
  range, keyset-paginated (``cursor``), JSON, CSV or Parquet;
- ``GET /api/v1/sites/{code}/aqi`` — an air station's hourly or daily AQI series;
- ``GET /api/v1/ranking/cities`` — cities ranked by their hourly or daily AQI, computed
  per HJ 633-2012 from the mean of their stations' concentrations;
- ``GET /api/v1/water/classes`` — each surface-water site's GB 3838-2002 class from its
  daily means (the newest day, or a given day).

Each route names its dataset in the resource catalogue (:mod:`ecohub.api.catalogue`),
which decides who may read it.

Only derived, validated figures are public here (rollups and AQI, with their validity);
raw observations, the registry's enterprise data and alarms need a key.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, func, select

from ecohub.alarms.evaluate import city_code
from ecohub.alarms.notify import region_prefix
from ecohub.analytics.city_aqi import DAILY_CODES, HOURLY_CODES, group_aqi
from ecohub.api.catalogue import dataset_access
from ecohub.registry.models import (
    AuditEntry,
    MonitoringPoint,
    Parameter,
    Region,
    Site,
    SiteKind,
)
from ecohub.standards.aqi import aqi_levels
from ecohub.standards.water import STATUS_COLOUR, assess, water_parameters
from ecohub.store.db import iso_utc
from ecohub.store.rollups import day_start, hour_start
from ecohub.store.tables import change_counters, rollups, station_aqi, station_aqi_latest

router = APIRouter(prefix="/api/v1", tags=["open data"])
MAX_SERIES_SPAN = dt.timedelta(days=400)
SITE_FIELDS = ("code", "name", "kind", "region_code", "longitude", "latitude", "status")
SERIES_FIELDS = ("ts", "value", "valid", "samples", "statistic")
# Database ids in paths and cursors: 32-bit, as both backends store them.
MAX_ROW_ID = 2_147_483_647
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowCursor = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID, description="id cursor")]


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# Instants the API accepts: monitoring data begins long after the first and the last
# leaves room for any date arithmetic on it.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def _aware(moment: dt.datetime, name: str) -> dt.datetime:
    if moment.tzinfo is None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"{name} needs a time zone, e.g. 2024-01-15T08:00+08:00"
        )
    check_date(moment.date(), name)
    return moment.astimezone(dt.UTC)


def check_date(day: dt.date, name: str) -> dt.date:
    """400 for dates outside 1970-2199 (where no monitoring data can be)."""
    if not EARLIEST.date() < day < LATEST.date():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{name} must lie between 1970 and 2199")
    return day


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(part) for part in text.split(","))
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "bbox must be four numbers: west,south,east,north (longitude, latitude)",
        ) from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "bbox must have west < east within ±180 and south < north within ±90",
        )
    return west, south, east, north


def json_response(document: Any) -> Response:
    """JSON straight from plain data: these routes return thousands of rows that need
    no validation, and FastAPI's generic encoder would dominate their latency."""
    return Response(
        json.dumps(document, ensure_ascii=False, separators=(",", ":")),
        media_type="application/json",
    )


def _csv(rows: list[dict[str, Any]], fields: tuple[str, ...], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        buffer.getvalue().encode("utf-8-sig"),  # with a BOM, so that Excel reads Chinese
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


# --- sites -------------------------------------------------------------------------------


def _sites(
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


def shared_as(dataset_id: str) -> list[Any]:
    """The route dependencies that enforce a catalogue dataset's sharing class."""
    return [Depends(dataset_access(dataset_id))]


@router.get(
    "/sites", summary="Monitoring sites (JSON, CSV or GeoJSON)", dependencies=shared_as("sites")
)
async def list_sites(
    request: Request,
    kind: SiteKind | None = None,
    region: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    bbox: Annotated[str | None, Query(description="west,south,east,north")] = None,
    format: Literal["json", "csv", "geojson"] = "json",
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> Any:
    box = _bbox(bbox) if bbox else None
    found = await run_in_threadpool(
        _sites,
        request.app.state.engine,
        kind.value if kind else None,
        region,
        box,
        limit,
        offset,
    )
    if format == "csv":
        return _csv(found, SITE_FIELDS, "sites")
    if format == "geojson":
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [site["longitude"], site["latitude"]]},
                "properties": {k: v for k, v in site.items() if k not in ("longitude", "latitude")},
            }
            for site in found
            if site["longitude"] is not None and site["latitude"] is not None
        ]
        return Response(
            json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
            media_type="application/geo+json",
        )
    return json_response(found)


# --- latest AQI ------------------------------------------------------------------------


def _latest_aqi(engine: Engine) -> list[dict[str, Any]]:
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
            "ts": _iso(ts),
            "aqi": aqi,
            "level": level,
            "category": levels[level].category_zh if level in levels else None,
            "colour": levels[level].hex if level in levels else None,
            "primary_pollutants": primary.split(",") if primary else [],
        }
        for code, name, region, lon, lat, ts, aqi, level, primary in rows
    ]


def _latest_version(engine: Engine) -> tuple[Any, ...]:
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
class _CachedAnswer:
    version: tuple[Any, ...]
    body: bytes
    etag: str


def _latest_answer(engine: Engine, cache: dict[str, _CachedAnswer]) -> _CachedAnswer:
    version = _latest_version(engine)
    cached = cache.get("latest_aqi")
    if cached is None or cached.version != version:
        body = json.dumps(_latest_aqi(engine), ensure_ascii=False, separators=(",", ":"))
        encoded = body.encode()
        etag = '"' + hashlib.sha256(encoded).hexdigest()[:32] + '"'
        cached = cache["latest_aqi"] = _CachedAnswer(version, encoded, etag)
    return cached


@router.get(
    "/aqi/latest",
    summary="Each air station's newest hourly AQI (HJ 633-2012)",
    dependencies=shared_as("air_quality"),
)
async def latest_aqi(request: Request) -> Response:
    # The map polls this: the answer is rebuilt only when its inputs changed (checked on
    # every request with one small query), and an unchanged one answers 304 to ETags.
    state = request.app.state
    if not hasattr(state, "answers"):
        state.answers = {}
    answer = await run_in_threadpool(_latest_answer, state.engine, state.answers)
    headers = {"ETag": answer.etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == answer.etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(answer.body, media_type="application/json", headers=headers)


# --- series ------------------------------------------------------------------------------


def _series(
    engine: Engine,
    owner: str,
    site: str,
    parameter: str,
    period: str,
    start: dt.datetime,
    end: dt.datetime,
    after: dt.datetime | None,
    limit: int,
) -> tuple[list[dict[str, Any]], dt.datetime | None]:
    with engine.connect() as connection:
        if owner == "site":
            points = (
                select(MonitoringPoint.id)
                .join(Site, Site.id == MonitoringPoint.site_id)
                .where(Site.code == site)
            )
        else:  # an outlet's monitoring point: emission data enterprises must disclose
            points = select(MonitoringPoint.id).where(
                MonitoringPoint.code == site, MonitoringPoint.outlet_id.is_not(None)
            )
        point_ids = list(connection.execute(points).scalars())
        if not point_ids:
            what = "site" if owner == "site" else "outlet monitoring point"
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} {site!r}")
        code = parameter.split("-")[0]
        if connection.execute(select(Parameter.code).where(Parameter.code == code)).first() is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no parameter {parameter!r}")
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
                rollups.c.parameter_code == parameter,
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
    page = [
        {"ts": ts, "value": value, "valid": bool(valid), "samples": n, "statistic": stat}
        for ts, value, valid, n, stat in rows[:limit]
    ]
    following = dt.datetime.fromisoformat(rows[limit - 1][0]) if len(rows) > limit else None
    return page, following


SeriesParameter = Annotated[str, Query(min_length=1, max_length=16, examples=["a34004"])]
Cursor = Annotated[dt.datetime | None, Query(description="next_cursor of the previous page")]
SeriesLimit = Annotated[int, Query(ge=1, le=10_000)]
SeriesFormat = Literal["json", "csv", "parquet"]


def _series_route(owner: str) -> Callable[..., Awaitable[Any]]:
    """The series endpoint of a site or of an outlet point (same parameters)."""

    async def series(
        request: Request,
        code: str,
        parameter: SeriesParameter,
        start: dt.datetime,
        end: dt.datetime,
        period: Literal["hour", "day"] = "hour",
        cursor: Cursor = None,
        format: SeriesFormat = "json",
        limit: SeriesLimit = 1000,
    ) -> Any:
        return await _series_response(
            request, owner, code, parameter, start, end, period, cursor, format, limit
        )

    return series


async def _series_response(
    request: Request,
    owner: str,
    code: str,
    parameter: str,
    start: dt.datetime,
    end: dt.datetime,
    period: str,
    cursor: dt.datetime | None,
    format: str,
    limit: int,
) -> Any:
    start, end = _aware(start, "start"), _aware(end, "end")
    after = _aware(cursor, "cursor") if cursor is not None else None
    if end <= start:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "end must be after start")
    if end - start > MAX_SERIES_SPAN:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"a request spans at most {MAX_SERIES_SPAN.days} days; page through longer ranges",
        )
    rows, following = await run_in_threadpool(
        _series, request.app.state.engine, owner, code, parameter, period, start, end, after, limit
    )
    headers = {"X-Next-Cursor": _iso(following)} if following else {}
    if format == "csv":
        response = _csv(rows, SERIES_FIELDS, f"{code}_{parameter}_{period}")
        response.headers.update(headers)
        return response
    if format == "parquet":
        import polars as pl  # here: 28 MB the gateway's process need not hold otherwise

        buffer = io.BytesIO()
        frame = pl.DataFrame(
            rows,
            schema={
                "ts": pl.String,
                "value": pl.Float64,
                "valid": pl.Boolean,
                "samples": pl.Int64,
                "statistic": pl.String,
            },
        )
        frame.with_columns(pl.col("ts").str.to_datetime(time_zone="UTC")).write_parquet(buffer)
        return Response(
            buffer.getvalue(),
            media_type="application/vnd.apache.parquet",
            headers={
                "Content-Disposition": f'attachment; filename="{code}_{parameter}.parquet"',
                **headers,
            },
        )
    return json_response(
        {
            owner: code,
            "parameter": parameter,
            "period": period,
            "rows": rows,
            "next_cursor": _iso(following) if following else None,
        }
    )


router.add_api_route(
    "/sites/{code}/series",
    _series_route("site"),
    methods=["GET"],
    name="site_series",
    summary="A site's hourly or daily values of one parameter (JSON, CSV or Parquet)",
    dependencies=shared_as("site_series"),
)
router.add_api_route(
    "/points/{code}/series",
    _series_route("point"),
    methods=["GET"],
    name="point_series",
    summary="An outlet monitoring point's hourly or daily values (enterprise disclosure)",
    dependencies=shared_as("enterprise_disclosure"),
)


# --- a station's AQI series ------------------------------------------------------------


def _station_aqi(
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
            "ts": _iso(ts),
            "aqi": aqi,
            "level": level,
            "category": levels[level].category_zh if level in levels else None,
            "colour": levels[level].hex if level in levels else None,
            "primary_pollutants": primary.split(",") if primary else [],
            "iaqi": json.loads(iaqi),
        }
        for ts, aqi, level, primary, iaqi in rows
    ]


@router.get(
    "/sites/{code}/aqi",
    summary="An air station's hourly or daily AQI with IAQI per pollutant",
    dependencies=shared_as("air_quality"),
)
async def station_aqi_series(
    request: Request,
    code: str,
    start: dt.datetime,
    end: dt.datetime,
    period: Literal["hour", "day"] = "hour",
) -> Response:
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "end must be after start")
    if end - start > MAX_SERIES_SPAN:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"a request spans at most {MAX_SERIES_SPAN.days} days"
        )
    rows = await run_in_threadpool(_station_aqi, request.app.state.engine, code, period, start, end)
    return json_response({"site": code, "period": period, "rows": rows})


# --- water class -------------------------------------------------------------------------


def _water_classes(engine: Engine, day: dt.datetime | None) -> list[dict[str, Any]]:
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
                    "day": _iso(ts),
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


@router.get(
    "/water/classes",
    summary="Each surface-water site's GB 3838-2002 class from its daily means",
    dependencies=shared_as("water_quality"),
)
async def water_classes(
    request: Request,
    day: Annotated[
        dt.datetime | None,
        Query(description="any time in the local day; default: each site's newest day"),
    ] = None,
) -> Response:
    moment = day_start(_aware(day, "day")) if day is not None else None
    return json_response(await run_in_threadpool(_water_classes, request.app.state.engine, moment))


# --- city ranking ------------------------------------------------------------------------


def _ranking(engine: Engine, period: str, at: dt.datetime | None) -> dict[str, Any]:
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
                rollups.c.period == period,
                rollups.c.ts == at,
                rollups.c.valid,
                rollups.c.parameter_code.in_(codes),
            )
        )
        groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        stations: dict[str, set[str]] = defaultdict(set)
        for region, site, code, value in connection.execute(query):
            city = city_code(region)
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
    return {"period": period, "ts": _iso(at), "cities": rows}


@router.get(
    "/ranking/cities",
    summary="Cities ranked by AQI for an hour or a day (best first)",
    dependencies=shared_as("air_quality"),
)
async def city_ranking(
    request: Request,
    period: Literal["hour", "day"] = "hour",
    at: Annotated[
        dt.datetime | None,
        Query(description="the hour, or any time in the local day; default: the newest"),
    ] = None,
) -> dict[str, Any]:
    moment = None
    if at is not None:
        moment = _aware(at, "at")
        moment = hour_start(moment) if period == "hour" else day_start(moment)
    return await run_in_threadpool(_ranking, request.app.state.engine, period, moment)
