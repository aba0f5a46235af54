"""The enterprise credit page and the risk explanation page (issue 27: "an explanation
page per enterprise", "an enterprise credit page").

- ``/enterprises/{uscc}/credit``: a year's credit rating (环发〔2013〕150号) — the grade in
  effect with its name and reason, each indicator with its result (band or score), its
  score and who gave it, indicator 1 per outlet with links to the exceedance alarms it
  rests on, the 一票否决 conditions checked, repairs and the consequences of the grade.
  The agency sees every rating, an enterprise its own drafts too, everyone else only
  published ones.
- ``/agency/supervision/risk/{uscc}``: the risk score's components (value, target, cap,
  weight, points) and the evidence rows behind them, for the agency and the enterprise
  itself.

Both read through the same functions as the API (:mod:`ecohub.supervision.credit`,
:mod:`ecohub.supervision.evidence`); times are shown in Beijing time.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine, select

from ecohub.accounts.auth import signed_in
from ecohub.accounts.catalogue import AGENCY_ROLES
from ecohub.accounts.keys import Role
from ecohub.clock import local_day_start, local_zone, utcnow
from ecohub.supervision import credit, credit_words, evidence, flags, rules
from ecohub.supervision.risk import load_weights
from ecohub.supervision.service import enterprises
from ecohub.supervision.tables import RatingStatus, credit_ratings
from ecohub.web.i18n import register
from ecohub.web.render import message, render

register(credit_words.WORDS, credit_words.TERMS)
router = APIRouter(include_in_schema=False)
UsccPath = Annotated[str, Path(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")]


def _viewer(request: Request) -> tuple[bool, int | None]:
    """(agency?, the signed-in enterprise's id or None)."""
    user = signed_in(request)
    if user is None:
        return False, None
    if user.principal.role in AGENCY_ROLES:
        return True, None
    if user.principal.role == Role.ENTERPRISE:
        return False, user.principal.enterprise_id
    return False, None


def _enterprise(engine: Engine, uscc: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(
            select(enterprises.c.id, enterprises.c.uscc, enterprises.c.name).where(
                enterprises.c.uscc == uscc
            )
        ).first()


def _indicators(explanation: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored indicators, the measured one's evidence split out for the page."""
    table = rules.credit_rules().indicators
    out = []
    for item in explanation.get("indicators", []):
        found = item.get("evidence")
        known = table.get(item["key"])
        out.append(
            {
                **item,
                "number": known.number if known else None,
                "name_en": known.name_en if known else item["key"],
                "measured": found if isinstance(found, dict) else None,
            }
        )
    return out


def _credit_context(
    engine: Engine, uscc: str, year: int | None, sees_all: bool
) -> dict[str, Any] | None:
    """What the credit page shows; None when the enterprise is unknown or the year asked
    for is not visible to the viewer."""
    found = _enterprise(engine, uscc)
    if found is None:
        return None
    query = select(credit_ratings.c.year, credit_ratings.c.status).where(
        credit_ratings.c.enterprise_id == found.id
    )
    if not sees_all:
        query = query.where(credit_ratings.c.status == RatingStatus.PUBLISHED.value)
    with engine.connect() as connection:
        years = [
            row.year for row in connection.execute(query.order_by(credit_ratings.c.year.desc()))
        ]
        flag = flags.credit_flag(connection, found.id)
    context: dict[str, Any] = {
        "enterprise": found,
        "years": years,
        "flag": flag,
        "rating": None,
        "sees_all": sees_all,
    }
    if year is not None and year not in years:
        return None
    chosen = year if year is not None else (years[0] if years else None)
    if chosen is None:
        return context
    rating = credit.get_rating(engine, uscc, chosen)
    assert rating is not None
    explanation = rating["explanation"]
    findings = set(explanation.get("findings", []))
    context.update(
        rating=rating,
        year=chosen,
        indicators=_indicators(explanation),
        direct=[
            {
                "key": key,
                "text": rule.text,
                "text_en": rule.text_en or key,
                "citation": rule.citation,
                "found": key in findings,
            }
            for key, rule in rules.credit_rules().direct.items()
        ],
        repairs=explanation.get("repairs", []),
        changes=explanation.get("changes", []),
    )
    return context


@router.get("/enterprises/{uscc}/credit")
async def credit_page(
    request: Request,
    uscc: UsccPath,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> Response:
    agency, own = _viewer(request)
    engine = request.app.state.engine
    found = await run_in_threadpool(_enterprise, engine, uscc)
    sees_all = agency or (own is not None and found is not None and found.id == own)
    context = await run_in_threadpool(_credit_context, engine, uscc, year, sees_all)
    if context is None:
        return message(request, 404, "not_found")
    return render(request, "supervision/credit.html", agency=agency, **context)


def _risk_context(
    engine: Engine, weights_path: str | None, ident: int, days: int, today: dt.date
) -> dict[str, Any]:
    first = today - dt.timedelta(days=days - 1)
    start, end = local_day_start(first), local_day_start(today + dt.timedelta(days=1))
    [found] = evidence.ranked(
        engine, start, end, load_weights(weights_path), enterprise_ids=[ident]
    )
    return {
        "e": found,
        "start": first.isoformat(),
        "end": today.isoformat(),
        "api_end": (today + dt.timedelta(days=1)).isoformat(),
        "days": days,
    }


@router.get("/agency/supervision/risk/{uscc}")
async def risk_page(
    request: Request,
    uscc: UsccPath,
    days: Annotated[int, Query(ge=1, le=1096)] = 365,
) -> Response:
    user = signed_in(request)
    if user is None:
        return RedirectResponse(f"/login?next={request.url.path}", 303)
    agency, own = _viewer(request)
    engine = request.app.state.engine
    found = await run_in_threadpool(_enterprise, engine, uscc)
    if found is None or not (agency or own == found.id):
        return message(request, 404, "not_found")
    today = utcnow().astimezone(local_zone()).date()
    context = await run_in_threadpool(
        _risk_context,
        engine,
        request.app.state.settings.supervision_risk_weights,
        found.id,
        days,
        today,
    )
    return render(request, "supervision/risk_explained.html", agency=agency, **context)
