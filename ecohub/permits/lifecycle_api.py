"""Routes of the permit procedure under ``/api/v1/permits`` (catalogue dataset
``permits_service``: the agency, and an enterprise for itself): applications, their
steps, documents (and their bytes) and decisions, the versions of a permit and their
revocation, and the execution reports (and their signed pages)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Path, Request, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from ecohub.accounts.catalogue import dataset_access
from ecohub.accounts.keys import Principal, Role
from ecohub.permits import downloads, lifecycle, reports, versions
from ecohub.permits.accounting import enterprise_id_of
from ecohub.permits.report_rules import ManagementClass
from ecohub.permits.rules import ApplicationKind, ApplicationStatus
from ecohub.supervision.flag_reads import credit_flag_of
from ecohub.web.params import RowId
from ecohub.web.uploads import UploadRefused, attachments_folder

router = APIRouter(prefix="/api/v1/permits", tags=["permits"])


def _signed_in(
    caller: Annotated[Principal | None, Depends(dataset_access("permits_service"))],
) -> Principal:
    if caller is None:  # the dataset is never public; kept for the type
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in")
    return caller


Caller = Annotated[Principal, Depends(_signed_in)]
PermitNo = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_.\-]+$")]


class ApplicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    uscc: str = Field(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")
    kind: ApplicationKind
    management_class: ManagementClass
    permit_no: str | None = Field(default=None, max_length=64)
    content: dict[str, Any]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    status: ApplicationStatus
    reason: str | None = Field(default=None, max_length=4000)
    site_check: bool = False
    on: dt.date | None = None  # the decision's day (default today, Beijing calendar)


class RevocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    on: dt.date
    reason: str = Field(min_length=1, max_length=4000)


async def _run(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except lifecycle.PermitError as error:
        text = str(error)
        code = 404 if text.startswith("no ") else 409
        raise HTTPException(code, text) from None


def _agency(caller: Principal) -> None:
    if caller.role not in {Role.ADMIN, Role.AGENCY}:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the agency may do this")


def _own(request: Request, caller: Principal, uscc: str) -> None:
    """An enterprise acts for itself only (404 for another's, as if it did not exist)."""
    if caller.role == Role.ENTERPRISE and (
        enterprise_id_of(request.app.state.engine, uscc) != caller.enterprise_id
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enterprise {uscc}")


async def _visible(request: Request, caller: Principal, application_id: int) -> dict[str, Any]:
    found = await _run(lifecycle.get_application, request.app.state.engine, application_id)
    if caller.role == Role.ENTERPRISE and found["enterprise_id"] != caller.enterprise_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no application {application_id}")
    return found


@router.post("/applications", status_code=201, summary="Apply for a permit, a change or a renewal")
async def post_application(request: Request, body: ApplicationIn, caller: Caller) -> dict[str, Any]:
    _own(request, caller, body.uscc)
    return await _run(
        lifecycle.apply,
        request.app.state.engine,
        uscc=body.uscc,
        kind=body.kind.value,
        management_class=body.management_class.value,
        content=body.content,
        actor=caller.actor,
        permit_no=body.permit_no,
    )


@router.get("/applications", summary="Applications, newest first")
async def get_applications(request: Request, caller: Caller) -> list[dict[str, Any]]:
    mine = caller.enterprise_id if caller.role == Role.ENTERPRISE else None
    return await _run(lifecycle.list_applications, request.app.state.engine, mine)


@router.get("/applications/{application_id}", summary="An application with its steps")
async def get_application(
    request: Request, application_id: RowId, caller: Caller
) -> dict[str, Any]:
    return await _visible(request, caller, application_id)


@router.post("/applications/{application_id}/decision", summary="Accept, refuse, issue or withdraw")
async def post_decision(
    request: Request, application_id: RowId, body: DecisionIn, caller: Caller
) -> dict[str, Any]:
    await _visible(request, caller, application_id)
    by = "enterprise" if caller.role == Role.ENTERPRISE else "agency"
    if caller.role not in {Role.ADMIN, Role.AGENCY, Role.ENTERPRISE}:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not a party to the procedure")
    return await _run(
        lifecycle.decide,
        request.app.state.engine,
        application_id,
        body.status.value,
        actor=caller.actor,
        by=by,
        reason=body.reason,
        site_check=body.site_check,
        on=body.on,
    )


@router.post(
    "/applications/{application_id}/documents",
    status_code=201,
    summary="Attach a document (PDF or image) to the application's current step",
)
async def post_document(
    request: Request,
    application_id: RowId,
    caller: Caller,
    file: Annotated[UploadFile, File()],
) -> dict[str, Any]:
    await _visible(request, caller, application_id)
    data = await file.read(lifecycle.DOCUMENT_MAX_BYTES + 1)
    try:
        return await _run(
            lifecycle.add_document,
            request.app.state.engine,
            attachments_folder(request.app.state.settings.var_dir),
            application_id,
            title=file.filename or "document",
            data=data,
            actor=caller.actor,
        )
    except UploadRefused as error:
        raise HTTPException(error.status_code, str(error)) from None


@router.get("/applications/{application_id}/documents/{document_id}", summary="A document's bytes")
async def get_document(
    request: Request, application_id: RowId, document_id: RowId, caller: Caller
) -> FileResponse:
    found = await _visible(request, caller, application_id)
    folder = attachments_folder(request.app.state.settings.var_dir)
    return downloads.document(folder, found, document_id)


@router.get("/versions/{permit_no}", summary="Every version of a permit")
async def get_versions(request: Request, permit_no: PermitNo, caller: Caller) -> dict[str, Any]:
    """The versions, and ``credit``: the enterprise's published credit grade in effect
    (``red`` true for the blacklist, 环保不良企业, with the grade's consequences), or null
    when none is published."""
    engine = request.app.state.engine
    found = await _run(versions.permit_versions, engine, permit_no)
    _own(request, caller, found["uscc"])
    flag = await run_in_threadpool(credit_flag_of, engine, found["uscc"])
    found["credit"] = None if flag is None else {**flag, "red": flag["blacklisted"]}
    return found


@router.post("/versions/{permit_no}/revocation", summary="Revoke the version in force")
async def post_revocation(
    request: Request, permit_no: PermitNo, body: RevocationIn, caller: Caller
) -> dict[str, Any]:
    _agency(caller)
    return await _run(
        versions.revoke,
        request.app.state.engine,
        permit_no,
        on=body.on,
        reason=body.reason,
        actor=caller.actor,
    )


# --- execution reports -------------------------------------------------------------------


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    permit_no: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=20)  # annual, semiannual, quarterly, monthly
    day: dt.date  # any day of the period


class CompletionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: dict[str, Annotated[str, Field(max_length=20000)]] = Field(
        default_factory=dict, max_length=40
    )
    explanations: dict[str, Annotated[str, Field(max_length=4000)]] = Field(
        default_factory=dict, max_length=500
    )


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    accept: bool
    note: str | None = Field(default=None, max_length=4000)


async def _report_run(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except reports.ReportError as error:
        text = str(error)
        raise HTTPException(404 if text.startswith("no ") else 409, text) from None


async def _visible_report(request: Request, caller: Principal, report_id: int) -> dict[str, Any]:
    found = await _report_run(reports.get_report, request.app.state.engine, report_id)
    if caller.role == Role.ENTERPRISE and found["enterprise_id"] != caller.enterprise_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report {report_id}")
    return found


def _enterprise_only(caller: Principal) -> None:
    if caller.role != Role.ENTERPRISE:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "the enterprise completes and signs its report"
        )


@router.post("/reports", status_code=201, summary="Generate an execution report from the data")
async def post_report(request: Request, body: ReportIn, caller: Caller) -> dict[str, Any]:
    found = await _run(versions.permit_versions, request.app.state.engine, body.permit_no)
    _own(request, caller, found["uscc"])
    return await _report_run(
        reports.generate,
        request.app.state.engine,
        body.permit_no,
        body.kind,
        body.day,
        actor=caller.actor,
    )


@router.get("/reports", summary="Execution reports, newest period first")
async def get_reports(request: Request, caller: Caller) -> list[dict[str, Any]]:
    mine = caller.enterprise_id if caller.role == Role.ENTERPRISE else None
    return await _report_run(reports.list_reports, request.app.state.engine, mine)


@router.get("/reports/{report_id}", summary="An execution report")
async def get_report(request: Request, report_id: RowId, caller: Caller) -> dict[str, Any]:
    return await _visible_report(request, caller, report_id)


@router.get("/reports/{report_id}/signature", summary="The signed page of a submitted report")
async def get_signature(request: Request, report_id: RowId, caller: Caller) -> FileResponse:
    found = await _visible_report(request, caller, report_id)
    folder = attachments_folder(request.app.state.settings.var_dir)
    return downloads.signature(folder, found)


@router.post("/reports/{report_id}/completion", summary="The enterprise's texts and explanations")
async def post_completion(
    request: Request, report_id: RowId, body: CompletionIn, caller: Caller
) -> dict[str, Any]:
    _enterprise_only(caller)
    await _visible_report(request, caller, report_id)
    return await _report_run(
        reports.complete,
        request.app.state.engine,
        report_id,
        texts=body.texts,
        explanations=body.explanations,
        actor=caller.actor,
    )


@router.post(
    "/reports/{report_id}/submission", summary="Sign (an image of the signed page) and submit"
)
async def post_submission(
    request: Request, report_id: RowId, caller: Caller, file: Annotated[UploadFile, File()]
) -> dict[str, Any]:
    _enterprise_only(caller)
    await _visible_report(request, caller, report_id)
    data = await file.read(reports.SIGNATURE_MAX_BYTES + 1)
    try:
        return await _report_run(
            reports.submit,
            request.app.state.engine,
            attachments_folder(request.app.state.settings.var_dir),
            report_id,
            signature=data,
            name=file.filename or "signature",
            actor=caller.actor,
        )
    except UploadRefused as error:
        raise HTTPException(error.status_code, str(error)) from None


@router.post("/reports/{report_id}/review", summary="Accept or return a submitted report")
async def post_review(
    request: Request, report_id: RowId, body: ReviewIn, caller: Caller
) -> dict[str, Any]:
    _agency(caller)
    return await _report_run(
        reports.review,
        request.app.state.engine,
        report_id,
        accept=body.accept,
        note=body.note,
        actor=caller.actor,
    )
