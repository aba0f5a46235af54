"""Who is calling, and may they: the dependencies every non-public route uses.

A caller is a machine with an API key (``Authorization: Bearer ek_…`` or ``X-API-Key``)
or a person signed in to the portal (the ``ecohub_session`` cookie). Requests made with
the cookie that change something must echo the session's CSRF token (``X-CSRF-Token``
header or ``csrf_token`` form field), since a browser sends cookies on its own.

Each caller has a request budget per minute (token bucket, per process): the key's own
``rate_limit`` or the installation's ``api_rate_limit``. Over budget answers 429 with
``Retry-After``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from fastapi import HTTPException, Request, status
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Principal, verify_key
from ecohub.accounts.users import SignedIn, find_session
from ecohub.config import Settings

SESSION_COOKIE = "ecohub_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class RateLimiter:
    """Token buckets by caller name: ``limit`` requests a minute, bursts up to ``limit``."""

    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, name: str, limit: int, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        rate = limit / 60.0
        with self.lock:
            tokens, stamp = self.buckets.get(name, (float(limit), now))
            tokens = min(float(limit), tokens + (now - stamp) * rate)
            if tokens >= 1.0:
                self.buckets[name] = (tokens - 1.0, now)
                return 0.0
            self.buckets[name] = (tokens, now)
            return (1.0 - tokens) / rate


def signed_in(request: Request) -> SignedIn | None:
    """The portal user of the request's session cookie, if any (cached per request)."""
    if "signed_in" in request.scope:
        cached: SignedIn | None = request.scope["signed_in"]
        return cached
    token = request.cookies.get(SESSION_COOKIE, "")
    found = None
    if token:
        with Session(request.app.state.engine) as session:
            found = find_session(session, token)
    request.scope["signed_in"] = found
    return found


def _key_principal(request: Request) -> Principal | None:
    header = request.headers.get("authorization", "")
    presented = header[7:].strip() if header.lower().startswith("bearer ") else ""
    presented = presented or request.headers.get("x-api-key", "")
    if not presented:
        return None
    with Session(request.app.state.engine) as session:
        found = verify_key(session, presented)
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


def settings_of(request: Request) -> Settings:
    """The settings the composition root gave the app (``app.state.settings``)."""
    settings: Settings = request.app.state.settings
    return settings


def _limit(request: Request, caller: Principal) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    limit = caller.rate_limit or settings_of(request).api_rate_limit
    wait = limiter.take(caller.actor, limit)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit of {limit} requests a minute exceeded",
            headers={"Retry-After": str(math.ceil(wait))},
        )


async def _check_csrf(request: Request, user: SignedIn) -> None:
    presented = request.headers.get("x-csrf-token", "")
    if not presented and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        presented = str((await request.form()).get("csrf_token", ""))
    if presented != user.csrf_token:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token for a cookie-signed request"
        )


async def optional_principal(request: Request) -> Principal | None:
    """The caller if it presented a key or session cookie, else None (anonymous)."""
    caller = _key_principal(request)
    if caller is None:
        user = signed_in(request)
        if user is not None:
            if request.method not in SAFE_METHODS:
                await _check_csrf(request, user)
            caller = user.principal
    if caller is not None:
        _limit(request, caller)
    return caller


async def principal(request: Request) -> Principal:
    """The caller; 401 without a valid key or session."""
    caller = await optional_principal(request)
    if caller is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "an API key (Authorization: Bearer <key>) or a signed-in session is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return caller
