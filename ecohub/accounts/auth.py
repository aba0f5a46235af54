"""Who is calling, and may they: the dependencies every non-public route uses.

A caller is a machine with an API key (``Authorization: Bearer ek_…`` or ``X-API-Key``)
or a person signed in to the portal (the ``ecohub_session`` cookie). Requests made with
the cookie that change something must echo the session's CSRF token (``X-CSRF-Token``
header or ``csrf_token`` form field), since a browser sends cookies on its own.

Each caller has a request budget per minute: the key's own ``rate_limit`` or the
installation's ``api_rate_limit``; a caller without key or session, ``api_anonymous_rate_limit``
per client address. The budgets are counted in the installation's shared limits store
(:mod:`ecohub.db.limits`: Redis if configured and answering, else the database), so they
hold across processes. Over budget answers 429 with ``Retry-After``. The client address is
the TCP peer's, or what a proxy listed in ``forwarded_allow_ips`` says it is (uvicorn
applies the forwarded headers of those proxies only).
"""

from __future__ import annotations

import math
import threading
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Principal, verify_key
from ecohub.accounts.users import SignedIn, find_session
from ecohub.config import Settings
from ecohub.db.limits import CounterStore, WindowLimiter, open_store

SESSION_COOKIE = "ecohub_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RateLimiter:
    """Requests per caller and minute (:class:`~ecohub.db.limits.WindowLimiter`), on the
    app's shared limits store (opened on first use unless given)."""

    def __init__(self, store: CounterStore | None = None) -> None:
        self.store = store
        self._windows: WindowLimiter | None = None
        self._lock = threading.Lock()

    def take(self, request: Request, name: str, limit: int) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        if self._windows is None:
            with self._lock:
                if self._windows is None:
                    self._windows = WindowLimiter(self.store or limits_store(request))
        return self._windows.hit(name, limit)


def limits_store(request: Request) -> CounterStore:
    """The app's shared store of limit counters (Redis or the database, see
    :func:`ecohub.db.limits.open_store`), opened once."""
    state = request.app.state
    store: CounterStore | None = getattr(state, "limits_store", None)
    if store is None:
        with _STORE_LOCK:
            store = getattr(state, "limits_store", None)
            if store is None:
                store = open_store(state.engine, settings_of(request).limits_redis_url)
                state.limits_store = store
    return store


_STORE_LOCK = threading.Lock()


def client_address(request: Request) -> str:
    """The caller's address (a trusted proxy's forwarded one, see the module docstring)."""
    return request.client.host if request.client else ""


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


def _limit(request: Request, caller: Principal | None) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    settings = settings_of(request)
    if caller is not None:
        limit, name = caller.rate_limit or settings.api_rate_limit, f"caller:{caller.actor}"
    else:
        limit, name = settings.api_anonymous_rate_limit, f"address:{client_address(request)}"
        if limit == 0:
            return
    wait = limiter.take(request, name, limit)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit of {limit} requests a minute exceeded"
            + ("" if caller is not None else " (without an API key, per address)"),
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
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


# Declared so that the OpenAPI document has its security schemes (Swagger's Authorize
# button); the key itself is read from the request by _key_principal.
bearer_key = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKeyBearer",
    description="An API key (ek_…) as a bearer token: Authorization: Bearer ek_…",
)
header_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKeyHeader",
    description="An API key (ek_…) in the X-API-Key header",
)


async def optional_principal(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_key)] = None,
    _header: Annotated[str | None, Depends(header_key)] = None,
) -> Principal | None:
    """The caller if it presented a key or session cookie, else None (anonymous)."""
    caller = _key_principal(request)
    if caller is None:
        user = signed_in(request)
        if user is not None:
            if request.method not in SAFE_METHODS:
                await _check_csrf(request, user)
            caller = user.principal
    _limit(request, caller)
    return caller


async def principal(
    caller: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    """The caller; 401 without a valid key or session."""
    if caller is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "an API key (Authorization: Bearer <key>) or a signed-in session is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return caller
