"""Driving the Slack app as Slack would: signed requests built from the vendored payloads."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.slack.conftest import signed
from tests.slack.fake_slack import FakeSlack

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slack"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def install(client: Any, fake: FakeSlack, admin_headers: dict[str, str]) -> dict[str, Any]:
    r = client.post("/api/v1/slack/install", headers=admin_headers)
    assert r.status_code == 200, r.text
    query = parse_qs(urlsplit(r.json()["url"]).query)
    page = client.get("/slack/oauth/callback", params={"code": fake.new_code(), "state": query["state"][0]})
    assert page.status_code == 200, page.text
    [installation] = [i for i in client.get("/api/v1/slack/installations", headers=admin_headers).json()
                      if i["team_id"] == fake.team["id"]]
    return installation


def command(client: Any, fake: FakeSlack, command: str, channel_id: str, text: str = "", *,
            team_id: str | None = None) -> Any:
    """A slash command shaped like interactivity/slash_command.json."""
    form = fixture("interactivity/slash_command.json")
    channel = fake.channels.get(channel_id)
    form.update({"team_id": team_id or fake.team["id"], "channel_id": channel_id,
                 "channel_name": channel.name if channel else "unknown", "command": command, "text": text,
                 "user_id": "U111", "trigger_id": fake.new_trigger(), "response_url": fake.response_url()})
    body = urlencode(form).encode()
    return client.post("/slack/commands", content=body,
                       headers=signed(body, content_type="application/x-www-form-urlencoded"))


def interaction(client: Any, payload: dict[str, Any]) -> Any:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return client.post("/slack/interactions", content=body,
                       headers=signed(body, content_type="application/x-www-form-urlencoded"))


def submission(fake: FakeSlack, view: dict[str, Any], repositories: list[str], policies: list[str]) -> dict[str, Any]:
    """A view_submission for the modal the app opened, shaped like interactivity/view_submission.json,
    with multi-select state as in view_state.multi-select.json."""
    payload = fixture("interactivity/view_submission.json")
    payload["team"] = {"id": fake.team["id"], "domain": "acme"}
    payload["user"] = {"id": "U111", "username": "alice", "name": "alice", "team_id": fake.team["id"]}
    state = {"policies": {"policies": {"type": "checkboxes", "selected_options": [
        {"text": {"type": "plain_text", "text": p}, "value": p} for p in policies]}}}
    if repositories:
        state["repositories"] = {"repositories": {"type": "multi_static_select", "selected_options": [
            {"text": {"type": "plain_text", "text": r}, "value": r} for r in repositories]}}
    payload["view"] = {**payload["view"], "callback_id": view["callback_id"],
                       "private_metadata": view["private_metadata"], "state": {"values": state}}
    return payload


def menu_action(fake: FakeSlack, value: str) -> dict[str, Any]:
    """An overflow-menu block_actions from the App Home (block_actions.app_home.button.json, with
    the overflow's `selected_option` as bolt-js's OverflowAction type declares it)."""
    payload = fixture("interactivity/block_actions.app_home.button.json")
    payload["team"] = {"id": fake.team["id"], "domain": "acme"}
    payload["user"] = {"id": "U111", "username": "alice", "name": "alice", "team_id": fake.team["id"]}
    payload["trigger_id"] = fake.new_trigger()
    payload["actions"] = [{"type": "overflow", "action_id": "subscription_menu", "block_id": "sub",
                           "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
                           "action_ts": "1600000000.000000"}]
    return payload


def event(client: Any, name: str, *, team_id: str, event_id: str | None = None, retry: int | None = None,
          inner: dict[str, Any] | None = None) -> Any:
    envelope = fixture(f"events/{name}")
    envelope["team_id"] = team_id
    envelope["event_id"] = event_id or f"Ev{secrets.token_hex(5)}"
    if inner:
        envelope["event"].update(inner)
    body = json.dumps(envelope).encode()
    headers = signed(body)
    if retry is not None:
        headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
    return client.post("/slack/events", content=body, headers=headers)
