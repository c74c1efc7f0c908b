"""Checking a connection against its forge before it is saved: the request and the refusal.

Each forge reached through connections has a verifier (its `Forge.connections.verify`,
called by `registry.verify_connection`); it raises `ConnectionCheckError` with a sentence
an admin can act on.
"""

from __future__ import annotations

from dataclasses import dataclass


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
