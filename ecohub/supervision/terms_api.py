"""The supervision area's API for a case's terms and a draw's voiding: the day a
penalty decision was served (送达, which starts the period to pay), approved extensions
(第五十七条) and suspensions (中止) of a case's periods, and setting an unpublished draw
aside with its reason (it stays numbered and publicly listed). Agency only."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ecohub.supervision import case_terms, service
from ecohub.supervision.api import Agency, CaseReader, agency_only, run
from ecohub.web.params import RowId

router = APIRouter(prefix="/api/v1/supervision", tags=["supervision"])


class ServedIn(BaseModel):
    served_on: dt.date


class TimeChangeIn(BaseModel):
    kind: Literal["extension", "suspension"]
    rule: str = Field(min_length=1, max_length=40)
    days: int = Field(ge=1, le=366)
    on: dt.date
    reason: str = Field(min_length=1, max_length=2000)


class VoidIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/cases/{case_id}/served", status_code=204, summary="The decision, served")
async def post_served(request: Request, case_id: RowId, body: ServedIn, caller: CaseReader) -> None:
    agency_only(caller)
    await run(
        case_terms.serve_decision, request.app.state.engine, case_id, body.served_on, caller.actor
    )


@router.post("/cases/{case_id}/time", summary="An approved extension or a suspension of a period")
async def post_time(
    request: Request, case_id: RowId, body: TimeChangeIn, caller: CaseReader
) -> dict[str, Any]:
    agency_only(caller)
    return await run(
        case_terms.change_time,
        request.app.state.engine,
        case_id,
        body.kind,
        body.rule,
        body.days,
        body.on,
        body.reason,
        caller.actor,
    )


@router.post("/draws/{draw_id}/void", status_code=204, summary="Set an unpublished draw aside")
async def post_void(request: Request, draw_id: RowId, body: VoidIn, caller: Agency) -> None:
    await run(service.void_draw, request.app.state.engine, draw_id, body.reason, caller.actor)
