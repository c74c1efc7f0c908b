"""Intake: a redelivery is a no-op counted `duplicate`; refusals are counted `rejected`."""

from __future__ import annotations

import re

from tests.github.gh_helpers import deliver, pull_request_event, sha


def _count(client, outcome: str) -> float:
    text = client.get("/metrics").text
    m = re.search(rf'^forge_app_webhook_deliveries_total{{forge="github",outcome="{outcome}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def test_redelivery_is_a_no_op_counted_duplicate(client, storage) -> None:
    before = {o: _count(client, o) for o in ("accepted", "duplicate", "rejected")}
    body = pull_request_event("opened", sha("intake"))
    first = deliver(client, "pull_request", body, delivery="d-intake-1")
    again = deliver(client, "pull_request", body, delivery="d-intake-1")
    refused = deliver(client, "pull_request", body, delivery="d-intake-2", secret="wrong")
    assert first.status_code == 202 and again.status_code == 200 and again.json()["status"] == "duplicate"
    assert refused.status_code == 401
    assert len(storage.jobs(kind="github_event")) == 1
    assert _count(client, "accepted") == before["accepted"] + 1
    assert _count(client, "duplicate") == before["duplicate"] + 1
    assert _count(client, "rejected") == before["rejected"] + 1
