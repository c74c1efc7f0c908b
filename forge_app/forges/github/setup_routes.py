"""`/github/setup`, `/github/callback`, `/github/installed`: registering and installing the GitHub App.

Small server-rendered pages: the setup page auto-posts the manifest to GitHub, the
callback stores what GitHub created, the last page says what to do next.
"""

from __future__ import annotations

import html
import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from forge_app.forges.github import registration
from forge_app.forges.github.manifest import ManifestError, build_manifest
from forge_app.web.errors import ApiError

_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)} · forge-app</title>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;"
        "line-height:1.5}code{background:#f3f3f3;padding:0 .2em}button,.button{font-size:1rem;padding:.5em 1em}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers=_HEADERS)


def _fail(exc: registration.RegistrationError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.detail)


async def setup_page(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    storage = request.app.state.storage
    code = request.query_params.get("token")
    try:
        link = await run_in_threadpool(registration.authorize_page, settings, storage, code)
        org = registration.check_org(request.query_params.get("org") or (link or {}).get("org"))
        manifest = build_manifest(settings, public=request.query_params.get("public") == "1")
        state = await run_in_threadpool(lambda: registration.start(settings, storage, org, linked=link is not None))
    except registration.RegistrationError as exc:
        raise _fail(exc) from None
    except ManifestError as exc:
        raise ApiError(500, "invalid_manifest", str(exc)) from None
    action = f"{registration.new_app_url(settings, org)}?state={state}"
    where = f"the organization <b>{html.escape(org)}</b>" if org else "your personal account"
    body = (
        f"<p>forge-app will be registered as a GitHub App owned by {where} on "
        f"<code>{html.escape(settings.github_web_url)}</code>, with webhooks sent to "
        f"<code>{html.escape(manifest['hook_attributes']['url'])}</code>.</p>"
        "<p>GitHub shows the app's settings; choose its name (it must be unique on GitHub) and click "
        "<b>Create GitHub App</b>. You will come back here to install it.</p>"
        f"<form id=\"manifest-form\" method=\"post\" action=\"{html.escape(action)}\">"
        f"<input type=\"hidden\" name=\"manifest\" value=\"{html.escape(json.dumps(manifest))}\">"
        "<button type=\"submit\">Continue to GitHub</button></form>"
        "<script>document.getElementById('manifest-form').submit();</script>"
    )
    return _page("Register forge-app on GitHub", body)


async def callback(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    storage = request.app.state.storage
    try:
        app = await registration.finish(settings, storage, request.query_params.get("code", ""),
                                        request.query_params.get("state", ""))
    except registration.RegistrationError as exc:
        raise _fail(exc) from None
    slug = app.get("slug") or ""
    install = registration.install_url(settings, slug)
    env_note = ""
    if settings.github_app_id or settings.github_private_key or settings.github_webhook_secret:
        env_note = ("<p><b>Note:</b> GITHUB_APP_ID / GITHUB_PRIVATE_KEY / GITHUB_WEBHOOK_SECRET are set in this "
                    "server's environment and win over the app registered now; unset them to use it.</p>")
    body = (
        f"<p>GitHub App <b>{html.escape(str(app.get('name') or slug))}</b> (id {html.escape(str(app['id']))}) "
        "is registered, and its private key and webhook secret are stored encrypted.</p>"
        f"{env_note}"
        f"<p><a class=\"button\" href=\"{html.escape(install)}\">Install it on an organization or repositories</a></p>"
    )
    return _page("GitHub App registered", body)


async def installed(request: Request) -> HTMLResponse:
    installation = request.query_params.get("installation_id", "")
    shown = html.escape(installation) if installation.isdigit() else "(unknown)"
    body = (
        f"<p>forge-app is installed (installation {shown}). GitHub now sends it pull request events.</p>"
        "<p>Next, for each repository: mint an upload token with "
        "<code>forge-app token create --repo OWNER/NAME</code>, store it as the CI secret "
        "<code>FORGE_APP_TOKEN</code>, and run <code>forge-app upload</code> after Semgrep "
        "on pushes to the default branch and on pull requests.</p>"
    )
    return _page("forge-app installed", body)


routes = [
    Route("/github/setup", setup_page, methods=["GET"]),
    Route("/github/callback", callback, methods=["GET"]),
    Route("/github/installed", installed, methods=["GET"]),
]
