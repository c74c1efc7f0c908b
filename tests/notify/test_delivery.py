"""Delivering from the durable job table to a real HTTP receiver on loopback: signatures,
retries on our own schedule (driven through time, never slept), permanent failures,
redirects, timeouts and oversized answers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from forge_app.notify import retry, sender
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
    verify_standard_webhook,
)

API = "/api/v1/integrations"


def add_webhook(client: Any, headers: dict[str, str], url: str, **extra: Any) -> dict[str, Any]:
    r = client.post(API, json={"type": "webhook", "url": url, "events": ["findings"], **extra}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def scan_with_findings(client: Any, token: str, *names: str) -> dict[str, Any]:
    return upload(client, token, scan_body([make_finding(n, line=10 + i) for i, n in enumerate(names)],
                                           commit=SHA_MAIN, branch="main"))


def deliveries(client: Any, headers: dict[str, str], integration_id: int) -> list[dict[str, Any]]:
    return client.get(f"{API}/{integration_id}/deliveries", headers=headers).json()


def test_fails_twice_then_succeeds_with_the_same_webhook_id(client: Any, app: Any, storage: Any,
                                                            admin_headers: dict[str, str], upload_token: str) -> None:
    with Receiver(Reply(500), Reply(503)) as receiver:
        hook = add_webhook(client, admin_headers, receiver.url, secret=True)
        scan_with_findings(client, upload_token, "a", "b")
        run_jobs(app)  # notify_scan + first attempt
        assert len(receiver.requests) == 1
        [d] = deliveries(client, admin_headers, hook["id"])
        assert d["status"] == "retrying" and d["attempts"] == 1 and d["status_code"] == 500
        assert d["next_attempt_at"] and "HTTP 500" in d["error"]

        assert run_jobs(app) == 0, "nothing runs before the backoff is over"
        run_jobs(app, now=next_run_at(storage) + 1)
        run_jobs(app, now=next_run_at(storage) + 1)
        assert len(receiver.requests) == 3
    [d] = deliveries(client, admin_headers, hook["id"])
    assert d["status"] == "succeeded" and d["attempts"] == 3 and d["status_code"] == 200 and d["error"] is None
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {d["webhook_id"]}, "one webhook-id for every retry of one delivery"
    for r in receiver.requests:
        assert verify_standard_webhook(hook["secret"], r.headers, r.body)
    assert receiver.requests[0].body == receiver.requests[2].body
    assert storage.jobs(kind="deliver_notification")[0]["status"] == "done"


def test_always_failing_target_ends_failed_after_a_bounded_spaced_schedule(
        client: Any, app: Any, storage: Any, admin_headers: dict[str, str], upload_token: str) -> None:
    with Receiver(default=Reply(502)) as receiver:
        hook = add_webhook(client, admin_headers, receiver.url)
        scan_with_findings(client, upload_token, "a")
        run_jobs(app)
        waits = []
        for _ in range(50):
            due = next_run_at(storage)
            if due is None:
                break
            waits.append(due - time.time())
            run_one(app, now=due + 1)
        attempts = len(receiver.requests)
    assert attempts == retry.MAX_ATTEMPTS == 15
    assert len(waits) == 14
    for wait, nominal in zip(waits, retry.nominal_schedule(), strict=True):
        assert 0.8 * nominal - 2 <= wait <= 1.2 * nominal + 2, (wait, nominal)
    assert 0.8 * 85270 < sum(waits) < 1.2 * 85270, "about a day in all"
    [d] = deliveries(client, admin_headers, hook["id"])
    assert d["status"] == "failed" and d["attempts"] == 15 and d["status_code"] == 502
    assert "gave up after 15 attempts" in d["error"]
    [job] = storage.jobs(kind="deliver_notification")
    assert job["status"] == "failed"


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_client_errors_fail_at_once(client: Any, app: Any, storage: Any, admin_headers: dict[str, str],
                                    upload_token: str, status: int) -> None:
    with Receiver(default=Reply(status, body=b"nope")) as receiver:
        hook = add_webhook(client, admin_headers, receiver.url)
        scan_with_findings(client, upload_token, "a")
        run_jobs(app)
        assert next_run_at(storage) is None
        assert len(receiver.requests) == 1
    [d] = deliveries(client, admin_headers, hook["id"])
    assert d["status"] == "failed" and d["attempts"] == 1 and d["status_code"] == status


@pytest.mark.parametrize("status", [408, 429])
def test_408_and_429_are_retried(client: Any, app: Any, storage: Any, admin_headers: dict[str, str],
                                 upload_token: str, status: int) -> None:
    with Receiver(Reply(status, headers={"Retry-After": "120"})) as receiver:
        hook = add_webhook(client, admin_headers, receiver.url)
        scan_with_findings(client, upload_token, "a")
        before = time.time()
        run_jobs(app)
        due = next_run_at(storage)
        assert due is not None
        if status == 429:
            assert 119 <= due - before <= 125, "Retry-After is honoured"
        run_jobs(app, now=due + 1)
        assert len(receiver.requests) == 2
    assert deliveries(client, admin_headers, hook["id"])[0]["status"] == "succeeded"


def test_redirects_are_not_followed(client: Any, app: Any, storage: Any, admin_headers: dict[str, str],
                                    upload_token: str) -> None:
    with Receiver(default=Reply(302, headers={"Location": "http://elsewhere.example/hook"})) as receiver:
        hook = add_webhook(client, admin_headers, receiver.url)
        scan_with_findings(client, upload_token, "a")
        run_jobs(app)
        assert len(receiver.requests) == 1 and next_run_at(storage) is None
    [d] = deliveries(client, admin_headers, hook["id"])
    assert d["status"] == "failed" and d["status_code"] == 302
    assert "redirect" in d["error"] and "elsewhere.example" in d["error"]


def test_oversized_answers_do_not_hurt(client: Any, app: Any, storage: Any, admin_headers: dict[str, str],
                                       upload_token: str) -> None:
    with Receiver(Reply(500, size=50 * 1024 * 1024), Reply(200, size=50 * 1024 * 1024)) as receiver:
        hook = add_webhook(client, admin_headers, receiver.url)
        scan_with_findings(client, upload_token, "a")
        started = time.monotonic()
        run_jobs(app)
        run_jobs(app, now=next_run_at(storage) + 1)
        assert time.monotonic() - started < 5
        assert len(receiver.requests) == 2
    [d] = deliveries(client, admin_headers, hook["id"])
    assert d["status"] == "succeeded" and d["attempts"] == 2


def test_error_snippet_is_short(client: Any, admin_headers: dict[str, str]) -> None:
    with Receiver(Reply(500, body=b"E" * 100_000)) as receiver:
        hook = add_webhook(client, admin_headers, receiver.url)
        result = client.post(f"{API}/{hook['id']}/test", headers=admin_headers).json()
    assert result["ok"] is False and len(result["error"]) < 300


def test_timeouts_are_retried(client: Any, app: Any, storage: Any, admin_headers: dict[str, str],
                              upload_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sender, "TIMEOUT", 0.3)
    with Receiver(Reply(200, delay=1.5)) as receiver:
        hook = add_webhook(client, admin_headers, receiver.url)
        scan_with_findings(client, upload_token, "a")
        run_jobs(app)
        [d] = deliveries(client, admin_headers, hook["id"])
        assert d["status"] == "retrying" and "did not answer within" in d["error"] and d["status_code"] is None
        assert d["latency_ms"] < 1400
        run_jobs(app, now=next_run_at(storage) + 1)
    assert deliveries(client, admin_headers, hook["id"])[0]["status"] == "succeeded"


def test_connection_refused_is_retried(client: Any, app: Any, storage: Any, admin_headers: dict[str, str],
                                       upload_token: str) -> None:
    with Receiver() as closed:
        url = closed.url
    hook = add_webhook(client, admin_headers, url)
    scan_with_findings(client, upload_token, "a")
    run_jobs(app)
    [d] = deliveries(client, admin_headers, hook["id"])
    assert d["status"] == "retrying" and "cannot reach 127.0.0.1" in d["error"]
    assert url not in d["error"], "errors name the host, never the full URL"


def test_unsigned_webhook_still_carries_id_and_timestamp(client: Any, app: Any, admin_headers: dict[str, str],
                                                          upload_token: str) -> None:
    with Receiver() as receiver:
        add_webhook(client, admin_headers, receiver.url, secret=None)
        scan_with_findings(client, upload_token, "a")
        run_jobs(app)
    [r] = receiver.requests
    assert "webhook-signature" not in r.headers
    assert r.headers["webhook-id"].startswith("msg_") and r.headers["webhook-timestamp"].isdigit()
    assert r.headers["content-type"] == "application/json"


def test_deleting_an_integration_cancels_its_pending_deliveries(client: Any, app: Any, storage: Any,
                                                                admin_headers: dict[str, str],
                                                                upload_token: str) -> None:
    with Receiver(Reply(500)) as receiver:
        hook = add_webhook(client, admin_headers, receiver.url)
        scan_with_findings(client, upload_token, "a")
        run_jobs(app)
        assert client.delete(f"{API}/{hook['id']}", headers=admin_headers).status_code == 204
        assert next_run_at(storage) is None
        assert run_jobs(app, now=time.time() + 10 * 86400) == 0
        assert len(receiver.requests) == 1


def test_disabled_before_delivery_is_not_sent(client: Any, app: Any, storage: Any, admin_headers: dict[str, str],
                                              upload_token: str) -> None:
    with Receiver(Reply(500)) as receiver:
        hook = add_webhook(client, admin_headers, receiver.url)
        scan_with_findings(client, upload_token, "a")
        run_jobs(app)
        client.patch(f"{API}/{hook['id']}", json={"enabled": False}, headers=admin_headers)
        run_jobs(app, now=next_run_at(storage) + 1)
        assert len(receiver.requests) == 1
    [d] = deliveries(client, admin_headers, hook["id"])
    assert d["status"] == "failed" and "disabled" in d["error"]
