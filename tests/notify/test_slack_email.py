"""Slack (Block Kit to an incoming webhook) and email (a real SMTP server on loopback)."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from forge_app.config import Settings
from forge_app.notify.mail import SmtpConfigError, smtp_config
from tests.notify.helpers import SHA_MAIN, SHA_PR, Receiver, make_finding, run_jobs, scan_body, upload

API = "/api/v1/integrations"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.original_content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def pr_findings(n: int) -> list[Any]:
    return [make_finding(f"f{i}", line=10 + i, severity=("error", "warning", "info")[i % 3]) for i in range(n)]


def test_slack_message_per_scan_with_new_findings(client: Any, app: Any, admin_headers: dict[str, str],
                                                   upload_token: str) -> None:
    upload(client, upload_token, scan_body([make_finding("base")], commit=SHA_MAIN, branch="main"))
    run_jobs(app)
    with Receiver() as slack:
        r = client.post(API, json={"type": "slack", "url": slack.url}, headers=admin_headers)
        assert r.status_code == 201
        findings = pr_findings(12) + [make_finding("base"),
                                      make_finding("x", line=99, message="use <script>alert(1)</script> & co")]
        body = scan_body(findings, commit=SHA_PR, branch="feature", base_branch="main", pull_request=7,
                         meta={"pull_request_title": "Add <b>things</b>", "ci_job_url": "https://ci.example/run/9"})
        upload(client, upload_token, body)
        run_jobs(app)
        upload(client, upload_token, body)  # the same PR again: nothing new for Slack
        run_jobs(app)
    [post] = slack.requests
    msg = post.json()
    assert "webhook-signature" not in post.headers
    blocks = msg["blocks"]
    assert "13 new findings in octo/demo" in msg["text"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "13 new findings in octo/demo",
                                                    "emoji": False}}
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert fields[0] == "*Repository*\nocto/demo"
    assert fields[1] == "*Pull request*\n<https://github.com/octo/demo/pull/7|#7 Add &lt;b&gt;things&lt;/b&gt;>"
    assert blocks[2]["elements"][0]["text"] == "*By severity:* 5 error · 4 warning · 4 info"
    sections = [b for b in blocks if b["type"] == "section" and "text" in b]
    assert len(sections) == 10, "the first ten findings"
    assert sections[0]["text"]["text"].startswith("*python.lang.security.eval* (error, ")
    assert "`app/main.py:10`" in sections[0]["text"]["text"]
    assert any(b["type"] == "context" and b["elements"][0]["text"] == "and 3 more" for b in blocks)
    text = str(msg)
    assert "<script>" not in text and "base: avoid eval" not in text
    assert len(blocks) <= 50


def test_slack_sends_nothing_when_nothing_is_new(client: Any, app: Any, admin_headers: dict[str, str],
                                                 upload_token: str) -> None:
    with Receiver() as slack:
        client.post(API, json={"type": "slack", "url": slack.url}, headers=admin_headers)
        upload(client, upload_token, scan_body([], commit=SHA_MAIN, branch="main"))
        run_jobs(app)
    assert slack.requests == []


def test_email_per_scan_plain_and_html(client_with: Any, admin_headers: dict[str, str], upload_token: str,
                                       smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    client = client_with(smtp_url=f"smtp://127.0.0.1:{port}", email_from="forge-app <forge-app@example.com>")
    r = client.post(API, json={"type": "email", "addresses": ["dev@example.com", "sec@example.com"],
                               "name": "security team"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    findings = [make_finding("x", message="never <b>eval</b> user input & friends"), make_finding("y", line=30)]
    upload(client, upload_token, scan_body(findings, commit=SHA_PR, branch="feature", base_branch="main",
                                           pull_request=12))
    run_jobs(client.app)
    upload(client, upload_token, scan_body(findings, commit=SHA_PR, branch="feature", base_branch="main",
                                           pull_request=12))
    run_jobs(client.app)
    [(sender, recipients, msg)] = inbox.messages
    assert sender == "forge-app@example.com" and sorted(recipients) == ["dev@example.com", "sec@example.com"]
    assert msg["Subject"] == "[forge-app] 2 new findings in octo/demo (PR #12)"
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk() if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "never <b>eval</b> user input & friends" in parts["text/plain"]
    assert "app/main.py:10" in parts["text/plain"] and "Pull request: #12" in parts["text/plain"]
    assert "never &lt;b&gt;eval&lt;/b&gt; user input &amp; friends" in parts["text/html"]
    assert "<b>eval</b>" not in parts["text/html"]
    assert "https://github.com/octo/demo/pull/12" in parts["text/html"]
    deliveries = client.get(f"{API}/{r.json()['id']}/deliveries", headers=admin_headers).json()
    assert [(d["kind"], d["status"], d["status_code"]) for d in deliveries] == [("email", "succeeded", 250)]


def test_email_test_button(client_with: Any, admin_headers: dict[str, str], smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    client = client_with(smtp_url=f"smtp://127.0.0.1:{port}", email_from="forge-app@example.com")
    made = client.post(API, json={"type": "email", "addresses": "dev@example.com"}, headers=admin_headers).json()
    result = client.post(f"{API}/{made['id']}/test", headers=admin_headers).json()
    assert result["ok"] is True and result["status_code"] == 250
    [(_, _, msg)] = inbox.messages
    assert msg["Subject"] == "[forge-app] Test notification"


def test_unreachable_smtp_is_reported(client_with: Any, admin_headers: dict[str, str]) -> None:
    port = free_port()  # nothing listens there
    client = client_with(smtp_url=f"smtp://127.0.0.1:{port}", email_from="forge-app@example.com")
    made = client.post(API, json={"type": "email", "addresses": ["dev@example.com"]}, headers=admin_headers).json()
    result = client.post(f"{API}/{made['id']}/test", headers=admin_headers).json()
    assert result["ok"] is False and "cannot reach the SMTP server" in result["error"]


def test_password_is_not_sent_without_tls(client_with: Any, admin_headers: dict[str, str],
                                          smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    client = client_with(smtp_url=f"smtp://user:s3cret-pass@127.0.0.1:{port}", email_from="forge-app@example.com")
    made = client.post(API, json={"type": "email", "addresses": ["dev@example.com"]}, headers=admin_headers).json()
    result = client.post(f"{API}/{made['id']}/test", headers=admin_headers).json()
    assert result["ok"] is False and "STARTTLS" in result["error"] and "s3cret" not in result["error"]
    assert inbox.messages == []


def test_smtp_url_parsing() -> None:
    config = smtp_config(Settings(smtp_url="smtps://me%40corp:p%3Ass@mail.example:2465",
                                  email_from="bot@example.com"))
    assert (config.implicit_tls, config.host, config.port, config.username, config.password) == \
        (True, "mail.example", 2465, "me@corp", "p:ss")
    assert smtp_config(Settings(smtp_url="smtp://mail.example", email_from="bot@example.com")).port == 25
    for url, sender in [("http://mail.example", "bot@example.com"), ("smtp://:pw@", "bot@example.com"),
                        ("smtp://mail.example", "not an address"), (None, "bot@example.com")]:
        with pytest.raises(SmtpConfigError) as info:
            smtp_config(Settings(smtp_url=url, email_from=sender))
        assert "pw" not in str(info.value)
