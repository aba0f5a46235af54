"""Routes of public participation under ``/api/v1/complaints``:

- ``POST /intake`` (dataset ``complaints_intake``: the hotline's and other operators'
  systems): up to 1,000 complaints a call, each answered on its own (its ticket and
  query code, or why it was refused); a repeat of a record id files nothing again.
- ``GET /self-query``, ``POST /self-query/satisfaction``, ``POST /self-query/objection``
  (dataset ``complaints_public``): the complainant's own ticket with its query code;
  wrong codes are counted per ticket and per address and refused past
  ``complaints_query_attempts`` in 15 minutes (429).
- ``GET /statistics`` (``complaints_public``): counts, handling times, density.
- ``/events`` and ``/agencies`` (``complaints_handling``, the agency's own staff): the
  events with their deadlines, one event with its complaints (contact details only for
  its handling agency), the evidence beside a complaint, photos, and the handling steps.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from ecohub.accounts.auth import client_address, limits_store
from ecohub.accounts.catalogue import dataset_access
from ecohub.accounts.keys import Principal, Role
from ecohub.clock import utcnow
from ecohub.complaints import handling, queries, service
from ecohub.complaints.evidence import evidence_for
from ecohub.complaints.intake import ComplaintError, Submission, check, file_complaints
from ecohub.db.limits import EventCounter
from ecohub.web.params import MAX_ROW_ID, RowId
from ecohub.web.uploads import attachment_path

router = APIRouter(prefix="/api/v1/complaints", tags=["complaints"])
QUERY_WINDOW_SECONDS = 15 * 60

Public = Annotated[Principal | None, Depends(dataset_access("complaints_public"))]
Operator = Annotated[Principal | None, Depends(dataset_access("complaints_intake"))]
Agency = Annotated[Principal | None, Depends(dataset_access("complaints_handling"))]
Ticket = Annotated[str, Query(min_length=8, max_length=20, pattern=r"^[0-9]+$")]
Code = Annotated[str, Query(min_length=4, max_length=16)]


class ComplaintIn(BaseModel):
    medium: str = Field(max_length=10)
    text: str = Field(max_length=2000)
    longitude: float
    latitude: float
    observed_at: dt.datetime | None = None
    address: str = Field(default="", max_length=300)
    contact: str = Field(default="", max_length=200)
    anonymous: bool = False
    channel: Literal["hotline", "wechat", "api", "letter"] = "api"
    external_ref: str | None = Field(default=None, min_length=1, max_length=64)


class SelfQueryIn(BaseModel):
    ticket: str = Field(min_length=8, max_length=20, pattern=r"^[0-9]+$")
    code: str = Field(min_length=4, max_length=16)


class RatingIn(SelfQueryIn):
    satisfaction: Literal["satisfied", "basically", "unsatisfied"]


class ObjectionIn(SelfQueryIn):
    reason: str = Field(min_length=5, max_length=2000)


class StepIn(BaseModel):
    reason: str = Field(default="", max_length=4000)
    to_agency: str | None = Field(default=None, max_length=32)
    days: int | None = Field(default=None, ge=1, le=365)
    findings: str = Field(default="", max_length=8000)
    reply: str = Field(default="", max_length=8000)
    enterprise_id: int | None = Field(default=None, ge=1, le=MAX_ROW_ID)
    justified: bool | None = None


@router.post("/intake", summary="File complaints from an operator's system (≤ 1,000 a call)")
async def post_intake(
    request: Request, body: Annotated[list[ComplaintIn], Field(max_length=1000)], caller: Operator
) -> list[dict[str, Any]]:
    assert caller is not None
    if not body or len(body) > 1000:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "send 1 to 1,000 complaints")
    settings = request.app.state.settings
    now = utcnow()
    answers: list[dict[str, Any]] = [{} for _ in body]
    good, where = [], []
    for index, item in enumerate(body):
        try:
            good.append(check(Submission(**item.model_dump()), now))
            where.append(index)
        except ComplaintError as error:
            answers[index] = {"index": index, "error": str(error)}
    filed = await run_in_threadpool(
        file_complaints,
        request.app.state.engine,
        service.keys_of(settings),
        good,
        caller.actor,
        service.link_settings(settings),
    )
    for index, done in zip(where, filed, strict=True):
        answers[index] = {
            "index": index,
            "ticket": done.ticket,
            "code": done.code,
            "repeat": done.repeat,
            "event_id": done.event_id,
            "linked_to": done.linked_to,
        }
    return answers


def _throttle(request: Request) -> EventCounter:
    state = request.app.state
    if not hasattr(state, "complaints_query_counter"):
        state.complaints_query_counter = EventCounter(limits_store(request), QUERY_WINDOW_SECONDS)
    counter: EventCounter = state.complaints_query_counter
    return counter


def checked_query(request: Request, ticket: str, code: str) -> dict[str, Any]:
    """The self-query answer, throttled: 429 past the limit, 404 on a wrong pair."""
    counter = _throttle(request)
    keys = [f"cq:ticket:{ticket}", f"cq:address:{client_address(request)}"]
    limit = request.app.state.settings.complaints_query_attempts
    if max(counter.counts(keys).values()) >= limit:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many wrong query codes; try again in 15 minutes",
            headers={"Retry-After": str(QUERY_WINDOW_SECONDS)},
        )
    settings = request.app.state.settings
    found = queries.self_query(request.app.state.engine, service.keys_of(settings), ticket, code)
    if found is None:
        counter.record(keys)
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no complaint with this ticket and code")
    return found


@router.get("/self-query", summary="A complainant's progress by ticket and query code")
async def get_self_query(
    request: Request, ticket: Ticket, code: Code, _caller: Public
) -> dict[str, Any]:
    return await run_in_threadpool(checked_query, request, ticket, code)


@router.post("/self-query/satisfaction", summary="The complainant's satisfaction with the reply")
async def post_rating(request: Request, body: RatingIn, _caller: Public) -> dict[str, str]:
    await run_in_threadpool(checked_query, request, body.ticket, body.code)
    keys = service.keys_of(request.app.state.settings)
    await _call(
        handling.rate, request.app.state.engine, keys, body.ticket, body.code, body.satisfaction
    )
    return {"status": "recorded"}


@router.post("/self-query/objection", summary="Object to the reply (asks for a review)")
async def post_objection(request: Request, body: ObjectionIn, _caller: Public) -> dict[str, str]:
    await run_in_threadpool(checked_query, request, body.ticket, body.code)
    keys = service.keys_of(request.app.state.settings)
    await _call(
        handling.object_to,
        request.app.state.engine,
        keys,
        body.ticket,
        body.code,
        body.reason,
        None,
        service.deadline_table(request.app.state.settings),
    )
    return {"status": "recorded"}


@router.get("/statistics", summary="Public statistics of complaints (no personal data)")
async def get_statistics(
    request: Request,
    _caller: Public,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> dict[str, Any]:
    first = start or (utcnow().date() - dt.timedelta(days=365))
    last = end or utcnow().date()
    if last < first or (last - first).days > 3660 or first.year < 2000 or last.year > 2100:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, "start..end: up to 10 years within 2000-2100"
        )
    begin = dt.datetime.combine(first, dt.time(), dt.UTC)
    finish = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
    return await run_in_threadpool(queries.statistics_of, request.app.state.engine, begin, finish)


def staff(caller: Principal | None) -> Principal:
    assert caller is not None  # a not-shared dataset admits only the agency
    return caller


async def _call(function: Any, *args: Any) -> Any:
    try:
        return await run_in_threadpool(function, *args)
    except PermissionError as error:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(error)) from None
    except ComplaintError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None


@router.get("/agencies", summary="The handling agencies")
async def get_agencies(request: Request, caller: Agency) -> list[dict[str, Any]]:
    staff(caller)
    return await run_in_threadpool(queries.agencies, request.app.state.engine)


@router.get("/events", summary="Complaint events with their deadlines")
async def get_events(
    request: Request,
    caller: Agency,
    scope: Literal["mine", "supervised", "all"] = "mine",
    event_status: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    who = staff(caller)
    engine = request.app.state.engine
    agencies = await run_in_threadpool(_scope, engine, who, scope)
    return await run_in_threadpool(
        queries.list_events, engine, agencies, event_status, overdue, limit
    )


def _scope(engine: Any, caller: Principal, scope: str) -> list[str] | None:
    if scope == "all":
        if caller.role != Role.ADMIN:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "scope=all is for administrators")
        return None
    agency = handling.agency_of(engine, caller.name)
    if agency is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"{caller.name} is no handling agency's staff"
        )
    return [agency] if scope == "mine" else queries.supervised_agencies(engine, agency)


@router.get("/events/{event_id}", summary="One event with its complaints and steps")
async def get_event(request: Request, event_id: RowId, caller: Agency) -> dict[str, Any]:
    who = staff(caller)
    keys = service.keys_of(request.app.state.settings)
    found = await run_in_threadpool(
        queries.get_event, request.app.state.engine, event_id, who.name, keys
    )
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no event {event_id}")
    return found


@router.get("/events/{event_id}/evidence", summary="The evidence beside a complaint")
async def get_evidence(
    request: Request,
    event_id: RowId,
    caller: Agency,
    complaint_id: Annotated[int, Query(ge=1, le=MAX_ROW_ID)],
    radius_m: Annotated[float, Query(ge=100, le=20_000)] = 3000,
    hours: Annotated[int, Query(ge=1, le=72)] = 6,
) -> dict[str, Any]:
    staff(caller)
    engine = request.app.state.engine
    if await run_in_threadpool(service.complaint_event, engine, complaint_id) != event_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no complaint {complaint_id} in {event_id}")
    found = await run_in_threadpool(evidence_for, engine, complaint_id, radius_m, hours)
    assert found is not None
    return found


@router.get("/events/{event_id}/photos/{sha256}", summary="A photo of one of the complaints")
async def get_photo(
    request: Request,
    event_id: RowId,
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    caller: Agency,
) -> FileResponse:
    staff(caller)
    found = await run_in_threadpool(service.photo_of, request.app.state.engine, event_id, sha256)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such photo")
    folder = service.photos_folder(request.app.state.settings)
    return FileResponse(attachment_path(folder, sha256), media_type=found[0])


@router.post("/events/{event_id}/{step}", summary="A handling step of the event")
async def post_step(
    request: Request,
    event_id: RowId,
    step: Literal[
        "accept", "refuse", "transfer", "extend", "reply", "objection", "close", "dispatch"
    ],
    body: StepIn,
    caller: Agency,
) -> dict[str, Any]:
    who = staff(caller)
    engine = request.app.state.engine
    settings = request.app.state.settings
    actor, account = who.actor, who.name
    if step == "dispatch":
        if who.role != Role.ADMIN or not body.to_agency:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "dispatch: an administrator, to_agency")
        await _call(handling.dispatch, engine, event_id, body.to_agency, actor)
    elif step == "accept":
        await _call(handling.accept, engine, event_id, actor, account)
    elif step == "refuse":
        await _call(handling.refuse, engine, event_id, body.reason, actor, account)
    elif step == "transfer":
        await _call(
            handling.transfer, engine, event_id, body.to_agency or "", body.reason, actor, account
        )
    elif step == "extend":
        await _call(
            handling.extend,
            engine,
            event_id,
            body.days or 0,
            body.reason,
            actor,
            account,
            service.deadline_table(settings),
        )
    elif step == "reply":
        await _call(
            handling.reply,
            engine,
            event_id,
            body.findings,
            body.reply,
            actor,
            account,
            body.enterprise_id,
        )
    elif step == "objection":
        await _call(
            handling.decide_objection,
            engine,
            event_id,
            bool(body.justified),
            body.reason,
            actor,
            account,
        )
    else:
        await _call(handling.close, engine, event_id, actor, account)
    found = await run_in_threadpool(
        queries.get_event, engine, event_id, account, service.keys_of(settings)
    )
    assert found is not None
    return found
