"""A named lease held in the database, so one critical section runs in one process at a time
across every `serve` and `worker` process sharing the database (a thread lock covers one process).

The lease lasts TTL seconds and a thread renews it while held, so a holder that is killed frees
it within TTL; a waiter on the same machine that sees the holder's process gone takes it at once.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Protocol

TTL = 30.0
RENEW_EVERY = 10.0
WAIT = 60.0


class Busy(Exception):
    """The lease stayed taken longer than a caller may wait (answered 503 with Retry-After)."""


class LeaseStore(Protocol):
    def try_lease(self, name: str, holder: str, ttl: float) -> bool: ...

    def renew_lease(self, name: str, holder: str, ttl: float) -> bool: ...

    def release_lease(self, name: str, holder: str) -> None: ...

    def lease_holder(self, name: str) -> tuple[str, float] | None: ...

    def expire_lease_of(self, name: str, holder: str) -> bool: ...


def _identity() -> str:
    from forge_app.jobs.worker import local_identity

    return local_identity()


def _holder_dead(holder: str, me: str) -> bool:
    """A holder `host/ns:pid:...` on this machine whose process no longer exists."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != me or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _renew(store: LeaseStore, name: str, holder: str, stop: threading.Event) -> None:
    while not stop.wait(RENEW_EVERY):
        with contextlib.suppress(Exception):  # a failed renewal is retried; the lease has TTL to spare
            store.renew_lease(name, holder, TTL)


@contextlib.contextmanager
def held(store: LeaseStore, name: str, *, wait: float = WAIT) -> Iterator[None]:
    """Hold lease `name` for the block; Busy when it could not be taken within `wait` seconds."""
    me = _identity()
    holder = f"{me}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    deadline = time.monotonic() + wait
    pause = 0.02
    while not store.try_lease(name, holder, TTL):
        current = store.lease_holder(name)
        if current is not None and _holder_dead(current[0], me):
            store.expire_lease_of(name, current[0])
            continue
        if time.monotonic() >= deadline:
            raise Busy(f"{name} is held by another process")
        time.sleep(pause)
        pause = min(0.25, pause * 1.5)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(store, name, holder, stop), name=f"lease-{name}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=5)
        with contextlib.suppress(Exception):  # unreleased, it expires after TTL
            store.release_lease(name, holder)
