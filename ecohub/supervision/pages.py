"""Supervision pages: the agency's dashboard (risk-ranked enterprises on the map and in a
table, open cases by step with the overdue ones highlighted) and the public disclosure
page (published penalty decisions, credit grades with the red list, and double-random
draws with their seeds). Inspector names and complainants never appear on either."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from ecohub.clock import local_day_start, local_zone, utcnow
from ecohub.supervision import cases, credit, evidence, service
from ecohub.supervision.risk import load_weights
from ecohub.supervision.tables import CaseStep
from ecohub.web.render import agency_user, render

router = APIRouter(include_in_schema=False)
OPEN_STEPS = [step.value for step in CaseStep if step != CaseStep.CLOSED]


def _dashboard(
    engine: Engine, weights_path: str | None, days: int, today: dt.date
) -> dict[str, Any]:
    first = today - dt.timedelta(days=days - 1)
    start, end = local_day_start(first), local_day_start(today + dt.timedelta(days=1))
    ranked = evidence.ranked(engine, start, end, load_weights(weights_path))
    open_cases = [
        c for c in cases.list_cases(engine, today=today, limit=500) if c["step"] != "closed"
    ]
    by_step = {step: [c for c in open_cases if c["step"] == step] for step in OPEN_STEPS}
    markers = [
        {
            "uscc": r["uscc"],
            "name": r["name"],
            "score": r["risk"]["score"],
            "lon": r["longitude"],
            "lat": r["latitude"],
        }
        for r in ranked
        if r["longitude"] is not None and r["latitude"] is not None
    ]
    return {
        "ranked": ranked[:50],
        "by_step": by_step,
        "overdue": sum(1 for c in open_cases if c["overdue"]),
        "markers": json.dumps(markers, ensure_ascii=False),
        "start": first.isoformat(),
        "end": today.isoformat(),
        "api_end": (today + dt.timedelta(days=1)).isoformat(),
    }


@router.get("/agency/supervision")
async def dashboard(request: Request, days: Annotated[int, Query(ge=1, le=1096)] = 365) -> Response:
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    today = utcnow().astimezone(local_zone()).date()
    context = await run_in_threadpool(
        _dashboard,
        request.app.state.engine,
        request.app.state.settings.supervision_risk_weights,
        days,
        today,
    )
    return render(request, "supervision/dashboard.html", **context)


def _public(engine: Engine) -> dict[str, Any]:
    return {
        "penalties": cases.published_decisions(engine, limit=200),
        "ratings": credit.published_ratings(engine),
        "draws": service.list_draws(engine, public=True, limit=20),
    }


@router.get("/supervision")
async def public_page(request: Request) -> Response:
    context = await run_in_threadpool(_public, request.app.state.engine)
    return render(request, "supervision/public.html", **context)
