"""Signing in and out of the portal: the form, argon2id verification, the session cookie
(HttpOnly, SameSite=Strict, Secure unless ``ECOHUB_COOKIE_SECURE`` is off), and a
throttle on failed attempts per user name and address."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from ecohub.accounts.auth import SESSION_COOKIE, settings_of, signed_in
from ecohub.accounts.users import SESSION_LIFETIME, authenticate, close_session, open_session
from ecohub.web.i18n import text
from ecohub.web.render import check_form_csrf, language, render, safe_next

LOGIN_WINDOW_SECONDS = 15 * 60
router = APIRouter(include_in_schema=False)


class LoginThrottle:
    """Failed sign-ins per (user name, address) in a sliding window, per process."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts
        self.failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self.failures[key]
        while times and times[0] < now - LOGIN_WINDOW_SECONDS:
            times.popleft()
        return times

    def blocked(self, key: tuple[str, str]) -> bool:
        with self.lock:
            return len(self._recent(key, time.monotonic())) >= self.attempts

    def failed(self, key: tuple[str, str]) -> None:
        with self.lock:
            self._recent(key, time.monotonic()).append(time.monotonic())

    def succeeded(self, key: tuple[str, str]) -> None:
        with self.lock:
            self.failures.pop(key, None)


def _throttle(request: Request) -> LoginThrottle:
    state = request.app.state
    if not hasattr(state, "login_throttle"):
        state.login_throttle = LoginThrottle(settings_of(request).login_attempts)
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
    key = (username, request.client.host if request.client else "")
    if throttle.blocked(key):
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
        throttle.failed(key)
        return render(request, "login.html", 401, next=safe_next(next), error=words["login_failed"])
    throttle.succeeded(key)
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
