"""Signing in and out of the portal: the form, argon2id verification, the session cookie
(HttpOnly, SameSite=Strict, Secure unless ``ECOHUB_COOKIE_SECURE`` is off), and
throttles on failed attempts: per user name and address (``login_attempts``), per user
name from anywhere (``login_attempts_per_name``) and for all names together
(``login_attempts_global``), each over the current and previous 15 minutes, counted in
the installation's shared limits store so that they hold across processes. The address
is the TCP peer's unless a proxy in ``forwarded_allow_ips`` forwarded it."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from ecohub.accounts.auth import (
    SESSION_COOKIE,
    client_address,
    limits_store,
    settings_of,
    signed_in,
)
from ecohub.accounts.users import SESSION_LIFETIME, authenticate, close_session, open_session
from ecohub.db.limits import CounterStore, EventCounter
from ecohub.web.i18n import text
from ecohub.web.render import check_form_csrf, language, render, safe_next

LOGIN_WINDOW_SECONDS = 15 * 60
router = APIRouter(include_in_schema=False)
logger = logging.getLogger("ecohub.login")


class LoginThrottle:
    """Failed sign-ins per (user name, address), per user name and in all, in the shared
    store."""

    def __init__(self, store: CounterStore, per_pair: int, per_name: int, overall: int) -> None:
        self.counter = EventCounter(store, LOGIN_WINDOW_SECONDS)
        self.limits = {"pair": per_pair, "name": per_name, "all": overall}

    @staticmethod
    def _keys(name: str, address: str) -> dict[str, str]:
        return {
            "pair": f"login:pair:{name}|{address}",
            "name": f"login:name:{name}",
            "all": "login:all",
        }

    def blocked(self, name: str, address: str) -> str | None:
        """Which limit a sign-in of ``name`` from ``address`` is over (pair, name, all)."""
        keys = self._keys(name, address)
        counts = self.counter.counts(keys.values())
        for which, key in keys.items():
            if counts[key] >= self.limits[which]:
                return which
        return None

    def failed(self, name: str, address: str) -> None:
        self.counter.record(self._keys(name, address).values())


def _throttle(request: Request) -> LoginThrottle:
    state = request.app.state
    if not hasattr(state, "login_throttle"):
        settings = settings_of(request)
        state.login_throttle = LoginThrottle(
            limits_store(request),
            settings.login_attempts,
            settings.login_attempts_per_name,
            settings.login_attempts_global,
        )
    throttle: LoginThrottle = state.login_throttle
    return throttle


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", next=safe_next(next), error=None)


@router.post("/login")
async def login(
    request: Request,
    username: str = Form(max_length=64),
    password: str = Form(max_length=1024),
    next: str = Form("/"),
) -> Response:
    words = text(language(request))
    throttle = _throttle(request)
    engine = request.app.state.engine
    address = client_address(request)
    over = await run_in_threadpool(throttle.blocked, username, address)
    if over is not None:
        logger.warning("login_throttled limit=%s name=%r address=%s", over, username[:64], address)
        return render(
            request, "login.html", 429, next=safe_next(next), error=words["login_throttled"]
        )

    def check() -> str | None:
        with Session(engine) as session:
            user = authenticate(session, username, password)
            token = open_session(session, user) if user is not None else None
            session.commit()
            return token

    token = await run_in_threadpool(check)
    if token is None:
        await run_in_threadpool(throttle.failed, username, address)
        return render(request, "login.html", 401, next=safe_next(next), error=words["login_failed"])
    response = RedirectResponse(safe_next(next), status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        secure=settings_of(request).cookie_secure,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(request: Request, csrf_token: str = Form("")) -> Response:
    user = signed_in(request)
    if user is not None:
        check_form_csrf(user, csrf_token)
        engine = request.app.state.engine

        def end() -> None:
            with Session(engine) as session:
                close_session(session, request.cookies.get(SESSION_COOKIE, ""))
                session.commit()

        await run_in_threadpool(end)
    response = RedirectResponse("/", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE)
    return response
