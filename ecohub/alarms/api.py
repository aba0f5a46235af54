"""Alarm routes of the API (``router``): list, read, acknowledge, annotate and close alarms.

Agency and admin callers see every alarm; an enterprise caller sees and acts on its own
enterprise's alarms only (another enterprise's alarm answers 404, so that its existence
is not disclosed); other keys are refused. Every action is recorded in the alarm's
history under the key's name.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ecohub.accounts.catalogue import dataset_access
from ecohub.accounts.keys import Principal, Role
from ecohub.alarms import lifecycle
from ecohub.alarms.lifecycle import AlarmError
from ecohub.alarms.notify import alarm_payload
from ecohub.alarms.tables import AlarmKind
from ecohub.web.params import MAX_ROW_ID, RowId


class Note(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class Annotation(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


class Closing(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


def alarm_caller(
    caller: Annotated[Principal | None, Depends(dataset_access("alarms"))],
) -> Principal:
    """The caller, if the catalogue's alarms dataset admits its role."""
    assert caller is not None  # a conditional dataset never admits the anonymous
    return caller


Caller = Annotated[Principal, Depends(alarm_caller)]
router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])


def visible(caller: Principal, alarm_id: int, engine: Any) -> dict[str, Any]:
    alarm = lifecycle.get_alarm(engine, alarm_id)
    if alarm is None or (
        caller.role == Role.ENTERPRISE and alarm["enterprise_id"] != caller.enterprise_id
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alarm {alarm_id}")
    return alarm


@router.get("", summary="List alarms, newest first")
async def list_alarms(
    request: Request,
    caller: Caller,
    alarm_status: Annotated[
        Literal["unclosed", "open", "acknowledged", "closed", "all"],
        Query(alias="status"),
    ] = "unclosed",
    kind: AlarmKind | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> list[dict[str, Any]]:
    found = await run_in_threadpool(
        lifecycle.list_alarms,
        request.app.state.engine,
        status=alarm_status,
        kind=kind.value if kind else None,
        enterprise_id=caller.enterprise_id if caller.role == Role.ENTERPRISE else None,
        limit=limit,
        offset=offset,
    )
    return [alarm_payload(alarm) for alarm in found]


@router.get("/{alarm_id}", summary="One alarm with its evidence and history")
async def get_alarm(request: Request, caller: Caller, alarm_id: RowId) -> dict[str, Any]:
    engine = request.app.state.engine
    alarm = await run_in_threadpool(visible, caller, alarm_id, engine)
    history = await run_in_threadpool(lifecycle.alarm_history, engine, alarm_id)
    payload = alarm_payload(alarm)
    payload["history"] = [
        {
            "at": event["at"].isoformat(),
            "actor": event["actor"],
            "action": event["action"],
            "note": event["note"],
        }
        for event in history
    ]
    return payload


async def act(request: Request, caller: Principal, alarm_id: int, action: Any) -> None:
    engine = request.app.state.engine
    await run_in_threadpool(visible, caller, alarm_id, engine)
    try:
        await run_in_threadpool(action, engine)
    except AlarmError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None


@router.post("/{alarm_id}/acknowledge", status_code=204, summary="Acknowledge an alarm")
async def acknowledge(request: Request, caller: Caller, alarm_id: RowId, body: Note) -> None:
    await act(
        request,
        caller,
        alarm_id,
        lambda engine: lifecycle.acknowledge(engine, alarm_id, caller.actor, body.note),
    )


@router.post("/{alarm_id}/annotate", status_code=204, summary="Add a note to an alarm")
async def annotate(request: Request, caller: Caller, alarm_id: RowId, body: Annotation) -> None:
    await act(
        request,
        caller,
        alarm_id,
        lambda engine: lifecycle.annotate(engine, alarm_id, caller.actor, body.note),
    )


@router.post("/{alarm_id}/close", status_code=204, summary="Close an alarm with a reason")
async def close(request: Request, caller: Caller, alarm_id: RowId, body: Closing) -> None:
    if caller.role == Role.ENTERPRISE:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the agency closes alarms by hand")
    await act(
        request,
        caller,
        alarm_id,
        lambda engine: lifecycle.close(engine, alarm_id, caller.actor, body.reason),
    )
