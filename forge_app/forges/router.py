"""Routing verified webhook events to the behaviours that act on them (gidgethub's `routing.Router`, async).

A behaviour is one function registered for an event and some of its actions:

    router = Router()

    @router.register("pull_request", "opened", "reopened")
    async def put_a_waiting_check(call: Call) -> None: ...

A forge combines its behaviour modules' routers once (`Router(a.router, b.router)`); the
webhook receiver queues only the deliveries some behaviour handles, and the event job
dispatches to every behaviour registered for that event and action, in registration order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from forge_app.jobs.worker import JobContext
from storage import Job

ANY_ACTION = "*"


@dataclass(frozen=True, slots=True)
class Call:
    """What a behaviour gets: the job's context, the job, its compacted payload, and the repository
    row the event is about (None for account-level events such as installations)."""

    context: JobContext
    job: Job
    payload: dict[str, Any]
    repository_id: int | None = None


Behaviour = Callable[[Call], Awaitable[None]]


class Router:
    def __init__(self, *others: Router) -> None:
        self._routes: dict[tuple[str, str], list[Behaviour]] = {}
        for other in others:
            for key, behaviours in other._routes.items():
                self._routes.setdefault(key, []).extend(behaviours)

    def register(self, event: str, *actions: str) -> Callable[[Behaviour], Behaviour]:
        """Register the decorated behaviour for `event` with these actions (none: every action)."""

        def add(behaviour: Behaviour) -> Behaviour:
            for action in actions or (ANY_ACTION,):
                self._routes.setdefault((event, action), []).append(behaviour)
            return behaviour

        return add

    def fetch(self, event: str, action: str | None) -> list[Behaviour]:
        return [*self._routes.get((event, action or ""), ()), *self._routes.get((event, ANY_ACTION), ())]

    def handles(self, event: str, action: str | None) -> bool:
        return bool(self.fetch(event, action))

    def actions(self, event: str) -> set[str]:
        """The actions of `event` some behaviour handles (`*`: all)."""
        return {action for (name, action) in self._routes if name == event}

    async def dispatch(self, call: Call, event: str, action: str | None) -> int:
        """Run every behaviour for the event; returns how many ran."""
        behaviours = self.fetch(event, action)
        for behaviour in behaviours:
            await behaviour(call)
        return len(behaviours)
