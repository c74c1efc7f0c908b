"""`POST /webhooks/{github,gitlab,bitbucket}`: each forge's adapter verifies, persists, answers fast."""

from __future__ import annotations

import importlib

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forge_app.web.errors import ApiError


def _receiver(forge: str):
    async def receive(request: Request) -> Response:
        try:
            module = importlib.import_module(f"forge_app.forges.{forge}.webhook")
        except ModuleNotFoundError:
            raise ApiError(404, "not_found", f"{forge} webhooks are not supported by this server") from None
        return await module.receive(request)

    receive.__name__ = f"receive_{forge}_webhook"
    return receive


routes = [Route(f"/webhooks/{forge}", _receiver(forge), methods=["POST"]) for forge in ("github", "gitlab", "bitbucket")]
