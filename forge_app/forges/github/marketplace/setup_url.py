"""The Setup URL after a Marketplace purchase: who is this, which account, which plan.

GitHub installs the App and sends the buyer to `/github/installed?installation_id=…`.
forge-app asks GitHub to authorize the user (the App's client id, a single-use `state`),
then with that user's token reads `GET /user`, `GET /user/installations` (the user must
reach that installation, else 403) and `GET /user/marketplace_purchases`, and shows the
account, its plan and the next steps. The user token is kept (encrypted) only so it can
be revoked when the plan is cancelled.
"""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from forge_app.forges.github.marketplace.github_api import (
    HEADERS,
    MarketplaceApi,
    MarketplaceApiError,
    client_credentials,
    open_http,
)
from forge_app.forges.github.marketplace.ledger import PayloadError, parse_purchase
from forge_app.security.crypto import SecretsUnavailable, encrypt

log = logging.getLogger(__name__)

STATE_KIND = "marketplace_setup"
STATE_TTL = 600.0
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>{html.escape(title)} · forge-app</title>"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           "<style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;"
           "line-height:1.5}code,pre{background:#f3f3f3;padding:0 .2em}</style></head><body>"
           f"<h1>{html.escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(doc, status_code=status, headers=_HEADERS)


def callback_url(settings: Any) -> str:
    return f"{settings.public_url}/github/marketplace/callback"


async def installed(request: Request) -> Response:
    settings, storage = request.app.state.settings, request.app.state.storage
    installation = request.query_params.get("installation_id", "")
    if not installation.isdigit():
        return page("Installation not recognised", "<p>This page is GitHub's Setup URL: it expects "
                    "<code>installation_id</code> (a number) from GitHub.</p>", 400)
    client_id, _secret = await run_in_threadpool(client_credentials, settings, storage)
    if not client_id:
        return page("Setup is not configured", "<p>This server has no GitHub client id "
                    "(GITHUB_CLIENT_ID), so it cannot ask GitHub who you are. Tell its operator.</p>", 503)
    state = await run_in_threadpool(storage.create_github_setup_code, STATE_KIND, org=installation, ttl=STATE_TTL)
    query = urlencode({"client_id": client_id, "redirect_uri": callback_url(settings), "state": state})
    return RedirectResponse(f"{settings.github_web_url}/login/oauth/authorize?{query}", status_code=302,
                            headers=_HEADERS)


async def _user_token(settings: Any, storage: Any, code: str) -> str:
    client_id, secret = client_credentials(settings, storage)
    if not client_id or not secret:
        raise MarketplaceApiError("GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET are not configured")
    async with open_http() as http:
        try:
            response = await http.post(f"{settings.github_web_url}/login/oauth/access_token",
                                       headers={**HEADERS, "Accept": "application/json"},
                                       data={"client_id": client_id, "client_secret": secret, "code": code,
                                             "redirect_uri": callback_url(settings)})
        except httpx.HTTPError as exc:
            raise MarketplaceApiError(f"GitHub could not be reached: {type(exc).__name__}") from None
    try:
        doc = response.json()
    except ValueError:
        doc = {}
    token = doc.get("access_token") if isinstance(doc, dict) else None
    if response.status_code >= 400 or not token:
        reason = doc.get("error") if isinstance(doc, dict) else response.status_code
        raise MarketplaceApiError(f"GitHub refused the authorization code ({reason})", 400)
    return str(token)


def _plan_html(purchase: dict[str, Any] | None, account: Any) -> str:
    if purchase is not None:
        name, trial = purchase["plan_name"], purchase["free_trial_ends_on"]
        pending = None
    elif account is not None and account.state == "active":
        name, trial = account.plan_name, account.free_trial_ends_on
        pending = (account.pending_plan_name, account.pending_effective_date) if account.pending_plan_id else None
    else:
        return "<p>No plan is recorded for this account yet. If you just bought one, it appears within a minute.</p>"
    if account is not None and account.pending_plan_id and purchase is not None:
        pending = (account.pending_plan_name, account.pending_effective_date)
    out = f"<p>Plan: <b>{html.escape(str(name))}</b>"
    if trial:
        out += f" (free trial until {html.escape(str(trial)[:10])})"
    out += "</p>"
    if pending:
        out += (f"<p>Pending change: <b>{html.escape(str(pending[0]))}</b> from "
                f"{html.escape(str(pending[1] or '')[:10])}.</p>")
    return out


async def callback(request: Request) -> Response:
    settings, storage = request.app.state.settings, request.app.state.storage
    state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
    if not state or not code:
        return page("Authorization incomplete", "<p>GitHub did not send back a code and state. Start again from "
                    "the app's installation page.</p>", 400)
    known = await run_in_threadpool(storage.check_github_setup_code, STATE_KIND, state, consume=True)
    if known is None:
        return page("Link expired or already used", "<p>This authorization link is unknown, expired or was "
                    "already used. Open the app's Setup URL again from GitHub.</p>", 400)
    installation_id = int(known["org"])
    try:
        token = await _user_token(settings, storage, code)
        async with open_http() as http:
            api = MarketplaceApi(http, settings, storage)
            user = await api.user_get("/user", token)
            installations = await api.user_installations(token)
            purchases_path = "/user/marketplace_purchases" + ("/stubbed" if settings.marketplace_stubbed else "")
            purchases = await api.user_pages(purchases_path, token)
    except MarketplaceApiError as exc:
        log.warning("Setup URL for installation %s: %s", installation_id, exc)
        return page("GitHub did not confirm who you are", f"<p>{html.escape(str(exc))}. Try again from the app's "
                    "installation page.</p>", 502 if exc.status is None or exc.status >= 500 else 400)
    found = next((i for i in installations if i.get("id") == installation_id), None)
    if found is None:
        return page("Not your installation", "<p>Your GitHub account cannot reach this installation of the app. "
                    "Sign in as a member of the account that installed it.</p>", 403)
    account = found.get("account") or {}
    login, account_id = str(account.get("login") or ""), account.get("id")
    purchase = None
    for item in purchases:
        try:
            p = parse_purchase(item, "purchase")
        except PayloadError:
            continue
        if p.account_id == account_id:
            purchase = {"plan_name": p.plan_name, "free_trial_ends_on": p.free_trial_ends_on}
    if isinstance(account_id, int) and isinstance(user.get("id"), int):
        try:
            token_enc = encrypt(settings.secret_key, token)
        except SecretsUnavailable:
            token_enc = None
        if token_enc:
            await run_in_threadpool(storage.save_marketplace_user_token, account_id, user["id"],
                                    str(user.get("login") or ""), token_enc)
    recorded = await run_in_threadpool(storage.marketplace_account_by_login, login) if login else None
    snippet = ("forge-app token create --repo OWNER/NAME   # on this server, once per repository\n"
               "semgrep ci --json > semgrep.json || true\n"
               f"forge-app upload --server {settings.public_url} --token \"$FORGE_APP_TOKEN\" semgrep.json")
    body = (f"<p>Signed in as <b>{html.escape(str(user.get('login') or ''))}</b>. forge-app is installed on "
            f"<b>{html.escape(login)}</b> ({html.escape(str(account.get('type') or 'account'))}).</p>"
            f"{_plan_html(purchase, recorded)}"
            "<h2>Next steps</h2><p>Ask the operator of this server for an upload token per repository, store it "
            "as the CI secret <code>FORGE_APP_TOKEN</code>, and upload the scan after Semgrep:</p>"
            f"<pre>{html.escape(snippet)}</pre>")
    return page("forge-app is set up", body)
