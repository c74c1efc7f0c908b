"""The Slack app in the console: Add to Slack, workspaces with status, Refresh token, Remove
integration, read-only subscriptions; and the console's session opening /slack/install."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.console.helpers import csrf_of, sign_in


def test_console_add_to_slack_and_remove(slack_client, fake_slack, storage, admin_headers):
    client = slack_client
    assert client.get("/settings/slack-app", follow_redirects=False).status_code == 303  # sign in first
    sign_in(client)
    choose = client.get("/settings/integrations/new").text
    assert 'href="/settings/slack-app"' in choose and "Add to Slack" in choose
    page = client.get("/settings/slack-app")
    assert page.status_code == 200 and "Add to Slack" in page.text and "None yet." in page.text
    r = client.post("/settings/slack-app/install", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("https://slack.test/oauth/v2/authorize?")
    state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
    callback = client.get("/slack/oauth/callback", params={"code": fake_slack.new_code(), "state": state})
    assert callback.status_code == 200
    installation = storage.slack_installations()[0]
    storage.save_slack_subscription(installation.id, "C1", "security", ["octo/demo"], ["block"])
    storage.update_slack_installation(installation.id, status="needs_reinstall")
    page = client.get("/settings/slack-app").text
    assert "Acme" in page and "permissions not up to date" in page and "Refresh token" in page
    assert "#security" in page and "octo/demo" in page and "block" in page
    # the browser route opens Slack's page for a signed-in admin too
    assert client.get("/slack/install", follow_redirects=False).status_code == 302
    confirm = client.get(f"/settings/slack-app/{installation.id}/delete")
    assert confirm.status_code == 200 and "Acme" in confirm.text
    r = client.post(f"/settings/slack-app/{installation.id}/delete", data={"csrf": csrf_of(confirm.text)},
                    follow_redirects=False)
    assert r.status_code == 303 and fake_slack.uninstalled
    assert storage.slack_installations() == [] and storage.slack_subscriptions() == []
    assert "Integration removed." in client.get(r.headers["location"]).text


def test_console_install_refuses_a_post_without_csrf(slack_client, fake_slack):
    sign_in(slack_client)
    r = slack_client.post("/settings/slack-app/install", data={"csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403


def test_console_says_when_the_slack_app_is_off(client):
    sign_in(client)
    page = client.get("/settings/slack-app").text
    assert "The Slack app is off" in page and "SLACK_SIGNING_SECRET" in page
