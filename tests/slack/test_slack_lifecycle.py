"""Lifecycle events, delivery errors, token rotation and what a report's text may do in Slack."""

from __future__ import annotations

import json
import time

import pytest

from forge_app.slackapp.blocks import MessageFinding, findings_message
from tests.notify.helpers import SHA_MAIN, SHA_PR, make_finding, scan_body, upload
from tests.slack.conftest import run_jobs
from tests.slack.helpers import event, install


@pytest.fixture
def subscribed(slack_client, slack_app, fake_slack, storage, admin_headers, upload_token):
    """An installed workspace with #security (C024BE91L, the id in the vendored channel events) subscribed."""
    fake_slack.add_channel("C024BE91L", "security")
    upload(slack_client, upload_token, scan_body([], commit=SHA_MAIN, branch="main"))
    run_jobs(slack_app)
    installation = install(slack_client, fake_slack, admin_headers)
    sub = storage.save_slack_subscription(installation["id"], "C024BE91L", "security", [], [])
    return installation, sub


def _subs(client, admin_headers):
    return client.get("/api/v1/slack/subscriptions", headers=admin_headers).json()


def _new_scan(client, token, name="x", **kw):
    return upload(client, token, scan_body([make_finding(name, **kw)], commit=SHA_PR, branch="feature",
                                           pull_request=3, base_branch="main"))


def test_channel_events(slack_client, slack_app, subscribed, storage, admin_headers):
    team = "T111"
    event(slack_client, "channel_rename.wrapped.json", team_id=team, inner={"channel": {
        "id": "C024BE91L", "name": "sec-renamed"}})
    run_jobs(slack_app)
    assert _subs(slack_client, admin_headers)[0]["channel_name"] == "sec-renamed"
    event(slack_client, "channel_archive.wrapped.json", team_id=team)
    run_jobs(slack_app)
    [sub] = _subs(slack_client, admin_headers)
    assert sub["enabled"] is False and sub["disabled_reason"] == "channel archived"
    event(slack_client, "channel_unarchive.wrapped.json", team_id=team)
    run_jobs(slack_app)
    [sub] = _subs(slack_client, admin_headers)
    assert sub["enabled"] is True and sub["disabled_reason"] is None
    event(slack_client, "channel_id_changed.wrapped.json", team_id=team,
          inner={"old_channel_id": "C024BE91L", "new_channel_id": "C999"})
    run_jobs(slack_app)
    assert _subs(slack_client, admin_headers)[0]["channel_id"] == "C999"
    event(slack_client, "team_rename.wrapped.json", team_id=team)
    run_jobs(slack_app)
    assert slack_client.get("/api/v1/slack/installations", headers=admin_headers).json()[0]["team_name"] == \
        "New Team Name Inc."
    event(slack_client, "channel_deleted.wrapped.json", team_id=team, inner={"channel": "C999"})
    run_jobs(slack_app)
    assert _subs(slack_client, admin_headers) == []


@pytest.mark.parametrize("name", ["app_uninstalled.json", "tokens_revoked.json"])
def test_uninstall_and_token_revocation_remove_the_installation(slack_client, slack_app, subscribed, admin_headers,
                                                                name):
    event(slack_client, name, team_id="T111")
    run_jobs(slack_app)
    assert slack_client.get("/api/v1/slack/installations", headers=admin_headers).json() == []
    assert _subs(slack_client, admin_headers) == []


@pytest.mark.parametrize("error,reason", [("not_in_channel", "not in this private channel"),
                                          ("channel_not_found", "channel not found"),
                                          ("is_archived", "channel archived")])
def test_channel_errors_disable_the_subscription(slack_client, slack_app, subscribed, fake_slack, storage,
                                                 admin_headers, upload_token, error, reason):
    fake_slack.fail("chat.postMessage", error)
    _new_scan(slack_client, upload_token)
    run_jobs(slack_app)
    [sub] = _subs(slack_client, admin_headers)
    assert sub["enabled"] is False and reason in sub["disabled_reason"]
    assert storage.jobs(kind="slack_post", status="failed") == []  # handled, not retried forever


@pytest.mark.parametrize("error,status", [("invalid_auth", "revoked"), ("token_revoked", "revoked"),
                                          ("account_inactive", "revoked"), ("missing_scope", "needs_reinstall")])
def test_token_errors_mark_the_installation(slack_client, slack_app, subscribed, fake_slack, admin_headers,
                                            upload_token, error, status):
    fake_slack.fail("chat.postMessage", error)
    _new_scan(slack_client, upload_token)
    run_jobs(slack_app)
    [installation] = slack_client.get("/api/v1/slack/installations", headers=admin_headers).json()
    assert installation["status"] == status
    assert fake_slack.count("chat.postMessage") == 1  # no retries
    if status == "needs_reinstall":
        event(slack_client, "app_home_opened.home-tab.json", team_id="T111")
        run_jobs(slack_app)
        home = json.dumps(fake_slack.published["W222"])
        assert "permissions not up to date" in home and "/slack/install" in home


def test_rate_limit_is_retried_after_retry_after(slack_client, slack_app, subscribed, fake_slack, storage,
                                                 upload_token):
    fake_slack.fail("chat.postMessage", "ratelimited", status=429, headers={"Retry-After": "1"})
    _new_scan(slack_client, upload_token)
    run_jobs(slack_app)
    assert fake_slack.count("chat.postMessage") == 2  # the SDK waited Retry-After, then sent once more
    assert len(fake_slack.messages) == 1


def test_rate_limit_that_persists_becomes_a_job_retry_at_retry_after(slack_client, slack_app, subscribed, fake_slack,
                                                                     storage, upload_token):
    fake_slack.fail("chat.postMessage", "ratelimited", status=429, headers={"Retry-After": "1"}, times=2)
    _new_scan(slack_client, upload_token)
    started = time.time()
    run_jobs(slack_app)
    [job] = storage.jobs(kind="slack_post")
    assert job["status"] == "queued" and 0.5 <= job["run_at"] - started <= 30
    assert fake_slack.messages == []
    time.sleep(max(0.0, job["run_at"] - time.time()) + 0.05)
    run_jobs(slack_app)
    assert len(fake_slack.messages) == 1


def test_slack_5xx_is_retried_later_and_nothing_is_lost(slack_client, slack_app, subscribed, fake_slack, storage,
                                                        upload_token):
    fake_slack.fail("chat.postMessage", status=503, body={"ok": False, "error": "service_unavailable"})
    _new_scan(slack_client, upload_token)
    run_jobs(slack_app)
    [job] = storage.jobs(kind="slack_post")
    assert job["status"] == "queued" and "503" in job["last_error"]
    storage.database.db.execute("UPDATE jobs SET run_at = 0 WHERE id = ?", [job["id"]])
    run_jobs(slack_app)
    assert len(fake_slack.messages) == 1


def test_token_rotation_refreshes_before_expiry_and_on_token_expired(slack_client, slack_app, fake_slack, storage,
                                                                     admin_headers, upload_token):
    fake_slack.rotation = True
    fake_slack.add_channel("C1", "security")
    upload(slack_client, upload_token, scan_body([], commit=SHA_MAIN, branch="main"))
    installation = install(slack_client, fake_slack, admin_headers)
    stored = storage.slack_installation(installation["id"])
    assert stored.refresh_token and stored.token_expires_at > time.time() + 40000
    storage.save_slack_subscription(installation["id"], "C1", "security", [], [])
    # expiring soon: refreshed before the call
    storage.update_slack_installation(installation["id"], token_expires_at=time.time() + 60)
    _new_scan(slack_client, upload_token, "first")
    run_jobs(slack_app)
    assert fake_slack.count("oauth.v2.access") == 2 and len(fake_slack.messages) == 1
    # Slack says token_expired although we thought it valid: refresh and send once more
    fake_slack.fail("chat.postMessage", "token_expired")
    upload(slack_client, upload_token, scan_body([make_finding("second")], commit="e" * 40, branch="feature",
                                                 pull_request=4, base_branch="main"))
    run_jobs(slack_app)
    assert fake_slack.count("oauth.v2.access") == 3 and len(fake_slack.messages) == 2
    assert storage.slack_installation(installation["id"]).status == "active"


def test_report_text_arrives_inert_and_within_limits(slack_client, slack_app, subscribed, fake_slack, upload_token):
    nasty = "<!channel> <@U123> <https://evil|click> & " + "A" * 3500
    findings = [make_finding(f"n{i}", rule=f"rule`<!here>{i}", path=f"src/<@U1>|{i}.py", message=nasty)
                for i in range(25)]
    upload(slack_client, upload_token, scan_body(findings, commit=SHA_PR, branch="feature", pull_request=9,
                                                 base_branch="main"))
    run_jobs(slack_app)
    [message] = fake_slack.messages
    blob = json.dumps(message["blocks"])
    for dangerous in ("<!channel>", "<@U123>", "<https://evil", "<!here>", "<@U1>"):
        assert dangerous not in blob and dangerous not in message["text"]
    assert "&lt;!channel&gt;" in blob and "&amp;" in blob
    assert "and 5 more" in blob
    sections = [b for b in message["blocks"] if b["type"] == "section" and "text" in b]
    assert all(len(b["text"]["text"]) <= 3000 for b in sections)
    assert len(message["blocks"]) <= 50


def test_findings_message_puts_rule_ids_and_paths_in_code_spans():
    f = MessageFinding("py.eval", "error", "app/x.py", 7, "m", "block", "https://github.com/o/r/blob/abc/app/x.py#L7")
    message = findings_message(repository="o/r", place="pull request #1", scan_url="http://s/scans/1", findings=[f])
    text = message["blocks"][3]["text"]["text"]
    assert "`py.eval`" in text and "`app/x.py:7`" in text
    assert "<https://github.com/o/r/blob/abc/app/x.py#L7|view>" in text


def test_two_hundred_channels_get_one_message_each(slack_client, slack_app, fake_slack, storage, admin_headers,
                                                   upload_token):
    upload(slack_client, upload_token, scan_body([], commit=SHA_MAIN, branch="main"))
    installation = install(slack_client, fake_slack, admin_headers)
    for i in range(200):
        fake_slack.add_channel(f"C{i:03d}", f"chan-{i}")
        storage.save_slack_subscription(installation["id"], f"C{i:03d}", f"chan-{i}", [], [])
    _new_scan(slack_client, upload_token)
    run_jobs(slack_app, )
    posted = [m["channel"] for m in fake_slack.messages]
    assert sorted(posted) == sorted(f"C{i:03d}" for i in range(200))
    assert fake_slack.count("chat.postMessage") == 200


def test_response_urls_go_only_to_slack_unless_slack_itself_is_elsewhere(settings):
    from dataclasses import replace

    from forge_app.slackapp.jobs import response_url_allowed

    assert response_url_allowed("https://hooks.slack.com/commands/T1/2/x", settings)
    assert not response_url_allowed("https://evil.example/commands", settings)
    assert not response_url_allowed("http://hooks.slack.com/commands", settings)
    assert not response_url_allowed("http://169.254.169.254/latest", settings)
    assert response_url_allowed("http://127.0.0.1:9/respond/x", replace(settings, slack_api_url="http://127.0.0.1:9/api"))


def test_plan_ands_repository_and_policy_filters():
    from types import SimpleNamespace

    from forge_app.slackapp.jobs import plan
    from storage.slack import SlackSubscription

    def sub(i, repos, policies, enabled=True):
        return SlackSubscription(i, 1, "T", f"C{i}", None, repos, policies, enabled, None, "", "")

    scan = SimpleNamespace(repository="octo/demo")
    found = [SimpleNamespace(status="new", identity_id=1, mode="block"),
             SimpleNamespace(status="new", identity_id=2, mode="comment"),
             SimpleNamespace(status="unchanged", identity_id=3, mode="block")]
    plans = {p.subscription_id: p.identity_ids for p in plan(scan, found, [
        sub(1, [], []), sub(2, ["octo/*"], ["block"]), sub(3, ["other/repo"], []), sub(4, [], ["monitor"]),
        sub(5, [], [], enabled=False)])}
    assert plans == {1: [1, 2], 2: [1]}


def test_a_long_retry_after_does_not_hold_the_worker(slack_client, slack_app, subscribed, fake_slack, storage,
                                                     upload_token):
    fake_slack.fail("chat.postMessage", "ratelimited", status=429, headers={"Retry-After": "120"})
    _new_scan(slack_client, upload_token)
    started = time.time()
    run_jobs(slack_app)
    assert time.time() - started < 10
    [job] = storage.jobs(kind="slack_post")
    assert job["status"] == "queued" and 110 <= job["run_at"] - started <= 130
    assert fake_slack.count("chat.postMessage") == 1
