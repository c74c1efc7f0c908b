"""What every console page shares: templates, the signed-in guard, CSRF-checked forms.

Pages are HTML for people; the JSON API stays the source of truth and the console calls
the same validation and services. Console errors are HTML pages with a fitting status.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from forge_app.console import session
from forge_app.web.body import read_raw
from forge_app.web.errors import ApiError
from storage import Storage
from storage.console import ConsoleQueries

FORM_LIMIT = 64 * 1024
_HERE = Path(__file__).parent
# A forge's own console templates live in its package: "<forge>/templates/<name>.html".
_ENV = Environment(loader=FileSystemLoader([str(_HERE / "templates"), str(_HERE.parent / "forges")]),
                   autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)
_FALLBACK_KEY = secrets.token_bytes(32)  # no FORGE_APP_SECRET_KEY: sessions last as long as the process


class Form:
    """A parsed urlencoded form: first value of a field, or all values."""

    def __init__(self, fields: Mapping[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self._fields.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return list(self._fields.get(name, []))


class PageError(Exception):
    """Rendered as the error page with this status and sentence."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def storage_of(request: Request) -> Storage:
    return request.app.state.storage


def queries(request: Request) -> ConsoleQueries:
    return ConsoleQueries(storage_of(request).database)


def signing_key(request: Request) -> bytes:
    settings = request.app.state.settings
    return session.derive_key(settings.secret_key, settings.admin_token, _FALLBACK_KEY)


def _secure(request: Request) -> bool:
    """Secure cookies over https: the request's own scheme, or a TLS-terminating proxy in front of
    the https public URL (the browser reached that host; the proxy spoke http to us)."""
    if request.url.scheme == "https":
        return True
    public = urlsplit(request.app.state.settings.public_url)
    return public.scheme == "https" and request.headers.get("host", "").lower() == public.netloc.lower()


def signed_in(request: Request) -> bool:
    if not request.app.state.settings.admin_token:
        return False
    return session.session_valid(signing_key(request), request.cookies.get(session.SESSION_COOKIE))


def _nonce(request: Request) -> tuple[str, bool]:
    """The browser's CSRF nonce, and whether it is fresh (must be set as a cookie)."""
    existing = request.cookies.get(session.NONCE_COOKIE)
    if existing and 16 <= len(existing) <= 64:
        return existing, False
    cached = getattr(request.state, "csrf_nonce", None)
    if cached:
        return cached, True
    nonce = session.new_nonce()
    request.state.csrf_nonce = nonce
    return nonce, True


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", secure=_secure(request), path="/")


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    nonce, fresh = _nonce(request)
    context.setdefault("signed_in", signed_in(request))
    html = _ENV.get_template(template).render(request=request, csrf=session.csrf_token(signing_key(request), nonce),
                                              path=request.url.path, **context)
    response = HTMLResponse(html, status_code=status, headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                   "script-src 'self'; form-action 'self'; frame-ancestors 'none'"})
    if fresh:
        set_cookie(request, response, session.NONCE_COOKIE, nonce, session.NONCE_SECONDS)
    return response


def error_page(request: Request, exc: PageError) -> HTMLResponse:
    return render(request, "error.html", status=exc.status, title=exc.title, detail=exc.detail)


def to_signin(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/?next={quote(request.url.path)}", status_code=303)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def read_form(request: Request) -> Form:
    """The posted form, after the CSRF check (403 page without a valid token)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        raw = await read_raw(request, FORM_LIMIT)
    except ApiError as exc:
        raise PageError(exc.status, "Form too large", exc.detail) from None
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise PageError(415, "Unsupported form", "The console accepts only plain HTML form posts.")
    fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=2000)
    form = Form(fields)
    if not session.csrf_valid(signing_key(request), request.cookies.get(session.NONCE_COOKIE), form.get("csrf")):
        raise PageError(403, "Form refused",
                        "This form did not carry a valid CSRF token (it expired, it did not come from this "
                        "console, or this browser does not keep this site's cookies). Go back, reload the page "
                        "and try again.")
    return form


def page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, min(int(raw), 100000)) if raw.isdigit() else 1


def page(handler: Any) -> Any:
    """A signed-in GET page: anonymous visitors go to the sign-in form."""

    async def endpoint(request: Request) -> Response:
        if not signed_in(request):
            return to_signin(request)
        try:
            return await handler(request)
        except PageError as exc:
            return error_page(request, exc)

    endpoint.__name__ = handler.__name__
    return endpoint


def action(handler: Any) -> Any:
    """A signed-in form POST: CSRF first (403), then the session (back to sign-in)."""

    async def endpoint(request: Request) -> Response:
        try:
            form = await read_form(request)
            if not signed_in(request):
                return to_signin(request)
            return await handler(request, form)
        except PageError as exc:
            return error_page(request, exc)

    endpoint.__name__ = handler.__name__
    return endpoint


def int_param(request: Request, name: str) -> int:
    raw = request.path_params.get(name, "")
    if not raw.isdigit() or len(raw) > 15:
        raise PageError(404, "Not found", f"There is nothing at {request.url.path}.")
    return int(raw)
