"""The Starlette application: routes, JSON errors, and the job worker in its own thread.

The worker thread has its own event loop and its own SQLite connections, so webhook and
upload answers never wait behind job work (see forge_app/jobs/worker.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

from forge_app.config import Settings
from forge_app.forges.registry import FORGES, with_connections
from forge_app.jobs.registry import default_handlers
from forge_app.jobs.worker import JobContext, Worker, WorkerThread
from forge_app.web import errors
from forge_app.web.metrics import LatencyMiddleware, Metrics
from storage import Storage, open_storage

log = logging.getLogger(__name__)


def _routes() -> list[BaseRoute]:
    from forge_app.web.routes import health, openapi, policies, scans, webhooks

    # Webhooks first: Starlette tries routes in order, and a burst of deliveries should not pay
    # for matching ~20 other paths each (their paths overlap no other route's).
    routes: list[BaseRoute] = [*webhooks.routes, *health.routes, *openapi.routes, *scans.routes, *policies.routes]
    optionals = ("integrations", "connections", "semgrep_ci", "rules", "jobs")
    for optional in optionals:
        try:
            module = __import__(f"forge_app.web.routes.{optional}", fromlist=["routes"])
        except ModuleNotFoundError as exc:
            if exc.name == f"forge_app.web.routes.{optional}":
                continue
            raise
        routes.extend(module.routes)
    routes.extend(importlib.import_module("forge_app.slackapp.routes").routes)  # the Slack app (#18)
    for forge in FORGES.values():
        routes.extend(forge.routes)  # forge-specific pages and webhooks (e.g. an app's setup flow)
    return routes


def create_app(settings: Settings | None = None, storage: Storage | None = None, *,
               run_worker: bool = True) -> Starlette:
    if settings is None:
        from forge_app.security.local_key import ensure_secret_key

        settings = ensure_secret_key(Settings.from_env())
    storage = storage or open_storage(settings.database)
    context = JobContext(storage=storage, settings=settings)
    # While deliveries arrive, the in-process worker takes at most a quarter of the time: it
    # shares Python's GIL with the web loop, and webhooks must be answered within seconds.
    worker = Worker(context, default_handlers(), yield_to=storage.intake_busy)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hints = settings.missing_for_startup()
        for forge in FORGES.values():
            hints += forge.startup_hints(settings, storage) if forge.startup_hints is not None else []
        for hint in hints:
            log.warning("%s", hint)
        connected = with_connections()
        if connected and not storage.connections():
            log.info("no %s connection yet: add one with POST /api/v1/connections (%s)",
                     " or ".join(f.title for f in connected.values()),
                     ", ".join(f"docs/{name}.md" for name in connected))
        for forge in FORGES.values():
            if forge.on_start is not None:
                forge.on_start(settings, storage)
        log.info("forge-app ready: database %s, public URL %s", settings.database, settings.public_url)
        thread = WorkerThread(worker) if run_worker else None
        if thread is not None:
            thread.start()
        try:
            yield
        finally:
            if thread is not None:
                # SIGTERM lands here (uvicorn's graceful shutdown): the current job finishes or is given back.
                await asyncio.to_thread(thread.stop)
            services = context.services.get("closers", [])
            for close in services:
                with contextlib.suppress(Exception):
                    await close()

    app = Starlette(
        routes=_routes(),
        lifespan=lifespan,
        exception_handlers={
            errors.ApiError: errors.api_error_handler,
            HTTPException: errors.http_error_handler,
            Exception: errors.unhandled_error_handler,
        },
    )
    app.add_middleware(LatencyMiddleware)
    from forge_app.console import install as install_console

    install_console(app)  # HTML console: /, /projects, /rules, /settings, /scans/{id}
    app.router.redirect_slashes = False  # a stray trailing slash gets the JSON 404, not a bare redirect
    app.state.settings = settings
    app.state.storage = storage
    app.state.metrics = Metrics()
    app.state.worker = worker
    app.state.job_context = context
    app.state.wake_worker = worker.wake
    return app
