"""The portal's page kit, shared by every area's ``pages.py``: the Jinja2 templates with
their words in Chinese and English (:mod:`ecohub.web.i18n`), the page language, the
signed-in user, Beijing time on pages, and the agency-only guard with its CSRF check.

Pages read through the same functions as the API routes, so a page and the API never
disagree. Data-heavy pieces (the map's layers, the charts) are drawn in the browser from
the open-data API by the small scripts in ``static/``. Agency pages need a signed-in
agency or admin user; their forms carry the session's CSRF token.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from ecohub.accounts.auth import signed_in
from ecohub.accounts.catalogue import AGENCY_ROLES
from ecohub.accounts.keys import Role
from ecohub.accounts.users import SignedIn
from ecohub.clock import local_time
from ecohub.web.i18n import LANGUAGES, term, text

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["local"] = local_time
LANG_COOKIE = "ecohub_lang"

# Pages allow only their own scripts; the libraries set inline styles, the map draws
# SVG and the vendored marker images.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)


def language(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE, "zh")
    return chosen if chosen in LANGUAGES else "zh"


def safe_next(target: str | None) -> str:
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
            "term": partial(term, lang),
            "lang": lang,
            "user": user,
            "is_agency": bool(user and user.principal.role in AGENCY_ROLES),
            "path": request.url.path,
            "request_query": f"?{request.url.query}" if request.url.query else "",
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


def agency_user(request: Request, also: frozenset[Role] = frozenset()) -> SignedIn | Response:
    """The signed-in agency user (or one of the roles ``also`` admits), a redirect to
    sign in, or a 403 page."""
    user = signed_in(request)
    if user is None:
        return RedirectResponse(f"/login?next={request.url.path}", status.HTTP_303_SEE_OTHER)
    if user.principal.role not in AGENCY_ROLES | also:
        return render(request, "message.html", 403, message=text(language(request))["forbidden"])
    return user


def check_form_csrf(user: SignedIn, csrf_token: str) -> None:
    if csrf_token != user.csrf_token:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")


def message(request: Request, status_code: int, key: str) -> Response:
    """A page with one translated message (``not_found``, ``forbidden``…)."""
    return render(request, "message.html", status_code, message=text(language(request))[key])
