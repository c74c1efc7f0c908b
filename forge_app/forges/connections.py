"""Checking a GitLab/Bitbucket connection against its forge before it is saved.

Each adapter registers a verifier in `forge_app/forges/<forge>/connection.py`; it
raises `ConnectionCheckError` with a sentence an admin can act on.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from forge_app.config import Settings


class ConnectionCheckError(Exception):
    def __init__(self, detail: str, code: str = "connection_check_failed") -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


@dataclass(frozen=True, slots=True)
class ConnectionRequest:
    forge: str
    base_url: str
    scope: str
    target: str
    token: str
    webhook_secret: str


Verifier = Callable[[ConnectionRequest, Settings], Awaitable[dict[str, Any]]]
_VERIFIERS: dict[str, Verifier] = {}


def register_verifier(forge: str, verifier: Verifier) -> None:
    _VERIFIERS[forge] = verifier


async def verify_connection(request: ConnectionRequest, settings: Settings) -> dict[str, Any]:
    """Returns what the forge told us (e.g. project id, repositories) to keep with the connection."""
    if request.forge not in _VERIFIERS:
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"forge_app.forges.{request.forge}.connection")
    verifier = _VERIFIERS.get(request.forge)
    if verifier is None:
        raise ConnectionCheckError(f"{request.forge} connections are not supported by this server yet",
                                   code="unsupported_forge")
    return await verifier(request, settings)
