"""The webhook protocol every forge implements, sans I/O (in the style of gidgethub's `sansio`).

A forge's `Webhook` says how to find the secret a delivery must prove (from the settings,
or from storage when it depends on the repository the body names), how to check a delivery
against it (`check(headers, body, key, doc) -> Delivery`, or `Refused`), and what the
verified delivery asks for (`intake(delivery, doc) -> Answer | Intake`). The one Starlette
receiver (forge_app/web/routes/webhooks.py) does the I/O: reads the body, looks the secret
up off the event loop, persists the job and answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from forge_app.config import Settings
from storage import Storage


class Refused(Exception):
    """The delivery is not taken; the receiver answers `status` with `code` and `detail`."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Key:
    """The secret a delivery must prove, and whose it is (a connection id), or why there is none."""

    secret: str | None
    owner: Any = None
    refusal: Refused | None = None  # no secret can exist (not configured, body names nothing)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified delivery: its event name and the id that de-duplicates redeliveries."""

    event: str
    delivery_id: str
    owner: Any = None  # Key.owner, e.g. the connection whose secret matched


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer with nothing to persist (ping, an event forge-app ignores)."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Intake:
    """A delivery to persist as one job, and the answers for a first delivery and a redelivery."""

    event: str
    delivery_id: str
    kind: str  # the job kind
    payload: dict[str, Any]
    accepted: Answer
    duplicate: Answer
    group: str | None = None
    prepare: Callable[[Storage], Intake | Answer] | None = None  # storage work first (run off the event loop)


@dataclass(frozen=True, slots=True)
class Webhook:
    max_bytes: int
    secret: Callable[[Settings, Storage, Any], Key]  # (settings, storage, parsed body or None); may do I/O
    check: Callable[[Mapping[str, str], bytes, Key, Any], Delivery]  # pure; raises Refused
    intake: Callable[[Delivery, Any], Answer | Intake]  # pure; raises Refused
    quick_secret: Callable[[Settings], Key | None] | None = None  # from the settings alone (no I/O)
    reads_body_first: bool = False  # the secret depends on what the body names (its repository)
    delivery_headers: tuple[str, ...] = field(default_factory=tuple)  # bound to log lines
    described_as: str = ""  # for /openapi.json: whose events ("GitHub App")
    event_header: str = ""  # the header naming the event
    auth: str = ""  # how a delivery proves itself, in words
