"""The whole story a workspace admin and a channel live through, against the fake Slack."""

from __future__ import annotations

import json

from tests.notify.helpers import SHA_MAIN, SHA_PR, make_finding, scan_body, upload
from tests.slack.conftest import run_jobs
from tests.slack.helpers import command, event, install, interaction, menu_action, submission


def _scan(client, token, findings, commit=SHA_MAIN, branch="main", pr=None):
    body = scan_body(findings, commit=commit, branch=branch, pull_request=pr,
                     base_branch="main" if pr else None)
    return upload(client, token, body)


def test_install_subscribe_receive_once_manage_and_uninstall(slack_client, slack_app, fake_slack, storage,
                                                             admin_headers, upload_token):
    client, fake = slack_client, fake_slack
    fake.add_channel("C100", "security")
    fake.add_channel("C200", "frontend")
    _scan(client, upload_token, [])  # octo/demo becomes known (empty baseline)
    run_jobs(slack_app)

    installation = install(client, fake, admin_headers)
    assert installation["status"] == "active" and installation["team_name"] == "Acme"
    assert "token" not in json.dumps(installation) and "xoxb" not in json.dumps(installation)

    # /forgeapp_subscribe octo/demo opens the modal, prefilled with the repository
    r = command(client, fake, "/forgeapp_subscribe", "C100", "octo/demo")
    assert r.status_code == 200 and r.content == b""
    run_jobs(slack_app)
    [modal] = fake.views
    assert modal["title"]["text"] == "Subscribe" and modal["submit"]["text"] == "Subscribe"
    labels = [b["label"]["text"] for b in modal["blocks"] if b["type"] == "input"]
    assert labels == ["Repositories", "Policies"]
    repo_input = next(b for b in modal["blocks"] if b.get("block_id") == "repositories")
    assert [o["value"] for o in repo_input["element"]["initial_options"]] == ["octo/demo"]
    policy_input = next(b for b in modal["blocks"] if b.get("block_id") == "policies")
    assert [o["value"] for o in policy_input["element"]["initial_options"]] == ["monitor", "comment", "block"]

    # submitting stores the channel's subscription and confirms in the channel
    r = interaction(client, submission(fake, modal, ["octo/demo"], ["block"]))
    assert r.status_code == 200
    run_jobs(slack_app)
    subs = client.get("/api/v1/slack/subscriptions", headers=admin_headers).json()
    assert [(s["channel_id"], s["repositories"], s["policies"], s["enabled"]) for s in subs] == [
        ("C100", ["octo/demo"], ["block"], True)]
    assert fake.messages[-1]["channel"] == "C100" and "subscribed" in fake.messages[-1]["text"]

    # a second channel takes everything
    command(client, fake, "/forgeapp_subscribe", "C200")
    run_jobs(slack_app)
    interaction(client, submission(fake, fake.views[-1], [], ["monitor", "comment", "block"]))
    run_jobs(slack_app)
    before = len(fake.messages)

    # a scan with one block finding and one comment finding
    client.put("/api/v1/policies", headers=admin_headers,
               json={"default": "comment", "rules": {"rules.blocker": "block"}})
    findings = [make_finding("one", rule="rules.blocker", path="src/app.py", line=7),
                make_finding("two", rule="rules.style", path="src/other.py", line=3)]
    scan = _scan(client, upload_token, findings, commit=SHA_PR, branch="feature", pr=5)
    run_jobs(slack_app)
    posts = fake.messages[before:]
    assert sorted(p["channel"] for p in posts) == ["C100", "C200"]
    security = next(p for p in posts if p["channel"] == "C100")
    blob = json.dumps(security["blocks"])
    assert "rules.blocker" in blob and "rules.style" not in blob  # the policy filter, AND-ed
    assert "src/app.py:7" in blob and f"/scans/{scan['id']}" in blob
    everything = json.dumps(next(p for p in posts if p["channel"] == "C200")["blocks"])
    assert "rules.blocker" in everything and "rules.style" in everything
    assert fake.count("chat.postMessage") == before + 2

    # the same findings again (a rescan) send nothing
    _scan(client, upload_token, findings, commit="d" * 40, branch="feature", pr=5)
    run_jobs(slack_app)
    assert len(fake.messages) == before + 2

    # App Home lists both, with the overflow menu
    event(client, "app_home_opened.home-tab.json", team_id=fake.team["id"])
    run_jobs(slack_app)
    home = fake.published["W222"]
    menus = [b["accessory"] for b in home["blocks"] if b.get("accessory", {}).get("type") == "overflow"]
    assert len(menus) == 2
    assert [o["text"]["text"] for o in menus[0]["options"]] == [
        "Manage filters", "Send test notification", "Unsubscribe"]
    sub_id = subs[0]["id"]

    # Send test notification
    sent = len(fake.messages)
    interaction(client, menu_action(fake, f"test:{sub_id}"))
    run_jobs(slack_app)
    assert fake.messages[sent]["channel"] == "C100" and "test" in fake.messages[sent]["text"]

    # Manage filters opens the same modal, prefilled with the stored filters
    interaction(client, menu_action(fake, f"manage:{sub_id}"))
    run_jobs(slack_app)
    policy_input = next(b for b in fake.views[-1]["blocks"] if b.get("block_id") == "policies")
    assert [o["value"] for o in policy_input["element"]["initial_options"]] == ["block"]

    # Unsubscribe from App Home
    interaction(client, menu_action(fake, f"unsubscribe:{sub_id}"))
    run_jobs(slack_app)
    assert [s["channel_id"] for s in client.get("/api/v1/slack/subscriptions", headers=admin_headers).json()] == [
        "C200"]

    # uninstall through the admin API: apps.uninstall, then gone with its subscriptions
    r = client.delete(f"/api/v1/slack/installations/{installation['id']}", headers=admin_headers)
    assert r.status_code == 200 and fake.uninstalled
    assert client.get("/api/v1/slack/installations", headers=admin_headers).json() == []
    assert client.get("/api/v1/slack/subscriptions", headers=admin_headers).json() == []


def test_reinstall_keeps_subscriptions_and_replaces_the_token(slack_client, slack_app, fake_slack, storage,
                                                              admin_headers, upload_token):
    fake = fake_slack
    fake.add_channel("C100", "security")
    _scan(slack_client, upload_token, [])
    first = install(slack_client, fake, admin_headers)
    command(slack_client, fake, "/forgeapp_subscribe", "C100")
    run_jobs(slack_app)
    interaction(slack_client, submission(fake, fake.views[-1], [], ["block"]))
    run_jobs(slack_app)
    old_token = storage.slack_installation(first["id"]).bot_token
    fake.revoke_all()
    second = install(slack_client, fake, admin_headers)
    assert second["id"] == first["id"]
    assert storage.slack_installation(first["id"]).bot_token != old_token
    assert len(slack_client.get("/api/v1/slack/subscriptions", headers=admin_headers).json()) == 1
