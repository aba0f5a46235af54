"""Routes of the permits area under ``/api/v1/permits`` (catalogue dataset
``permits_tax``: the agency, and an enterprise for itself): a month's emissions
accounting and environmental protection tax of an enterprise, every step kept; a year's
emissions against the permit's annual mass limits, or a month's masses day by day."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from ecohub.accounts.catalogue import dataset_access
from ecohub.accounts.keys import Principal, Role
from ecohub.permits.accounting import AccountingError, enterprise_id_of, enterprise_year
from ecohub.permits.tax import month_tax
from ecohub.permits.tax_days import month_days

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


def compute(
    engine: Any, caller: Principal | None, uscc: str, month: str, zone: str | None = None
) -> dict[str, Any]:
    """The month's tax if the caller may see this enterprise's (404 otherwise); ``zone``
    where the province sets its rates by area and the division does not say which."""
    _may_see(engine, caller, uscc)
    try:
        year, number = parse_month(month)
        found = month_tax(engine, uscc, year, number, zone=zone or None)
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
    zone: Annotated[
        str | None,
        Query(
            max_length=20,
            description="the rate zone where the province sets rates by area "
            "(河北: 一档, 二档, 三档; 江苏's city is taken from the enterprise's division)",
        ),
    ] = None,
) -> dict[str, Any]:
    return await run_in_threadpool(compute, request.app.state.engine, caller, uscc, month, zone)


def year_emissions(engine: Any, caller: Principal | None, uscc: str, year: int) -> dict[str, Any]:
    _may_see(engine, caller, uscc)
    try:
        return enterprise_year(engine, uscc, year)
    except AccountingError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None


def day_emissions(
    engine: Any, caller: Principal | None, uscc: str, month: str | None
) -> dict[str, Any]:
    _may_see(engine, caller, uscc)
    if month is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "month: required with by=day")
    try:
        year, number = parse_month(month)
        return month_days(engine, uscc, year, number)
    except AccountingError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except ValueError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(error)) from None


@router.get(
    "/{uscc}/emissions",
    summary="A year's emissions against the permit's mass limits, or a month's by day",
)
async def get_emissions(
    request: Request,
    uscc: Uscc,
    caller: Reader,
    year: Annotated[int | None, Query(ge=2000, le=2200)] = None,
    by: Annotated[Literal["year", "day"], Query(description="day: a month's masses by day")] = (
        "year"
    ),
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
) -> dict[str, Any]:
    engine = request.app.state.engine
    if by == "day":
        return await run_in_threadpool(day_emissions, engine, caller, uscc, month)
    if year is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "year: required with by=year")
    return await run_in_threadpool(year_emissions, engine, caller, uscc, year)
