"""Sign-in at `/`, sign-out: the admin token buys a signed session cookie."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from forge_app.console import session
from forge_app.console.web import PageError, error_page, read_form, redirect, render, set_cookie, signed_in, signing_key


def _next(target: str) -> str:
    """Only a local path: never an open redirect."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/projects"


async def home(request: Request) -> Response:
    if signed_in(request):
        return redirect(_next(request.query_params.get("next", "/projects")))
    configured = bool(request.app.state.settings.admin_token)
    return render(request, "signin.html", configured=configured, next=request.query_params.get("next", ""))


async def sign_in(request: Request) -> Response:
    try:
        form = await read_form(request)
    except PageError as exc:
        return error_page(request, exc)
    settings = request.app.state.settings
    if not settings.admin_token:
        return render(request, "signin.html", status=403, configured=False, next="")
    if not session.token_matches(settings.admin_token, form.get("token")):
        return render(request, "signin.html", status=401, configured=True, next=form.get("next"),
                      error="That admin token is not valid. Use the value of FORGE_APP_ADMIN_TOKEN on the server.")
    response = redirect(_next(form.get("next") or "/projects"))
    set_cookie(request, response, session.SESSION_COOKIE, session.new_session(signing_key(request)),
               session.SESSION_SECONDS)
    return response


async def sign_out(request: Request) -> Response:
    try:
        await read_form(request)
    except PageError as exc:
        return error_page(request, exc)
    response = redirect("/")
    response.delete_cookie(session.SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response
