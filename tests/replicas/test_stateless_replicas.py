"""Two replicas on one database: what one process creates, the other accepts.

Each replica is its own app with its own storage object (its own connections), as two `serve`
processes behind a load balancer would be; nothing a request needs may live in one of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from forge_app.forges.ratelimit import Budget
from forge_app.jobs.errors import RetryLater
from forge_app.services import leases
from forge_app.web.app import create_app
from storage import Storage, open_storage
from tests.console.helpers import csrf_of, sign_in


@pytest.fixture
def other(settings) -> Iterator[Storage]:
    """The second replica's own storage on the same database."""
    s = open_storage(settings.database)
    yield s
    s.close()


def test_a_console_session_and_its_csrf_token_work_on_the_other_replica(settings, storage, other) -> None:
    with TestClient(create_app(settings, storage, run_worker=False)) as first, \
            TestClient(create_app(settings, other, run_worker=False)) as second:
        sign_in(first)
        second.cookies = first.cookies
        page = second.get("/settings/integrations")
        assert page.status_code == 200 and "Sign in" not in page.text
        # A form rendered by one replica is posted to the other.
        form = first.get("/rules")
        moved = second.post("/rules", data={"csrf": csrf_of(form.text), "action": "default", "mode": "block",
                                            "pattern": ""}, follow_redirects=False)
        assert moved.status_code == 303, moved.text
    assert storage.get_policies()["default"] == "block"


def test_a_wait_recorded_through_one_storage_is_honoured_through_the_other(storage, other) -> None:
    now = time.time()
    scope = "github:installation:42"
    first = Budget("GitHub", storage, scope)
    first.observe({"x-ratelimit-remaining": "1", "x-ratelimit-reset": str(int(now) + 120)}, now=now)
    second = Budget("GitHub", other, scope)
    with pytest.raises(RetryLater) as raised:
        second.check(now=now + 1)
    assert 110 <= raised.value.delay <= 121
    Budget("GitHub", other, "github:installation:43").check(now=now + 1)  # another installation goes on
    second.check(now=now + 200)  # after the reset: go on


def test_a_429_with_retry_after_is_shared_and_never_shortened(storage, other) -> None:
    now = time.time()
    Budget("GitLab", storage, "gitlab:connection:1").observe({"Retry-After": "300"}, status=429, now=now)
    Budget("GitLab", other, "gitlab:connection:1").observe({"Retry-After": "10"}, status=429, now=now)
    assert other.rate_limit_until("gitlab:connection:1") == pytest.approx(now + 300)
    with pytest.raises(RetryLater):
        Budget("GitLab", other, "gitlab:connection:1").check(now=now + 100)


def test_a_lease_orders_two_processes_and_a_dead_holder_frees_it_at_once(storage, other, monkeypatch) -> None:
    order: list[str] = []
    taken = threading.Event()

    def first() -> None:
        with leases.held(storage, "triage:repository:1"):
            taken.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert taken.wait(5)
    with leases.held(other, "triage:repository:1"):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]

    # A holder process that was killed (kill -9) on this machine: its lease is taken over at once.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    holder = f"{leases._identity()}:{int(dead.stdout)}:deadbeef"
    assert storage.try_lease("triage:repository:2", holder, 600)
    started = time.monotonic()
    with leases.held(other, "triage:repository:2", wait=5):
        pass
    assert time.monotonic() - started < 2

    # A live holder elsewhere: the waiter gives up with Busy (the request gets a 503, the job is retried).
    assert storage.try_lease("triage:repository:3", f"other-host/1:{os.getpid() + 1}:x", 600)
    with pytest.raises(leases.Busy), leases.held(other, "triage:repository:3", wait=0.3):
        pass
