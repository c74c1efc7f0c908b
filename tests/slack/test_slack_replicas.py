"""Two replicas on one database: Slack's OAuth state issued by one finishes the install on the
other, once."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.testclient import TestClient

from forge_app.web.app import create_app
from storage import open_storage


def test_an_install_started_on_one_replica_finishes_on_the_other_once(slack_settings, slack_client, fake_slack,
                                                                      admin_headers) -> None:
    other = open_storage(slack_settings.database)
    try:
        with TestClient(create_app(slack_settings, other, run_worker=False)) as second:
            url = slack_client.post("/api/v1/slack/install", headers=admin_headers).json()["url"]
            state = parse_qs(urlsplit(url).query)["state"][0]
            done = second.get("/slack/oauth/callback", params={"code": fake_slack.new_code(), "state": state})
            assert done.status_code == 200, done.text
            again = slack_client.get("/slack/oauth/callback", params={"code": fake_slack.new_code(), "state": state})
            assert again.status_code == 400 and "already used" in again.text
            listed = slack_client.get("/api/v1/slack/installations", headers=admin_headers).json()
            assert [i["team_id"] for i in listed] == [fake_slack.team["id"]]
    finally:
        other.close()
