"""The portal's pages (server-rendered with Jinja2) and its sign-in, on the API's app.

Pages read through the same functions as the API routes, so a page and the API never
disagree. Data-heavy pieces (the map's layers, the charts) are drawn in the browser from
the open-data API by the small scripts in ``static/``. Agency pages need a signed-in
agency or admin user; their forms carry the session's CSRF token.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Form, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecohub.alarms import lifecycle
from ecohub.alarms.lifecycle import AlarmError
from ecohub.alarms.notify import alarm_payload
from ecohub.api.agency import Review, ReviewOutcome, list_quarantined, review_quarantined
from ecohub.api.auth import SESSION_COOKIE, signed_in
from ecohub.api.catalogue import AGENCY_ROLES, DATASETS
from ecohub.api.disclosure import _disclosure, _enterprises, emissions
from ecohub.api.public import _ranking
from ecohub.api.users import SESSION_LIFETIME, SignedIn, authenticate, close_session, open_session
from ecohub.config import get_settings
from ecohub.registry.models import MonitoringPoint, Site, SiteKind
from ecohub.standards.aqi import aqi_levels
from ecohub.standards.water import CLASS_NAMES, STATUS_COLOUR
from ecohub.store.rollups import day_start, hour_start, local_zone
from ecohub.store.tables import station_aqi_latest
from ecohub.web.i18n import LANGUAGES, text

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")


def local_time(moment: dt.datetime | str | None) -> str:
    """An instant as the installation's local wall time (Beijing time by default)."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.astimezone(ZoneInfo(get_settings().timezone)).strftime("%Y-%m-%d %H:%M")


templates.env.filters["local"] = local_time
LANG_COOKIE = "ecohub_lang"
LOGIN_WINDOW_SECONDS = 15 * 60
# Pages allow only their own scripts; the libraries set inline styles, the map draws
# SVG and the vendored marker images.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)


class LoginThrottle:
    """Failed sign-ins per (user name, address) in a sliding window, per process."""

    def __init__(self) -> None:
        self.failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self.failures[key]
        while times and times[0] < now - LOGIN_WINDOW_SECONDS:
            times.popleft()
        return times

    def blocked(self, key: tuple[str, str]) -> bool:
        with self.lock:
            return len(self._recent(key, time.monotonic())) >= get_settings().login_attempts

    def failed(self, key: tuple[str, str]) -> None:
        with self.lock:
            self._recent(key, time.monotonic()).append(time.monotonic())

    def succeeded(self, key: tuple[str, str]) -> None:
        with self.lock:
            self.failures.pop(key, None)


def language(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE, "zh")
    return chosen if chosen in LANGUAGES else "zh"


def _safe_next(target: str | None) -> str:
    """Only paths on this site (no scheme, no //host) are followed after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    lang = language(request)
    user = signed_in(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "t": text(lang),
            "lang": lang,
            "user": user,
            "is_agency": bool(user and user.principal.role in AGENCY_ROLES),
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


def _agency_user(request: Request) -> SignedIn | Response:
    """The signed-in agency user, a redirect to sign in, or a 403 page."""
    user = signed_in(request)
    if user is None:
        return RedirectResponse(f"/login?next={request.url.path}", status.HTTP_303_SEE_OTHER)
    if user.principal.role not in AGENCY_ROLES:
        return render(request, "message.html", 403, message=text(language(request))["forbidden"])
    return user


def _check_form_csrf(user: SignedIn, csrf_token: str) -> None:
    if csrf_token != user.csrf_token:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")


def _map_context(engine: Any) -> dict[str, Any]:
    with engine.connect() as connection:
        newest = connection.execute(
            select(station_aqi_latest.c.ts).order_by(station_aqi_latest.c.ts.desc()).limit(1)
        ).scalar_one_or_none()
    return {
        "levels": aqi_levels(),
        "water_legend": [
            (name, STATUS_COLOUR[index]) for index, name in enumerate(CLASS_NAMES, start=1)
        ],
        "newest": newest,
    }


def mount_portal(app: FastAPI) -> None:
    """Add the portal's pages, its static files and offline API docs to ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    throttle = LoginThrottle()
    engine = app.state.engine

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("X-Frame-Options", "DENY")
            if not request.url.path.startswith("/docs"):
                response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        # Swagger UI from the vendored copy, not a CDN: agency networks are closed.
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="EcoHub API",
            swagger_js_url="/static/vendor/swagger-ui-dist-5.32.0/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui-dist-5.32.0/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    @app.get("/", include_in_schema=False)
    async def map_page(request: Request) -> Response:
        context = await run_in_threadpool(_map_context, engine)
        return render(request, "map.html", **context)

    @app.get("/ranking", include_in_schema=False)
    async def ranking_page(request: Request, period: str = "hour") -> Response:
        period = period if period in ("hour", "day") else "hour"
        ranking = await run_in_threadpool(_ranking, engine, period, None)
        return render(request, "ranking.html", ranking=ranking, period=period)

    @app.get("/stations/{code}", include_in_schema=False)
    async def station_page(request: Request, code: str) -> Response:
        found = await run_in_threadpool(_station, engine, code)
        if found is None:
            return render(
                request, "message.html", 404, message=text(language(request))["not_found"]
            )
        return render(request, "station.html", **found)

    @app.get("/enterprises", include_in_schema=False)
    async def enterprises_page(request: Request) -> Response:
        rows = await run_in_threadpool(_enterprises, engine, None, 5000, 0)
        return render(request, "enterprises.html", enterprises=rows)

    @app.get("/enterprises/{uscc}", include_in_schema=False)
    async def enterprise_page(request: Request, uscc: str, year: int | None = None) -> Response:
        this_year = dt.datetime.now(local_zone()).year
        year = year if year is not None and 1990 <= year <= this_year else this_year
        try:
            disclosure = await run_in_threadpool(_disclosure, engine, uscc)
            masses = await run_in_threadpool(emissions, engine, uscc, year)
        except HTTPException:
            return render(
                request, "message.html", 404, message=text(language(request))["not_found"]
            )
        return render(request, "enterprise.html", e=disclosure, masses=masses)

    @app.get("/catalogue", include_in_schema=False)
    async def catalogue_page(request: Request) -> Response:
        return render(request, "catalogue.html", datasets=list(DATASETS.values()))

    @app.get("/login", include_in_schema=False)
    async def login_page(request: Request, next: str = "/") -> Response:
        return render(request, "login.html", next=_safe_next(next), error=None)

    @app.post("/login", include_in_schema=False)
    async def login(
        request: Request,
        username: str = Form(max_length=64),
        password: str = Form(max_length=1024),
        next: str = Form("/"),
    ) -> Response:
        words = text(language(request))
        key = (username, request.client.host if request.client else "")
        if throttle.blocked(key):
            return render(
                request, "login.html", 429, next=_safe_next(next), error=words["login_throttled"]
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
            return render(
                request, "login.html", 401, next=_safe_next(next), error=words["login_failed"]
            )
        throttle.succeeded(key)
        response = RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            httponly=True,
            secure=get_settings().cookie_secure,
            samesite="strict",
        )
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request, csrf_token: str = Form("")) -> Response:
        user = signed_in(request)
        if user is not None:
            _check_form_csrf(user, csrf_token)

            def end() -> None:
                with Session(engine) as session:
                    close_session(session, request.cookies.get(SESSION_COOKIE, ""))
                    session.commit()

            await run_in_threadpool(end)
        response = RedirectResponse("/", status.HTTP_303_SEE_OTHER)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/agency/alarms", include_in_schema=False)
    async def alarms_page(request: Request) -> Response:
        user = _agency_user(request)
        if isinstance(user, Response):
            return user
        found = await run_in_threadpool(
            lambda: lifecycle.list_alarms(engine, status="unclosed", limit=500)
        )
        return render(request, "agency/alarms.html", alarms=[alarm_payload(a) for a in found])

    @app.post("/agency/alarms/{alarm_id}/{action}", include_in_schema=False)
    async def alarm_action(
        request: Request,
        alarm_id: int,
        action: str,
        csrf_token: str = Form(""),
        note: str = Form("", max_length=2000),
    ) -> Response:
        user = _agency_user(request)
        if isinstance(user, Response):
            return user
        _check_form_csrf(user, csrf_token)
        actor = user.principal.actor
        if action == "acknowledge":
            act = lambda: lifecycle.acknowledge(engine, alarm_id, actor, note or None)  # noqa: E731
        elif action == "close" and note.strip():
            act = lambda: lifecycle.close(engine, alarm_id, actor, note)  # noqa: E731
        else:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "acknowledge, or close with a reason")
        try:
            await run_in_threadpool(act)
        except AlarmError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
        return RedirectResponse("/agency/alarms", status.HTTP_303_SEE_OTHER)

    @app.get("/agency/quarantine", include_in_schema=False)
    async def quarantine_page(request: Request, all: bool = False) -> Response:
        user = _agency_user(request)
        if isinstance(user, Response):
            return user
        rows = await run_in_threadpool(
            lambda: list_quarantined(engine, reviewed=None if all else False, limit=200)
        )
        return render(
            request,
            "agency/quarantine.html",
            rows=rows,
            show_all=all,
            outcomes=[outcome.value for outcome in ReviewOutcome],
        )

    @app.post("/agency/quarantine/{row_id}/review", include_in_schema=False)
    async def quarantine_review(
        request: Request,
        row_id: int,
        csrf_token: str = Form(""),
        outcome: ReviewOutcome = Form(),
        note: str = Form("", max_length=2000),
    ) -> Response:
        user = _agency_user(request)
        if isinstance(user, Response):
            return user
        _check_form_csrf(user, csrf_token)
        await run_in_threadpool(
            review_quarantined,
            engine,
            row_id,
            Review(outcome=outcome, note=note or None),
            user.principal.actor,
        )
        return RedirectResponse("/agency/quarantine", status.HTTP_303_SEE_OTHER)


def _station(engine: Any, code: str) -> dict[str, Any] | None:
    """A site and, for an air station, the time of its newest AQI (the charts end there)."""
    with Session(engine) as session:
        site = session.scalars(select(Site).where(Site.code == code)).first()
        if site is None:
            return None
        newest = session.execute(
            select(station_aqi_latest.c.ts, station_aqi_latest.c.aqi, station_aqi_latest.c.level)
            .join(MonitoringPoint, MonitoringPoint.id == station_aqi_latest.c.point_id)
            .where(MonitoringPoint.site_id == site.id)
        ).first()
        levels = {level.level: level for level in aqi_levels()}
        end = hour_start(newest.ts if newest else dt.datetime.now(dt.UTC)) + dt.timedelta(hours=1)
        return {
            "site": {
                "code": site.code,
                "name": site.name,
                "kind": site.kind,
                "region_code": site.region_code,
                "longitude": site.longitude,
                "latitude": site.latitude,
            },
            "is_air": site.kind == SiteKind.AIR.value,
            "newest": newest,
            "level": levels.get(newest.level) if newest else None,
            "end": end,
            "start_48h": end - dt.timedelta(hours=48),
            "start_30d": day_start(end) - dt.timedelta(days=30),
            "end_30d": day_start(end) + dt.timedelta(days=1),
        }
