"""The annual assessment routes (open data, catalogue dataset ``air_assessment``):

- ``GET /api/v1/assessment/annual/cities?year=2019`` — every city ranked by the
  comprehensive index, with its six annual figures, their validity, compliance and
  exceedance multiples, its good-day ratio and days per AQI level, and the national
  figures (mean of the cities' annual values, share of cities meeting grade II);
- ``GET /api/v1/assessment/annual/stations?year=2019&city=110000`` — the same per
  station (control sites included and marked);
- ``GET /api/v1/assessment/annual/cities/{code}?year=2019`` — a city's report card: its
  figures, rank and stations.

JSON, or CSV with ``format=csv`` (one row per city or station, text cells that a
spreadsheet would take for a formula escaped). ``year`` defaults to the year of the
newest daily data. 400 for a malformed year or city code, 404 for an unknown city or a
year without data.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from ecohub.assessment import service
from ecohub.assessment.rules import POLLUTANTS
from ecohub.clock import local_zone
from ecohub.web.params import csv_response, json_response, shared_as

router = APIRouter(prefix="/api/v1/assessment/annual", tags=["annual assessment"])
FIRST_YEAR = 2000
CITY_CODE = re.compile(r"^\d{6}$")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Year = Annotated[
    int | None,
    Query(description="local calendar year (Beijing time); default: the newest with data"),
]
Format = Literal["json", "csv"]


def resolve_year(engine: Engine, year: int | None) -> int:
    """The year asked for (400 outside 2000..this year), or the newest with data."""
    this_year = dt.datetime.now(local_zone()).year
    if year is None:
        found = service.newest_year(engine)
        if found is None:
            raise service.NoAssessment("no daily air-quality data in the store")
        return found
    if not FIRST_YEAR <= year <= this_year:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"year must lie between {FIRST_YEAR} and {this_year}"
        )
    return year


def check_city(code: str | None) -> None:
    if code is not None and not CITY_CODE.match(code):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"city must be a six-digit GB/T 2260 code, not {code!r}"
        )


def answer(engine: Engine, year: int | None, fetch: Callable[[int], dict[str, Any]]) -> Any:
    """``fetch(year)``, with a missing city or year as a 404."""
    try:
        return fetch(resolve_year(engine, year))
    except service.NoAssessment as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error


def safe_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not run: text beginning with = + - @ (or a tab
    or carriage return) gets a leading apostrophe (OWASP CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


ROW_FIELDS = (
    "rank",
    "code",
    "name",
    "city",
    "control_point",
    "stations",
    "valid",
    "compliant_grade_2",
    "compliant_grade_1",
    "index",
    "primary",
    "aqi_days",
    "good_days",
    "good_ratio",
    *(f"level_{level}_days" for level in range(1, 7)),
)
POLLUTANT_FIELDS = (
    "mean",
    "percentile",
    "percentile_rank",
    "valid_days",
    "valid",
    "multiple_grade_2",
    "compliant_grade_2",
    "compliant_grade_1",
    "single_index",
)
CSV_FIELDS = (
    *ROW_FIELDS,
    *(f"{name}_{field}" for name in POLLUTANTS for field in POLLUTANT_FIELDS),
)


def flat_row(document: dict[str, Any]) -> dict[str, Any]:
    """A city or station document as one CSV row."""
    row = {name: document.get(name) for name in ROW_FIELDS}
    for level, days in enumerate(document["level_days"], start=1):
        row[f"level_{level}_days"] = days
    for name in POLLUTANTS:
        figures = document["pollutants"][name]
        for field in POLLUTANT_FIELDS:
            row[f"{name}_{field}"] = figures[field]
    return {key: safe_cell(value) for key, value in row.items()}


def csv_of(documents: list[dict[str, Any]], filename: str) -> Response:
    return csv_response([flat_row(doc) for doc in documents], CSV_FIELDS, filename)


@router.get(
    "/cities",
    summary="Cities ranked by the annual comprehensive index, with the national figures",
    dependencies=shared_as("air_assessment"),
)
async def annual_cities(request: Request, year: Year = None, format: Format = "json") -> Response:
    engine = request.app.state.engine
    found = await run_in_threadpool(answer, engine, year, lambda y: service.fetch_cities(engine, y))
    if format == "csv":
        return csv_of(found["cities"], f"assessment_cities_{found['year']}")
    return json_response(found)


@router.get(
    "/stations",
    summary="Stations' annual assessment (HJ 663-2013), all or one city's",
    dependencies=shared_as("air_assessment"),
)
async def annual_stations(
    request: Request,
    year: Year = None,
    city: Annotated[str | None, Query(description="GB/T 2260 city code")] = None,
    format: Format = "json",
) -> Response:
    check_city(city)
    engine = request.app.state.engine
    found = await run_in_threadpool(
        answer, engine, year, lambda y: service.fetch_stations(engine, y, city)
    )
    if format == "csv":
        return csv_of(found["stations"], f"assessment_stations_{city or 'all'}_{found['year']}")
    return json_response(found)


@router.get(
    "/cities/{code}",
    summary="A city's annual report card: figures, rank and stations",
    dependencies=shared_as("air_assessment"),
)
async def annual_city(
    request: Request, code: str, year: Year = None, format: Format = "json"
) -> Response:
    check_city(code)
    engine = request.app.state.engine
    found = await run_in_threadpool(
        answer, engine, year, lambda y: service.fetch_city(engine, y, code)
    )
    if format == "csv":
        return csv_of([found["city"], *found["stations"]], f"assessment_{code}_{found['year']}")
    return json_response(found)
