"""Requests from Slack: one verification, fast answers, bad input refused with no effect."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.slack.conftest import run_jobs, signed
from tests.slack.helpers import FIXTURES, command, event, fixture, install, interaction, submission


def _vectors():
    return json.loads((FIXTURES / "signature-vectors.json").read_text())


def test_slack_routes_are_404_when_the_app_is_not_configured(client, admin_headers):
    for method, path in [("POST", "/slack/events"), ("POST", "/slack/commands"), ("POST", "/slack/interactions"),
                         ("GET", "/slack/oauth/callback"), ("POST", "/api/v1/slack/install")]:
        r = client.request(method, path, headers=admin_headers)
        assert r.status_code == 404, path
        assert r.json()["error"] == "slack_app_not_configured"


def test_documented_vectors_verify_with_a_frozen_clock(slack_client, monkeypatch):
    vectors = _vectors()
    url_vector = next(v for v in vectors["computed"] if v["file"].endswith("url_verification.json"))
    monkeypatch.setattr(time, "time", lambda: float(url_vector["X-Slack-Request-Timestamp"]) + 10)
    body = (FIXTURES / "events" / "url_verification.json").read_bytes()
    r = slack_client.post("/slack/events", content=body, headers={
        "X-Slack-Request-Timestamp": url_vector["X-Slack-Request-Timestamp"],
        "X-Slack-Signature": url_vector["X-Slack-Signature"], "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json() == {"challenge": json.loads(body)["challenge"]}


@pytest.mark.parametrize("case", ["missing", "wrong_secret", "stale", "future", "not_a_number", "tampered"])
def test_bad_signatures_get_401_and_no_effect(slack_client, storage, fake_slack, admin_headers, case):
    install(slack_client, fake_slack, admin_headers)
    body = json.dumps({**fixture("events/app_uninstalled.json"), "team_id": fake_slack.team["id"]}).encode()
    headers = signed(body)
    if case == "missing":
        headers.pop("X-Slack-Signature")
    elif case == "wrong_secret":
        headers = signed(body, secret="another-secret")
    elif case == "stale":
        headers = signed(body, ts=int(time.time()) - 301)
    elif case == "future":
        headers = signed(body, ts=int(time.time()) + 301)
    elif case == "not_a_number":
        headers["X-Slack-Request-Timestamp"] = "soon"
    elif case == "tampered":
        body = body.replace(b"app_uninstalled", b"app_uninstalleD")
    r = slack_client.post("/slack/events", content=body, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_signature" and r.json()["detail"]
    assert storage.jobs(kind="slack_event") == []
    text = slack_client.get("/metrics").text
    assert 'forge_app_webhook_deliveries_total{forge="slack",outcome="rejected"}' in text


def test_a_replayed_request_has_no_second_effect(slack_client, storage, fake_slack, admin_headers, upload_token):
    fake_slack.add_channel("C100", "security")
    install(slack_client, fake_slack, admin_headers)
    r = command(slack_client, fake_slack, "/forgeapp_subscribe", "C100")
    assert r.status_code == 200
    again = slack_client.post("/slack/commands", content=r.request.content, headers=dict(r.request.headers))
    assert again.status_code == 401 and again.json()["error"] == "replayed_request"
    assert len(storage.jobs(kind="slack_command")) == 1
    body = json.dumps({**fixture("events/team_rename.wrapped.json"), "team_id": fake_slack.team["id"]}).encode()
    headers = signed(body)
    assert slack_client.post("/slack/events", content=body, headers=headers).status_code == 200
    replayed_event = slack_client.post("/slack/events", content=body, headers=headers)
    assert replayed_event.status_code == 200 and replayed_event.json()["duplicate"] is True
    assert len(storage.jobs(kind="slack_event")) == 1


def test_slack_retries_are_deduplicated_by_event_id(slack_client, slack_app, storage, fake_slack, admin_headers):
    install(slack_client, fake_slack, admin_headers)
    first = event(slack_client, "team_rename.wrapped.json", team_id="T111", event_id="EvSAME")
    retry = event(slack_client, "team_rename.wrapped.json", team_id="T111", event_id="EvSAME", retry=1)
    assert first.status_code == retry.status_code == 200
    assert retry.json()["duplicate"] is True and retry.headers.get("x-slack-no-retry") == "1"
    assert len(storage.jobs(kind="slack_event")) == 1
    run_jobs(slack_app)
    assert storage.slack_installation_for_team("T111").team_name == "New Team Name Inc."


def test_bodies_that_are_not_json_or_form(slack_client, fake_slack, admin_headers):
    install(slack_client, fake_slack, admin_headers)
    for path, body, code in [
        ("/slack/events", b"token=x&team_id=T111", "invalid_json"),
        ("/slack/events", b"[1, 2]", "invalid_event"),
        ("/slack/events", b'{"type": "event_callback", "event": "nope"}', "invalid_event"),
        ("/slack/commands", b"\xff\xfe\x00", "invalid_body"),
        ("/slack/commands", b"", "invalid_form"),
        ("/slack/commands", b"team_id=T111&text=x", "invalid_command"),
        ("/slack/interactions", b"team_id=T111", "invalid_interaction"),
        ("/slack/interactions", urlencode({"payload": "{not json"}).encode(), "invalid_interaction"),
        ("/slack/interactions", urlencode({"payload": "[1]"}).encode(), "invalid_interaction"),
    ]:
        r = slack_client.post(path, content=body, headers=signed(body, content_type="text/plain"))
        assert r.status_code == 400, (path, body, r.text)
        assert r.json()["error"] == code and r.json()["detail"]


def test_unknown_team_unknown_command_unknown_repository(slack_client, slack_app, storage, fake_slack, admin_headers,
                                                         upload_token):
    fake_slack.add_channel("C100", "security")
    r = command(slack_client, fake_slack, "/forgeapp_subscribe", "C100", "octo/demo", team_id="TNOPE")
    assert r.status_code == 200 and "not installed" in r.json()["text"] and r.json()["response_type"] == "ephemeral"
    r = event(slack_client, "team_rename.wrapped.json", team_id="TNOPE")
    assert r.status_code == 200 and r.json()["ignored"]
    install(slack_client, fake_slack, admin_headers)
    r = command(slack_client, fake_slack, "/deploy", "C100")
    assert "does not know the command /deploy" in r.json()["text"]
    r = command(slack_client, fake_slack, "/forgeapp_subscribe", "C100", "octo/unknown")
    assert "does not know the repository octo/unknown" in r.json()["text"]
    run_jobs(slack_app)
    assert fake_slack.views == [] and storage.slack_subscriptions() == []


def test_private_channel_without_the_bot_says_how_to_invite_it(slack_client, slack_app, storage, fake_slack,
                                                               admin_headers):
    fake_slack.add_channel("G100", "secret-team", private=True)
    install(slack_client, fake_slack, admin_headers)
    r = command(slack_client, fake_slack, "/forgeapp_subscribe", "G100")
    assert r.status_code == 200
    run_jobs(slack_app)
    assert fake_slack.views == []
    [answer] = fake_slack.responses
    assert answer["response_type"] == "ephemeral" and "/invite @forge-app" in answer["text"]
    assert storage.slack_subscriptions() == []


def test_unsubscribe_command(slack_client, slack_app, storage, fake_slack, admin_headers):
    fake_slack.add_channel("C100", "security")
    installation = install(slack_client, fake_slack, admin_headers)
    r = command(slack_client, fake_slack, "/forgeapp_unsubscribe", "C100")
    assert "no forge-app subscription" in r.json()["text"]
    storage.save_slack_subscription(installation["id"], "C100", "security", [], [])
    r = command(slack_client, fake_slack, "/forgeapp_unsubscribe", "C100")
    assert r.json()["response_type"] == "ephemeral" and "unsubscribed" in r.json()["text"]
    assert storage.slack_subscriptions() == []


def test_submission_for_a_channel_deleted_meanwhile_saves_nothing(slack_client, slack_app, storage, fake_slack,
                                                                  admin_headers):
    fake_slack.add_channel("C100", "security")
    install(slack_client, fake_slack, admin_headers)
    command(slack_client, fake_slack, "/forgeapp_subscribe", "C100")
    run_jobs(slack_app)
    del fake_slack.channels["C100"]
    interaction(slack_client, submission(fake_slack, fake_slack.views[-1], [], ["block"]))
    run_jobs(slack_app)
    assert storage.slack_subscriptions() == []
    assert fake_slack.messages[-1]["channel"] == "U111" and "nothing was saved" in fake_slack.messages[-1]["text"]


def test_oauth_state_forged_reused_expired_and_cancelled(slack_client, storage, fake_slack, admin_headers,
                                                         monkeypatch):
    r = slack_client.get("/slack/oauth/callback", params={"code": fake_slack.new_code(), "state": "forged"})
    assert r.status_code == 400 and "not one this server issued" in r.text
    assert slack_client.get("/slack/oauth/callback", params={"code": "x"}).status_code == 400
    url = slack_client.post("/api/v1/slack/install", headers=admin_headers).json()["url"]
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == ["111.222"] and query["redirect_uri"] == ["http://testserver/slack/oauth/callback"]
    assert query["scope"] == ["commands,chat:write,chat:write.public,channels:read,groups:read,team:read"]
    state = query["state"][0]
    ok = slack_client.get("/slack/oauth/callback", params={"code": fake_slack.new_code(), "state": state})
    assert ok.status_code == 200
    calls = fake_slack.count("oauth.v2.access")
    reused = slack_client.get("/slack/oauth/callback", params={"code": fake_slack.new_code(), "state": state})
    assert reused.status_code == 400 and "already used" in reused.text
    assert fake_slack.count("oauth.v2.access") == calls  # no exchange
    url = slack_client.post("/api/v1/slack/install", headers=admin_headers).json()["url"]
    late_state = parse_qs(urlsplit(url).query)["state"][0]
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 601)
    expired = slack_client.get("/slack/oauth/callback", params={"code": fake_slack.new_code(), "state": late_state})
    assert expired.status_code == 400 and "expired" in expired.text
    monkeypatch.undo()
    url = slack_client.post("/api/v1/slack/install", headers=admin_headers).json()["url"]
    cancelled = slack_client.get("/slack/oauth/callback", params={"error": "access_denied",
                                                                 "state": parse_qs(urlsplit(url).query)["state"][0]})
    assert cancelled.status_code == 200 and "cancelled" in cancelled.text


def test_install_needs_the_admin_token(slack_client):
    assert slack_client.post("/api/v1/slack/install").status_code == 401
    assert slack_client.get("/slack/install", follow_redirects=False).status_code == 401
    assert slack_client.get("/api/v1/slack/installations").status_code == 401


def test_browser_install_redirects_an_admin_to_slack(slack_client, admin_headers):
    r = slack_client.get("/slack/install", headers=admin_headers, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"].startswith("https://slack.test/oauth/v2/authorize?")


def test_slack_down_during_the_install_is_a_clear_page(slack_client, fake_slack, admin_headers):
    fake_slack.fail("oauth.v2.access", status=503, body={"ok": False, "error": "service_unavailable"}, times=3)
    url = slack_client.post("/api/v1/slack/install", headers=admin_headers).json()["url"]
    r = slack_client.get("/slack/oauth/callback", params={"code": fake_slack.new_code(),
                                                         "state": parse_qs(urlsplit(url).query)["state"][0]})
    assert r.status_code == 502 and "could not be reached" in r.text
    assert slack_client.get("/api/v1/slack/installations", headers=admin_headers).json() == []


@pytest.mark.parametrize("error,words", [("missing_scope", "permissions not up to date"),
                                         ("invalid_auth", "was revoked")])
def test_a_command_when_the_token_lacks_a_scope_or_was_revoked(slack_client, slack_app, storage, fake_slack,
                                                               admin_headers, error, words):
    fake_slack.add_channel("C100", "security")
    install(slack_client, fake_slack, admin_headers)
    fake_slack.fail("conversations.info", error)
    command(slack_client, fake_slack, "/forgeapp_subscribe", "C100")
    run_jobs(slack_app)
    [answer] = fake_slack.responses
    assert words in answer["text"] and "/slack/install" in answer["text"]
    assert fake_slack.views == []


def test_a_command_whose_modal_comes_too_late(slack_client, slack_app, fake_slack, admin_headers):
    fake_slack.add_channel("C100", "security")
    install(slack_client, fake_slack, admin_headers)
    fake_slack.fail("views.open", "expired_trigger_id")
    command(slack_client, fake_slack, "/forgeapp_subscribe", "C100")
    run_jobs(slack_app)
    [answer] = fake_slack.responses
    assert "took too long" in answer["text"]
