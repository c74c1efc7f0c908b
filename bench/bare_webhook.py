"""The ceiling for `bench/webhooks.py`: a bare Starlette endpoint that only verifies the HMAC.

Same stack as forge-app (Starlette on uvicorn, uvicorn's defaults including its access
log, as `forge-app serve` runs by default), no storage:
whatever forge-app serve does beyond this costs rate and latency.

    python bench/bare_webhook.py PORT SECRET
"""

from __future__ import annotations

import hashlib
import hmac
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def make_app(secret: str) -> Starlette:
    key = secret.encode()

    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-hub-signature-256", "")):
            return JSONResponse({"error": "invalid_signature"}, status_code=401)
        return JSONResponse({"status": "queued", "delivery": request.headers.get("x-github-delivery")},
                            status_code=202)

    return Starlette(routes=[Route("/webhooks/github", receive, methods=["POST"])])


if __name__ == "__main__":
    uvicorn.run(make_app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]))
