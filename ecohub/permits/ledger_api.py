"""Routes of the environmental management ledger (环境管理台账, HJ 944-2018) under
``/api/v1/permits/ledgers`` (catalogue dataset ``permits_service``): an enterprise writes
its own permits' facilities and entries (corrections as new entries) and reads them; the
agency reads every permit's ledger and its completeness over a period."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from ecohub.accounts.keys import Principal, Role
from ecohub.permits import ledger
from ecohub.permits.ledger_rules import RecordKind
from ecohub.permits.lifecycle_api import Caller, PermitNo

router = APIRouter(prefix="/api/v1/permits/ledgers", tags=["permits"])


class FacilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(description="production (生产设施) or treatment (污染防治设施)")


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    kind: RecordKind
    condition: str = Field(default="normal", description="normal or abnormal")
    at: str = Field(description="the time recorded, Beijing time: YYYY-MM-DD HH:MM")
    values: dict[str, Any] = Field(description="the kind's fields (see docs/permits-and-tax.md)")
    operator: str = Field(min_length=1, max_length=100, description="who recorded it on site")
    facility: str | None = Field(default=None, max_length=32, description="the facility's code")
    corrects: int | None = Field(default=None, ge=1, description="the entry this corrects")
    note: str | None = Field(default=None, max_length=4000)


def _writer(caller: Principal) -> int:
    """The enterprise writing: only an enterprise's own users write its ledger."""
    if caller.role != Role.ENTERPRISE or caller.enterprise_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the enterprise keeps its own ledger")
    return int(caller.enterprise_id)


def _readable(engine: Any, caller: Principal, permit_no: str) -> None:
    """The agency reads every ledger, an enterprise its own (404 for another's)."""
    with engine.connect() as connection:
        holder = ledger.permit_enterprise(connection, permit_no)
    if caller.role == Role.ENTERPRISE and holder != caller.enterprise_id:
        raise ledger.NotFound(f"no permit {permit_no}")


async def _run(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except ledger.NotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


@router.post("/{permit_no}/facilities", status_code=201, summary="Register a facility")
async def post_facility(
    request: Request, permit_no: PermitNo, body: FacilityIn, caller: Caller
) -> dict[str, Any]:
    return await _run(
        ledger.add_facility,
        request.app.state.engine,
        permit_no,
        code=body.code,
        name=body.name,
        kind=body.kind,
        actor=caller.actor,
        enterprise_id=_writer(caller),
    )


@router.get("/{permit_no}/facilities", summary="A permit's facilities")
async def get_facilities(
    request: Request, permit_no: PermitNo, caller: Caller
) -> list[dict[str, Any]]:
    engine = request.app.state.engine
    await _run(_readable, engine, caller, permit_no)
    return await _run(ledger.list_facilities, engine, permit_no)


@router.post("/{permit_no}/entries", status_code=201, summary="Append a ledger entry")
async def post_entry(
    request: Request, permit_no: PermitNo, body: EntryIn, caller: Caller
) -> dict[str, Any]:
    return await _run(
        ledger.add_entry,
        request.app.state.engine,
        permit_no,
        kind=body.kind.value,
        condition=body.condition,
        at=body.at,
        values=body.values,
        operator=body.operator,
        facility=body.facility,
        corrects=body.corrects,
        note=body.note,
        actor=caller.actor,
        enterprise_id=_writer(caller),
    )


@router.get("/{permit_no}/entries", summary="A permit's ledger entries, newest first")
async def get_entries(
    request: Request,
    permit_no: PermitNo,
    caller: Caller,
    kind: RecordKind | None = None,
    first: Annotated[dt.date | None, Query(description="first Beijing day")] = None,
    last: Annotated[dt.date | None, Query(description="last Beijing day")] = None,
    limit: Annotated[int, Query(ge=1, le=ledger.MAX_LIST)] = 200,
) -> list[dict[str, Any]]:
    engine = request.app.state.engine
    await _run(_readable, engine, caller, permit_no)
    return await _run(
        ledger.list_entries,
        engine,
        permit_no,
        kind=kind.value if kind else None,
        first=first,
        last=last,
        limit=limit,
    )
