"""The Slack message for a scan: one Block Kit message per scan with new findings.

Pure. Finding text comes from scanned code and rule authors, so everything goes
through `forge_app.core.escape.mrkdwn` (no links, mentions or code-span breakout)
and is cut to Slack's block limits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from forge_app.core.escape import mrkdwn
from forge_app.core.models import SEVERITIES
from forge_app.notify.payloads import NotifiedFinding
from storage import ScanRecord

LISTED = 10
HEADER_MAX = 150  # Slack's limit for a header's plain_text
SECTION_MAX = 3000
MESSAGE_MAX = 300


def escape(text: str) -> str:
    """Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return mrkdwn.text(text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def where(scan: ScanRecord, pr_url: str | None) -> str:
    """mrkdwn: the PR (linked when we know its URL) or the branch."""
    if scan.pull_request is not None:
        label = f"#{scan.pull_request}"
        title = scan.meta.get("pull_request_title")
        if isinstance(title, str) and title:
            label += f" {_cut(title, 100)}"
        return (mrkdwn.link(label, pr_url) if pr_url else None) or escape(label)
    return mrkdwn.code(scan.branch or "unknown branch")


def severity_counts(items: Sequence[NotifiedFinding]) -> str:
    counts = Counter(i.finding.severity for i in items)
    return " · ".join(f"{counts.get(s, 0)} {s}" for s in SEVERITIES)


def _finding_block(item: NotifiedFinding) -> dict[str, Any]:
    f = item.finding
    text = (f"*{escape(_cut(f.rule_id, 200))}* ({escape(f.severity)}, {escape(item.mode)})\n"
            f"{mrkdwn.code(f'{_cut(f.path, 300)}:{f.start_line}')}\n"
            f"{escape(_cut(' '.join(f.message.split()), MESSAGE_MAX))}")
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_MAX)}}


def slack_message(scan: ScanRecord, items: Sequence[NotifiedFinding], pr_url: str | None = None,
                  *, test: bool = False) -> dict[str, Any]:
    """The incoming-webhook body: fallback `text` plus blocks."""
    count = _plural(len(items), "new finding")
    headline = "forge-app test notification" if test else f"{count} in {scan.repository}"
    place = "Pull request" if scan.pull_request is not None else "Branch"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(headline, HEADER_MAX), "emoji": False}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*Repository*\n{escape(scan.repository)}"},
            {"type": "mrkdwn", "text": f"*{place}*\n{where(scan, pr_url)}"},
        ]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"*By severity:* {severity_counts(items)}"}]},
        {"type": "divider"},
    ]
    if test:
        blocks.insert(1, {"type": "section", "text": {"type": "mrkdwn", "text":
                          "This is a test message: the integration works. The finding below is a sample."}})
    blocks.extend(_finding_block(item) for item in items[:LISTED])
    if len(items) > LISTED:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"and {len(items) - LISTED} more"}]})
    ci_link = mrkdwn.link("CI job", scan.meta.get("ci_job_url"))
    if ci_link:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"{ci_link} · commit `{scan.commit[:12]}`"}]})
    else:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"commit `{scan.commit[:12]}`"}]})
    fallback = headline if test else f"forge-app: {count} in {scan.repository} ({place.lower()} " \
        f"{'#' + str(scan.pull_request) if scan.pull_request is not None else scan.branch or ''})"
    return {"text": escape(fallback), "blocks": blocks}
