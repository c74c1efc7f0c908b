"""Comment bodies, the same on every forge except for how a fix is shown.

Every finding comment carries a hidden marker with the finding's fingerprint, so
the app (and a curious maintainer) can always tell which finding a thread is about,
and a retried job can recognise a comment it already posted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Literal, Mapping, Sequence

from forge_app.core.models import Finding

Flavour = Literal["github", "gitlab", "bitbucket"]
MAX_BODY = 65_000  # GitHub's limit is 65,536 characters; keep a margin for every forge
_FP = r"([0-9a-zA-Z:_./#\-]+)"
MARKER_RE = re.compile(r"<!-- forge-app:finding=" + _FP + r" -->")
# Bitbucket Cloud escapes raw HTML, so an HTML comment would show as text there; an unused
# Markdown link reference definition renders to nothing and stays in the raw body.
REFERENCE_MARKER_RE = re.compile(r"^\[forge-app:finding=" + _FP + r"\]: #$", re.MULTILINE)
SUMMARY_MARKER = "<!-- forge-app:summary -->"
SUMMARY_REFERENCE = "[forge-app:summary]: #"
MODE_LABEL = {"block": "🔴 Blocking", "comment": "🟡 Comment", "monitor": "⚪ Monitor"}
SEVERITY_LABEL = {"error": "Error", "warning": "Warning", "info": "Info"}


@dataclass(frozen=True, slots=True)
class Counts:
    new: int
    fixed: int
    unchanged: int
    blocking: int = 0
    by_tool: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # tool -> {new, fixed, unchanged}


def _per_tool(counts: Counts) -> list[str]:
    """A per-tool table when several scanners share the scan (each has its own baseline)."""
    if len(counts.by_tool) < 2:
        return []
    return ["", "| Tool | New | Fixed | Unchanged |", "|---|---|---|---|",
            *(f"| {tool.replace('|', '/').replace('<', '&lt;')} | {c.get('new', 0)} | {c.get('fixed', 0)} "
              f"| {c.get('unchanged', 0)} |" for tool, c in sorted(counts.by_tool.items()))]


def marker(fingerprint: str, flavour: Flavour = "github") -> str:
    """The hidden tag naming the finding a comment is about, invisible on every forge."""
    if flavour == "bitbucket":
        return f"[forge-app:finding={fingerprint}]: #"
    return f"<!-- forge-app:finding={fingerprint} -->"


def marker_key(fingerprint: str, identity_id: int) -> str:
    """What a comment's marker names: the fingerprint, for people and other tools, and the
    identity, because two identical findings in one file can share a fingerprint value."""
    return f"{fingerprint}#{identity_id}"


def summary_marker(flavour: Flavour) -> str:
    return SUMMARY_REFERENCE if flavour == "bitbucket" else SUMMARY_MARKER


def markers_in(body: str) -> set[str]:
    """Fingerprints marked in a comment body, in either form."""
    text = body or ""
    return set(MARKER_RE.findall(text)) | set(REFERENCE_MARKER_RE.findall(text))


def is_summary(body: str) -> bool:
    return SUMMARY_MARKER in (body or "") or SUMMARY_REFERENCE in (body or "")


def fence(lines: Iterable[str], lang: str = "") -> str:
    """A fenced block whose fence is longer than any backtick run inside it."""
    text = "\n".join(lines)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def rule_link(finding: Finding) -> str | None:
    if finding.rule.help_uri:
        return finding.rule.help_uri
    for ref in finding.rule.references:
        if ref.startswith(("https://", "http://")):
            return ref
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _header(finding: Finding, mode: str) -> str:
    return (f"**forge-app** · {MODE_LABEL.get(mode, mode)} · `{finding.rule_id}` · "
            f"{SEVERITY_LABEL.get(finding.severity, finding.severity)}")


def _taxonomy(finding: Finding) -> str | None:
    parts = []
    if finding.rule.cwe:
        parts.append("**CWE:** " + ", ".join(finding.rule.cwe))
    if finding.rule.owasp:
        parts.append("**OWASP:** " + ", ".join(finding.rule.owasp))
    return " · ".join(parts) or None


def fix_block(finding: Finding, flavour: Flavour, as_suggestion: bool) -> str | None:
    """How this forge shows the fix: a one-click suggestion where it can apply, else a plain block."""
    fix = finding.fix
    if fix is None:
        return None
    if as_suggestion and flavour == "github":
        return "Suggested fix:\n\n" + fence(fix.lines, "suggestion")
    if as_suggestion and flavour == "gitlab":
        extra = fix.end_line - fix.start_line
        return "Suggested fix:\n\n" + fence(fix.lines, f"suggestion:-0+{extra}")
    if flavour == "bitbucket":
        old = _old_lines(finding)
        diff_lines = [f"-{line}" for line in old] + [f"+{line}" for line in fix.lines]
        return f"Suggested fix (lines {fix.start_line}–{fix.end_line}):\n\n" + fence(diff_lines, "diff")
    return f"Suggested fix for lines {fix.start_line}–{fix.end_line}:\n\n" + fence(fix.lines)


def _old_lines(finding: Finding) -> list[str]:
    fix = finding.fix
    if fix is None or finding.snippet is None:
        return []
    lines = finding.snippet.splitlines()
    if fix.start_line >= finding.start_line and fix.end_line <= finding.start_line + len(lines) - 1:
        offset = fix.start_line - finding.start_line
        return lines[offset : offset + fix.end_line - fix.start_line + 1]
    return []


def finding_comment(finding: Finding, mode: str, flavour: Flavour, *, as_suggestion: bool,
                    scan_url: str | None = None, key: str | None = None) -> str:
    message = finding.message.strip() or "(no message)"
    head = [_header(finding, mode), ""]
    tail = []
    taxonomy = _taxonomy(finding)
    if taxonomy:
        tail += ["", taxonomy]
    link = rule_link(finding)
    if link:
        tail += ["", f"[Rule documentation]({link})"]
    block = fix_block(finding, flavour, as_suggestion)
    end = ["", marker(key or finding.key, flavour)]
    budget = MAX_BODY - len("\n".join(head + tail + end)) - 100
    if block and len(block) > budget - min(len(message), 2000):
        # A cut suggestion would apply truncated code in one click: drop it instead.
        block = "The suggested fix is too large to show here."
    if block:
        tail += ["", block]
    budget = MAX_BODY - len("\n".join(head + tail + end)) - 50
    if len(message) > budget:
        message = message[: max(0, budget)] + "…(truncated)"
    return "\n".join(head + [message] + tail + end)


def summary_comment(outside: Sequence[tuple[Finding, str]], counts: Counts, scan_url: str | None,
                    flavour: Flavour) -> str:
    """The one PR/MR note listing new findings outside the changed lines; edited in place."""
    lines = [summary_marker(flavour), "", "### forge-app scan summary", "",
             f"**{counts.new}** new · **{counts.fixed}** fixed · **{counts.unchanged}** unchanged"
             + (f" · **{counts.blocking}** blocking" if counts.blocking else ""), *_per_tool(counts)]
    if outside:
        lines += ["", f"{len(outside)} new finding(s) are outside the lines this change touches, so they "
                      "could not be commented inline:", "",
                  "| | Rule | Location | Message |", "|---|---|---|---|"]
        for finding, mode in outside[:200]:
            msg = _one_line(finding.message).replace("|", "\\|")[:160]
            lines.append(f"| {MODE_LABEL.get(mode, mode)} | `{finding.rule_id}` | `{finding.path}:{finding.start_line}` | {msg} |")
        if len(outside) > 200:
            lines.append(f"\n…and {len(outside) - 200} more.")
    else:
        lines += ["", "No new findings outside the changed lines."]
    if scan_url:
        lines += ["", f"[Scan details]({scan_url})"]
    body = "\n".join(lines)
    return body[:MAX_BODY]


def check_title(counts: Counts) -> str:
    if counts.blocking:
        return f"{counts.blocking} blocking finding(s) introduced"
    if counts.new:
        return f"{counts.new} new finding(s), none blocking"
    return "No new findings"


def check_summary(counts: Counts, outside: Sequence[tuple[Finding, str]], scan_url: str | None) -> str:
    lines = ["| New | Fixed | Unchanged | Blocking |", "|---|---|---|---|",
             f"| {counts.new} | {counts.fixed} | {counts.unchanged} | {counts.blocking} |", *_per_tool(counts)]
    if outside:
        lines += ["", "New findings outside the diff:", ""]
        for finding, mode in outside[:50]:
            lines.append(f"- {MODE_LABEL.get(mode, mode)} `{finding.rule_id}` at `{finding.path}:{finding.start_line}`")
        if len(outside) > 50:
            lines.append(f"- …and {len(outside) - 50} more")
    if scan_url:
        lines += ["", f"[Scan details]({scan_url})"]
    return "\n".join(lines)[:MAX_BODY]


def resolved_reply(commit: str) -> str:
    return f"✅ Fixed in {commit[:12]}. forge-app no longer finds this; resolving the thread."


def reopened_reply(commit: str) -> str:
    return f"⚠️ Reintroduced in {commit[:12]}. forge-app finds this again; reopening the thread."
