"""`POST /webhooks/{github,gitlab,bitbucket}`: each forge's adapter verifies, persists, answers fast.

Every delivery is counted in `forge_app_webhook_deliveries_total{forge,outcome}`: the
adapters count `accepted` and `duplicate`; a refusal they raise is counted `rejected`
here. The delivery id is bound to every log line written while handling it.
"""

from __future__ import annotations

import importlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forge_app.log_context import bind
from forge_app.web import metrics
from forge_app.web.errors import ApiError

_DELIVERY_HEADERS = ("x-github-delivery", "idempotency-key", "x-gitlab-event-uuid", "x-request-uuid")


def _receiver(forge: str):
    modules: list[Any] = []  # the adapter's webhook module, imported on the first delivery

    async def receive(request: Request) -> Response:
        if not modules:
            try:
                modules.append(importlib.import_module(f"forge_app.forges.{forge}.webhook"))
            except ModuleNotFoundError:
                raise ApiError(404, "not_found", f"{forge} webhooks are not supported by this server") from None
        module = modules[0]
        delivery = next((request.headers[h] for h in _DELIVERY_HEADERS if h in request.headers), None)
        with bind(delivery=delivery[:100] if delivery else None):
            try:
                return await module.receive(request)
            except ApiError:
                metrics.webhook_delivery(forge, "rejected")
                raise

    receive.__name__ = f"receive_{forge}_webhook"
    return receive


routes = [Route(f"/webhooks/{forge}", _receiver(forge), methods=["POST"])
          for forge in ("github", "gitlab", "bitbucket")]
