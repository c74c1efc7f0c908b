"""`POST /webhooks/github`: GitHub's side of the one webhook receiver (forge_app/web/routes/webhooks.py).

The work itself runs as a `github_event` job (grouped per installation, so an uninstall
can cancel it). GitHub gives a delivery 10 seconds; nothing here calls GitHub, and with
GITHUB_WEBHOOK_SECRET set the receiver touches no storage before the group-commit writer
persists the delivery: the common path stays on the event loop.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from forge_app.config import Settings
from forge_app.forges.github.behaviours import ROUTER
from forge_app.forges.github.credentials import load_credentials
from forge_app.forges.github.events import JOB_KIND, compact, installation_group, revoke_installation
from forge_app.forges.github.sansio import check_delivery
from forge_app.forges.webhooks import Answer, Delivery, Intake, Key, Refused, Webhook
from storage import Storage

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
NOT_CONFIGURED = Refused(503, "github_not_configured",
                         "no GitHub webhook secret is configured on this server: register the app with "
                         "`forge-app github setup` or set GITHUB_WEBHOOK_SECRET")


def quick_secret(settings: Settings) -> Key | None:
    """GITHUB_WEBHOOK_SECRET wins over a stored registration, so with it set no database read is needed."""
    return Key(settings.github_webhook_secret) if settings.github_webhook_secret else None


def stored_secret(settings: Settings, storage: Storage, _doc: Any) -> Key:
    secret = load_credentials(settings, storage).webhook_secret
    return Key(secret) if secret else Key(None, refusal=NOT_CONFIGURED)


def check(headers: Mapping[str, str], body: bytes, key: Key, _doc: Any) -> Delivery:
    if key.refusal is not None or not key.secret:
        raise key.refusal or NOT_CONFIGURED
    checked = check_delivery(headers, body, key.secret, whose="this app's webhook secret")
    return Delivery(checked.event, checked.delivery_id)


def intake(delivery: Delivery, payload: Any) -> Answer | Intake:
    event, delivery_id = delivery.event, delivery.delivery_id
    if not isinstance(payload, dict):
        raise Refused(400, "invalid_json", "the webhook body must be a JSON object")
    if event == "ping":
        log.info("GitHub ping (hook %s): %s", payload.get("hook_id"), payload.get("zen"))
        return Answer(200, {"status": "ok", "event": "ping"})
    handled = ROUTER.handles(event, payload.get("action") if isinstance(payload.get("action"), str) else None)
    job = compact(event, payload) if handled else None
    if job is None:  # verified; nothing for forge-app to do
        return Answer(202, {"status": "ignored", "event": event, "action": payload.get("action")})
    installation_id = job.get("installation_id")
    queued = Intake(event, delivery_id, JOB_KIND, {**job, "delivery": delivery_id},
                    accepted=Answer(202, {"status": "queued", "event": event, "delivery": delivery_id}),
                    duplicate=Answer(200, {"status": "duplicate", "delivery": delivery_id}),
                    group=installation_group(installation_id) if installation_id is not None else None)
    if event == "installation" and job["action"] in ("deleted", "suspend") and installation_id is not None:
        def revoke_first(storage: Storage) -> Intake:
            """Stop using the installation now, not after the jobs queued before this one."""
            revoke_installation(storage, installation_id)
            return queued

        return dataclasses.replace(queued, prepare=revoke_first)
    return queued


WEBHOOK = Webhook(max_bytes=MAX_WEBHOOK_BYTES, secret=stored_secret, check=check, intake=intake,
                  quick_secret=quick_secret, delivery_headers=("x-github-delivery",), described_as="GitHub App",
                  event_header="X-GitHub-Event",
                  auth="X-Hub-Signature-256 (HMAC-SHA256 of the body with the app's webhook secret)")
