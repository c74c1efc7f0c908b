"""Benchmark: the Slack app's acknowledgements, and a scan that notifies 200 channels.

One process serves forge-app over real HTTP on loopback with its in-process job worker
and a fake Slack (tests/slack/fake_slack.py) on another port. While the worker is
sending a scan's messages to 200 subscribed channels, it times, one request at a time:

  - baseline: signed GitHub `pull_request` webhook deliveries (the webhook intake);
  - Slack events (`team_rename`), slash commands (`/forgeapp_subscribe`) and
    interactions (App Home overflow menu).

It prints requests per second and p50/p99 latency for each, the Slack-to-webhook
rate ratio (target >= 0.5, p99 < 50 ms), then for the 200 channels: messages sent,
chat.postMessage requests (target: channels + retries), and the busiest channel's
messages per second (Slack's documented limit: about 1 per second per channel).

    .venv/bin/python bench/slack.py [--requests 300] [--channels 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import hmac
import json
import logging
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forge_app.config import Settings  # noqa: E402
from forge_app.web.app import create_app  # noqa: E402
from storage import open_storage  # noqa: E402
from tests.slack.fake_slack import CLIENT_ID, CLIENT_SECRET, SIGNING_SECRET, FakeSlack  # noqa: E402
from tests.support.live_server import serve  # noqa: E402

GITHUB_SECRET = "bench-github-webhook-secret"
ADMIN = "bench-admin-token-0123456789abcdef"
FIX = ROOT / "tests" / "fixtures"


def slack_headers(body: bytes, content_type: str) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig, "Content-Type": content_type}


def github_request(payload: bytes) -> tuple[bytes, dict[str, str]]:
    sig = "sha256=" + hmac.new(GITHUB_SECRET.encode(), payload, hashlib.sha256).hexdigest()
    return payload, {"X-Hub-Signature-256": sig, "X-GitHub-Event": "pull_request",
                     "X-GitHub-Delivery": secrets.token_hex(16), "Content-Type": "application/json"}


def event_request(team: str) -> tuple[bytes, dict[str, str]]:
    envelope = json.loads((FIX / "slack" / "events" / "team_rename.wrapped.json").read_text())
    envelope.update(team_id=team, event_id=f"Ev{secrets.token_hex(6)}")
    body = json.dumps(envelope).encode()
    return body, slack_headers(body, "application/json")


def command_request(fake: FakeSlack, team: str) -> tuple[bytes, dict[str, str]]:
    form = json.loads((FIX / "slack" / "interactivity" / "slash_command.json").read_text())
    form.update(team_id=team, channel_id="C000", command="/forgeapp_subscribe", text="octo/demo",
                trigger_id=fake.new_trigger(), response_url=fake.response_url())
    body = urlencode(form).encode()
    return body, slack_headers(body, "application/x-www-form-urlencoded")


def interaction_request(fake: FakeSlack, team: str, sub_id: int) -> tuple[bytes, dict[str, str]]:
    payload = json.loads((FIX / "slack" / "interactivity" / "block_actions.app_home.button.json").read_text())
    payload.update(team={"id": team}, trigger_id=fake.new_trigger(), actions=[{
        "type": "overflow", "action_id": "subscription_menu",
        "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": f"manage:{sub_id}"}}])
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return body, slack_headers(body, "application/x-www-form-urlencoded")


def measure(client: httpx.Client, path: str, make, n: int) -> dict[str, float]:
    latencies = []
    started = time.perf_counter()
    for _ in range(n):
        body, headers = make()
        t = time.perf_counter()
        r = client.post(path, content=body, headers=headers)
        latencies.append((time.perf_counter() - t) * 1000)
        if r.status_code >= 400:
            raise SystemExit(f"{path} answered {r.status_code}: {r.text}")
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"rate": n / elapsed, "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--slack-latency-ms", type=float, default=50.0,
                        help="how long the fake Slack takes per Web API call (real Slack: tens of ms)")
    args = parser.parse_args()
    # The baseline's queued GitHub jobs fail without a real App key; their tracebacks are noise here.
    logging.disable(logging.CRITICAL)
    fake = FakeSlack()
    fake.latency = args.slack_latency_ms / 1000
    with tempfile.TemporaryDirectory() as tmp, serve(fake.app(), lifespan="off") as slack_url:
        fake.base_url = slack_url
        settings = Settings(database=f"{tmp}/bench.db", secret_key="bench-secret-key-0123456789abcdef-0123",
                            admin_token=ADMIN, public_url="http://127.0.0.1", github_app_id="1",
                            github_private_key="unused", github_webhook_secret=GITHUB_SECRET,
                            allow_private_targets=True, slack_client_id=CLIENT_ID, slack_client_secret=CLIENT_SECRET,
                            slack_signing_secret=SIGNING_SECRET, slack_api_url=f"{slack_url}/api")
        storage = open_storage(settings.database)
        app = create_app(dataclasses.replace(settings), storage, run_worker=True)
        with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            admin = {"Authorization": f"Bearer {ADMIN}"}
            token = storage.create_upload_token("github", "octo/demo")
            up = {"Authorization": f"Bearer {token}"}
            client.post("/api/v1/scans", headers=up, json={"repository": "octo/demo", "commit": "a" * 40,
                                                           "branch": "main", "findings": [], "tools": ["semgrep"]})
            state = parse_qs(urlsplit(client.post("/api/v1/slack/install", headers=admin).json()["url"]).query)
            assert client.get("/slack/oauth/callback", params={"code": fake.new_code(),
                                                               "state": state["state"][0]}).status_code == 200
            installation = storage.slack_installations()[0]
            team = installation.team_id
            for i in range(args.channels):
                fake.add_channel(f"C{i:03d}", f"chan-{i}")
                storage.save_slack_subscription(installation.id, f"C{i:03d}", f"chan-{i}", [], [])
            sub_id = storage.slack_subscriptions()[0].id
            finding = {"rule_id": "bench.rule", "path": "src/app.py", "start_line": 3, "end_line": 3,
                       "message": "risky", "severity": "error", "tool": "semgrep"}
            scan_started = time.perf_counter()
            client.post("/api/v1/scans", headers=up, json={
                "repository": "octo/demo", "commit": "b" * 40, "branch": "feature", "base_branch": "main",
                "pull_request": 1, "findings": [finding], "tools": ["semgrep"]})
            pr = (FIX / "github" / "webhooks" / "pull_request" / "opened.json").read_bytes()
            results = {
                "webhook intake (GitHub pull_request)": measure(client, "/webhooks/github",
                                                                lambda: github_request(pr), args.requests),
                "Slack events": measure(client, "/slack/events", lambda: event_request(team), args.requests),
                "Slack commands": measure(client, "/slack/commands", lambda: command_request(fake, team),
                                          args.requests),
                "Slack interactions": measure(client, "/slack/interactions",
                                              lambda: interaction_request(fake, team, sub_id), args.requests),
            }
            sent_during = len([m for m in fake.messages if "blocks" in m])
            deadline = time.monotonic() + 300
            while len([m for m in fake.messages if "blocks" in m]) < args.channels:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            scan_seconds = time.perf_counter() - scan_started
        storage.close()
    base = results["webhook intake (GitHub pull_request)"]
    print(f"{'route':42} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs webhook':>11}")
    for name, r in results.items():
        print(f"{name:42} {r['rate']:8.1f} {r['p50']:8.2f} {r['p99']:8.2f} {r['rate'] / base['rate']:10.2f}x")
    finding_posts = [m for m in fake.messages if "blocks" in m]
    per_channel = Counter(m["channel"] for m in finding_posts)
    times = sorted(c["at"] for c in fake.calls if c["method"] == "chat.postMessage")
    print(f"\n{args.channels} subscribed channels: {len(per_channel)} got the scan's message "
          f"({sent_during} messages were sent while the requests above were timed)")
    print(f"chat.postMessage requests: {fake.count('chat.postMessage')} (channels + retries allowed: "
          f"{args.channels}; the interactions above add none); most messages to one channel: "
          f"{max(per_channel.values()) if per_channel else 0}")
    if len(times) > 1:
        print(f"all {len(finding_posts)} messages sent {scan_seconds:.1f} s after the upload "
              f"(workspace-wide {len(times) / max(times[-1] - times[0], 1e-9):.1f} messages/s)")
    ok = all(r["rate"] >= 0.5 * base["rate"] and r["p99"] < 50 for n, r in results.items() if n.startswith("Slack"))
    print("targets met" if ok and len(per_channel) == args.channels else "TARGETS NOT MET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
