"""The ledger's pages (环境管理台账, HJ 944-2018): per permit, its facilities and entries
(newest first, corrected ones marked) and, for the enterprise's own users, a form per
record kind and condition sized for a phone, and the facility form. The agency reads every
permit's ledger. Times are Beijing time; forms post with the session's CSRF token."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from ecohub.accounts.keys import Role
from ecohub.permits import ledger, ledger_rules, ledger_words
from ecohub.web.i18n import register
from ecohub.web.render import SignedIn, agency_user, check_form_csrf, render

register(ledger_words.WORDS, ledger_words.TERMS)
router = APIRouter(include_in_schema=False)
ENTERPRISE = frozenset({Role.ENTERPRISE})
FORMS = [f"{kind.value}:{condition.value}" for kind, condition in ledger_rules.rules()]


def _mine(user: SignedIn) -> int | None:
    return user.principal.enterprise_id if user.principal.role == Role.ENTERPRISE else None


def _holder(engine: Any, user: SignedIn, permit_no: str) -> int:
    """The permit's enterprise, if the user may see it (404 otherwise)."""
    try:
        with engine.connect() as connection:
            holder = ledger.permit_enterprise(connection, permit_no)
    except ledger.NotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from None
    mine = _mine(user)
    if mine is not None and mine != holder:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return holder


def _back(path: str, error: str | None = None) -> Response:
    target = path if error is None else f"{path}{'&' if '?' in path else '?'}error="
    if error is not None:
        target += quote(error[:300])
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


def _rule(choice: str) -> ledger_rules.Rule:
    kind, _sep, condition = choice.partition(":")
    try:
        return ledger_rules.rule(kind, condition or "normal")
    except ValueError:
        return ledger_rules.rule("production", "normal")


def _entry_no(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"corrects: {text!r} is not an entry number")
    return int(text)


@router.get("/permits/ledgers/{permit_no}")
async def ledger_page(request: Request, permit_no: str) -> Response:
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    engine, permit_no = request.app.state.engine, permit_no[:64]
    await run_in_threadpool(_holder, engine, user, permit_no)
    chosen = _rule(request.query_params.get("form", "production:normal"))
    return render(
        request,
        "permits/ledger.html",
        permit_no=permit_no,
        facilities=await run_in_threadpool(ledger.list_facilities, engine, permit_no),
        entries=await run_in_threadpool(ledger.list_entries, engine, permit_no, limit=200),
        rule=chosen,
        forms=FORMS,
        chosen=f"{chosen.kind.value}:{chosen.condition.value}",
        writer=_mine(user) is not None,
        error=request.query_params.get("error"),
    )


@router.post("/permits/ledgers/{permit_no}/{action}")
async def ledger_action(request: Request, permit_no: str, action: str) -> Response:
    user = agency_user(request, ENTERPRISE)
    if isinstance(user, Response):
        return user
    form = await request.form(max_fields=40)
    check_form_csrf(user, str(form.get("csrf_token", "")))
    engine, permit_no = request.app.state.engine, permit_no[:64]
    mine = _mine(user)
    if mine is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN)
    await run_in_threadpool(_holder, engine, user, permit_no)
    choice = str(form.get("form") or "production:normal")
    here = f"/permits/ledgers/{quote(permit_no)}?form={quote(choice)}"
    actor = user.principal.actor
    try:
        if action == "entries":
            rule = _rule(choice)
            values = {
                key[2:]: str(value)
                for key, value in form.items()
                if key.startswith("v:") and str(value).strip()
            }
            corrects = str(form.get("corrects") or "").strip()
            await run_in_threadpool(
                lambda: ledger.add_entry(
                    engine,
                    permit_no,
                    kind=rule.kind.value,
                    condition=rule.condition.value,
                    at=str(form.get("at") or ""),
                    values=values,
                    operator=str(form.get("operator") or ""),
                    facility=str(form.get("facility") or "") or None,
                    corrects=_entry_no(corrects),
                    note=str(form.get("note") or "") or None,
                    actor=actor,
                    enterprise_id=mine,
                )
            )
        elif action == "facilities":
            await run_in_threadpool(
                lambda: ledger.add_facility(
                    engine,
                    permit_no,
                    code=str(form.get("code") or ""),
                    name=str(form.get("name") or ""),
                    kind=str(form.get("kind") or ""),
                    actor=actor,
                    enterprise_id=mine,
                )
            )
        else:
            raise HTTPException(status.HTTP_404_NOT_FOUND)
    except ValueError as error:
        return _back(here, str(error))
    return _back(here)
