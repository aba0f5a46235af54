"""Routes of the permits area under ``/api/v1/permits`` (catalogue dataset
``permits_tax``: the agency, and an enterprise for itself): a month's emissions
accounting and environmental protection tax of an enterprise, every step kept; a year's
emissions against the permit's annual mass limits."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from ecohub.accounts.catalogue import dataset_access
from ecohub.accounts.keys import Principal, Role
from ecohub.permits.accounting import AccountingError, enterprise_id_of, enterprise_year
from ecohub.permits.tax import month_tax

router = APIRouter(prefix="/api/v1/permits", tags=["permits"])
Reader = Annotated[Principal | None, Depends(dataset_access("permits_tax"))]
Uscc = Annotated[str, Path(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")]
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(text: str) -> tuple[int, int]:
    found = MONTH.match(text)
    if found is None:
        raise ValueError(f"month: {text!r} is not YYYY-MM")
    return int(found.group(1)), int(found.group(2))


def _may_see(engine: Any, caller: Principal | None, uscc: str) -> None:
    if (
        caller is not None
        and caller.role == Role.ENTERPRISE
        and enterprise_id_of(engine, uscc) != caller.enterprise_id
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enterprise {uscc}")


def compute(engine: Any, caller: Principal | None, uscc: str, month: str) -> dict[str, Any]:
    """The month's tax if the caller may see this enterprise's (404 otherwise)."""
    _may_see(engine, caller, uscc)
    try:
        year, number = parse_month(month)
        found = month_tax(engine, uscc, year, number)
    except AccountingError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except ValueError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(error)) from None
    return found


@router.get("/{uscc}/tax", summary="A month's emissions and environmental protection tax")
async def get_tax(
    request: Request,
    uscc: Uscc,
    caller: Reader,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
) -> dict[str, Any]:
    return await run_in_threadpool(compute, request.app.state.engine, caller, uscc, month)


def year_emissions(engine: Any, caller: Principal | None, uscc: str, year: int) -> dict[str, Any]:
    _may_see(engine, caller, uscc)
    try:
        return enterprise_year(engine, uscc, year)
    except AccountingError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None


@router.get("/{uscc}/emissions", summary="A year's emissions against the permit's mass limits")
async def get_emissions(
    request: Request,
    uscc: Uscc,
    caller: Reader,
    year: Annotated[int, Query(ge=2000, le=2200)],
) -> dict[str, Any]:
    return await run_in_threadpool(year_emissions, request.app.state.engine, caller, uscc, year)
