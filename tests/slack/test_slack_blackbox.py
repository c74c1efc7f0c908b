"""The Slack app from the outside only: `forge-app serve` as a process configured through the
contract's environment variables, pointed at the fake Slack, driven over HTTP as Slack and an
admin would (the manifest from the CLI, install, subscribe, a scan, App Home, uninstall)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.blackbox.test_github_blackbox import forge_app_server
from tests.notify.helpers import SHA_MAIN, SHA_PR, make_finding, scan_body
from tests.slack.fake_slack import CLIENT_ID, CLIENT_SECRET, SIGNING_SECRET
from tests.slack.helpers import command, event, interaction, menu_action, submission

ADMIN = "blackbox-admin-token-0123456789abcdef"


def wait(what, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_a_new_user_story_through_the_contract(tmp_path: Path, fake_slack):
    fake = fake_slack
    fake.add_channel("C100", "security")
    env = {**os.environ, "FORGE_APP_DATABASE": str(tmp_path / "forge-app.db"), "FORGE_APP_ADMIN_TOKEN": ADMIN,
           "FORGE_APP_SECRET_KEY": "blackbox-secret-key-0123456789abcdef-0123", "SLACK_CLIENT_ID": CLIENT_ID,
           "SLACK_CLIENT_SECRET": CLIENT_SECRET, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "FORGE_APP_SLACK_API_URL": f"{fake.base_url}/api",
           "FORGE_APP_SLACK_AUTHORIZE_URL": "https://slack.test/oauth/v2/authorize"}
    manifest = subprocess.run([sys.executable, "-m", "forge_app.cli.main", "slack", "manifest", "--url",
                               "https://forge.example.com"], env=env, capture_output=True, text=True, timeout=60)
    assert manifest.returncode == 0 and len(json.loads(manifest.stdout)["oauth_config"]["scopes"]["bot"]) == 6
    token = subprocess.run([sys.executable, "-m", "forge_app.cli.main", "token", "create", "--repo", "octo/demo",
                            "--init"],  # before the server's first start: the database is created here
                           env=env, capture_output=True, text=True, timeout=60).stdout.strip().splitlines()[-1]
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with forge_app_server(env, tmp_path / "server.log") as url, httpx.Client(base_url=url, timeout=10) as http:
        up = {"Authorization": f"Bearer {token}"}
        assert http.post("/api/v1/scans", headers=up, json=scan_body([], commit=SHA_MAIN, branch="main")
                         ).status_code == 201
        state = parse_qs(urlsplit(http.post("/api/v1/slack/install", headers=admin).json()["url"]).query)["state"]
        assert http.get("/slack/oauth/callback", params={"code": fake.new_code(), "state": state[0]}).status_code == 200

        assert command(http, fake, "/forgeapp_subscribe", "C100", "octo/demo").status_code == 200
        modal = wait(lambda: fake.views and fake.views[-1])
        assert interaction(http, submission(fake, modal, ["octo/demo"], ["block", "comment"])).status_code == 200
        wait(lambda: http.get("/api/v1/slack/subscriptions", headers=admin).json())

        findings = [make_finding("bb1", rule="rules.one", path="src/a.py", line=4)]
        body = scan_body(findings, commit=SHA_PR, branch="feature", pull_request=2, base_branch="main")
        assert http.post("/api/v1/scans", headers=up, json=body).status_code == 201
        message = wait(lambda: next((m for m in fake.messages if "blocks" in m), None))
        assert message["channel"] == "C100" and "rules.one" in json.dumps(message["blocks"])

        assert event(http, "app_home_opened.home-tab.json", team_id=fake.team["id"]).status_code == 200
        wait(lambda: fake.published.get("W222"))
        sub_id = http.get("/api/v1/slack/subscriptions", headers=admin).json()[0]["id"]
        sent = len(fake.messages)
        interaction(http, menu_action(fake, f"test:{sub_id}"))
        wait(lambda: len(fake.messages) > sent)

        [installation] = http.get("/api/v1/slack/installations", headers=admin).json()
        assert http.delete(f"/api/v1/slack/installations/{installation['id']}", headers=admin).status_code == 200
        assert fake.uninstalled and http.get("/api/v1/slack/installations", headers=admin).json() == []
        assert fake.count("chat.postMessage") == len(fake.messages)  # one post per message, no retries
