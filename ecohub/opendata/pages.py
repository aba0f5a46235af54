"""The public portal pages: the one map, the city ranking, a station's charts, the
enterprise disclosure list and page, and the resource catalogue. They read through
:mod:`ecohub.opendata.queries` and :mod:`ecohub.opendata.disclosure`, as the API does."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from ecohub.accounts.catalogue import DATASETS
from ecohub.clock import local_zone
from ecohub.opendata import queries
from ecohub.opendata.disclosure import emissions, fetch_disclosure, fetch_enterprises
from ecohub.supervision.flag_reads import credit_flag_of
from ecohub.web.render import message, render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def map_page(request: Request) -> Response:
    context = await run_in_threadpool(queries.map_context, request.app.state.engine)
    return render(request, "map.html", **context)


@router.get("/ranking")
async def ranking_page(request: Request, period: str = "hour") -> Response:
    period = period if period in ("hour", "day") else "hour"
    ranking = await run_in_threadpool(queries.fetch_ranking, request.app.state.engine, period, None)
    return render(request, "ranking.html", ranking=ranking, period=period)


@router.get("/stations/{code}")
async def station_page(request: Request, code: str) -> Response:
    found = await run_in_threadpool(queries.fetch_station_page, request.app.state.engine, code)
    if found is None:
        return message(request, 404, "not_found")
    return render(request, "station.html", **found)


@router.get("/enterprises")
async def enterprises_page(request: Request) -> Response:
    rows = await run_in_threadpool(fetch_enterprises, request.app.state.engine, None, 5000, 0)
    return render(request, "enterprises.html", enterprises=rows)


@router.get("/enterprises/{uscc}")
async def enterprise_page(request: Request, uscc: str, year: int | None = None) -> Response:
    engine = request.app.state.engine
    this_year = dt.datetime.now(local_zone()).year
    year = year if year is not None and 1990 <= year <= this_year else this_year
    try:
        disclosure = await run_in_threadpool(fetch_disclosure, engine, uscc)
        masses = await run_in_threadpool(emissions, engine, uscc, year)
    except HTTPException:
        return message(request, 404, "not_found")
    flag = await run_in_threadpool(credit_flag_of, engine, uscc)
    return render(
        request,
        "enterprise.html",
        e=disclosure,
        masses=masses,
        limits=_limits(disclosure),
        flag=flag,
    )


def _limits(disclosure: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Outlet → parameter → its permitted concentration limit and unit (the chart draws
    them as lines), from the permits in force today."""
    today = dt.datetime.now(local_zone()).date().isoformat()
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for permit in disclosure.get("permits", []):
        if not (str(permit.get("valid_from")) <= today <= str(permit.get("valid_to"))):
            continue
        for limit in permit.get("limits", []):
            found.setdefault(limit["outlet"], {})[limit["parameter_code"]] = {
                "limit": limit["concentration_limit"],
                "unit": limit["unit"],
            }
    return found


@router.get("/catalogue")
async def catalogue_page(request: Request) -> Response:
    return render(request, "catalogue.html", datasets=list(DATASETS.values()))
