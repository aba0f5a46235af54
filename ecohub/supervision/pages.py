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
import math
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
from ecohub.supervision import case_words, cases, credit, evidence, inspections, service
from ecohub.supervision.risk import load_weights
from ecohub.supervision.rules import CaseStep
from ecohub.supervision.service import SupervisionError, enterprises
from ecohub.web.i18n import register, text
from ecohub.web.render import agency_user, check_form_csrf, language, render
from ecohub.web.uploads import attachments_folder

router = APIRouter(include_in_schema=False)
register(case_words.WORDS, case_words.TERMS)
OPEN_STEPS = [step.value for step in CaseStep if step != CaseStep.CLOSED]
SHOWN_PER_STEP = 200  # cases listed under a step on the dashboard (all are counted)


def _dashboard(
    engine: Engine, weights_path: str | None, days: int, today: dt.date
) -> dict[str, Any]:
    first = today - dt.timedelta(days=days - 1)
    start, end = local_day_start(first), local_day_start(today + dt.timedelta(days=1))
    ranked = evidence.ranked(engine, start, end, load_weights(weights_path))
    open_cases = cases.open_cases(engine, today=today)  # every open case, oldest overdue first
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
        "by_step": {step: items[:SHOWN_PER_STEP] for step, items in by_step.items()},
        "step_counts": {step: len(items) for step, items in by_step.items()},
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


def _form_context(
    engine: Engine, own: str | None = None, client_id: str | None = None
) -> dict[str, Any]:
    with engine.connect() as connection:
        objects = connection.execute(
            select(enterprises.c.uscc, enterprises.c.name).order_by(enterprises.c.name)
        ).all()
    staff = [item for item in service.list_inspectors(engine) if item["active"]]
    if own is not None:  # an inspector files records naming themselves
        staff = [item for item in staff if item["code"] == own]
    return {"enterprises": objects, "inspectors": staff, "client_id": client_id or _new_id()}


def _new_id() -> str:
    return uuid.uuid4().hex


def _posted_id(form: Any) -> str | None:
    """The form's own client id as posted (kept when the form is shown again, so that
    submitting it again finds a record already stored instead of making a second)."""
    posted = str(form.get("client_id") or "").strip()
    return posted if 0 < len(posted) <= 64 and posted.isprintable() else None


def _kept(form: Any, items: list[str]) -> dict[str, Any]:
    """What the form posted, to fill it again (the device's time and position included:
    the same form submitted again is the same record)."""
    return {
        "uscc": str(form.get("uscc") or ""),
        "inspectors": [str(code) for code in form.getlist("inspectors")],
        "results": [str(form.get(f"result_{n}", "ok")) for n in range(len(items))],
        "notes": [str(form.get(f"note_{n}", "")) for n in range(len(items))],
        "findings": str(form.get("findings") or ""),
        **{name: str(form.get(name) or "") for name in _POSITION},
    }


_POSITION = ("inspected_at", "longitude", "latitude", "accuracy_m")


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
        kept=None,
        **context,
    )


class FormError(ValueError):
    """A bad field of the form, its message already in the page's language."""


async def _files(form: Any, words: dict[str, str]) -> list[tuple[str, str, bytes]]:
    """Every uploaded file, read and checked by its bytes before anything is stored."""
    found = []
    for kind in ("photo", "signature"):
        for upload in form.getlist(kind):
            if isinstance(upload, StarletteUpload) and upload.filename:
                data = await upload.read(inspections.MAX_ATTACHMENT_BYTES + 1)
                try:
                    inspections.check_attachment(kind, upload.filename, data)
                except ValueError as error:
                    raise FormError(words["svc_file_refused"].format(detail=error)) from None
                found.append((kind, upload.filename, data))
    return found


@router.post("/agency/inspections")
async def inspection_submit(request: Request) -> Response:
    """The form's record and its files in one post. The files are checked first, so a
    refused file stores nothing; the form comes back with its own client id and what was
    posted, so submitting it again stores the record once (the client id and the files'
    hashes make it idempotent)."""
    user = agency_user(request, FIELD)
    if isinstance(user, Response):
        return user
    form = await request.form(max_files=12, max_fields=200)
    check_form_csrf(user, str(form.get("csrf_token", "")))
    engine = request.app.state.engine
    lang = language(request)
    words = text(lang)
    items = check_items(lang)
    client_id = _posted_id(form) or _new_id()
    stored_id = 0
    record: inspections.InspectionRecord | None = None
    try:
        record = _record_from_form(form, items, client_id, words)
        own = _own_code(user)
        if own is not None and own not in record.inspectors:
            raise FormError(words["svc_not_self"].format(code=own))
        files = await _files(form, words)
        try:
            stored, _created = await run_in_threadpool(
                inspections.submit, engine, record, user.principal.actor
            )
            stored_id = int(stored["id"])
        except SupervisionError as error:
            raise FormError(words["svc_not_stored"].format(detail=error)) from None
        folder = attachments_folder(request.app.state.settings.var_dir)
        for kind, filename, data in files:
            try:
                await run_in_threadpool(
                    inspections.add_attachment,
                    engine,
                    folder,
                    stored_id,
                    kind,
                    filename,
                    data,
                    user.principal.actor,
                )
            except ValueError as error:
                message = words["svc_files_not_stored"].format(id=stored_id, detail=error)
                raise FormError(message) from None
    except FormError as error:
        context = await run_in_threadpool(_form_context, engine, _own_code(user), client_id)
        kept = _kept(form, items)
        if record is not None:  # the time the record was given, if the device sent none
            kept["inspected_at"] = record.inspected_at.isoformat()
        return render(
            request,
            "supervision/inspection_form.html",
            422,
            items=items,
            error=str(error),
            kept=kept,
            **context,
        )
    return RedirectResponse(f"/agency/inspections/{stored_id}", status.HTTP_303_SEE_OTHER)


_RANGES = {"longitude": (-180.0, 180.0), "latitude": (-90.0, 90.0), "accuracy_m": (0.0, 1e6)}


def _number(form: Any, name: str, words: dict[str, str]) -> float | None:
    """A number field of the form, checked against its range; errors name the field."""
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    field = words[f"svc_field_{name}"]
    try:
        value = float(raw)
    except ValueError:
        raise FormError(words["svc_not_number"].format(field=field, value=raw[:40])) from None
    low, high = _RANGES[name]
    if not (math.isfinite(value) and low <= value <= high):
        raise FormError(
            words["svc_out_of_range"].format(field=field, value=raw[:40], low=low, high=high)
        )
    return value


def _record_from_form(
    form: Any, items: list[str], client_id: str, words: dict[str, str]
) -> inspections.InspectionRecord:
    checks = tuple(
        inspections.Check(
            item, str(form.get(f"result_{index}", "na")), str(form.get(f"note_{index}", ""))[:2000]
        )
        for index, item in enumerate(items)
    )
    moment = str(form.get("inspected_at") or "").strip()
    try:
        inspected = dt.datetime.fromisoformat(moment) if moment else utcnow().replace(microsecond=0)
    except ValueError:
        field = words["svc_field_inspected_at"]
        raise FormError(words["svc_not_time"].format(field=field, value=moment[:40])) from None
    if inspected.tzinfo is None:
        inspected = inspected.replace(tzinfo=local_zone())
    team = tuple(str(code) for code in form.getlist("inspectors"))[:10]
    if not team:
        raise FormError(words["svc_no_inspectors"])
    return inspections.InspectionRecord(
        client_id=client_id,
        uscc=str(form.get("uscc", "")),
        inspectors=team,
        inspected_at=inspected,
        checks=checks,
        findings=str(form.get("findings", ""))[:8000],
        longitude=_number(form, "longitude", words),
        latitude=_number(form, "latitude", words),
        accuracy_m=_number(form, "accuracy_m", words),
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
