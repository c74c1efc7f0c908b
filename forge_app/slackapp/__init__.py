"""The Slack app: installed to a workspace with OAuth, channels subscribe with filters, App Home.

Beside (not instead of) the incoming-webhook `slack` integration in forge_app.notify.
Pure parts: manifest, blocks, mrkdwn. I/O at the edges: routes (HTTP from Slack),
jobs (durable work), api (Web API calls through slack_sdk).
"""

from __future__ import annotations

from forge_app.config import Settings

COMMAND_SUBSCRIBE = "/forgeapp_subscribe"
COMMAND_UNSUBSCRIBE = "/forgeapp_unsubscribe"
BOT_SCOPES = ("commands", "chat:write", "chat:write.public", "channels:read", "groups:read", "team:read")
BOT_EVENTS = ("app_home_opened", "app_uninstalled", "tokens_revoked", "channel_rename", "channel_id_changed",
              "channel_deleted", "channel_archive", "channel_unarchive", "group_rename", "group_deleted",
              "group_archive", "team_rename")


def configured(settings: Settings) -> bool:
    """The app is on only with all three of Slack's credentials."""
    return bool(settings.slack_client_id and settings.slack_client_secret and settings.slack_signing_secret)
