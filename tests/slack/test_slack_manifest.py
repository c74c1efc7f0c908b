"""`forge-app slack manifest`: the JSON Slack's "From an app manifest" accepts, six scopes."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "forge_app.cli.main", "slack", "manifest", *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60)


def test_manifest_lists_commands_events_urls_and_exactly_six_scopes(tmp_path):
    done = _run("--url", "https://forge.example.com/", env={"FORGE_APP_DATABASE": str(tmp_path / "db.sqlite")})
    assert done.returncode == 0, done.stderr
    m = json.loads(done.stdout)
    assert m["oauth_config"]["scopes"]["bot"] == ["commands", "chat:write", "chat:write.public", "channels:read",
                                                  "groups:read", "team:read"]
    assert m["oauth_config"]["redirect_urls"] == ["https://forge.example.com/slack/oauth/callback"]
    commands = {c["command"]: c for c in m["features"]["slash_commands"]}
    assert set(commands) == {"/forgeapp_subscribe", "/forgeapp_unsubscribe"}
    assert all(c["url"] == "https://forge.example.com/slack/commands" and c["description"] for c in commands.values())
    assert m["settings"]["interactivity"] == {"is_enabled": True,
                                              "request_url": "https://forge.example.com/slack/interactions"}
    events = m["settings"]["event_subscriptions"]
    assert events["request_url"] == "https://forge.example.com/slack/events"
    assert set(events["bot_events"]) == {
        "app_home_opened", "app_uninstalled", "tokens_revoked", "channel_rename", "channel_id_changed",
        "channel_deleted", "channel_archive", "channel_unarchive", "group_rename", "group_deleted", "group_archive",
        "team_rename"}
    assert m["features"]["app_home"]["home_tab_enabled"] is True
    assert m["features"]["bot_user"]["display_name"] and m["display_information"]["name"]


def test_manifest_refuses_a_url_that_is_not_http(tmp_path):
    done = _run("--url", "forge.example.com", env={"FORGE_APP_DATABASE": str(tmp_path / "db.sqlite")})
    assert done.returncode == 2 and "https://" in done.stderr and done.stdout == ""


def test_openapi_describes_the_slack_admin_routes(client):
    from openapi_spec_validator import validate

    spec = client.get("/openapi.json").json()
    validate(spec)
    for path in ("/api/v1/slack/install", "/api/v1/slack/installations",
                 "/api/v1/slack/installations/{installation_id}", "/api/v1/slack/subscriptions"):
        assert path in spec["paths"], path
