"""The permits area's tax page: an enterprise's month of emissions and environmental
protection tax with every step — the data source of each pollutant (第十条), the
equivalents, the ranking (第九条), the reductions and their reasons (第十三条), the rate
and its source — and, for the agency, its reconciliation with the declared tax. For the
agency, and an enterprise's own users for their enterprise."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, select

from ecohub.clock import local_zone, utcnow
from ecohub.permits import reconcile, tax_words
from ecohub.permits.accounting import AccountingError
from ecohub.permits.api import compute, parse_month
from ecohub.permits.exchange import ExchangeError
from ecohub.permits.pages import ENTERPRISE, own_enterprise
from ecohub.registry.models import Parameter
from ecohub.standards import envtax
from ecohub.web.i18n import register
from ecohub.web.render import agency_user, render

register(tax_words.WORDS, tax_words.TERMS)
router = APIRouter(include_in_schema=False)
_TAXED = {
    "air": envtax.AIR_ITEMS,
    "first": envtax.FIRST_CLASS_ITEMS,
    "other": envtax.OTHER_CLASS_ITEMS,
}


def _last_month() -> str:
    now = utcnow().astimezone(local_zone())
    return f"{now.year - (now.month == 1)}-{(now.month - 2) % 12 + 1:02d}"


def english_names(engine: Engine, found: dict[str, Any] | None) -> dict[str, str]:
    """The English names (HJ 212 parameter table) of the month's pollutants."""
    if not found:
        return {}
    codes = {
        row["parameter_code"]
        for outlet in found["outlets"]
        for row in (*outlet["accounting"], *outlet.get("sources", ()))
    }
    with engine.connect() as connection:
        rows = connection.execute(
            select(Parameter.code, Parameter.name_en).where(Parameter.code.in_(sorted(codes)))
        ).all()
    return {code: name for code, name in rows if name}


def ranked_counts(found: dict[str, Any] | None) -> None:
    """Each step's group size (``ranked_of``) and how many of its group are taxed
    (``taxed_of``), for the ranking column."""
    for outlet in (found or {}).get("outlets", ()):
        steps = outlet["steps"]
        groups = Counter(step["water_class"] or "air" for step in steps if step["rank"] is not None)
        for step in steps:
            group = step["water_class"] or "air"
            step["group"] = group
            step["ranked_of"] = groups[group]
            step["taxed_of"] = _TAXED[group]


@router.get("/enterprises/{uscc}/tax")
async def tax_page(
    request: Request, uscc: str, month: str | None = None, zone: str | None = None
) -> Response:
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    month = month or _last_month()
    zone = zone or None
    engine = request.app.state.engine
    try:
        found = await run_in_threadpool(compute, engine, user.principal, uscc, month, zone)
    except HTTPException as error:
        return render(request, "permits/tax.html", error.status_code, found=None,
                      error=str(error.detail), month=month, uscc=uscc, checked=None,
                      zone=zone, names={})  # fmt: skip
    checked = None
    if own_enterprise(user) is None:  # the agency sees the declared tax beside it
        try:
            year, number = parse_month(month)
            checked = await run_in_threadpool(reconcile.reconcile, engine, uscc, year, number)
        except (AccountingError, ExchangeError, ValueError):
            checked = None
    ranked_counts(found)
    names = await run_in_threadpool(english_names, engine, found)
    return render(
        request,
        "permits/tax.html",
        found=found,
        error=None,
        month=month,
        uscc=uscc,
        checked=checked,
        zone=zone,
        names=names,
    )
