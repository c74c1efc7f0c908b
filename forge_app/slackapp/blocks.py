"""Block Kit for the Slack app (pure): the findings message, the Subscribe modal, the App Home.

Built with slack_sdk's Block Kit models, whose `to_dict()` checks Slack's length
limits before anything is sent. Everything that comes from a report (rule ids, paths,
messages) is escaped for mrkdwn so it can never mention anyone or link anywhere;
rule ids and paths go in code spans.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from slack_sdk.models.blocks import (
    CheckboxesElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    OverflowMenuElement,
    PlainTextObject,
    SectionBlock,
    StaticMultiSelectElement,
)
from slack_sdk.models.views import View

from forge_app.core.models import MODES
from forge_app.forges.base import WebLinks

LISTED = 20
SECTION_MAX = 3000
FINDING_TEXT_MAX = 550  # 20 of these stay well below the ~13,000 characters of blocks Slack accepts
MESSAGE_MAX = 300
OPTIONS_MAX = 100  # Slack's limit for a select's options
HOME_LISTED = 90  # App Home: at most 100 blocks
SUBSCRIBE_CALLBACK = "forgeapp_subscribe"
MENU_ACTION = "subscription_menu"


def escape(text: str) -> str:
    """mrkdwn control characters only (api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def code(text: str, limit: int = 300) -> str:
    """An escaped code span; a backtick inside would end the span early, so it becomes ˋ."""
    return "`" + escape(cut(text, limit).replace("`", "ˋ").replace("\n", " ")) + "`"


def one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class MessageFinding:
    rule_id: str
    severity: str
    path: str
    line: int
    message: str
    mode: str
    url: str | None  # the file at that line on the forge, when known


def file_url(links: WebLinks | None, web_root: str | None, repository: str, commit: str, path: str,
             line: int) -> str | None:
    """Quoted, so a path cannot close the link or inject another one. None where the forge's web root
    is not known from the settings alone."""
    if links is None or web_root is None:
        return None
    repo, p = quote(repository, safe="/"), quote(path, safe="/")
    return links.line(f"{web_root}/{repo}", quote(commit, safe=""), p, line)


def _finding_text(f: MessageFinding) -> str:
    where = code(f"{f.path}:{f.line}")
    if f.url:
        where += f" <{f.url}|view>"
    text = (f"{code(f.rule_id, 200)} · {escape(f.severity)} · {escape(f.mode)}\n{where}\n"
            f"{escape(cut(one_line(f.message), MESSAGE_MAX))}")
    return cut(text, FINDING_TEXT_MAX)


def findings_message(*, repository: str, place: str, scan_url: str, findings: Sequence[MessageFinding],
                     test: bool = False) -> dict[str, Any]:
    """`chat.postMessage` arguments (text + blocks) for one channel and one scan."""
    n = len(findings)
    noun = "new finding" if n == 1 else "new findings"
    headline = "forge-app test notification" if test else f"{n} {noun} in {repository}"
    blocks: list[Any] = [HeaderBlock(text=PlainTextObject(text=cut(headline, 150), emoji=False))]
    if test:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text="This is a test message: this channel's subscription works. The finding below is a sample.")))
    blocks.append(SectionBlock(text=MarkdownTextObject(
        text=cut(f"*Repository* {code(repository)} · {escape(place)} · <{scan_url}|scan>", SECTION_MAX))))
    blocks.append(DividerBlock())
    for f in findings[:LISTED]:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_finding_text(f))))
    if n > LISTED:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"and {n - LISTED} more: <{scan_url}|see the scan>")]))
    text = escape(f"forge-app: {headline} ({place})")
    return {"text": text, "blocks": [b.to_dict() for b in blocks]}


def _options(values: Sequence[str]) -> list[Option]:
    return [Option(value=v, text=PlainTextObject(text=cut(v, 75), emoji=False)) for v in values]


def subscribe_modal(*, channel_id: str, channel_name: str | None, repositories: Sequence[str],
                    selected_repositories: Sequence[str], selected_policies: Sequence[str]) -> dict[str, Any]:
    """The Subscribe modal: Repositories (empty = all) and Policies (default all three)."""
    choices = list(dict.fromkeys([*selected_repositories, *repositories]))[:OPTIONS_MAX]
    where = f"#{channel_name}" if channel_name else "this channel"
    blocks: list[Any] = [SectionBlock(text=MarkdownTextObject(
        text=f"New findings go to {escape(where)} when *all* the conditions below match "
             "(a repository listed or none listed, and a policy listed)."))]
    if choices:
        initial = _options([r for r in selected_repositories if r in choices])
        blocks.append(InputBlock(
            block_id="repositories", label="Repositories", optional=True,
            hint="Leave empty for every repository.",
            element=StaticMultiSelectElement(action_id="repositories", placeholder="All repositories",
                                             options=_options(choices), initial_options=initial or None)))
    policies = [p for p in selected_policies if p in MODES] or list(MODES)
    blocks.append(InputBlock(
        block_id="policies", label="Policies", optional=True,
        element=CheckboxesElement(action_id="policies", options=_options(MODES),
                                  initial_options=_options(policies))))
    view = View(type="modal", callback_id=SUBSCRIBE_CALLBACK, title="Subscribe", submit="Subscribe",
                close="Cancel", blocks=blocks,
                private_metadata=json.dumps({"channel_id": channel_id, "channel_name": channel_name}))
    return view.to_dict()


def modal_values(view: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(repositories, policies) from a submitted modal's state; tolerant of missing blocks."""
    values = ((view.get("state") or {}).get("values")) or {}

    def selected(block: str, action: str) -> list[str]:
        state = (values.get(block) or {}).get(action) or {}
        options = state.get("selected_options") or []
        return [o["value"] for o in options if isinstance(o, dict) and isinstance(o.get("value"), str)]

    return selected("repositories", "repositories"), [p for p in selected("policies", "policies") if p in MODES]


@dataclass(frozen=True, slots=True)
class HomeRow:
    id: int
    channel_id: str
    channel_name: str | None
    repositories: list[str]
    policies: list[str]
    enabled: bool
    disabled_reason: str | None


def home_view(*, team_name: str | None, status: str, reinstall_url: str, rows: Sequence[HomeRow]) -> dict[str, Any]:
    """The App Home tab: the workspace's subscriptions, each with an overflow menu."""
    blocks: list[Any] = [HeaderBlock(text=PlainTextObject(text=cut(f"forge-app in {team_name or 'this workspace'}",
                                                                    150), emoji=False))]
    if status == "needs_reinstall":
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=f":warning: forge-app's permissions not up to date: <{reinstall_url}|reinstall the app> "
                 "so it can post again.")))
    if not rows:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text="No channel is subscribed yet. Type `/forgeapp_subscribe owner/repo` in a channel.")))
    for row in rows[:HOME_LISTED]:
        repos = ", ".join(code(r, 100) for r in row.repositories) or "all repositories"
        policies = ", ".join(row.policies) or "all policies"
        state = "active" if row.enabled else f"disabled ({escape(row.disabled_reason or 'unknown reason')})"
        text = cut(f"*{channel_label(row.channel_id, row.channel_name)}*\n{repos}\n{policies} · {state}", SECTION_MAX)
        menu = OverflowMenuElement(action_id=MENU_ACTION, options=[
            Option(value=f"manage:{row.id}", text="Manage filters"),
            Option(value=f"test:{row.id}", text="Send test notification"),
            Option(value=f"unsubscribe:{row.id}", text="Unsubscribe"),
        ])
        blocks.append(SectionBlock(block_id=f"sub:{row.id}", text=MarkdownTextObject(text=text), accessory=menu))
    if len(rows) > HOME_LISTED:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"and {len(rows) - HOME_LISTED} more (GET /api/v1/slack/subscriptions lists all)")]))
    return View(type="home", blocks=blocks).to_dict()


def channel_label(channel_id: str, channel_name: str | None) -> str:
    """mrkdwn: the escaped name, else a channel link (ids are letters and digits only)."""
    if channel_name:
        return escape(f"#{channel_name}")
    return f"<#{channel_id}>" if channel_id.isalnum() else escape(channel_id)
