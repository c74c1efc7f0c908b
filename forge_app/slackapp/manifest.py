"""The Slack app manifest (pure): paste it at api.slack.com/apps → Create an app → From an app manifest.

Six bot scopes, the least that work: `commands` (slash commands), `chat:write` and
`chat:write.public` (post to subscribed channels without joining public ones),
`channels:read`/`groups:read` (is the bot in a private channel? follow renames) and
`team:read` (the workspace's name).
"""

from __future__ import annotations

from typing import Any

from forge_app.slackapp import BOT_EVENTS, BOT_SCOPES, COMMAND_SUBSCRIBE, COMMAND_UNSUBSCRIBE


def app_manifest(url: str, name: str = "forge-app") -> dict[str, Any]:
    base = url.rstrip("/")
    return {
        "display_information": {
            "name": name,
            "description": "New code-scanning findings of your repositories, in the channels that subscribe.",
            "background_color": "#1f2937",
        },
        "features": {
            "app_home": {"home_tab_enabled": True, "messages_tab_enabled": True,
                         "messages_tab_read_only_enabled": True},
            "bot_user": {"display_name": name, "always_online": False},
            "slash_commands": [
                {"command": COMMAND_SUBSCRIBE, "url": f"{base}/slack/commands",
                 "description": "Subscribe this channel to new findings", "usage_hint": "[owner/repo]",
                 "should_escape": False},
                {"command": COMMAND_UNSUBSCRIBE, "url": f"{base}/slack/commands",
                 "description": "Stop new findings in this channel", "should_escape": False},
            ],
        },
        "oauth_config": {
            "redirect_urls": [f"{base}/slack/oauth/callback"],
            "scopes": {"bot": list(BOT_SCOPES)},
        },
        "settings": {
            "event_subscriptions": {"request_url": f"{base}/slack/events", "bot_events": list(BOT_EVENTS)},
            "interactivity": {"is_enabled": True, "request_url": f"{base}/slack/interactions"},
            "org_deploy_enabled": False,
            "socket_mode_enabled": False,
            "token_rotation_enabled": False,
        },
    }
