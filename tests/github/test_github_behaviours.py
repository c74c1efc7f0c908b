"""GitHub's behaviours on their router: what is queued, and that a new behaviour is one function."""

from __future__ import annotations

import pytest

from forge_app.forges.github import behaviours, webhook
from forge_app.forges.router import Call, Router
from tests.conftest import drain
from tests.github.gh_helpers import PR, deliver, pull_request_event, sha


def test_githubs_router_handles_exactly_what_forge_app_acts_on() -> None:
    router = behaviours.ROUTER
    for event, action in [("installation", "created"), ("installation", "deleted"), ("installation", "suspend"),
                          ("installation_repositories", "added"), ("pull_request", "reopened"),
                          ("pull_request", "synchronize"), ("pull_request", "closed"), ("push", None),
                          ("check_run", "rerequested"), ("check_suite", "rerequested")]:
        assert router.handles(event, action), (event, action)
    for event, action in [("pull_request", "labeled"), ("check_suite", "completed"), ("issues", "opened")]:
        assert not router.handles(event, action), (event, action)


def test_a_new_behaviour_is_one_registered_function(client, app, storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pull_request.labeled` is ignored today; registering one function makes the webhook queue it
    and the event job run it, with nothing else to edit."""
    labeled = {**pull_request_event("opened", sha("l")), "action": "labeled"}  # a real payload, another action
    before = deliver(client, "pull_request", labeled, delivery="l-1")
    assert before.status_code == 202 and before.json()["status"] == "ignored"

    extra = Router()
    seen: list[int] = []

    @extra.register("pull_request", "labeled")
    async def note_the_label(call: Call) -> None:
        seen.append(call.payload["number"])

    combined = Router(behaviours.ROUTER, extra)
    monkeypatch.setattr(behaviours, "ROUTER", combined)
    monkeypatch.setattr(webhook, "ROUTER", combined)
    after = deliver(client, "pull_request", labeled, delivery="l-2")
    assert after.status_code == 202 and after.json()["status"] == "queued"
    drain(app)
    assert seen == [PR]
