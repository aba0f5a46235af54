"""The permits area's pages: the online service hall (applications, their steps,
documents and decisions), the versions of a permit, the execution reports (generated,
completed, signed, reviewed), and an enterprise's month of emissions and environmental
protection tax with every step (and, for the agency, its reconciliation with the
declared tax). For the agency, and an enterprise's own users for their enterprise; forms
post with the session's CSRF token. The hall, an application and a permit's versions
carry the enterprise's credit flag (its published grade; red, the blacklist, with its
consequences: :mod:`ecohub.supervision.flag_reads`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from ecohub.accounts.keys import Role
from ecohub.clock import local_today
from ecohub.permits import downloads, forms, lifecycle, reports, versions, words
from ecohub.permits.accounting import enterprise_id_of
from ecohub.supervision.flag_reads import credit_flag_of, credit_flags
from ecohub.web.i18n import register
from ecohub.web.params import RowId
from ecohub.web.render import SignedIn, agency_user, check_form_csrf, language, render
from ecohub.web.uploads import UploadRefused, attachments_folder

register(words.WORDS, words.TERMS)
router = APIRouter(include_in_schema=False)
ENTERPRISE = frozenset({Role.ENTERPRISE})
FAILURES = (lifecycle.PermitError, reports.ReportError, UploadRefused, ValueError)


def own_enterprise(user: SignedIn) -> int | None:
    """The enterprise whose records the user sees (None: the agency sees all)."""
    return user.principal.enterprise_id if user.principal.role == Role.ENTERPRISE else None


def _deny_other(user: SignedIn, enterprise_id: int) -> None:
    mine = own_enterprise(user)
    if mine is not None and mine != enterprise_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND)


def _back(path: str, error: str | None = None) -> Response:
    target = path if error is None else f"{path}?error={quote(error[:300])}"
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


def _say(request: Request, error: Exception, lines: dict[str, list[int]] | None = None) -> str:
    """A refusal as the page shows it: form errors in the user's language."""
    if isinstance(error, lifecycle.PermitError):
        return forms.explain(error, language(request), lines)
    return str(error)


def _folder(request: Request) -> Any:
    return attachments_folder(request.app.state.settings.var_dir)


@router.get("/permits")
async def hall(request: Request) -> Response:
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    engine = request.app.state.engine
    found = await run_in_threadpool(lifecycle.list_applications, engine, own_enterprise(user))
    listed = await run_in_threadpool(reports.list_reports, engine, own_enterprise(user))
    held = await run_in_threadpool(versions.list_permits, engine, own_enterprise(user))
    usccs = [p["uscc"] for p in held] + [a["uscc"] for a in found]
    flags = await run_in_threadpool(credit_flags, engine, usccs)
    return render(
        request,
        "permits/hall.html",
        applications=found,
        reports=listed,
        permits=held,
        flags=flags,
        error=request.query_params.get("error"),
    )


@router.post("/permits/apply")
async def apply(request: Request) -> Response:
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    form = await request.form(max_fields=20)
    check_form_csrf(user, str(form.get("csrf_token", "")))
    engine = request.app.state.engine
    uscc = str(form.get("uscc") or "")
    if own_enterprise(user) is not None and enterprise_id_of(engine, uscc) != own_enterprise(user):
        return _back("/permits", f"no enterprise {uscc}")
    lines: dict[str, list[int]] = {}
    try:
        content, lines = forms.content_from_form(form, language(request))
        made = await run_in_threadpool(
            lambda: lifecycle.apply(
                engine,
                uscc=uscc,
                kind=str(form.get("kind") or ""),
                management_class=str(form.get("management_class") or ""),
                content=content,
                actor=user.principal.actor,
                permit_no=str(form.get("permit_no") or "") or None,
            )
        )
    except FAILURES as error:
        return _back("/permits", _say(request, error, lines))
    return _back(f"/permits/applications/{made['id']}")


@router.get("/permits/applications/{application_id}")
async def application_page(request: Request, application_id: RowId) -> Response:
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    try:
        found = await run_in_threadpool(
            lifecycle.get_application, request.app.state.engine, application_id
        )
    except lifecycle.PermitError:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from None
    _deny_other(user, found["enterprise_id"])
    flag = await run_in_threadpool(credit_flag_of, request.app.state.engine, found["uscc"])
    return render(
        request,
        "permits/application.html",
        a=found,
        flag=flag,
        error=request.query_params.get("error"),
    )


@router.post("/permits/applications/{application_id}/{action}")
async def application_action(request: Request, application_id: RowId, action: str) -> Response:
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    form = await request.form(max_fields=10, max_files=1)
    check_form_csrf(user, str(form.get("csrf_token", "")))
    engine, settings = request.app.state.engine, request.app.state.settings
    here = f"/permits/applications/{application_id}"
    try:
        found = await run_in_threadpool(lifecycle.get_application, engine, application_id)
        _deny_other(user, found["enterprise_id"])
        if action == "document":
            upload = form.get("file")
            data = await upload.read(lifecycle.DOCUMENT_MAX_BYTES + 1)  # type: ignore[union-attr]
            await run_in_threadpool(
                lambda: lifecycle.add_document(
                    engine,
                    attachments_folder(settings.var_dir),
                    application_id,
                    title=str(getattr(upload, "filename", "") or "document"),
                    data=data,
                    actor=user.principal.actor,
                )
            )
        elif action == "decision":
            on = forms.day(language(request), form.get("on"), "on")
            await run_in_threadpool(
                lambda: lifecycle.decide(
                    engine,
                    application_id,
                    str(form.get("status") or ""),
                    actor=user.principal.actor,
                    by="enterprise" if own_enterprise(user) is not None else "agency",
                    reason=str(form.get("reason") or "") or None,
                    site_check=form.get("site_check") == "yes",
                    on=on,
                )
            )
        else:
            raise HTTPException(status.HTTP_404_NOT_FOUND)
    except FAILURES as error:
        return _back(here, _say(request, error))
    return _back(here)


@router.get("/permits/applications/{application_id}/documents/{document_id}")
async def document_file(request: Request, application_id: RowId, document_id: RowId) -> Response:
    """A document of an application (the agency, or the enterprise's own users)."""
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    try:
        found = await run_in_threadpool(
            lifecycle.get_application, request.app.state.engine, application_id
        )
    except lifecycle.PermitError:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from None
    _deny_other(user, found["enterprise_id"])
    return downloads.document(_folder(request), found, document_id)


@router.get("/permits/versions/{permit_no}")
async def versions_page(request: Request, permit_no: str) -> Response:
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    engine = request.app.state.engine
    try:
        found = await run_in_threadpool(versions.permit_versions, engine, permit_no[:64])
    except lifecycle.PermitError:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from None
    _deny_other(user, enterprise_id_of(engine, found["uscc"]) or 0)
    flag = await run_in_threadpool(credit_flag_of, engine, found["uscc"])
    return render(
        request,
        "permits/versions.html",
        p=found,
        flag=flag,
        today=local_today().isoformat(),
        error=request.query_params.get("error"),
    )


@router.post("/permits/versions/{permit_no}/revoke")
async def revoke(request: Request, permit_no: str) -> Response:
    """The agency revokes a permit from a day, with its written reason."""
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    form = await request.form(max_fields=10)
    check_form_csrf(user, str(form.get("csrf_token", "")))
    here = f"/permits/versions/{quote(permit_no[:64])}"
    try:
        on = forms.day(language(request), form.get("on"), "revoke_on")
        if on is None:
            raise forms.FormError(forms.missing(language(request), "revoke_on"))
        await run_in_threadpool(
            lambda: versions.revoke(
                request.app.state.engine,
                permit_no[:64],
                on=on,
                reason=str(form.get("reason") or ""),
                actor=user.principal.actor,
            )
        )
    except FAILURES as error:
        return _back(here, _say(request, error))
    return _back(here)


@router.post("/permits/reports")
async def generate_report(request: Request) -> Response:
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    form = await request.form(max_fields=10)
    check_form_csrf(user, str(form.get("csrf_token", "")))
    engine = request.app.state.engine
    permit_no = str(form.get("permit_no") or "")
    try:
        day = forms.day(language(request), form.get("day"), "day")
        if day is None:
            raise forms.FormError(forms.missing(language(request), "day"))
        found = await run_in_threadpool(versions.permit_versions, engine, permit_no[:64])
        _deny_other(user, enterprise_id_of(engine, found["uscc"]) or 0)
        made = await run_in_threadpool(
            lambda: reports.generate(
                engine,
                permit_no,
                str(form.get("kind") or ""),
                day,
                actor=user.principal.actor,
            )
        )
    except FAILURES as error:
        return _back("/permits", _say(request, error))
    return _back(f"/permits/reports/{made['id']}")


async def _visible_report(request: Request, user: SignedIn, report_id: int) -> dict[str, Any]:
    """The report if the user may see it (the agency, or the enterprise's own users);
    else 404 (unknown, or another enterprise's)."""
    try:
        found = await run_in_threadpool(reports.get_report, request.app.state.engine, report_id)
    except reports.ReportError:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from None
    _deny_other(user, found["enterprise_id"])
    return found


@router.get("/permits/reports/{report_id}")
async def report_page(request: Request, report_id: RowId) -> Response:
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    found = await _visible_report(request, user, report_id)
    return render(
        request,
        "permits/report.html",
        r=found,
        g=found["generated"],
        mine=own_enterprise(user) is not None,
        error=request.query_params.get("error"),
    )


@router.get("/permits/reports/{report_id}/signature")
async def signature_file(request: Request, report_id: RowId) -> Response:
    """The signed page of a report (the agency, or the enterprise's own users)."""
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    found = await _visible_report(request, user, report_id)
    return downloads.signature(_folder(request), found)


@router.post("/permits/reports/{report_id}/{action}")
async def report_action(request: Request, report_id: RowId, action: str) -> Response:
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    form = await request.form(max_fields=200, max_files=1)
    check_form_csrf(user, str(form.get("csrf_token", "")))
    engine, settings = request.app.state.engine, request.app.state.settings
    here, actor = f"/permits/reports/{report_id}", user.principal.actor
    try:
        found = await run_in_threadpool(reports.get_report, engine, report_id)
        _deny_other(user, found["enterprise_id"])
        if action == "complete" and own_enterprise(user) is not None:
            texts = {k[5:]: str(v) for k, v in form.items() if k.startswith("text:") and str(v)}
            notes = {k[8:]: str(v) for k, v in form.items() if k.startswith("explain:") and str(v)}
            await run_in_threadpool(
                lambda: reports.complete(
                    engine, report_id, texts=texts, explanations=notes, actor=actor
                )
            )
        elif action == "submit" and own_enterprise(user) is not None:
            upload = form.get("file")
            data = await upload.read(reports.SIGNATURE_MAX_BYTES + 1)  # type: ignore[union-attr]
            name = str(getattr(upload, "filename", "") or "signature")
            folder = attachments_folder(settings.var_dir)
            await run_in_threadpool(
                lambda: reports.submit(
                    engine, folder, report_id, signature=data, name=name, actor=actor
                )
            )
        elif action == "review" and own_enterprise(user) is None:
            await run_in_threadpool(
                lambda: reports.review(
                    engine,
                    report_id,
                    accept=form.get("accept") == "yes",
                    note=str(form.get("note") or "") or None,
                    actor=actor,
                )
            )
        else:
            raise HTTPException(status.HTTP_403_FORBIDDEN)
    except FAILURES as error:
        return _back(here, _say(request, error))
    return _back(here)
