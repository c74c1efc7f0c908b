"""HTTP routes of the Slack app. Requests from Slack are verified, answered at once, and
their work queued as durable jobs (forge_app.slackapp.jobs); Slack waits at most 3 s.
"""

from __future__ import annotations

import html
import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from forge_app.jobs.errors import RetryLater
from forge_app.security.crypto import SecretsUnavailable, encrypt
from forge_app.slackapp import BOT_SCOPES, COMMAND_SUBSCRIBE, COMMAND_UNSUBSCRIBE, configured
from forge_app.slackapp.api import SlackError, raw_call, web_client
from forge_app.slackapp.blocks import MENU_ACTION, SUBSCRIBE_CALLBACK
from forge_app.slackapp.jobs import COMMAND_JOB, EVENT_JOB, INTERACTION_JOB
from forge_app.slackapp.verify import require_configured, verified_body
from forge_app.web import metrics
from forge_app.web.auth import require_admin
from forge_app.web.errors import ApiError, path_id

log = logging.getLogger(__name__)

STATE_TTL = 600.0


# --- install -------------------------------------------------------------------------

def authorize_url(request: Request) -> str:
    settings = request.app.state.settings
    state = secrets.token_urlsafe(32)
    request.app.state.storage.create_slack_state(state, STATE_TTL)
    query = {"client_id": settings.slack_client_id, "scope": ",".join(BOT_SCOPES),
             "redirect_uri": f"{settings.public_url}/slack/oauth/callback", "state": state}
    return f"{settings.slack_authorize_url}?{urlencode(query)}"


async def api_install(request: Request) -> Response:
    require_admin(request)
    require_configured(request)
    return JSONResponse({"url": authorize_url(request)})


def _console_admin(request: Request) -> bool:
    """A signed-in console session (the console's own check)."""
    try:
        from forge_app.console.web import signed_in
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("forge_app.console"):
            return False
        raise
    return signed_in(request)


async def browser_install(request: Request) -> Response:
    """"Add to Slack": for an admin (bearer token or console session) → Slack's authorize page."""
    require_configured(request)
    if not _console_admin(request):
        require_admin(request)
    return RedirectResponse(authorize_url(request), status_code=302)


def _page(status: int, title: str, text: str) -> HTMLResponse:
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>")
    return HTMLResponse(body, status_code=status)


async def oauth_callback(request: Request) -> Response:
    require_configured(request)
    settings = request.app.state.settings
    storage = request.app.state.storage
    q = request.query_params
    state, code, error = q.get("state"), q.get("code"), q.get("error")
    if error:
        if state:
            storage.consume_slack_state(state)
        if error == "access_denied":
            return _page(200, "Installation cancelled", "The Slack install was cancelled; nothing was installed.")
        return _page(400, "Installation failed", f"Slack said: {error}. Nothing was installed.")
    if not state or not code:
        return _page(400, "Invalid install link", "The link lacks code or state; start again from Add to Slack.")
    if not settings.secret_key:
        return _page(503, "Cannot store the token",
                     "FORGE_APP_SECRET_KEY is not set, so the Slack token cannot be stored.")
    outcome = storage.consume_slack_state(state)
    if outcome != "ok":
        reason = {"unknown": "is not one this server issued", "expired": "has expired (10 minutes)",
                  "used": "was already used"}[outcome]
        return _page(400, "Invalid install link", f"This install link {reason}; start again from Add to Slack.")
    client = web_client(settings)
    try:
        data = await raw_call(lambda: client.oauth_v2_access(
            client_id=settings.slack_client_id or "", client_secret=settings.slack_client_secret or "",
            code=code, redirect_uri=f"{settings.public_url}/slack/oauth/callback"))
    except SlackError as exc:
        return _page(400, "Installation failed", f"Slack refused the code ({exc.code}); start again.")
    except RetryLater:
        return _page(502, "Slack unreachable", "Slack could not be reached to finish the install; try again.")
    team = data.get("team") or {}
    token = data.get("access_token")
    if not isinstance(team, dict) or not isinstance(team.get("id"), str) or not isinstance(token, str):
        return _page(502, "Installation failed", "Slack's answer lacked the workspace or the bot token.")
    refresh = data.get("refresh_token") if isinstance(data.get("refresh_token"), str) else None
    expires = data.get("expires_in")
    raw_enterprise = data.get("enterprise")
    enterprise = raw_enterprise if isinstance(raw_enterprise, dict) else {}
    try:
        installation = storage.save_slack_installation(
            team_id=team["id"], team_name=team.get("name") if isinstance(team.get("name"), str) else None,
            enterprise_id=enterprise.get("id"), app_id=data.get("app_id"), bot_user_id=data.get("bot_user_id"),
            scopes=[s for s in str(data.get("scope") or "").split(",") if s],
            bot_token=encrypt(settings.secret_key, token),
            refresh_token=encrypt(settings.secret_key, refresh) if refresh else None,
            token_expires_at=time.time() + float(expires) if isinstance(expires, (int, float)) else None)
    except SecretsUnavailable:
        return _page(503, "Cannot store the token", "FORGE_APP_SECRET_KEY cannot encrypt the Slack token.")
    log.info("slack app installed in workspace %s (%s)", installation.team_id, installation.team_name)
    return _page(200, "forge-app is installed",
                 f"forge-app is installed in {installation.team_name or installation.team_id}. In a channel, "
                 f"type {COMMAND_SUBSCRIBE} owner/repo to get its new findings there.")


# --- requests from Slack --------------------------------------------------------------

async def _queue(request: Request, kind: str, payload: dict[str, Any], key: str | None) -> bool:
    """Persist the work (off the event loop, like the webhook intake) and wake the worker."""
    job = await run_in_threadpool(request.app.state.storage.enqueue_job, kind, payload, key=key, max_attempts=5)
    metrics.webhook_delivery("slack", "accepted" if job is not None else "duplicate")
    if job is not None:
        wake = getattr(request.app.state, "wake_worker", None)
        if wake is not None:
            wake()
    return job is not None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "invalid_json", "the body is not JSON as Slack's Events API sends it") from None


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_form", "the body is not UTF-8 form data") from None
    pairs = parse_qs(text, keep_blank_values=True, strict_parsing=False)
    if not pairs:
        raise ApiError(400, "invalid_form", "the body is not form data (application/x-www-form-urlencoded)")
    return {k: v[0] for k, v in pairs.items()}


def _ephemeral(text: str) -> JSONResponse:
    return JSONResponse({"response_type": "ephemeral", "text": text})


def _active_installation(request: Request, team_id: Any):
    if not isinstance(team_id, str) or not team_id:
        return None
    installation = request.app.state.storage.slack_installation_for_team(team_id)
    return installation if installation is not None and installation.status != "revoked" else None


async def events(request: Request) -> Response:
    body = await verified_body(request, replay_guard=False)
    data = _json(body)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_event", "an Events API body is a JSON object")
    if data.get("type") == "url_verification":
        challenge = data.get("challenge")
        if not isinstance(challenge, str):
            raise ApiError(400, "invalid_event", "url_verification without a challenge")
        return JSONResponse({"challenge": challenge})
    if data.get("type") != "event_callback":
        return JSONResponse({"ok": True, "ignored": f"event envelope type {data.get('type')!r}"})
    event, event_id = data.get("event"), data.get("event_id")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not isinstance(event_id, str):
        raise ApiError(400, "invalid_event", "event_callback needs an event object with a type, and an event_id")
    team_id = data.get("team_id")
    installation = request.app.state.storage.slack_installation_for_team(team_id) if isinstance(team_id, str) else None
    if installation is None:
        return JSONResponse({"ok": True, "ignored": "no installation for this team_id"})
    queued = await _queue(request, EVENT_JOB, {"installation_id": installation.id, "event": event},
                    key=f"slack_event:{event_id}")
    headers = {} if queued else {"X-Slack-No-Retry": "1"}
    return JSONResponse({"ok": True, "duplicate": not queued}, headers=headers)


async def commands(request: Request) -> Response:
    body = await verified_body(request)
    form = _form(body)
    command = form.get("command")
    if not command:
        raise ApiError(400, "invalid_command", "a slash command body has a command field")
    settings = request.app.state.settings
    installation = _active_installation(request, form.get("team_id"))
    if installation is None:
        return _ephemeral(f"forge-app is not installed in this workspace. An admin can install it from "
                          f"{settings.public_url}/slack/install.")
    if command not in (COMMAND_SUBSCRIBE, COMMAND_UNSUBSCRIBE):
        return _ephemeral(f"forge-app does not know the command {command}; it has {COMMAND_SUBSCRIBE} and "
                          f"{COMMAND_UNSUBSCRIBE}.")
    channel_id = form.get("channel_id") or ""
    storage = request.app.state.storage
    if command == COMMAND_UNSUBSCRIBE:
        if storage.delete_slack_channel(installation.id, channel_id):
            return _ephemeral("This channel is unsubscribed: forge-app will post no more findings here.")
        return _ephemeral("This channel has no forge-app subscription.")
    repo = (form.get("text") or "").strip()
    if repo and not storage.is_known_repository(repo):
        return _ephemeral(f"forge-app does not know the repository {repo}. A repository is known once forge-app "
                          "has a scan of it or reaches it through an app installation or a connection.")
    payload = {"installation_id": installation.id, "channel_id": channel_id,
               "channel_name": form.get("channel_name"), "user_id": form.get("user_id"),
               "trigger_id": form.get("trigger_id"), "response_url": form.get("response_url"), "repository": repo}
    await _queue(request, COMMAND_JOB, payload, key=None)
    return Response(status_code=200)


async def interactions(request: Request) -> Response:
    body = await verified_body(request)
    form = _form(body)
    raw = form.get("payload")
    if raw is None:
        raise ApiError(400, "invalid_interaction", "an interaction body has one form field, payload")
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError:
        raise ApiError(400, "invalid_interaction", "the payload field is not JSON") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_interaction", "the payload field is not a JSON object")
    raw_team = payload.get("team")
    team = raw_team if isinstance(raw_team, dict) else {}
    installation = _active_installation(request, team.get("id"))
    kind = payload.get("type")
    wanted = (kind == "view_submission" and (payload.get("view") or {}).get("callback_id") == SUBSCRIBE_CALLBACK) \
        or (kind == "block_actions" and any(isinstance(a, dict) and a.get("action_id") == MENU_ACTION
                                            for a in payload.get("actions") or []))
    if installation is None or not wanted:
        return Response(status_code=200)
    payload.pop("token", None)  # the deprecated verification token: not kept in the job table
    await _queue(request, INTERACTION_JOB, {"installation_id": installation.id, "payload": payload}, key=None)
    return Response(status_code=200)


# --- admin API --------------------------------------------------------------------------

def _installation_json(i: Any) -> dict[str, Any]:
    return {"id": i.id, "team_id": i.team_id, "team_name": i.team_name, "bot_user_id": i.bot_user_id,
            "scopes": i.scopes, "status": i.status, "installed_at": i.installed_at}


def _subscription_json(s: Any) -> dict[str, Any]:
    return {"id": s.id, "installation_id": s.installation_id, "team_id": s.team_id, "channel_id": s.channel_id,
            "channel_name": s.channel_name, "repositories": s.repositories, "policies": s.policies,
            "enabled": s.enabled, "disabled_reason": s.disabled_reason}


async def list_installations(request: Request) -> Response:
    require_admin(request)
    return JSONResponse([_installation_json(i) for i in request.app.state.storage.slack_installations()])


async def uninstall(settings: Any, storage: Any, installation: Any) -> str:
    """apps.uninstall (best effort), then remove the installation with its subscriptions; says what Slack said."""
    from forge_app.slackapp.api import InstallationUnusable, SlackInstallClient

    slack_said = "uninstalled"
    if configured(settings) and installation.status != "revoked":
        try:
            await SlackInstallClient(settings, storage, installation).call(
                "apps_uninstall", client_id=settings.slack_client_id, client_secret=settings.slack_client_secret)
        except InstallationUnusable:
            slack_said = "token already revoked"
        except (SlackError, RetryLater, SecretsUnavailable) as exc:
            # Removing it here must not depend on Slack: the admin can remove the app in Slack too.
            slack_said = f"apps.uninstall failed ({exc}); remove the app in Slack's settings too"
    storage.delete_slack_installation(installation.id)
    return slack_said


async def delete_installation(request: Request) -> Response:
    require_admin(request)
    raw = path_id(request, "installation_id", "Slack installation")  # ASCII digits within int64, else 404
    storage, settings = request.app.state.storage, request.app.state.settings
    installation = storage.slack_installation(raw)
    if installation is None:
        raise ApiError(404, "not_found", f"no Slack installation {raw}")
    slack_said = await uninstall(settings, storage, installation)
    return JSONResponse({"id": installation.id, "deleted": True, "slack": slack_said})


async def list_subscriptions(request: Request) -> Response:
    require_admin(request)
    return JSONResponse([_subscription_json(s) for s in request.app.state.storage.slack_subscriptions()])


def _console_routes() -> list[Route]:
    try:
        from forge_app.slackapp.console_pages import routes as pages
    except ModuleNotFoundError as exc:  # no console in this build
        if exc.name and exc.name.startswith("forge_app.console"):
            return []
        raise
    return list(pages)


routes = [
    *_console_routes(),
    Route("/api/v1/slack/install", api_install, methods=["POST"]),
    Route("/api/v1/slack/installations", list_installations, methods=["GET"]),
    Route("/api/v1/slack/installations/{installation_id}", delete_installation, methods=["DELETE"]),
    Route("/api/v1/slack/subscriptions", list_subscriptions, methods=["GET"]),
    Route("/slack/install", browser_install, methods=["GET"]),
    Route("/slack/oauth/callback", oauth_callback, methods=["GET"]),
    Route("/slack/events", events, methods=["POST"]),
    Route("/slack/commands", commands, methods=["POST"]),
    Route("/slack/interactions", interactions, methods=["POST"]),
]


_ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}]
_ERR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "error", "content": {"application/json": {"schema": _ERR}}} for c in codes}


def _array(properties: dict[str, Any]) -> dict[str, Any]:
    return {"description": "ok", "content": {"application/json": {"schema": {
        "type": "array", "items": {"type": "object", "properties": properties}}}}}


OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/slack/install": {"post": {
        "summary": "Start installing the Slack app: Slack's authorize URL with a single-use state (10 minutes)",
        "security": _ADMIN,
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
            "type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}}}},
            **_errors(401, 403, 404)}}},
    "/api/v1/slack/installations": {"get": {
        "summary": "Workspaces the Slack app is installed in (never a token)", "security": _ADMIN,
        "responses": {"200": _array({
            "id": {"type": "integer"}, "team_id": {"type": "string"},
            "team_name": {"type": "string", "nullable": True}, "bot_user_id": {"type": "string", "nullable": True},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "status": {"type": "string", "enum": ["active", "revoked", "needs_reinstall"]},
            "installed_at": {"type": "string"}}), **_errors(401, 403)}}},
    "/api/v1/slack/installations/{installation_id}": {"delete": {
        "summary": "apps.uninstall, then remove the installation with its subscriptions", "security": _ADMIN,
        "parameters": [{"name": "installation_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": {"description": "removed"}, **_errors(401, 403, 404)}}},
    "/api/v1/slack/subscriptions": {"get": {
        "summary": "Channel subscriptions of every workspace", "security": _ADMIN,
        "responses": {"200": _array({
            "id": {"type": "integer"}, "installation_id": {"type": "integer"}, "team_id": {"type": "string"},
            "channel_id": {"type": "string"}, "channel_name": {"type": "string", "nullable": True},
            "repositories": {"type": "array", "items": {"type": "string"}},
            "policies": {"type": "array", "items": {"type": "string"}}, "enabled": {"type": "boolean"},
            "disabled_reason": {"type": "string", "nullable": True}}), **_errors(401, 403)}}},
}
