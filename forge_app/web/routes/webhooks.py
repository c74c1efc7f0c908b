"""`POST /webhooks/<forge>` for every forge in the registry: ONE receiver that verifies, persists, answers.

Each forge's `Webhook` (forges/webhooks.py) says, without I/O, which secret a delivery
must prove and what a verified delivery asks for; this receiver does the I/O. Storage
lookups (a stored secret, a connection's secret, a forge's `prepare` step) run in the
thread pool, never on the event loop; when the secret comes from the settings and the
intake needs no storage (an app whose webhook secret is in the environment), the delivery goes
straight to the group-commit writer and is answered once durable.

Every delivery is counted in `forge_app_webhook_deliveries_total{forge,outcome}`:
`accepted` (queued, or verified and ignored), `duplicate`, `rejected` (any refusal).
The delivery id is bound to every log line written while handling it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forge_app.forges.registry import FORGES
from forge_app.forges.webhooks import Answer, Intake, Refused, Webhook
from forge_app.log_context import bind
from forge_app.web import metrics
from forge_app.web.body import parse_json, read_raw
from forge_app.web.errors import ApiError
from storage import Storage


async def _handle(forge: str, hook: Webhook, request: Request) -> Response:
    settings, storage = request.app.state.settings, request.app.state.storage
    body = await read_raw(request, hook.max_bytes)
    doc = parse_json(body) if hook.reads_body_first else None
    key = hook.quick_secret(settings) if hook.quick_secret is not None and not hook.reads_body_first else None
    if key is None:
        key = await run_in_threadpool(hook.secret, settings, storage, doc)
    try:
        delivery = hook.check(request.headers, body, key, doc)
        if not hook.reads_body_first:
            doc = parse_json(body)
        outcome: Answer | Intake = hook.intake(delivery, doc)
        if isinstance(outcome, Intake) and outcome.prepare is not None:
            outcome = await run_in_threadpool(outcome.prepare, storage)
    except Refused as refusal:
        raise ApiError(refusal.status, refusal.code, refusal.detail) from None
    if isinstance(outcome, Answer):
        metrics.webhook_delivery(forge, "accepted")
        return JSONResponse(outcome.body, status_code=outcome.status)
    return await _persist(forge, storage, request, outcome)


async def _persist(forge: str, storage: Storage, request: Request, intake: Intake) -> Response:
    accepted = await storage.accept_delivery_async(forge, intake.delivery_id, intake.event, kind=intake.kind,
                                                   payload=intake.payload, group=intake.group)
    if not accepted:
        metrics.webhook_delivery(forge, "duplicate")
        return JSONResponse(intake.duplicate.body, status_code=intake.duplicate.status)
    metrics.webhook_delivery(forge, "accepted")
    wake = getattr(request.app.state, "wake_worker", None)
    if wake is not None:
        wake()
    return JSONResponse(intake.accepted.body, status_code=intake.accepted.status)


def _receiver(forge: str) -> Callable[[Request], Awaitable[Response]]:
    async def receive(request: Request) -> Response:
        hook: Webhook = FORGES[forge].webhook
        delivery = next((request.headers[h] for h in hook.delivery_headers if h in request.headers), None)
        with bind(delivery=delivery[:100] if delivery else None):
            try:
                return await _handle(forge, hook, request)
            except ApiError:
                metrics.webhook_delivery(forge, "rejected")
                raise

    receive.__name__ = f"receive_{forge}_webhook"
    return receive


routes = [Route(f"/webhooks/{f.name}", _receiver(f.name), methods=["POST"])
          for f in FORGES.values() if f.webhook is not None]
