"""The agency's alarm page: alarms filtered by kind, status, region and enterprise, a page
at a time, each described in the page's language from its evidence; acknowledged one by
one or in bulk, or closed with a reason, by a signed-in agency user (forms carry the
session's CSRF token)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine, select

from ecohub.alarms import lifecycle
from ecohub.alarms.lifecycle import AlarmError
from ecohub.alarms.notify import alarm_payload
from ecohub.alarms.rules import describe
from ecohub.alarms.tables import AlarmKind, AlarmStatus
from ecohub.registry.models import Enterprise, Region
from ecohub.registry.regions import region_prefix
from ecohub.web.render import agency_user, check_form_csrf, language, render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
STATUSES = ("unclosed", *(s.value for s in AlarmStatus), "all")


def _filters_page(engine: Engine, filters: dict[str, Any], page: int, lang: str) -> dict[str, Any]:
    enterprise_id = None
    with engine.connect() as connection:
        names: dict[str, str] = {
            code: name for code, name in connection.execute(select(Region.code, Region.name))
        }
        enterprises: dict[int, str] = {
            ident: name
            for ident, name in connection.execute(select(Enterprise.id, Enterprise.name))
        }
        if filters["enterprise"]:
            enterprise_id = connection.execute(
                select(Enterprise.id).where(Enterprise.uscc == filters["enterprise"])
            ).scalar_one_or_none()
            if enterprise_id is None:
                enterprise_id = -1  # no such enterprise: nothing matches
    wanted = {
        "status": filters["status"],
        "kind": filters["kind"] or None,
        "enterprise_id": enterprise_id,
        "region_prefix": region_prefix(filters["region"]) if filters["region"] else None,
    }
    total = lifecycle.count_alarms(engine, **wanted)
    found = lifecycle.list_alarms(engine, **wanted, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    rows = []
    for alarm in found:
        payload = alarm_payload(alarm)
        payload["description"] = describe(alarm["kind"], alarm["evidence"] or {}, lang)
        payload["region_name"] = names.get(alarm["region_code"] or "", alarm["region_code"])
        payload["enterprise_name"] = enterprises.get(alarm["enterprise_id"])
        rows.append(payload)
    pages = max(1, -(-total // PAGE_SIZE))
    query = {key: value for key, value in filters.items() if value}
    return {
        "alarms": rows,
        "total": total,
        "page": page,
        "pages": pages,
        "filters": filters,
        "kinds": [kind.value for kind in AlarmKind],
        "statuses": STATUSES,
        "regions": sorted(names.items()),
        "previous_url": f"?{urlencode({**query, 'page': page - 1})}" if page > 1 else None,
        "next_url": f"?{urlencode({**query, 'page': page + 1})}" if page < pages else None,
    }


@router.get("/agency/alarms")
async def alarms_page(
    request: Request,
    kind: Annotated[str, Query()] = "",
    status_: Annotated[str, Query(alias="status")] = "unclosed",
    region: Annotated[str, Query(pattern=r"^(\d{6})?$")] = "",
    enterprise: Annotated[str, Query(max_length=18)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    if kind and kind not in {k.value for k in AlarmKind}:
        kind = ""
    filters = {
        "kind": kind,
        "status": status_ if status_ in STATUSES else "unclosed",
        "region": region,
        "enterprise": enterprise,
    }
    context = await run_in_threadpool(
        _filters_page, request.app.state.engine, filters, page, language(request)
    )
    return render(request, "agency/alarms.html", **context)


@router.post("/agency/alarms/acknowledge")
async def acknowledge_many(
    request: Request,
    csrf_token: str = Form(""),
    alarm_ids: list[int] = Form(default=[]),
    back: str = Form(""),
) -> Response:
    """Acknowledge every alarm ticked on the page; an alarm already acknowledged or
    closed meanwhile is left as it is."""
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    check_form_csrf(user, csrf_token)
    engine = request.app.state.engine
    actor = user.principal.actor

    def acknowledge() -> None:
        for alarm_id in alarm_ids[:PAGE_SIZE]:
            try:
                lifecycle.acknowledge(engine, alarm_id, actor, None)
            except AlarmError:
                continue

    await run_in_threadpool(acknowledge)
    target = "/agency/alarms" + (back if back.startswith("?") else "")
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


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
