"""Every forge forge-app supports, listed once and imported eagerly.

Adding a forge is one package `forges/<forge>/` with a `forge.py` exporting `FORGE`, plus one
line below. There is no discovery: a broken import in an adapter fails here, at start-up,
with its traceback, instead of making the forge silently disappear.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from forge_app.config import Settings
from forge_app.core.plans import Serving
from forge_app.forges.base import Forge
from forge_app.forges.bitbucket.forge import FORGE as BITBUCKET
from forge_app.forges.connections import ConnectionCheckError, ConnectionRequest
from forge_app.forges.github.forge import FORGE as GITHUB
from forge_app.forges.gitlab.forge import FORGE as GITLAB
from forge_app.forges.sources import DiffReader, Fetcher
from forge_app.jobs.worker import Handler, JobContext
from storage import Job, Repository, ScanRecord, Storage

FORGES: Mapping[str, Forge] = {forge.name: forge for forge in (GITHUB, GITLAB, BITBUCKET)}
"""In CI-detection order: the first forge whose CI variables are present wins."""

Publisher = Callable[[JobContext, ScanRecord, Job], Awaitable[None]]


def forge(name: str) -> Forge | None:
    return FORGES.get(name)


def names() -> tuple[str, ...]:
    return tuple(FORGES)


def with_connections() -> dict[str, Forge]:
    """The forges reached through admin-added connections (the others: an app installation)."""
    return {name: f for name, f in FORGES.items() if f.connections is not None}


def publisher_for(context: JobContext, scan: ScanRecord) -> Publisher | None:
    """The scan's forge publisher, or None when that forge is not set up for its repository."""
    found = FORGES.get(scan.forge)
    return found.publisher(context, scan) if found is not None else None


def job_handlers() -> dict[str, Handler]:
    """The job kinds the forges add (webhook deliveries processed later)."""
    handlers: dict[str, Handler] = {}
    for f in FORGES.values():
        handlers.update(f.job_handlers)
    return handlers


def fetcher_for(context: JobContext, repository: Repository) -> Fetcher | None:
    """A reader of the repository's files at a commit, when its forge can hand them out (no network)."""
    found = FORGES.get(repository.forge)
    if found is None or found.source_fetcher is None:
        return None
    fetcher: Fetcher | None = found.source_fetcher(context, repository)
    return fetcher


async def serving_for_upload(context: JobContext, repository: Repository) -> Serving | None:
    """Whether scans of this repository are published (a forge's plan check), or None: always."""
    found = FORGES.get(repository.forge)
    if found is None or found.serving is None:
        return None
    serving: Serving | None = await found.serving(context, repository)
    return serving


def serving_now(settings: Settings, storage: Storage, repository: Repository) -> Serving | None:
    """The same decision from storage alone (no forge call), for answers that cannot wait."""
    found = FORGES.get(repository.forge)
    if found is None or found.serving_now is None:
        return None
    serving: Serving | None = found.serving_now(settings, storage, repository)
    return serving


def diff_reader_for(context: JobContext, repository: Repository) -> DiffReader | None:
    """A reader of a PR/MR's diff (for identity), when the repository's forge can hand it out (no network)."""
    found = FORGES.get(repository.forge)
    if found is None or found.diff_reader is None:
        return None
    reader: DiffReader | None = found.diff_reader(context, repository)
    return reader


async def verify_connection(request: ConnectionRequest, settings: Settings) -> dict[str, Any]:
    """Check a connection against its forge; returns what the forge told (kept with the connection)."""
    found = FORGES.get(request.forge)
    if found is None or found.connections is None:
        raise ConnectionCheckError(f"{request.forge} connections are not supported by this server",
                                   code="unsupported_forge")
    return await found.connections.verify(request, settings)
