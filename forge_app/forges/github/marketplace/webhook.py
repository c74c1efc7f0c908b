"""`POST /webhooks/github/marketplace`: the listing webhook, verified with its own secret.

GitHub sends `marketplace_purchase` here, never to the App's webhook, signed with the
secret set on the listing page. The delivery is stored with its job in one transaction
(as the other webhooks do) before the answer, and GitHub never resends a failed one, so
a payload that strays from the published schema in details is still accepted.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from forge_app.forges.github.marketplace.ledger import ACTIONS, PayloadError, parse_event
from forge_app.forges.github.sansio import Refused, check_delivery
from forge_app.forges.github.webhook import MAX_WEBHOOK_BYTES
from forge_app.web import metrics
from forge_app.web.body import parse_json, read_raw
from forge_app.web.errors import error_response
from storage import Storage

log = logging.getLogger(__name__)

JOB_KIND = "marketplace_event"
DELIVERY_SOURCE = "github-marketplace"


@lru_cache(maxsize=1)
def _validator() -> Draft7Validator:
    text = resources.files("forge_app").joinpath("schemas", "marketplace_purchase.schema.json").read_text("utf-8")
    return Draft7Validator(json.loads(text))


def schema_deviations(payload: dict[str, Any], limit: int = 5) -> list[str]:
    """Where a delivery differs from octokit's schema (logged, never a reason to refuse it)."""
    out = []
    for error in _validator().iter_errors(payload):
        out.append(error.message[:200])
        if len(out) >= limit:
            break
    return out


def _rejected(status: int, code: str, detail: str) -> Response:
    metrics.webhook_delivery(DELIVERY_SOURCE, "rejected")
    return error_response(status, code, detail)


def _answered(doc: dict[str, Any], status: int, outcome: str = "accepted") -> Response:
    metrics.webhook_delivery(DELIVERY_SOURCE, outcome)
    return JSONResponse(doc, status_code=status)


async def receive(request: Request) -> Response:
    storage: Storage = request.app.state.storage
    settings = request.app.state.settings
    secret = settings.github_marketplace_webhook_secret
    if not secret:
        return _rejected(503, "marketplace_not_configured",
                         "no Marketplace webhook secret is configured on this server: set "
                         "GITHUB_MARKETPLACE_WEBHOOK_SECRET to the secret of the listing's webhook")
    body = await read_raw(request, MAX_WEBHOOK_BYTES)
    try:
        checked = check_delivery(request.headers, body, secret,
                                 whose="the Marketplace listing webhook's secret (GITHUB_MARKETPLACE_WEBHOOK_SECRET, "
                                       "not the App's)")
    except Refused as refusal:
        return _rejected(refusal.status, refusal.code, refusal.detail)
    event, delivery = checked.event, checked.delivery_id
    payload = parse_json(body)
    if not isinstance(payload, dict):
        return _rejected(400, "invalid_json", "the webhook body must be a JSON object")
    if event == "ping":
        log.info("GitHub Marketplace ping (hook %s)", payload.get("hook_id"))
        return _answered({"status": "ok", "event": "ping"}, 200)
    if event != "marketplace_purchase":
        return _answered({"status": "ignored", "event": event,
                          "detail": "the listing webhook acts on marketplace_purchase only"}, 202)
    if payload.get("action") not in ACTIONS:
        return _answered({"status": "ignored", "event": event, "action": payload.get("action"),
                          "detail": f"unknown action (known: {', '.join(ACTIONS)})"}, 202)
    try:
        parsed = parse_event(payload)
    except PayloadError as exc:
        return _rejected(400, "invalid_payload", f"the marketplace_purchase delivery cannot be used: {exc}")
    deviations = schema_deviations(payload)
    if deviations:
        log.info("marketplace_purchase delivery %s differs from the published schema (accepted): %s", delivery,
                 "; ".join(deviations))
    account_id = parsed.purchase.account_id
    job = {"action": parsed.action, "account_id": account_id, "delivery": delivery, "payload": payload}
    accepted = await storage.accept_delivery_async(DELIVERY_SOURCE, delivery, event, kind=JOB_KIND, payload=job,
                                                   group=f"marketplace:{account_id}")
    if not accepted:
        return _answered({"status": "duplicate", "delivery": delivery}, 200, "duplicate")
    request.app.state.wake_worker()
    return _answered({"status": "queued", "event": event, "action": parsed.action, "delivery": delivery}, 202)
