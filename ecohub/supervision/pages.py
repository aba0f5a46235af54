"""Supervision pages: the agency's dashboard (risk-ranked enterprises on the map and in a
table, open cases by step with the overdue ones highlighted), the inspection form for a
phone or tablet in the field (check items, findings, GPS, photos and a signature; the
form's client id makes a resubmission store nothing twice) with its record page, and
the public disclosure page (published penalty decisions, credit grades with the red
list, and double-random draws with their seeds). Inspector names and complainants never
appear on a public page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine, select
from starlette.datastructures import UploadFile as StarletteUpload

from ecohub.accounts.keys import Role
from ecohub.clock import local_day_start, local_zone, utcnow
from ecohub.supervision import cases, credit, evidence, inspections, service
from ecohub.supervision.risk import load_weights
from ecohub.supervision.rules import CaseStep
from ecohub.supervision.service import SupervisionError, enterprises
from ecohub.web.render import agency_user, check_form_csrf, language, render
from ecohub.web.uploads import attachments_folder

router = APIRouter(include_in_schema=False)
OPEN_STEPS = [step.value for step in CaseStep if step != CaseStep.CLOSED]


def _dashboard(
    engine: Engine, weights_path: str | None, days: int, today: dt.date
) -> dict[str, Any]:
    first = today - dt.timedelta(days=days - 1)
    start, end = local_day_start(first), local_day_start(today + dt.timedelta(days=1))
    ranked = evidence.ranked(engine, start, end, load_weights(weights_path))
    open_cases = [
        c for c in cases.list_cases(engine, today=today, limit=500) if c["step"] != "closed"
    ]
    by_step = {step: [c for c in open_cases if c["step"] == step] for step in OPEN_STEPS}
    markers = [
        {
            "uscc": r["uscc"],
            "name": r["name"],
            "score": r["risk"]["score"],
            "lon": r["longitude"],
            "lat": r["latitude"],
        }
        for r in ranked
        if r["longitude"] is not None and r["latitude"] is not None
    ]
    return {
        "ranked": ranked[:50],
        "by_step": by_step,
        "overdue": sum(1 for c in open_cases if c["overdue"]),
        "markers": json.dumps(markers, ensure_ascii=False),
        "start": first.isoformat(),
        "end": today.isoformat(),
        "api_end": (today + dt.timedelta(days=1)).isoformat(),
    }


@router.get("/agency/supervision")
async def dashboard(request: Request, days: Annotated[int, Query(ge=1, le=1096)] = 365) -> Response:
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    today = utcnow().astimezone(local_zone()).date()
    context = await run_in_threadpool(
        _dashboard,
        request.app.state.engine,
        request.app.state.settings.supervision_risk_weights,
        days,
        today,
    )
    return render(request, "supervision/dashboard.html", **context)


def _public(engine: Engine) -> dict[str, Any]:
    return {
        "penalties": cases.published_decisions(engine, limit=200),
        "ratings": credit.published_ratings(engine),
        "draws": service.list_draws(engine, public=True, limit=20),
    }


@router.get("/supervision")
async def public_page(request: Request) -> Response:
    context = await run_in_threadpool(_public, request.app.state.engine)
    return render(request, "supervision/public.html", **context)


def check_items(lang: str) -> list[str]:
    """The default check items (``data/check_items.csv``) in the page's language."""
    text = files("ecohub.supervision").joinpath("data/check_items.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#"))
    return [row["item_en" if lang == "en" else "item_zh"] for row in rows]


FIELD = frozenset({Role.INSPECTOR})  # who may use the field pages besides the agency


def _own_code(user: Any) -> str | None:
    """An inspector's badge code (None for the agency's users)."""
    return str(user.principal.name) if user.principal.role == Role.INSPECTOR else None


def _form_context(engine: Engine, own: str | None = None) -> dict[str, Any]:
    with engine.connect() as connection:
        objects = connection.execute(
            select(enterprises.c.uscc, enterprises.c.name).order_by(enterprises.c.name)
        ).all()
    staff = [item for item in service.list_inspectors(engine) if item["active"]]
    if own is not None:  # an inspector files records naming themselves
        staff = [item for item in staff if item["code"] == own]
    return {"enterprises": objects, "inspectors": staff, "client_id": uuid.uuid4().hex}


@router.get("/agency/inspections/new")
async def inspection_form(request: Request) -> Response:
    user = agency_user(request, FIELD)
    if isinstance(user, Response):
        return user
    context = await run_in_threadpool(_form_context, request.app.state.engine, _own_code(user))
    return render(
        request,
        "supervision/inspection_form.html",
        items=check_items(language(request)),
        error=None,
        **context,
    )


@router.post("/agency/inspections")
async def inspection_submit(request: Request) -> Response:
    """The form's record and its files in one post (resubmitting it stores nothing twice:
    the form's client id and the files' hashes make it idempotent)."""
    user = agency_user(request, FIELD)
    if isinstance(user, Response):
        return user
    form = await request.form(max_files=12, max_fields=200)
    check_form_csrf(user, str(form.get("csrf_token", "")))
    engine = request.app.state.engine
    lang = language(request)
    items = check_items(lang)
    try:
        record = _record_from_form(form, items)
        own = _own_code(user)
        if own is not None and own not in record.inspectors:
            raise SupervisionError(f"inspector {own} files records naming themselves")
        stored, _created = await run_in_threadpool(
            inspections.submit, engine, record, user.principal.actor
        )
        for kind in ("photo", "signature"):
            for upload in form.getlist(kind):
                if isinstance(upload, StarletteUpload) and upload.filename:
                    data = await upload.read(inspections.MAX_ATTACHMENT_BYTES + 1)
                    await run_in_threadpool(
                        inspections.add_attachment,
                        engine,
                        attachments_folder(request.app.state.settings.var_dir),
                        stored["id"],
                        kind,
                        upload.filename,
                        data,
                        user.principal.actor,
                    )
    except (SupervisionError, ValueError) as error:
        context = await run_in_threadpool(_form_context, engine, _own_code(user))
        return render(
            request,
            "supervision/inspection_form.html",
            422,
            items=items,
            error=str(error),
            **context,
        )
    return RedirectResponse(f"/agency/inspections/{stored['id']}", status.HTTP_303_SEE_OTHER)


def _record_from_form(form: Any, items: list[str]) -> inspections.InspectionRecord:
    checks = tuple(
        inspections.Check(
            item, str(form.get(f"result_{index}", "na")), str(form.get(f"note_{index}", ""))[:2000]
        )
        for index, item in enumerate(items)
    )
    moment = str(form.get("inspected_at") or "")
    inspected = dt.datetime.fromisoformat(moment) if moment else utcnow()
    if inspected.tzinfo is None:
        inspected = inspected.replace(tzinfo=local_zone())

    def number(name: str) -> float | None:
        text = str(form.get(name) or "").strip()
        return float(text) if text else None

    return inspections.InspectionRecord(
        client_id=str(form.get("client_id", ""))[:64],
        uscc=str(form.get("uscc", "")),
        inspectors=tuple(str(code) for code in form.getlist("inspectors"))[:10],
        inspected_at=inspected,
        checks=checks,
        findings=str(form.get("findings", ""))[:8000],
        longitude=number("longitude"),
        latitude=number("latitude"),
        accuracy_m=number("accuracy_m"),
    )


@router.get("/agency/inspections/{inspection_id}")
async def inspection_page(request: Request, inspection_id: int) -> Response:
    user = agency_user(request, FIELD)
    if isinstance(user, Response):
        return user
    found = await run_in_threadpool(
        inspections.get_inspection, request.app.state.engine, inspection_id
    )
    own = _own_code(user)
    if found is None or (own is not None and own not in found["inspector_codes"]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no inspection {inspection_id}")
    return render(request, "supervision/inspection.html", i=found)
