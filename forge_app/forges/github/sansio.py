"""GitHub's webhook protocol as a pure check, in the style of gidgethub's `sansio`.

`(headers, body, secret) -> Delivery`, or `Refused` with the status, code and sentence to
answer. The App's webhook and the Marketplace listing's webhook speak the same protocol
with different secrets, so both receivers call this one function and only persist and
answer themselves.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from forge_app.forges.webhooks import Refused

__all__ = ["Delivery", "Refused", "check_delivery", "signature_matches"]


@dataclass(frozen=True, slots=True)
class Delivery:
    event: str  # X-GitHub-Event
    delivery_id: str  # X-GitHub-Delivery: the same on GitHub's redeliveries, so it de-duplicates


def signature_matches(body: bytes, header: str | None, secret: str) -> bool:
    """`X-Hub-Signature-256: sha256=<hex>` over the raw body, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())


def check_delivery(headers: Mapping[str, str], body: bytes, secret: str, *, whose: str) -> Delivery:
    """The signature first (nothing about an unsigned body is trusted), then the two headers
    every delivery carries. `whose` names the secret in the refusal, e.g. "this app's webhook
    secret", so an admin who pasted the wrong one is told which."""
    if not signature_matches(body, headers.get("x-hub-signature-256"), secret):
        raise Refused(401, "invalid_signature",
                      f"X-Hub-Signature-256 is missing or does not match the body for {whose}")
    event = (headers.get("x-github-event") or "").strip()
    delivery_id = (headers.get("x-github-delivery") or "").strip()
    if not event or not delivery_id:
        raise Refused(400, "bad_request", "X-GitHub-Event and X-GitHub-Delivery headers are required")
    return Delivery(event, delivery_id)
