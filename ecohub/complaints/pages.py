"""Pages of public participation: the public complaint form for a phone (a map click or
the phone's position, the medium, what happens, when, optional photos and contact;
anonymous allowed; the form's client id makes a resubmission after a lost answer file
nothing twice and show the same ticket and code), the self-query by ticket and code
(progress, deadlines, the reply, a rating and an objection), the public statistics (a
map of complaint density and charts, no personal data), and for the agency's staff the
events of their agency (or those below it) with deadlines, one event with its
complaints, the evidence beside a complaint and the handling steps as forms.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from ecohub.accounts.auth import client_address, limits_store
from ecohub.accounts.keys import Role
from ecohub.clock import local_zone, utcnow
from ecohub.complaints import handling, queries, service
from ecohub.complaints.api import checked_query
from ecohub.complaints.evidence import evidence_for
from ecohub.complaints.intake import ComplaintError, Submission, check, file_complaints
from ecohub.complaints.rules import Medium
from ecohub.complaints.tables import Channel, Satisfaction
from ecohub.db.limits import WindowLimiter
from ecohub.web.i18n import text
from ecohub.web.params import RowId
from ecohub.web.render import agency_user, check_form_csrf, language, render
from ecohub.web.uploads import sniff

router = APIRouter(include_in_schema=False)
FORM_WINDOW_SECONDS = 3600.0
MEDIA = [medium.value for medium in Medium]


def _limiter(request: Request) -> WindowLimiter:
    state = request.app.state
    if not hasattr(state, "complaints_form_limiter"):
        state.complaints_form_limiter = WindowLimiter(limits_store(request), FORM_WINDOW_SECONDS)
    limiter: WindowLimiter = state.complaints_form_limiter
    return limiter


def _form_page(request: Request, code: int = 200, error: str | None = None) -> Response:
    now = utcnow().astimezone(local_zone())
    return render(
        request,
        "complaints/new.html",
        code,
        media=MEDIA,
        client_id=uuid.uuid4().hex,
        now_local=now.strftime("%Y-%m-%dT%H:%M"),
        error=error,
    )


@router.get("/complaints/new")
async def complaint_form(request: Request) -> Response:
    return _form_page(request)


def _submission(form: FormData, now: dt.datetime) -> Submission:
    def number(name: str) -> float:
        try:
            return float(str(form.get(name) or "nan"))
        except ValueError:
            return float("nan")

    when = str(form.get("observed_at") or "")
    try:
        observed = dt.datetime.fromisoformat(when).replace(tzinfo=local_zone()) if when else None
    except ValueError:
        raise ComplaintError(f"observed_at: {when!r} is not a time") from None
    client_id = str(form.get("client_id") or "")
    return check(
        Submission(
            medium=str(form.get("medium") or ""),
            text=str(form.get("text") or ""),
            longitude=number("longitude"),
            latitude=number("latitude"),
            observed_at=observed,
            address=str(form.get("address") or ""),
            contact=str(form.get("contact") or ""),
            anonymous=form.get("anonymous") == "1",
            channel=Channel.PORTAL.value,
            external_ref=client_id[:64] or None,
        ),
        now,
    )


@router.post("/complaints/new")
async def complaint_submit(request: Request) -> Response:
    """File the form's complaint and its photos; answer with the ticket and code."""
    words = text(language(request))
    form = await request.form(max_files=3, max_fields=30)
    engine, settings = request.app.state.engine, request.app.state.settings
    try:
        submission = _submission(form, utcnow())
    except ComplaintError as error:
        return _form_page(request, 400, words["cp_error"] % error)
    photos = []
    for upload in form.getlist("photo"):
        if isinstance(upload, StarletteUpload) and upload.filename:
            photos.append((upload.filename, await upload.read(service.MAX_PHOTO_BYTES + 1)))
    for name, data in photos:  # checked before anything is filed
        if len(data) > service.MAX_PHOTO_BYTES or sniff(data) not in service.PHOTO_TYPES:
            return _form_page(request, 400, words["cp_error"] % f"{name}: JPEG/PNG ≤ 5 MB")
    wait = _limiter(request).hit(
        f"complaint-form:{client_address(request)}", settings.complaints_per_client_hour
    )
    if wait:
        return _form_page(request, 429, words["cp_throttled"])
    filed = (
        await run_in_threadpool(
            file_complaints,
            engine,
            service.keys_of(settings),
            [submission],
            "public:portal",
            service.link_settings(settings),
        )
    )[0]
    folder = service.photos_folder(settings)
    for name, data in photos:
        await run_in_threadpool(service.add_photo, engine, folder, filed.complaint_id, name, data)
    found = await run_in_threadpool(
        queries.self_query, engine, service.keys_of(settings), filed.ticket, filed.code or ""
    )
    return render(request, "complaints/filed.html", 201, filed=filed, found=found)


@router.get("/complaints/query")
async def query_form(request: Request) -> Response:
    return render(request, "complaints/query.html", found=None, error=None, ticket="", code="")


async def _status_page(
    request: Request, ticket: str, code: str, note: str | None = None
) -> Response:
    words = text(language(request))
    try:
        found = await run_in_threadpool(checked_query, request, ticket, code)
    except HTTPException as error:
        message = (
            words["cp_query_throttled"] if error.status_code == 429 else words["cp_query_wrong"]
        )
        return render(
            request,
            "complaints/query.html",
            error.status_code,
            found=None,
            error=message,
            ticket=ticket,
            code="",
        )
    return render(
        request,
        "complaints/query.html",
        found=found,
        error=None,
        ticket=ticket,
        code=code,
        note=note,
        satisfactions=[s.value for s in Satisfaction],
    )


@router.post("/complaints/query")
async def query_submit(request: Request) -> Response:
    form = await request.form(max_fields=10)
    return await _status_page(
        request, str(form.get("ticket") or "").strip()[:20], str(form.get("code") or "")[:16]
    )


@router.post("/complaints/query/{action}")
async def query_action(request: Request, action: str) -> Response:
    """The complainant's rating or objection, then the status page again."""
    if action not in ("satisfaction", "objection"):
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    form = await request.form(max_fields=10)
    ticket, code = str(form.get("ticket") or "")[:20], str(form.get("code") or "")[:16]
    words = text(language(request))
    try:
        await run_in_threadpool(checked_query, request, ticket, code)
    except HTTPException:
        return await _status_page(request, ticket, code)
    engine, settings = request.app.state.engine, request.app.state.settings
    keys = service.keys_of(settings)
    try:
        if action == "satisfaction":
            await run_in_threadpool(
                handling.rate, engine, keys, ticket, code, str(form.get("satisfaction") or "")
            )
        else:
            await run_in_threadpool(
                handling.object_to,
                engine,
                keys,
                ticket,
                code,
                str(form.get("reason") or ""),
                None,
                service.deadline_table(settings),
            )
        note = words["cp_recorded"]
    except (ComplaintError, PermissionError) as error:
        note = words["cp_error"] % error
    return await _status_page(request, ticket, code, note)


@router.get("/complaints/statistics")
async def statistics_page(request: Request, days: int = 365) -> Response:
    days = min(max(days, 1), 3660)
    end = utcnow()
    found = await run_in_threadpool(
        queries.statistics_of, request.app.state.engine, end - dt.timedelta(days=days), end
    )
    return render(
        request,
        "complaints/statistics.html",
        stats=found,
        days=days,
        chart=json.dumps(
            {
                "months": found["by_month"],
                "media": found["by_medium"],
                "regions": {item["region_code"]: item["count"] for item in found["by_region"]},
                "cells": found["density"]["cells"],
            },
            ensure_ascii=False,
        ),
    )


@router.get("/agency/complaints")
async def events_page(request: Request, scope: str = "mine", overdue: bool = False) -> Response:
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    engine = request.app.state.engine
    agency = await run_in_threadpool(handling.agency_of, engine, user.principal.name)
    if agency is None and user.principal.role != Role.ADMIN:
        return render(
            request, "complaints/events.html", events=[], agency=None, scope=scope, overdue=overdue
        )
    if agency is None:
        codes = None
    elif scope == "supervised":
        codes = await run_in_threadpool(queries.supervised_agencies, engine, agency)
    else:
        codes = [agency]
    events = await run_in_threadpool(queries.list_events, engine, codes, None, overdue, 300)
    return render(
        request,
        "complaints/events.html",
        events=events,
        agency=agency,
        scope=scope,
        overdue=overdue,
    )


@router.get("/agency/complaints/{event_id}")
async def event_page(request: Request, event_id: RowId, complaint: int | None = None) -> Response:
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    engine, settings = request.app.state.engine, request.app.state.settings
    found = await run_in_threadpool(
        queries.get_event, engine, event_id, user.principal.name, service.keys_of(settings)
    )
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    members: list[int] = [item["id"] for item in found["complaints"]]
    chosen = complaint if complaint is not None and complaint in members else members[0]
    evidence = await run_in_threadpool(evidence_for, engine, chosen)
    agencies = await run_in_threadpool(queries.agencies, engine)
    return render(
        request,
        "complaints/event.html",
        event=found,
        evidence=evidence,
        chosen=chosen,
        agencies=agencies,
        error=request.query_params.get("error"),
    )


@router.post("/agency/complaints/{event_id}/{step}")
async def event_step(request: Request, event_id: RowId, step: str) -> Response:
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    form = await request.form(max_fields=20)
    check_form_csrf(user, str(form.get("csrf_token", "")))
    engine, settings = request.app.state.engine, request.app.state.settings
    actor, account = user.principal.actor, user.principal.name
    value = lambda name: str(form.get(name) or "")  # noqa: E731
    calls: dict[str, tuple[Any, ...]] = {
        "accept": (handling.accept, engine, event_id, actor, account),
        "refuse": (handling.refuse, engine, event_id, value("reason"), actor, account),
        "transfer": (
            handling.transfer,
            engine,
            event_id,
            value("to_agency"),
            value("reason"),
            actor,
            account,
        ),
        "extend": (
            handling.extend,
            engine,
            event_id,
            _int(value("days")),
            value("reason"),
            actor,
            account,
            service.deadline_table(settings),
        ),
        "reply": (
            handling.reply,
            engine,
            event_id,
            value("findings"),
            value("reply"),
            actor,
            account,
        ),
        "objection": (
            handling.decide_objection,
            engine,
            event_id,
            value("justified") == "1",
            value("reason"),
            actor,
            account,
        ),
        "close": (handling.close, engine, event_id, actor, account),
    }
    if step not in calls:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    function, *arguments = calls[step]
    target = f"/agency/complaints/{event_id}"
    try:
        await run_in_threadpool(function, *arguments)
    except (ComplaintError, PermissionError) as error:
        target += f"?error={quote(str(error))}"
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0
