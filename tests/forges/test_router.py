"""Behaviours register on a router (gidgethub's routing.Router): a new behaviour is one function."""

from __future__ import annotations

import asyncio
from typing import Any

from forge_app.forges.router import Call, Router
from storage import Job


def _call(payload: dict[str, Any] | None = None) -> Call:
    job = Job(id=1, kind="github_event", payload=payload or {}, key=None, group=None, attempts=1, max_attempts=5)
    return Call(context=None, job=job, payload=payload or {})  # type: ignore[arg-type]


def test_dispatch_runs_the_behaviours_for_that_event_and_action_in_order() -> None:
    seen: list[str] = []
    first, second = Router(), Router()

    @first.register("pull_request", "opened", "reopened")
    async def one(call: Call) -> None:
        seen.append("one")

    @second.register("pull_request")  # every action
    async def two(call: Call) -> None:
        seen.append("two")

    router = Router(first, second)
    assert asyncio.run(router.dispatch(_call(), "pull_request", "reopened")) == 2
    assert seen == ["one", "two"]
    assert asyncio.run(router.dispatch(_call(), "pull_request", "closed")) == 1 and seen[-1] == "two"
    assert asyncio.run(router.dispatch(_call(), "push", None)) == 0
    assert router.handles("pull_request", "labeled") and not first.handles("pull_request", "labeled")
    assert first.actions("pull_request") == {"opened", "reopened"}
