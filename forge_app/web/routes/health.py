"""Liveness, readiness and metrics: unauthenticated, cheap."""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


READY_TIMEOUT = 3.0  # a load balancer's probe must get an answer, even while the database hangs


async def readyz(request: Request) -> JSONResponse:
    """Ready = the database answers now. Checked on every probe (nothing cached), off the event loop,
    so a replica reports itself ready again as soon as the database is back, without a restart."""
    try:
        ok = await asyncio.wait_for(asyncio.to_thread(request.app.state.storage.ping), READY_TIMEOUT)
    except TimeoutError:
        ok = False
    if ok:
        return JSONResponse({"status": "ready", "database": "ok"})
    return JSONResponse({"error": "unavailable", "detail": "the database is not reachable"}, status_code=503,
                        headers={"Retry-After": "5"})


def _render(app) -> str:
    storage = app.state.storage
    counts = storage.job_state_counts()
    gauges = {
        "forge_app_jobs_queued": ("Jobs waiting to run", float(counts["queued"])),
        "forge_app_jobs_failed": ("Jobs that gave up", float(counts["dead"])),
    }
    return app.state.metrics.render(gauges, job_counts=lambda: counts)


async def metrics(request: Request) -> PlainTextResponse:
    text = await run_in_threadpool(_render, request.app)  # storage off the event loop
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
