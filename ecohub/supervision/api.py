"""Supervision routes (``router``) under ``/api/v1/supervision``.

- The directories and draws (``objects``, ``inspectors``, ``draws``): the agency's own
  (catalogue dataset ``supervision_directory``, not shared); every change audited.
- Cases and credit ratings (``cases``, ``credit``): the agency manages them; an
  enterprise reads its own (another enterprise's case answers 404) and may object to its
  own draft rating (dataset ``supervision_cases``, conditional).
- Errors: bad input answers 422 with the field named first (``results.noise: score 150
  outside 0-100``); a request the state refuses (a published rating re-rated, the
  review window still open, …) answers 409.
- ``public``: what is published — draws with their seeds and inputs (anyone can re-run
  them), penalty decisions and credit grades; never an inspector's name or anything of a
  complainant (dataset ``supervision_disclosure``, unconditional).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ecohub.accounts.catalogue import AGENCY_ROLES, dataset_access
from ecohub.accounts.keys import Principal, Role
from ecohub.clock import local_day_start, local_zone, utcnow
from ecohub.supervision import cases, credit, evidence, repair, service
from ecohub.supervision.credit import InputError
from ecohub.supervision.draw import DrawRules
from ecohub.supervision.risk import load_weights
from ecohub.supervision.service import SupervisionError
from ecohub.web.params import RowId

router = APIRouter(prefix="/api/v1/supervision", tags=["supervision"])
Uscc = Annotated[str, Field(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")]
Region = Annotated[str, Field(pattern=r"^[0-9]{6}$")]
UsccPath = Annotated[str, Path(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")]
YearPath = Annotated[int, Path(ge=2000, le=2100)]
CodePath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z-]+$")]


def _caller(caller: Principal | None) -> Principal:
    assert caller is not None  # conditional and not-shared datasets never admit anonymous
    return caller


def _directory(
    caller: Annotated[Principal | None, Depends(dataset_access("supervision_directory"))],
) -> Principal:
    return _caller(caller)


def _cases(
    caller: Annotated[Principal | None, Depends(dataset_access("supervision_cases"))],
) -> Principal:
    return _caller(caller)


Agency = Annotated[Principal, Depends(_directory)]
CaseReader = Annotated[Principal, Depends(_cases)]
Public = Annotated[Principal | None, Depends(dataset_access("supervision_disclosure"))]


def agency_only(caller: Principal) -> None:
    if caller.role not in AGENCY_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the agency may change cases")


async def run(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``function`` off the event loop: bad input (``InputError``, its message opening
    with the field's name) answers 422, a request the state refuses 409."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except InputError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    except SupervisionError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None


def _today() -> dt.date:
    return utcnow().astimezone(local_zone()).date()


# --- directories ----------------------------------------------------------------------


class ObjectIn(BaseModel):
    uscc: Uscc
    category: str = Field(pattern=r"^(key|general|special)$")
    region: Region | None = None


class InspectorIn(BaseModel):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z-]+$")
    name: str = Field(min_length=1, max_length=100)
    region: Region
    qualifications: list[Annotated[str, Field(max_length=50)]] = Field(default=[], max_length=20)
    active: bool = True


class ConflictIn(BaseModel):
    uscc: Uscc
    reason: str = Field(min_length=1, max_length=500)


@router.put("/objects", summary="Put an enterprise in the inspection-object directory")
async def put_object(request: Request, body: ObjectIn, caller: Agency) -> dict[str, Any]:
    return await run(
        service.set_object,
        request.app.state.engine,
        body.uscc,
        body.category,
        caller.actor,
        body.region,
    )


@router.put("/inspectors", summary="Add or change an inspector")
async def put_inspector(request: Request, body: InspectorIn, caller: Agency) -> dict[str, Any]:
    return await run(
        service.set_inspector,
        request.app.state.engine,
        body.code,
        body.name,
        body.region,
        caller.actor,
        body.qualifications,
        body.active,
    )


@router.get("/inspectors", summary="The inspector directory (agency only: names)")
async def get_inspectors(request: Request, caller: Agency) -> list[dict[str, Any]]:
    return await run(service.list_inspectors, request.app.state.engine)


@router.post("/inspectors/{code}/conflicts", status_code=204, summary="Declare a conflict (回避)")
async def post_conflict(request: Request, code: CodePath, body: ConflictIn, caller: Agency) -> None:
    await run(
        service.declare_conflict,
        request.app.state.engine,
        code,
        body.uscc,
        body.reason,
        caller.actor,
    )


# --- draws ------------------------------------------------------------------------------


class DrawIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    rates: dict[Annotated[str, Field(max_length=16)], Annotated[float, Field(ge=0, le=1)]] = Field(
        min_length=1, max_length=3
    )
    team_size: int = Field(default=2, ge=1, le=5)
    cross_region: bool = False
    qualification: str | None = Field(default=None, max_length=50)
    max_per_inspector: int | None = Field(default=None, ge=1, le=1000)
    regions: list[Region] | None = Field(default=None, max_length=100)
    # exact: an inspector of the enterprise's own region; prefix: also of a region that
    # covers it (a city's inspector for its districts).
    region_match: Literal["exact", "prefix"] = "exact"
    seed: int | None = Field(default=None, description="refused: the server makes the seed")


@router.post("/draws", status_code=201, summary="Draw objects and inspectors at random")
async def post_draw(request: Request, body: DrawIn, caller: Agency) -> dict[str, Any]:
    rules = DrawRules(
        rates=body.rates,
        team_size=body.team_size,
        cross_region=body.cross_region,
        qualification=body.qualification,
        max_per_inspector=body.max_per_inspector,
        region_match=body.region_match,
    )
    if body.seed is not None:  # the seed is the server's (recorded with the draw)
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "seed: a draw's seed is made by the server from fresh random bytes and the "
            "inputs' digest; a seed is given only to verify a draw",
        )
    try:
        return await run(
            service.run_draw,
            request.app.state.engine,
            body.title,
            rules,
            caller.actor,
            regions=body.regions,
        )
    except ValueError as error:  # the rules' own checks (a category without objects, …)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None


@router.get("/draws", summary="Draws, newest first")
async def get_draws(request: Request, caller: Agency) -> list[dict[str, Any]]:
    return await run(service.list_draws, request.app.state.engine, public=False)


@router.get("/draws/{draw_id}", summary="A draw with its picks")
async def get_draw(request: Request, draw_id: RowId, caller: Agency) -> dict[str, Any]:
    found = await run(service.get_draw, request.app.state.engine, draw_id, public=False)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no draw {draw_id}")
    return found


@router.post("/draws/{draw_id}/publish", summary="Publish a draw (一公开)")
async def publish_draw(request: Request, draw_id: RowId, caller: Agency) -> dict[str, Any]:
    at = await run(service.publish_draw, request.app.state.engine, draw_id, caller.actor)
    return {"id": draw_id, "published_at": at}


# --- evidence and risk -------------------------------------------------------------------


def _period(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    if end <= start or (end - start).days > 3 * 366:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "end must follow start, at most 3 years later"
        )
    return local_day_start(start), local_day_start(end)


@router.get("/risk", summary="Enterprises ranked by risk score, with evidence and components")
async def get_risk(
    request: Request,
    caller: Agency,
    start: dt.date,
    end: dt.date,
    region: Annotated[str | None, Query(pattern=r"^[0-9]{6}$")] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> list[dict[str, Any]]:
    first, last = _period(start, end)
    weights = load_weights(request.app.state.settings.supervision_risk_weights)
    found = await run(
        evidence.ranked, request.app.state.engine, first, last, weights, region=region
    )
    return found[:limit]


@router.get("/evidence/{uscc}", summary="One enterprise's evidence and risk over a period")
async def get_evidence(
    request: Request, uscc: UsccPath, caller: Agency, start: dt.date, end: dt.date
) -> dict[str, Any]:
    first, last = _period(start, end)
    weights = load_weights(request.app.state.settings.supervision_risk_weights)
    engine = request.app.state.engine
    ident = await run(service.enterprise_of, engine, uscc)
    found = await run(evidence.ranked, engine, first, last, weights, enterprise_ids=[ident])
    return found[0]


# --- cases ------------------------------------------------------------------------------


class CaseIn(BaseModel):
    uscc: Uscc
    title: str = Field(min_length=1, max_length=200)
    violation: str = Field(min_length=1, max_length=4000)
    discovered_on: dt.date
    source_alarm_id: RowId | None = None
    source_inspection_id: RowId | None = None
    source_complaint_event_id: RowId | None = None


class StepIn(BaseModel):
    step: str = Field(pattern=r"^(filed|investigated|notified|decided|executed|closed)$")
    on: dt.date
    note: str | None = Field(default=None, max_length=4000)
    penalty_yuan: Decimal | None = Field(default=None, ge=0, le=Decimal("1e12"), decimal_places=2)
    legal_basis: str | None = Field(default=None, max_length=500)


class OrderIn(BaseModel):
    served_on: dt.date
    # A kind of 按日连续处罚办法 第五条 (rules.DAILY_PENALTY_VIOLATIONS): only these count
    # days for a daily continuous penalty.
    violation_kind: str | None = Field(default=None, max_length=40)


class ReinspectionIn(BaseModel):
    on: dt.date
    continuing: bool
    note: str = Field(default="", max_length=4000)


async def _visible_case(request: Request, caller: Principal, case_id: int) -> dict[str, Any]:
    found = await run(cases.get_case, request.app.state.engine, case_id, today=_today())
    if found is None or (
        caller.role == Role.ENTERPRISE and found["enterprise_id"] != caller.enterprise_id
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case {case_id}")
    return found


@router.post("/cases", status_code=201, summary="Open a case at the discovery of a violation")
async def post_case(request: Request, body: CaseIn, caller: CaseReader) -> dict[str, Any]:
    agency_only(caller)
    case_id = await run(
        cases.open_case,
        request.app.state.engine,
        body.uscc,
        body.title,
        body.violation,
        body.discovered_on,
        caller.actor,
        source_alarm_id=body.source_alarm_id,
        source_inspection_id=body.source_inspection_id,
        source_complaint_event_id=body.source_complaint_event_id,
    )
    return await _visible_case(request, caller, case_id)


@router.get("/cases", summary="Cases (an enterprise: its own)")
async def get_cases(
    request: Request,
    caller: CaseReader,
    overdue: Annotated[bool, Query(description="only cases with an overdue step")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    own = caller.enterprise_id if caller.role == Role.ENTERPRISE else None
    if caller.role not in AGENCY_ROLES and own is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "an enterprise key without an enterprise")
    return await run(
        cases.list_cases,
        request.app.state.engine,
        today=_today(),
        enterprise_id=own,
        overdue_only=overdue,
        limit=limit,
    )


@router.get("/cases/{case_id}", summary="A case: steps, deadlines, re-inspections, penalty")
async def get_case(request: Request, case_id: RowId, caller: CaseReader) -> dict[str, Any]:
    return await _visible_case(request, caller, case_id)


@router.post("/cases/{case_id}/steps", summary="Record the case's next step")
async def post_step(
    request: Request, case_id: RowId, body: StepIn, caller: CaseReader
) -> dict[str, Any]:
    agency_only(caller)
    return await run(
        cases.record_step,
        request.app.state.engine,
        case_id,
        body.step,
        body.on,
        caller.actor,
        note=body.note,
        penalty_yuan=body.penalty_yuan,
        legal_basis=body.legal_basis,
    )


@router.post("/cases/{case_id}/order", status_code=204, summary="The order to correct, served")
async def post_order(request: Request, case_id: RowId, body: OrderIn, caller: CaseReader) -> None:
    agency_only(caller)
    await run(
        cases.order_correction,
        request.app.state.engine,
        case_id,
        body.served_on,
        caller.actor,
        violation_kind=body.violation_kind,
    )


@router.post("/cases/{case_id}/reinspections", status_code=204, summary="A re-inspection")
async def post_reinspection(
    request: Request, case_id: RowId, body: ReinspectionIn, caller: CaseReader
) -> None:
    agency_only(caller)
    await run(
        cases.reinspect,
        request.app.state.engine,
        case_id,
        body.on,
        body.continuing,
        caller.actor,
        body.note,
    )


@router.post("/cases/{case_id}/publish", status_code=204, summary="Publish the decision")
async def post_publish_case(request: Request, case_id: RowId, caller: CaseReader) -> None:
    agency_only(caller)
    await run(cases.publish_case, request.app.state.engine, case_id, caller.actor)


# --- credit -------------------------------------------------------------------------------


class Text(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


class DecisionIn(BaseModel):
    grade: str = Field(pattern=r"^(green|blue|yellow|red)$")
    text: str = Field(min_length=1, max_length=4000)


def _own_rating(caller: Principal, found: dict[str, Any] | None, uscc: str) -> dict[str, Any]:
    if found is None or (
        caller.role == Role.ENTERPRISE and found["enterprise_id"] != caller.enterprise_id
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no rating of {uscc}")
    return found


class RatingIn(BaseModel):
    """Indicator results (band "1"-"3" or a score 0-100) the data does not give, the
    direct rules (一票否决) found, and the green extra indicators met."""

    results: dict[
        Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=3)] | int
    ] = Field(default={}, max_length=40)
    findings: list[Annotated[str, Field(max_length=64)]] = Field(default=[], max_length=20)
    green_extras: int = Field(default=0, ge=0, le=20)


async def _rated_enterprise(
    request: Request, caller: Principal, uscc: str, year: int, action: str
) -> None:
    """Only the rated enterprise itself may object or ask for repair (404 for another's
    rating, 403 for the agency)."""
    found = await run(credit.get_rating, request.app.state.engine, uscc, year)
    _own_rating(caller, found, uscc)
    if caller.role != Role.ENTERPRISE:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"only the rated enterprise may {action}")


@router.post("/credit/{uscc}/{year}", summary="Rate an enterprise's credit for a year (draft)")
async def post_rating(
    request: Request,
    uscc: UsccPath,
    year: YearPath,
    caller: CaseReader,
    body: RatingIn | None = None,
) -> dict[str, Any]:
    agency_only(caller)
    given = body or RatingIn()
    return await run(
        credit.rate,
        request.app.state.engine,
        uscc,
        year,
        caller.actor,
        given.results,
        given.findings,
        given.green_extras,
    )


@router.get("/credit/{uscc}/{year}", summary="An enterprise's rating (an enterprise: its own)")
async def get_rating(
    request: Request, uscc: UsccPath, year: YearPath, caller: CaseReader
) -> dict[str, Any]:
    found = await run(credit.get_rating, request.app.state.engine, uscc, year)
    return _own_rating(caller, found, uscc)


@router.post("/credit/{uscc}/{year}/objection", summary="The enterprise objects to its draft")
async def post_objection(
    request: Request, uscc: UsccPath, year: YearPath, body: Text, caller: CaseReader
) -> dict[str, Any]:
    await _rated_enterprise(request, caller, uscc, year, "object")
    return await run(
        credit.object_to,
        request.app.state.engine,
        uscc,
        year,
        body.text,
        caller.actor,
    )


@router.post("/credit/{uscc}/{year}/decision", summary="The agency decides (after an objection)")
async def post_decision(
    request: Request, uscc: UsccPath, year: YearPath, body: DecisionIn, caller: CaseReader
) -> dict[str, Any]:
    agency_only(caller)
    return await run(
        credit.decide,
        request.app.state.engine,
        uscc,
        year,
        body.grade,
        body.text,
        caller.actor,
    )


@router.post("/credit/{uscc}/{year}/publish", summary="Publish a decided rating")
async def post_publish_rating(
    request: Request, uscc: UsccPath, year: YearPath, caller: CaseReader
) -> dict[str, Any]:
    agency_only(caller)
    return await run(credit.publish, request.app.state.engine, uscc, year, caller.actor)


class RepairDecisionIn(BaseModel):
    grant: bool
    text: str = Field(min_length=1, max_length=4000)


@router.post("/credit/{uscc}/{year}/repair", status_code=201, summary="Ask for credit repair")
async def post_repair(
    request: Request, uscc: UsccPath, year: YearPath, body: Text, caller: CaseReader
) -> dict[str, Any]:
    await _rated_enterprise(request, caller, uscc, year, "ask")
    return await run(
        repair.request_repair, request.app.state.engine, uscc, year, body.text, caller.actor
    )


@router.post("/credit/{uscc}/{year}/repair/decision", summary="Grant or refuse a credit repair")
async def post_repair_decision(
    request: Request, uscc: UsccPath, year: YearPath, body: RepairDecisionIn, caller: CaseReader
) -> dict[str, Any]:
    agency_only(caller)
    return await run(
        repair.decide_repair,
        request.app.state.engine,
        uscc,
        year,
        body.grant,
        body.text,
        caller.actor,
    )


# --- public -------------------------------------------------------------------------------


@router.get("/public/draws", summary="Published draws")
async def public_draws(request: Request, caller: Public) -> list[dict[str, Any]]:
    return await run(service.list_draws, request.app.state.engine, public=True)


@router.get("/public/draws/{draw_id}", summary="A published draw, its inputs and a re-run")
async def public_draw(request: Request, draw_id: RowId, caller: Public) -> dict[str, Any]:
    found = await run(service.get_draw, request.app.state.engine, draw_id, public=True)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no published draw {draw_id}")
    found.pop("drawn_by", None)
    found["reproduced"] = await run_in_threadpool(service.verify_draw, found)
    return found


@router.get("/public/penalties", summary="Published penalty decisions")
async def public_penalties(request: Request, caller: Public) -> list[dict[str, Any]]:
    return await run(cases.published_decisions, request.app.state.engine)


@router.get("/public/credit", summary="Published credit grades")
async def public_credit(
    request: Request, caller: Public, year: Annotated[int | None, Query(ge=2000, le=2100)] = None
) -> list[dict[str, Any]]:
    return await run(credit.published_ratings, request.app.state.engine, year)
