"""`POST /webhooks/github`: verify, de-duplicate, persist, answer 202 at once.

The work itself runs as a `github_event` job (grouped per installation, so an
uninstall can cancel it). GitHub gives a delivery 10 seconds; nothing here calls GitHub,
and nothing here touches the database on the event loop: the delivery is committed by
the group-commit writer and answered once durable.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from forge_app.forges.github.credentials import load_credentials
from forge_app.forges.github.events import JOB_KIND, compact, installation_group, revoke_installation
from forge_app.forges.github.sansio import Refused, check_delivery
from forge_app.web import metrics
from forge_app.web.body import parse_json, read_raw
from forge_app.web.errors import error_response
from storage import Storage

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


async def _webhook_secret(request: Request) -> str | None:
    """GITHUB_WEBHOOK_SECRET wins over a stored registration, so with it set no database read is needed."""
    settings = request.app.state.settings
    if settings.github_webhook_secret:
        return settings.github_webhook_secret
    credentials = await run_in_threadpool(load_credentials, settings, request.app.state.storage)
    return credentials.webhook_secret


def _rejected(status: int, code: str, detail: str) -> Response:
    metrics.webhook_delivery("github", "rejected")
    return error_response(status, code, detail)


async def receive(request: Request) -> Response:
    storage: Storage = request.app.state.storage
    secret = await _webhook_secret(request)
    if not secret:
        return _rejected(503, "github_not_configured",
                         "no GitHub webhook secret is configured on this server: register the app with "
                         "`forge-app github setup` or set GITHUB_WEBHOOK_SECRET")
    body = await read_raw(request, MAX_WEBHOOK_BYTES)
    try:
        checked = check_delivery(request.headers, body, secret, whose="this app's webhook secret")
    except Refused as refusal:
        return _rejected(refusal.status, refusal.code, refusal.detail)
    event, delivery = checked.event, checked.delivery_id
    payload = parse_json(body)
    if not isinstance(payload, dict):
        return _rejected(400, "invalid_json", "the webhook body must be a JSON object")
    if event == "ping":
        log.info("GitHub ping (hook %s): %s", payload.get("hook_id"), payload.get("zen"))
        metrics.webhook_delivery("github", "accepted")
        return JSONResponse({"status": "ok", "event": "ping"}, status_code=200)
    job = compact(event, payload)
    if job is None:
        metrics.webhook_delivery("github", "accepted")  # verified; nothing for forge-app to do
        return JSONResponse({"status": "ignored", "event": event, "action": payload.get("action")}, status_code=202)
    installation_id = job.get("installation_id")
    if event == "installation" and job["action"] in ("deleted", "suspend") and installation_id is not None:
        # Stop using the installation now, not after the jobs queued before this one.
        await run_in_threadpool(revoke_installation, storage, installation_id)
    group = installation_group(installation_id) if installation_id is not None else None
    accepted = await storage.accept_delivery_async("github", delivery, event, kind=JOB_KIND,
                                                   payload={**job, "delivery": delivery}, group=group)
    if not accepted:
        metrics.webhook_delivery("github", "duplicate")
        log.info("GitHub delivery %s is a redelivery: already queued", delivery)
        return JSONResponse({"status": "duplicate", "delivery": delivery}, status_code=200)
    metrics.webhook_delivery("github", "accepted")
    request.app.state.wake_worker()
    return JSONResponse({"status": "queued", "event": event, "delivery": delivery}, status_code=202)
