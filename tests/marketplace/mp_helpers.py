"""Helpers for the Marketplace tests: signed listing-webhook deliveries built from GitHub's
real `marketplace_purchase` payloads (tests/fixtures/github/marketplace/webhooks/)."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from tests.github.gh_helpers import signature

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "github" / "marketplace" / "webhooks"
MARKETPLACE_SECRET = "test-marketplace-secret-0123456789"
LISTING_URL = "https://github.com/marketplace/forge-app-test"
PLANS = {"plans": {
    "Free": {"repositories": None, "private_repositories": False, "block": False},
    "Pro": {"repositories": 10, "private_repositories": True, "block": True},
}}
FREE, PRO = (1, "Free"), (2, "Pro")
ORG_ID = 77001


def purchase_event(action: str, plan: tuple[int, str], *, login: str = "octo", account_id: int = ORG_ID,
                   effective: str = "2026-12-01T00:00:00+00:00", previous: tuple[int, str] | None = None,
                   trial_ends: str | None = None) -> dict[str, Any]:
    """A delivery of `action`, from the real example of that action (pending_change and
    pending_change_cancelled have no example upstream: they reuse `changed`, as GitHub's docs say
    their payloads carry the same keys)."""
    name = action if action in ("purchased", "changed", "cancelled") else "changed"
    p = copy.deepcopy(json.loads((FIXTURES / "marketplace_purchase" / f"{name}.json").read_text()))
    p["action"] = action
    p["effective_date"] = effective
    for key in ("marketplace_purchase", "previous_marketplace_purchase"):
        if key in p:
            p[key]["account"].update(login=login, id=account_id)
    p["marketplace_purchase"]["plan"].update(id=plan[0], name=plan[1])
    p["marketplace_purchase"]["on_free_trial"] = trial_ends is not None
    p["marketplace_purchase"]["free_trial_ends_on"] = trial_ends
    if previous is not None and "previous_marketplace_purchase" in p:
        p["previous_marketplace_purchase"]["plan"].update(id=previous[0], name=previous[1])
    return p


def deliver_listing(client: Any, body: dict[str, Any] | bytes, *, event: str = "marketplace_purchase",
                    delivery: str | None = None, secret: str = MARKETPLACE_SECRET) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/044aadd",
               "X-Hub-Signature-256": signature(raw, secret)}
    return client.post("/webhooks/github/marketplace", content=raw, headers=headers)
