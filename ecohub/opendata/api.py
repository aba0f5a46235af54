"""The public open-data routes (no key needed): monitoring sites, the latest station AQI, and
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

Each route names its dataset in the resource catalogue (:mod:`ecohub.accounts.catalogue`),
which decides who may read it.

Only derived, validated figures are public here (rollups and AQI, with their validity);
raw observations, the registry's enterprise data and alarms need a key.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from ecohub.clock import day_start, hour_start, iso_z
from ecohub.opendata import cities, queries
from ecohub.opendata.queries import SERIES_FIELDS, SITE_FIELDS
from ecohub.registry.models import SiteKind
from ecohub.web.params import (
    MAX_ROW_ID,
    Instant,
    csv_response,
    instant,
    json_response,
    parse_bbox,
    shared_as,
)

router = APIRouter(prefix="/api/v1", tags=["open data"])
MAX_SERIES_SPAN = dt.timedelta(days=400)


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
    box = parse_bbox(bbox) if bbox else None
    found = await run_in_threadpool(
        queries.fetch_sites,
        request.app.state.engine,
        kind.value if kind else None,
        region,
        box,
        limit,
        offset,
    )
    if format == "csv":
        return csv_response(found, SITE_FIELDS, "sites")
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
    answer = await run_in_threadpool(queries.latest_answer, state.engine, state.answers)
    headers = {"ETag": answer.etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == answer.etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(answer.body, media_type="application/json", headers=headers)


SeriesParameter = Annotated[
    str,
    Query(
        min_length=1,
        max_length=40,
        description="HJ 212 code or common name (PM2.5, SO2, NH3-N…): GET /api/v1/parameters",
        examples=["PM2.5", "a34004"],
    ),
]

Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]

SeriesLimit = Annotated[int, Query(ge=1, le=10_000)]

SeriesFormat = Literal["json", "csv", "parquet"]


def _series_route(owner: str) -> Callable[..., Awaitable[Any]]:
    """The series endpoint of a site or of an outlet point (same parameters)."""

    async def series(
        request: Request,
        code: str,
        parameter: SeriesParameter,
        start: Instant = None,
        end: Instant = None,
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
    start_text: str | None,
    end_text: str | None,
    period: str,
    cursor: str | None,
    format: str,
    limit: int,
) -> Any:
    start, end = instant(start_text, "start"), instant(end_text, "end")
    after = instant(cursor, "cursor")
    _check_span(start, end)
    page = await run_in_threadpool(
        queries.fetch_series,
        request.app.state.engine,
        owner,
        code,
        parameter,
        period,
        start,
        end,
        after,
        limit,
    )
    _check_span(page.start, page.end)
    rows, following, parameter = page.rows, page.following, page.parameter
    headers = {"X-Next-Cursor": iso_z(following)} if following else {}
    if format == "csv":
        for row in rows:
            row["unit"] = page.unit
        response = csv_response(rows, SERIES_FIELDS, f"{code}_{parameter}_{period}")
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
            "unit": page.unit,
            "period": period,
            "start": iso_z(page.start),
            "end": iso_z(page.end),
            "rows": rows,
            "next_cursor": iso_z(following) if following else None,
        }
    )


def _check_span(start: dt.datetime | None, end: dt.datetime | None) -> None:
    if start is not None and end is not None:
        if end <= start:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "end must be after start")
        if end - start > MAX_SERIES_SPAN:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"a request spans at most {MAX_SERIES_SPAN.days} days; page through longer ranges",
            )


@router.get(
    "/parameters",
    summary="The parameters (HJ 212-2017 codes) with their names and units",
    dependencies=shared_as("sites"),
)
async def parameters() -> Response:
    from ecohub.registry.parameters import COMMON_NAMES, display_unit, load_parameter_rows

    names: dict[str, list[str]] = {}
    for name, code in COMMON_NAMES.items():
        names.setdefault(code, []).append(name)
    return json_response(
        [
            {
                "code": row["code"],
                "legacy_code": row["legacy_code"],
                "medium": row["medium"],
                "name_zh": row["name_zh"],
                "name_en": row["name_en"],
                "unit": row["unit"],
                "unit_ambient": display_unit(row["code"], True)[0],
                "also_known_as": names.get(row["code"], []),
            }
            for row in load_parameter_rows()
        ]
    )


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

Each route names its dataset in the resource catalogue (:mod:`ecohub.accounts.catalogue`),
which decides who may read it.

Only derived, validated figures are public here (rollups and AQI, with their validity);
raw observations, the registry's enterprise data and alarms need a key.
"""

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


@router.get(
    "/sites/{code}/aqi",
    summary="An air station's hourly or daily AQI with IAQI per pollutant",
    dependencies=shared_as("air_quality"),
)
async def station_aqi_series(
    request: Request,
    code: str,
    start: Instant = None,
    end: Instant = None,
    period: Literal["hour", "day"] = "hour",
) -> Response:
    begin, finish = await _range(request, start, end, period, cities.station_points, code)
    rows = await run_in_threadpool(
        queries.fetch_station_aqi, request.app.state.engine, code, period, begin, finish
    )
    return json_response(
        {"site": code, "period": period, "start": iso_z(begin), "end": iso_z(finish), "rows": rows}
    )


async def _range(
    request: Request,
    start_text: str | None,
    end_text: str | None,
    period: str,
    points: Callable[[Any, str], list[int]],
    code: str,
) -> tuple[dt.datetime, dt.datetime]:
    """The range asked; without an end, the one after the newest value of the station or
    city; without a start, the 48 hours (days: 31 days) before the end."""
    start, end = instant(start_text, "start"), instant(end_text, "end")
    if end is None:
        end = await run_in_threadpool(
            cities.newest_end, request.app.state.engine, points, code, period
        )
    if start is None:
        start = end - queries.SERIES_SPAN[period]
    _check_span(start, end)
    return start, end


@router.get(
    "/cities",
    summary="Cities with air stations (GB/T 2260 codes), with their station counts",
    dependencies=shared_as("air_quality"),
)
async def list_cities(request: Request) -> Response:
    return json_response(await run_in_threadpool(cities.fetch_cities, request.app.state.engine))


@router.get(
    "/cities/{code}/aqi",
    summary="A city's hourly or daily AQI from the mean of its stations (HJ 633-2012)",
    dependencies=shared_as("air_quality"),
)
async def city_aqi_series(
    request: Request,
    code: Annotated[str, Path(pattern=r"^\d{6}$")],
    start: Instant = None,
    end: Instant = None,
    period: Literal["hour", "day"] = "hour",
) -> Response:
    begin, finish = await _range(request, start, end, period, cities.city_points, code)
    rows = await run_in_threadpool(
        cities.fetch_city_aqi, request.app.state.engine, code, period, begin, finish
    )
    return json_response(
        {"city": code, "period": period, "start": iso_z(begin), "end": iso_z(finish), "rows": rows}
    )


@router.get(
    "/water/classes",
    summary="Each surface-water site's GB 3838-2002 class from its daily means",
    dependencies=shared_as("water_quality"),
)
async def water_classes(
    request: Request,
    day: Annotated[
        str | None,
        Query(
            description="the local day (2024-01-15) or any time in it; default: each site's "
            "newest day"
        ),
    ] = None,
) -> Response:
    found = instant(day, "day")
    moment = day_start(found) if found is not None else None
    return json_response(
        await run_in_threadpool(queries.fetch_water_classes, request.app.state.engine, moment)
    )


@router.get(
    "/ranking/cities",
    summary="Cities ranked by AQI for an hour or a day (best first)",
    dependencies=shared_as("air_quality"),
)
async def city_ranking(
    request: Request,
    period: Literal["hour", "day"] = "hour",
    at: Annotated[
        str | None,
        Query(
            description="the hour, or any time in the local day (Beijing time without an "
            "offset); default: the newest"
        ),
    ] = None,
) -> dict[str, Any]:
    moment = instant(at, "at")
    if moment is not None:
        moment = hour_start(moment) if period == "hour" else day_start(moment)
    return await run_in_threadpool(queries.fetch_ranking, request.app.state.engine, period, moment)
