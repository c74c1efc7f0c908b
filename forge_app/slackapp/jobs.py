"""Durable work of the Slack app: what requests from Slack and finished scans set off.

Every handler is idempotent (the job system may run one twice after a crash): saving a
subscription replaces it, lifecycle events set states, and a scan's posts come from
ledger rows claimed once per (subscription, finding identity).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_sdk.webhook import WebhookClient

from forge_app.forges.registry import FORGES
from forge_app.jobs.errors import RetryLater
from forge_app.jobs.worker import Handler, JobContext
from forge_app.notify.rules import repository_matches
from forge_app.slackapp import COMMAND_SUBSCRIBE
from forge_app.slackapp.api import InstallationUnusable, SlackError, SlackInstallClient, raw_call
from forge_app.slackapp.blocks import (
    MENU_ACTION,
    HomeRow,
    MessageFinding,
    code,
    escape,
    file_url,
    findings_message,
    home_view,
    modal_values,
    subscribe_modal,
)
from forge_app.web import metrics
from storage import Job
from storage.slack import POST_JOB, SlackInstallation, SlackPlan, SlackSubscription

log = logging.getLogger(__name__)

EVENT_JOB = "slack_event"
COMMAND_JOB = "slack_command"
INTERACTION_JOB = "slack_interaction"
SCAN_JOB = "slack_scan"
CHANNEL_GONE = {"not_in_channel": "the bot is not in this private channel (invite it, then subscribe again)",
                "channel_not_found": "channel not found (deleted, or private without the bot)",
                "is_archived": "channel archived"}


def _client(context: JobContext, installation: SlackInstallation) -> SlackInstallClient:
    return SlackInstallClient(context.settings, context.storage, installation)


def _installation(context: JobContext, job: Job) -> SlackInstallation | None:
    installation = context.storage.slack_installation(int(job.payload["installation_id"]))
    if installation is None or installation.status == "revoked":
        return None
    return installation


def response_url_allowed(url: Any, settings: Any) -> bool:
    """Slack's own https://hooks.slack.com URLs; any http(s) URL only when FORGE_APP_SLACK_API_URL points
    elsewhere (a test or proxy Slack), so a forged payload cannot make the worker call arbitrary hosts."""
    if not isinstance(url, str):
        return False
    from urllib.parse import urlsplit

    from forge_app.config import DEFAULT_SLACK_API_URL

    parts = urlsplit(url)
    if settings.slack_api_url != DEFAULT_SLACK_API_URL:
        return parts.scheme in ("https", "http") and bool(parts.netloc)
    return parts.scheme == "https" and (parts.hostname or "").endswith(".slack.com")


async def _respond(context: JobContext, url: Any, text: str) -> None:
    """An ephemeral answer through the command's response_url (works in channels the bot is not in)."""
    if not response_url_allowed(url, context.settings):
        return
    client = WebhookClient(url, timeout=10)
    try:
        await raw_call(lambda: client.send(text=text, response_type="ephemeral"))
    except Exception as exc:  # the user is told nothing more; the work itself is done or refused
        log.warning("slack response_url answer failed: %s", type(exc).__name__)


def _reinstall_text(context: JobContext, exc: InstallationUnusable) -> str:
    if exc.status == "needs_reinstall":
        return ("forge-app's permissions not up to date: an admin must reinstall it "
                f"({context.settings.public_url}/slack/install).")
    return ("forge-app's token for this workspace was revoked: reinstall it "
            f"({context.settings.public_url}/slack/install).")


# --- the command -------------------------------------------------------------------------

async def _channel_info(client: SlackInstallClient, channel_id: str) -> dict[str, Any] | None:
    """conversations.info; None when Slack says channel_not_found (private, bot not in it, or deleted)."""
    try:
        data = await client.call("conversations_info", channel=channel_id)
    except SlackError as exc:
        if exc.code == "channel_not_found":
            return None
        raise
    channel = data.get("channel")
    return channel if isinstance(channel, dict) else {}


async def handle_command(context: JobContext, job: Job) -> None:
    """/forgeapp_subscribe: the private-channel check, then the modal (views.open)."""
    installation = _installation(context, job)
    if installation is None:
        return
    p = job.payload
    client = _client(context, installation)
    try:
        channel = await _channel_info(client, p["channel_id"])
        if channel is None:
            await _respond(context, p.get("response_url"),
                           "forge-app cannot see this private channel, so it could never post here. "
                           "Invite it first (type `/invite @forge-app` here), then run "
                           f"`{COMMAND_SUBSCRIBE}` again.")
            return
        if channel.get("is_im") or channel.get("is_mpim"):
            await _respond(context, p.get("response_url"), "Subscriptions are per channel: run this in a channel.")
            return
        existing = context.storage.slack_subscription_for_channel(installation.id, p["channel_id"])
        selected = [p["repository"]] if p.get("repository") else (existing.repositories if existing else [])
        view = subscribe_modal(
            channel_id=p["channel_id"], channel_name=channel.get("name") or p.get("channel_name"),
            repositories=context.storage.known_repository_names(), selected_repositories=selected,
            selected_policies=existing.policies if existing else [])
        await client.call("views_open", trigger_id=str(p.get("trigger_id") or ""), view=view)
    except InstallationUnusable as exc:
        await _respond(context, p.get("response_url"), _reinstall_text(context, exc))
    except SlackError as exc:
        if exc.code in ("expired_trigger_id", "invalid_trigger_id"):
            await _respond(context, p.get("response_url"), f"That took too long; run `{COMMAND_SUBSCRIBE}` again.")
            return
        raise


# --- interactions ---------------------------------------------------------------------------

async def _publish_home(context: JobContext, installation: SlackInstallation, user_id: str) -> None:
    rows = [HomeRow(s.id, s.channel_id, s.channel_name, s.repositories, s.policies, s.enabled, s.disabled_reason)
            for s in context.storage.slack_subscriptions(installation.id)]
    fresh = context.storage.slack_installation(installation.id) or installation
    view = home_view(team_name=fresh.team_name, status=fresh.status,
                     reinstall_url=f"{context.settings.public_url}/slack/install", rows=rows)
    await _client(context, fresh).call("views_publish", user_id=user_id, view=view)


async def _tell_user(client: SlackInstallClient, user_id: Any, text: str) -> None:
    """A direct message from the app (its Messages tab), for when there is no channel left to answer in."""
    if not isinstance(user_id, str):
        return
    try:
        await client.call("chat_postMessage", channel=user_id, text=text)
    except SlackError as exc:
        log.info("slack: could not tell user: %s", exc.code)


async def _submit(context: JobContext, installation: SlackInstallation, payload: dict[str, Any]) -> None:
    view = payload.get("view") or {}
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        meta = {}
    channel_id = meta.get("channel_id") if isinstance(meta, dict) else None
    user_id = (payload.get("user") or {}).get("id")
    if not isinstance(channel_id, str) or not channel_id:
        log.info("slack: a Subscribe submission without its channel; ignored")
        return
    client = _client(context, installation)
    channel = await _channel_info(client, channel_id)
    if channel is None or channel.get("is_archived"):
        await _tell_user(client, user_id, "The channel you subscribed was deleted or archived meanwhile, so "
                                          "nothing was saved.")
        return
    repositories, policies = modal_values(view)
    known = set(context.storage.known_repository_names())
    repositories = [r for r in repositories if r in known]
    name = channel.get("name") if isinstance(channel.get("name"), str) else meta.get("channel_name")
    sub = context.storage.save_slack_subscription(installation.id, channel_id, name, repositories, policies,
                                                  created_by=user_id if isinstance(user_id, str) else None)
    repos = ", ".join(code(r, 100) for r in sub.repositories) or "all repositories"
    who = f"<@{user_id}> subscribed" if isinstance(user_id, str) and user_id.isalnum() else "Subscribed"
    text = (f"{who} this channel to new findings of {repos}, policies: "
            f"{escape(', '.join(sub.policies) or 'all')}.")
    try:
        await client.call("chat_postMessage", channel=channel_id, text=text)
    except SlackError as exc:
        if exc.code in CHANNEL_GONE:
            _disable(context, sub, exc.code)
            return
        raise


async def _menu(context: JobContext, installation: SlackInstallation, payload: dict[str, Any]) -> None:
    action = next((a for a in payload.get("actions") or []
                   if isinstance(a, dict) and a.get("action_id") == MENU_ACTION), {})
    value = ((action.get("selected_option") or {}).get("value")) or ""
    verb, _, raw_id = str(value).partition(":")
    sub = context.storage.slack_subscription(int(raw_id)) if raw_id.isdigit() else None
    user_id = (payload.get("user") or {}).get("id")
    if sub is None or sub.installation_id != installation.id:  # another workspace's subscription: never touched
        return
    client = _client(context, installation)
    if verb == "manage":
        view = subscribe_modal(channel_id=sub.channel_id, channel_name=sub.channel_name,
                               repositories=context.storage.known_repository_names(),
                               selected_repositories=sub.repositories, selected_policies=sub.policies)
        try:
            await client.call("views_open", trigger_id=str(payload.get("trigger_id") or ""), view=view)
        except SlackError as exc:
            if exc.code not in ("expired_trigger_id", "invalid_trigger_id"):
                raise
            log.info("slack: Manage filters came too late for its trigger_id; the user can click again")
        return
    if verb == "test":
        await _send_test(context, client, sub)
    elif verb == "unsubscribe":
        context.storage.delete_slack_subscription(sub.id)
    if isinstance(user_id, str):
        await _publish_home(context, installation, user_id)


async def _send_test(context: JobContext, client: SlackInstallClient, sub: SlackSubscription) -> None:
    sample = MessageFinding(rule_id="forge-app.test-rule", severity="warning", path="src/example.py", line=1,
                            message="This is a sample finding.", mode="comment", url=None)
    message = findings_message(repository=(sub.repositories or ["owner/repo"])[0], place="test",
                               scan_url=f"{context.settings.public_url}/", findings=[sample], test=True)
    try:
        await client.call("chat_postMessage", channel=sub.channel_id, **message)
    except SlackError as exc:
        if exc.code in CHANNEL_GONE:
            _disable(context, sub, exc.code)
            return
        raise


async def handle_interaction(context: JobContext, job: Job) -> None:
    installation = _installation(context, job)
    if installation is None:
        return
    payload = job.payload["payload"]
    try:
        if payload.get("type") == "view_submission":
            await _submit(context, installation, payload)
        elif payload.get("type") == "block_actions":
            await _menu(context, installation, payload)
    except InstallationUnusable:
        return  # the status is saved; App Home and the admin API show it


# --- events ---------------------------------------------------------------------------------

def _channel_id(event: dict[str, Any]) -> str | None:
    channel = event.get("channel")
    if isinstance(channel, dict):
        channel = channel.get("id")
    return channel if isinstance(channel, str) else None


async def handle_event(context: JobContext, job: Job) -> None:
    storage = context.storage
    installation = storage.slack_installation(int(job.payload["installation_id"]))
    if installation is None:
        return
    event: dict[str, Any] = job.payload["event"]
    kind = event.get("type")
    channel_id = _channel_id(event)
    if kind in ("app_uninstalled",) or (kind == "tokens_revoked" and (event.get("tokens") or {}).get("bot")):
        storage.delete_slack_installation(installation.id)
        log.info("slack workspace %s uninstalled the app (%s)", installation.team_id, kind)
    elif kind == "team_rename" and isinstance(event.get("name"), str):
        storage.update_slack_installation(installation.id, team_name=event["name"])
    elif kind in ("channel_rename", "group_rename") and channel_id:
        name = (event.get("channel") or {}).get("name")
        if isinstance(name, str):
            storage.update_slack_channel(installation.id, channel_id, channel_name=name)
    elif kind == "channel_id_changed":
        old, new = event.get("old_channel_id"), event.get("new_channel_id")
        if isinstance(old, str) and isinstance(new, str):
            storage.update_slack_channel(installation.id, old, channel_id=new)
    elif kind in ("channel_deleted", "group_deleted") and channel_id:
        storage.delete_slack_channel(installation.id, channel_id)
    elif kind in ("channel_archive", "group_archive") and channel_id:
        storage.update_slack_channel(installation.id, channel_id, enabled=False, disabled_reason="channel archived")
    elif kind in ("channel_unarchive", "group_unarchive") and channel_id:
        storage.update_slack_channel(installation.id, channel_id, enabled=True, disabled_reason=None)
    elif (kind == "app_home_opened" and event.get("tab") == "home" and isinstance(event.get("user"), str)
          and installation.status != "revoked"):
        try:
            await _publish_home(context, installation, event["user"])
        except InstallationUnusable:
            return


# --- after a scan ---------------------------------------------------------------------------

def queue_scan(storage: Any, scan_id: int) -> None:
    """The hook the notification fan-out calls: one `slack_scan` job per scan (idempotent)."""
    if storage.active_slack_subscriptions():
        storage.enqueue_job(SCAN_JOB, {"scan_id": scan_id}, key=f"slack_scan:{scan_id}")


def plan(scan: Any, findings: list[Any], subscriptions: list[SlackSubscription]) -> list[SlackPlan]:
    """Pure: per subscription, the new findings its filters match (repository AND policy)."""
    new = [sf for sf in findings if sf.status == "new"]
    plans = []
    for sub in subscriptions:
        if not sub.enabled or not repository_matches(sub.repositories, scan.repository):
            continue
        ids = sorted({sf.identity_id for sf in new if not sub.policies or sf.mode in sub.policies})
        if ids:
            plans.append(SlackPlan(sub.id, ids))
    return plans


async def handle_scan(context: JobContext, job: Job) -> None:
    storage = context.storage
    scan = storage.scan(int(job.payload["scan_id"]))
    if scan is None or scan.status != "done":
        if scan is not None and scan.status == "processing":
            raise RetryLater(f"scan {scan.id} is still processing", 30.0)
        return
    plans = plan(scan, storage.scan_findings(scan.id, ["new"]), storage.active_slack_subscriptions())
    queued = storage.claim_slack_notifications(scan.id, plans)
    if queued:
        log.info("scan %s of %s: %s Slack channel(s) queued", scan.id, scan.repository, len(queued))


def _place(scan: Any) -> str:
    if scan.pull_request is not None:
        return f"pull request #{scan.pull_request}"
    return f"branch {scan.branch or 'unknown'}"


async def handle_post(context: JobContext, job: Job) -> None:
    """One chat.postMessage for one subscription and one scan."""
    storage, settings = context.storage, context.settings
    sub = storage.slack_subscription(int(job.payload["subscription_id"]))
    scan = storage.scan(int(job.payload["scan_id"]))
    if sub is None or scan is None or not sub.enabled:
        return
    installation = storage.slack_installation(sub.installation_id)
    if installation is None or installation.status != "active":
        return
    claimed = storage.slack_notified_identities(sub.id, scan.id)
    forge = FORGES.get(scan.forge)
    links = forge.links if forge is not None else None
    web_root = forge.links.web_root(settings, None) if forge is not None else None
    items = []
    for sf in storage.scan_findings(scan.id, ["new"]):
        if sf.identity_id not in claimed:
            continue
        f = sf.finding
        url = file_url(links, web_root, scan.repository, scan.commit, f.path, f.start_line)
        items.append(MessageFinding(f.rule_id, f.severity, f.path, f.start_line, f.message, sf.mode, url))
    if not items:
        return
    message = findings_message(repository=scan.repository, place=_place(scan),
                               scan_url=f"{settings.public_url}/scans/{scan.id}", findings=items)
    try:
        await _client(context, installation).call("chat_postMessage", channel=sub.channel_id, **message)
    except InstallationUnusable:
        metrics.notification_delivery("slack_app", "failed")
        return
    except SlackError as exc:
        metrics.notification_delivery("slack_app", "failed")
        if exc.code in CHANNEL_GONE:
            _disable(context, sub, exc.code)
            return
        raise
    except RetryLater:
        metrics.notification_delivery("slack_app", "retrying")
        raise
    metrics.notification_delivery("slack_app", "succeeded")


def _disable(context: JobContext, sub: SlackSubscription, code_: str) -> None:
    context.storage.update_slack_channel(sub.installation_id, sub.channel_id, enabled=False,
                                         disabled_reason=CHANNEL_GONE.get(code_, code_))
    log.info("slack subscription %s disabled: %s", sub.id, code_)


def extra_handlers() -> dict[str, Handler]:
    return {EVENT_JOB: handle_event, COMMAND_JOB: handle_command, INTERACTION_JOB: handle_interaction,
            SCAN_JOB: handle_scan, POST_JOB: handle_post}
