"""`POST /webhooks/github`: verify, de-duplicate, persist, answer 202 at once.

The work itself runs as a `github_event` job (grouped per installation, so an
uninstall can cancel it). GitHub gives a delivery 10 seconds; nothing here calls GitHub.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from forge_app.forges.github.credentials import load_credentials
from forge_app.forges.github.events import JOB_KIND, compact, installation_group, revoke_installation
from forge_app.web.body import parse_json, read_raw
from forge_app.web.errors import error_response
from storage import Storage

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


def signature_matches(body: bytes, header: str | None, secret: str) -> bool:
    """`X-Hub-Signature-256: sha256=<hex>` over the raw body, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())


async def receive(request: Request) -> Response:
    storage: Storage = request.app.state.storage
    settings = request.app.state.settings
    credentials = await run_in_threadpool(load_credentials, settings, storage)
    if not credentials.webhook_secret:
        return error_response(503, "github_not_configured",
                              "no GitHub webhook secret is configured on this server: register the app with "
                              "`forge-app github setup` or set GITHUB_WEBHOOK_SECRET")
    body = await read_raw(request, MAX_WEBHOOK_BYTES)
    if not signature_matches(body, request.headers.get("x-hub-signature-256"), credentials.webhook_secret):
        return error_response(401, "invalid_signature",
                              "X-Hub-Signature-256 is missing or does not match the body for this app's webhook secret")
    event = request.headers.get("x-github-event", "").strip()
    delivery = request.headers.get("x-github-delivery", "").strip()
    if not event or not delivery:
        return error_response(400, "bad_request", "X-GitHub-Event and X-GitHub-Delivery headers are required")
    payload = parse_json(body)
    if not isinstance(payload, dict):
        return error_response(400, "invalid_json", "the webhook body must be a JSON object")
    if event == "ping":
        log.info("GitHub ping (hook %s): %s", payload.get("hook_id"), payload.get("zen"))
        return JSONResponse({"status": "ok", "event": "ping"}, status_code=200)
    job = compact(event, payload)
    if job is None:
        return JSONResponse({"status": "ignored", "event": event, "action": payload.get("action")}, status_code=202)
    installation_id = job.get("installation_id")
    if event == "installation" and job["action"] in ("deleted", "suspend") and installation_id is not None:
        # Stop using the installation now, not after the jobs queued before this one.
        await run_in_threadpool(revoke_installation, storage, installation_id)
    group = installation_group(installation_id) if installation_id is not None else None
    accepted = await run_in_threadpool(storage.accept_delivery, "github", delivery, event, kind=JOB_KIND,
                                       payload={**job, "delivery": delivery}, group=group)
    if not accepted:
        return JSONResponse({"status": "duplicate", "delivery": delivery}, status_code=200)
    request.app.state.wake_worker()
    return JSONResponse({"status": "queued", "event": event, "delivery": delivery}, status_code=202)
