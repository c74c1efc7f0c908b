"""A big scan's findings webhook goes out in parts: at most 1,000 findings or 1 MB per POST, each
part its own `webhook-id`, every finding exactly once, and a retry resumes at the failed part."""

from __future__ import annotations

import json
from typing import Any

from forge_app.notify.payloads import batches
from tests.notify.helpers import (
    SHA_MAIN,
    Receiver,
    Reply,
    make_finding,
    next_run_at,
    run_jobs,
    run_one,
    scan_body,
    upload,
)


def encode(x: Any) -> bytes:
    return json.dumps(x, separators=(",", ":")).encode()


def test_batches_respect_both_limits_and_keep_order():
    items = [{"n": i, "pad": "x" * (i % 7) * 30} for i in range(2_345)]
    parts = batches(items, encode, max_items=1_000, max_bytes=20_000)
    assert [x for p in parts for x in p] == items
    assert all(len(p) <= 1_000 and len(encode(p)) <= 20_000 for p in parts)
    assert len(batches(items, encode)) == 3  # by count only: 1,000 + 1,000 + 345
    huge = [{"pad": "y" * 50_000}, {"n": 1}]
    assert batches(huge, encode, max_bytes=20_000) == [[huge[0]], [huge[1]]]  # too big alone: sent alone
    assert batches([], encode) == [[]]


def many(n: int) -> list:
    return [make_finding(f"f{i}", line=10 + 3 * i) for i in range(n)]


def test_2500_findings_are_three_posts_each_with_its_own_id(client, app, admin_headers, upload_token):
    with Receiver() as receiver:
        r = client.post("/api/v1/integrations", json={"type": "webhook", "url": receiver.url, "events": ["findings"]},
                        headers=admin_headers)
        assert r.status_code == 201, r.text
        upload(client, upload_token, scan_body(many(2_500), commit=SHA_MAIN, branch="main"))
        run_jobs(app)
    posts = receiver.findings_posts()
    assert [len(p.json()) for p in posts] == [1_000, 1_000, 500]
    ids = [p.headers["webhook-id"] for p in posts]
    assert len(set(ids)) == 3 and ids[1] == f"{ids[0]}_1" and ids[2] == f"{ids[0]}_2"
    sent = receiver.finding_ids()
    assert len(sent) == len(set(sent)) == 2_500


def test_a_failed_part_is_retried_alone(client, app, storage, admin_headers, upload_token):
    with Receiver(Reply(200), Reply(503)) as receiver:
        r = client.post("/api/v1/integrations", json={"type": "webhook", "url": receiver.url, "events": ["findings"]},
                        headers=admin_headers)
        assert r.status_code == 201
        upload(client, upload_token, scan_body(many(1_500), commit=SHA_MAIN, branch="main"))
        run_jobs(app)
        assert [len(p.json()) for p in receiver.findings_posts()] == [1_000, 500]  # the 500 failed
        at = next_run_at(storage)
        assert at is not None
        assert run_one(app, at + 1)
    posts = receiver.findings_posts()
    assert [len(p.json()) for p in posts] == [1_000, 500, 500]
    assert posts[1].headers["webhook-id"] == posts[2].headers["webhook-id"]  # the same part, the same id
    sent = receiver.finding_ids()
    assert len(set(sent)) == 1_500 and len(sent) == 2_000
    delivery = storage.recent_notification_deliveries(r.json()["id"])[0]
    assert delivery.status == "succeeded" and delivery.parts_sent == 2
