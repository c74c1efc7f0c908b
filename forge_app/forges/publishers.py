"""Finds the forge adapter that publishes a scan. Each adapter registers itself here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from forge_app.jobs.worker import Handler, JobContext
from storage import Job, ScanRecord

Publisher = Callable[[JobContext, ScanRecord, Job], Awaitable[None]]
# forge name -> function returning a publisher for a scan, or None when that forge is not configured for it
_FACTORIES: dict[str, Callable[[JobContext, ScanRecord], Publisher | None]] = {}
_EXTRA: dict[str, Handler] = {}


def register(forge: str, factory: Callable[[JobContext, ScanRecord], Publisher | None],
             handlers: dict[str, Handler] | None = None) -> None:
    _FACTORIES[forge] = factory
    _EXTRA.update(handlers or {})


def _load_adapters() -> None:
    import importlib

    for name in ("github", "gitlab", "bitbucket"):
        try:
            importlib.import_module(f"forge_app.forges.{name}.publish")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"forge_app.forges.{name}"):
                continue
            raise


def publisher_for(context: JobContext, scan: ScanRecord) -> Publisher | None:
    _load_adapters()
    factory = _FACTORIES.get(scan.forge)
    return factory(context, scan) if factory else None


def extra_handlers() -> dict[str, Handler]:
    _load_adapters()
    return dict(_EXTRA)


