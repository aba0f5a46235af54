"""The composition root of the HTTP side: one FastAPI app with every area's API router
and portal pages, the security headers, the vendored static files and the offline API
docs.

Areas own their routes (``<area>/api.py``) and pages (``<area>/pages.py``); this module
only assembles them and hands the app its engine, settings and batch submitter, so that
nothing below it fetches settings or builds engines of its own.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from ecohub.accounts.auth import RateLimiter
from ecohub.accounts.catalogue import router as catalogue_router
from ecohub.agency.api import router as agency_router
from ecohub.agency.pages import router as agency_pages
from ecohub.alarms.api import router as alarms_router
from ecohub.alarms.pages import router as alarm_pages
from ecohub.assessment.api import router as assessment_router
from ecohub.assessment.pages import router as assessment_pages
from ecohub.complaints.api import router as complaints_router
from ecohub.complaints.pages import router as complaints_pages
from ecohub.config import Settings, get_settings
from ecohub.ingest.pages import router as ingest_pages
from ecohub.ingest.upload import Submit, install
from ecohub.ingest.upload import router as upload_router
from ecohub.opendata.api import router as opendata_router
from ecohub.opendata.disclosure import router as disclosure_router
from ecohub.opendata.pages import router as opendata_pages
from ecohub.permits.api import router as permits_router
from ecohub.permits.exchange_api import router as permits_exchange_router
from ecohub.permits.ledger_api import router as permits_ledger_router
from ecohub.permits.ledger_pages import router as permits_ledger_pages
from ecohub.permits.lifecycle_api import router as permits_lifecycle_router
from ecohub.permits.pages import router as permits_pages
from ecohub.permits.tax_pages import router as permits_tax_pages
from ecohub.supervision.api import router as supervision_router
from ecohub.supervision.credit_pages import router as supervision_credit_pages
from ecohub.supervision.inspections_api import router as inspections_router
from ecohub.supervision.pages import router as supervision_pages
from ecohub.supervision.terms_api import router as supervision_terms_router
from ecohub.web.login import router as login_pages
from ecohub.web.params import known_query_only
from ecohub.web.render import CONTENT_SECURITY_POLICY, STATIC_DIR, message

# Every area's routers, in the order they appear in the API docs.
API_ROUTERS = (
    upload_router,
    opendata_router,
    disclosure_router,
    assessment_router,
    alarms_router,
    agency_router,
    supervision_router,
    inspections_router,
    supervision_terms_router,
    complaints_router,
    permits_router,
    permits_lifecycle_router,
    permits_exchange_router,
    permits_ledger_router,
    catalogue_router,
)
PAGE_ROUTERS = (
    opendata_pages,
    assessment_pages,
    login_pages,
    alarm_pages,
    agency_pages,
    supervision_pages,
    supervision_credit_pages,
    complaints_pages,
    permits_pages,
    permits_tax_pages,
    permits_ledger_pages,
    ingest_pages,
)
MESSAGES = {403: "forbidden", 404: "not_found"}


def create_app(
    engine: Engine, submit: Submit | None = None, settings: Settings | None = None
) -> FastAPI:
    """The API and portal on ``engine``; ``submit`` stores a batch of uploaded values
    (default: a local pipeline)."""
    app = FastAPI(
        title="EcoHub API",
        version="1",
        description="Eco-environment monitoring data: upload and open data.",
        docs_url=None,  # served below from vendored Swagger UI (no CDN)
        redoc_url=None,
        dependencies=[Depends(known_query_only)],
    )
    app.state.engine = engine
    app.state.settings = settings or get_settings()
    app.state.rate_limiter = RateLimiter()
    install(app.state, engine, submit)
    for router in API_ROUTERS:
        app.include_router(router)
    mount_portal(app)
    return app


def mount_portal(app: FastAPI) -> None:
    """Add the portal's pages, its static files and offline API docs to ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

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

    for router in PAGE_ROUTERS:
        app.include_router(router)

    @app.exception_handler(StarletteHTTPException)
    async def html_errors(request: Request, error: StarletteHTTPException) -> Response:
        """A browser asking for a page gets a page for 404 and 403; the API keeps JSON."""
        wants_html = "text/html" in request.headers.get("accept", "")
        if (
            wants_html
            and not request.url.path.startswith("/api/")
            and error.status_code
            in (
                403,
                404,
            )
        ):
            return message(request, error.status_code, MESSAGES[error.status_code])
        return await http_exception_handler(request, error)
