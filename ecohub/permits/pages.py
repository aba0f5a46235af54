"""The page of an enterprise's month of emissions and environmental protection tax: each
outlet's pollutants with the hours measured, substituted, shut down and unresolved, then
every step of the tax (mass, equivalent value, equivalents, rank, taxable, concentration
against the permit's limit, reduction, rate, tax). For the agency, and an enterprise's
own users for their enterprise."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from ecohub.accounts.keys import Role
from ecohub.clock import local_zone, utcnow
from ecohub.permits.api import compute
from ecohub.web.render import agency_user, render

router = APIRouter(include_in_schema=False)


@router.get("/enterprises/{uscc}/tax")
async def tax_page(request: Request, uscc: str, month: str | None = None) -> Response:
    user = agency_user(request, frozenset({Role.ENTERPRISE}))
    if isinstance(user, Response):
        return user
    if month is None:
        now = utcnow().astimezone(local_zone())
        month = f"{now.year - (now.month == 1)}-{(now.month - 2) % 12 + 1:02d}"
    try:
        found = await run_in_threadpool(
            compute, request.app.state.engine, user.principal, uscc, month
        )
    except HTTPException as error:
        return render(request, "permits/tax.html", error.status_code, found=None,
                      error=str(error.detail), month=month, uscc=uscc)  # fmt: skip
    return render(request, "permits/tax.html", found=found, error=None, month=month, uscc=uscc)
