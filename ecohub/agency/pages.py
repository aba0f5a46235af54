"""The agency's quarantine page: rejected packets and rows with their reasons and raw
text, reviewed by a signed-in agency user (forms carry the session's CSRF token)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from ecohub.agency.service import Review, ReviewOutcome, list_quarantined, review_quarantined
from ecohub.web.render import agency_user, check_form_csrf, render

router = APIRouter(include_in_schema=False)


@router.get("/agency/quarantine")
async def quarantine_page(request: Request, all: bool = False) -> Response:
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    engine = request.app.state.engine
    rows = await run_in_threadpool(
        lambda: list_quarantined(engine, reviewed=None if all else False, limit=200)
    )
    return render(
        request,
        "agency/quarantine.html",
        rows=rows,
        show_all=all,
        outcomes=[outcome.value for outcome in ReviewOutcome],
    )


@router.post("/agency/quarantine/{row_id}/review")
async def quarantine_review(
    request: Request,
    row_id: int,
    csrf_token: str = Form(""),
    outcome: ReviewOutcome = Form(),
    note: str = Form("", max_length=2000),
) -> Response:
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    check_form_csrf(user, csrf_token)
    await run_in_threadpool(
        review_quarantined,
        request.app.state.engine,
        row_id,
        Review(outcome=outcome, note=note or None),
        user.principal.actor,
    )
    return RedirectResponse("/agency/quarantine", status.HTTP_303_SEE_OTHER)
