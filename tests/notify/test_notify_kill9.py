"""`kill -9` of `forge-app serve` while it is delivering a webhook notification, then a restart.

The recording receiver holds its answer to the first request while the test kills the server:
the receiver got the payload, the server never learned it did. After the restart the delivery
is sent again with the SAME `webhook-id` (a receiver de-duplicates on it), every finding arrives
under one `webhook-id` only, and everything is delivered within 30 s of the restart.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, SECRET_KEY
from tests.github.test_github_kill9 import _free_port, _serve
from tests.notify.helpers import SHA_MAIN, Receiver, Reply, make_finding, scan_body, upload


@pytest.mark.slow
def test_kill_9_mid_notification_then_restart_keeps_the_webhook_id(settings, storage, upload_token,
                                                                   admin_headers, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "FORGE_APP_"))}
    env.update({"FORGE_APP_DATABASE": settings.database, "FORGE_APP_SECRET_KEY": SECRET_KEY,
                "FORGE_APP_ADMIN_TOKEN": ADMIN_TOKEN, "FORGE_APP_ALLOW_PRIVATE_TARGETS": "1",
                "FORGE_APP_PUBLIC_URL": f"http://127.0.0.1:{port}"})
    log = tmp_path / "serve.log"
    with Receiver(Reply(200, delay=4)) as receiver:
        with _serve(env, port, log) as first:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                hook = client.post("/api/v1/integrations", headers=admin_headers,
                                   json={"type": "webhook", "name": "recorder", "url": receiver.url, "secret": True})
                assert hook.status_code == 201, hook.text
                findings = [make_finding(n, line=10 + i) for i, n in enumerate("abcde")]
                upload(client, upload_token, scan_body(findings, commit=SHA_MAIN, branch="main"))
            deadline = time.monotonic() + 20
            while not receiver.requests:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.05)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        sent_before = len(receiver.requests)

        restarted = time.monotonic()
        with _serve(env, port, log):
            while any(j["status"] != "done" for j in storage.jobs(kind="deliver_notification")) \
                    or not storage.jobs(kind="deliver_notification"):
                assert time.monotonic() - restarted < 30, log.read_text()[-3000:]
                time.sleep(0.2)

    assert len(receiver.requests) > sent_before, "the interrupted delivery was sent again"
    first_id = receiver.requests[0].headers["webhook-id"]
    assert sum(1 for r in receiver.requests if r.headers["webhook-id"] == first_id) >= 2
    by_finding: dict[str, set[str]] = {}
    for r in receiver.findings_posts():
        for item in r.json():
            by_finding.setdefault(item["semgrep_finding"]["id"], set()).add(r.headers["webhook-id"])
    assert len(by_finding) == 5 and all(len(ids) == 1 for ids in by_finding.values()), by_finding
    assert len(receiver.scan_posts()) >= 1
