"""The agency's alarm page: unclosed alarms with their evidence, acknowledged or closed
(with a reason) by a signed-in agency user; forms carry the session's CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from ecohub.alarms import lifecycle
from ecohub.alarms.lifecycle import AlarmError
from ecohub.alarms.notify import alarm_payload
from ecohub.web.render import agency_user, check_form_csrf, render

router = APIRouter(include_in_schema=False)


@router.get("/agency/alarms")
async def alarms_page(request: Request) -> Response:
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    engine = request.app.state.engine
    found = await run_in_threadpool(
        lambda: lifecycle.list_alarms(engine, status="unclosed", limit=500)
    )
    return render(request, "agency/alarms.html", alarms=[alarm_payload(a) for a in found])


@router.post("/agency/alarms/{alarm_id}/{action}")
async def alarm_action(
    request: Request,
    alarm_id: int,
    action: str,
    csrf_token: str = Form(""),
    note: str = Form("", max_length=2000),
) -> Response:
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    check_form_csrf(user, csrf_token)
    engine = request.app.state.engine
    actor = user.principal.actor
    if action == "acknowledge":
        act = lambda: lifecycle.acknowledge(engine, alarm_id, actor, note or None)  # noqa: E731
    elif action == "close" and note.strip():
        act = lambda: lifecycle.close(engine, alarm_id, actor, note)  # noqa: E731
    else:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "acknowledge, or close with a reason")
    try:
        await run_in_threadpool(act)
    except AlarmError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    return RedirectResponse("/agency/alarms", status.HTTP_303_SEE_OTHER)
