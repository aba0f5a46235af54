"""The portal's annual assessment pages: the ranking of every city by the comprehensive
index with the national figures, and a city's annual report card (年度空气质量报告卡).
They read through :mod:`ecohub.assessment.service`, as the API does; the card's chart
of days per AQI category is drawn by ``static/assessment.js``."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from ecohub.assessment import service
from ecohub.assessment.api import CITY_CODE, FIRST_YEAR
from ecohub.assessment.rules import POLLUTANTS
from ecohub.clock import local_zone
from ecohub.standards.aqi import aqi_levels
from ecohub.web.render import language, message, render

router = APIRouter(include_in_schema=False)


def figure(value: float | None, pollutant: str) -> str:
    """A concentration as the standards print it: CO to one decimal (mg/m³), the others
    as whole μg/m³ (HJ 663-2013 and GB/T 8170 rounding: half to even)."""
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.1f}" if pollutant == "CO" else f"{round(value):d}"


def decimal(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def limits_text(limits: dict[str, Any], grade: int) -> str:
    """A pollutant's grade I or II limits as the card prints them: annual / daily."""
    values = [limits[f"annual_grade_{grade}"], limits[f"daily_grade_{grade}"]]
    return " / ".join(f"{value:g}" for value in values if value is not None)


def _year(engine: Engine, asked: str | None) -> int | None:
    """The year asked for in the page's query, else the newest with data."""
    this_year = dt.datetime.now(local_zone()).year
    if asked and asked.isdigit() and FIRST_YEAR <= int(asked) <= this_year:
        return int(asked)
    return service.newest_year(engine)


def _helpers(lang: str) -> dict[str, Any]:
    levels = aqi_levels()
    return {
        "pollutants": POLLUTANTS,
        "figure": figure,
        "decimal": decimal,
        "percent": percent,
        "limits_text": limits_text,
        "levels": levels,
        "category": [lv.category_en if lang == "en" else lv.category_zh for lv in levels],
    }


def _ranking(engine: Engine, year: int | None) -> dict[str, Any] | None:
    if year is None:
        return None
    try:
        return service.fetch_cities(engine, year)
    except service.NoAssessment:
        return None


@router.get("/assessment/annual")
async def ranking_page(request: Request, year: str | None = None) -> Response:
    engine = request.app.state.engine
    chosen = await run_in_threadpool(_year, engine, year)
    found = await run_in_threadpool(_ranking, engine, chosen)
    lang = language(request)
    return render(request, "assessment/ranking.html", year=chosen, report=found, **_helpers(lang))


@router.get("/assessment/annual/cities/{code}")
async def card_page(request: Request, code: str, year: str | None = None) -> Response:
    engine = request.app.state.engine
    if not CITY_CODE.match(code):
        return message(request, 404, "not_found")
    chosen = await run_in_threadpool(_year, engine, year)
    if chosen is None:
        return message(request, 404, "not_found")
    try:
        card = await run_in_threadpool(service.fetch_city, engine, chosen, code)
    except service.NoAssessment:
        return message(request, 404, "not_found")
    lang = language(request)
    helpers = _helpers(lang)
    chart = [
        {"name": name, "value": days, "colour": level.hex}
        for name, days, level in zip(
            helpers["category"], card["city"]["level_days"], helpers["levels"], strict=True
        )
    ]
    return render(request, "assessment/card.html", year=chosen, card=card, chart=chart, **helpers)
