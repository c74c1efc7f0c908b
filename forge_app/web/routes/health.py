"""Liveness, readiness and metrics: unauthenticated, cheap."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    if request.app.state.storage.ping():
        return JSONResponse({"status": "ready", "database": "ok"})
    return JSONResponse({"error": "unavailable", "detail": "the database is not reachable"}, status_code=503)


async def metrics(request: Request) -> PlainTextResponse:
    storage = request.app.state.storage
    gauges = {
        "forge_app_jobs_queued": ("Jobs waiting to run", float(storage.count_jobs("queued"))),
        "forge_app_jobs_failed": ("Jobs that gave up", float(storage.count_jobs("failed"))),
    }
    return PlainTextResponse(request.app.state.metrics.render(gauges), media_type="text/plain; version=0.0.4")


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
