"""The permits area's tax page: an enterprise's month of emissions and environmental
protection tax with every step (and, for the agency, its reconciliation with the
declared tax). For the agency, and an enterprise's own users for their enterprise."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from ecohub.clock import local_zone, utcnow
from ecohub.permits import reconcile
from ecohub.permits.accounting import AccountingError
from ecohub.permits.api import compute, parse_month
from ecohub.permits.exchange import ExchangeError
from ecohub.permits.pages import ENTERPRISE, own_enterprise
from ecohub.web.render import agency_user, render

router = APIRouter(include_in_schema=False)


def _last_month() -> str:
    now = utcnow().astimezone(local_zone())
    return f"{now.year - (now.month == 1)}-{(now.month - 2) % 12 + 1:02d}"


@router.get("/enterprises/{uscc}/tax")
async def tax_page(request: Request, uscc: str, month: str | None = None) -> Response:
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    month = month or _last_month()
    engine = request.app.state.engine
    try:
        found = await run_in_threadpool(compute, engine, user.principal, uscc, month)
    except HTTPException as error:
        return render(request, "permits/tax.html", error.status_code, found=None,
                      error=str(error.detail), month=month, uscc=uscc, checked=None)  # fmt: skip
    checked = None
    if own_enterprise(user) is None:  # the agency sees the declared tax beside it
        try:
            year, number = parse_month(month)
            checked = await run_in_threadpool(reconcile.reconcile, engine, uscc, year, number)
        except (AccountingError, ExchangeError, ValueError):
            checked = None
    return render(
        request,
        "permits/tax.html",
        found=found,
        error=None,
        month=month,
        uscc=uscc,
        checked=checked,
    )
