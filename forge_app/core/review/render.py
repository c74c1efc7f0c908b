"""Comment bodies, the same on every forge except for how a fix is shown.

Every finding comment carries a hidden marker with the finding's fingerprint, so
the app (and a curious maintainer) can always tell which finding a thread is about,
and a retried job can recognise a comment it already posted. The marker is signed
(HMAC with a key derived from FORGE_APP_SECRET_KEY), so a marker copied into a message,
or posted by someone else, is never taken for one of ours.

Everything from a report is untrusted: it goes through the escaping module of the
forge's syntax (forge_app/core/escape), which the forge's `Rendering` names.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from forge_app.core.escape import gfm
from forge_app.core.escape.urls import safe_url
from forge_app.core.models import Finding
from forge_app.core.review.style import Escaper, Rendering

MAX_BODY = 65_000  # the smallest forge limit is 65,536 characters; keep a margin for every forge
_KEY_CHARS = re.compile(r"[0-9a-zA-Z_.:/#]+(?:-[0-9a-zA-Z_.:/#]+)*")  # no "--": it would end an HTML comment
_FP = r"([0-9a-zA-Z:_./#\-]+)"
_SIG = r"([0-9a-f]{32})"
SIGNED_MARKER_RE = re.compile(r"<!-- forge-app:finding=" + _FP + r" sig=" + _SIG + r" -->")
# Where raw HTML is escaped, an HTML comment would show as text; an unused Markdown link
# reference definition renders to nothing and stays in the raw body.
SIGNED_REFERENCE_RE = re.compile(r"^\[forge-app:finding=" + _FP + r" sig=" + _SIG + r"\]: #$", re.MULTILINE)
# Markers written before they were signed: only trusted where forge-app put them (see markers_in).
MARKER_RE = re.compile(r"<!-- forge-app:finding=" + _FP + r" -->")
REFERENCE_MARKER_RE = re.compile(r"^\[forge-app:finding=" + _FP + r"\]: #$", re.MULTILINE)
SUMMARY_MARKER = "<!-- forge-app:summary -->"
SUMMARY_REFERENCE = "[forge-app:summary]: #"
_SUMMARY_SIG_RE = re.compile(r"<!-- forge-app:sig=" + _SIG + r" -->|\[forge-app:sig=" + _SIG + r"\]: #")
_UNCONFIGURED = hashlib.sha256(b"forge-app marker key: no secret key configured").digest()
_marker_key = _UNCONFIGURED


def use_secret_key(secret_key: str | None) -> None:
    """Sign markers with a key derived from the server's secret key (set once at start-up by
    `ensure_secret_key`); without one, a fixed key (tests, `forge-app diff`)."""
    global _marker_key
    _marker_key = (hmac.new(secret_key.encode(), b"forge-app comment markers v1", hashlib.sha256).digest()
                   if secret_key else _UNCONFIGURED)


def _sign(kind: str, value: str) -> str:
    return hmac.new(_marker_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def _signed(kind: str, value: str, sig: str) -> bool:
    return hmac.compare_digest(_sign(kind, value), sig)


MODE_LABEL = {"block": "🔴 Blocking", "comment": "🟡 Comment", "monitor": "⚪ Monitor"}
SEVERITY_LABEL = {"error": "Error", "warning": "Warning", "info": "Info"}


@dataclass(frozen=True, slots=True)
class Counts:
    new: int
    fixed: int
    unchanged: int
    blocking: int = 0
    by_tool: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # tool -> {new, fixed, unchanged}


def _per_tool(counts: Counts, md: Escaper = gfm) -> list[str]:
    """A per-tool table when several scanners share the scan (each has its own baseline). Tool
    names come from the reports: escaped like any other report text."""
    if len(counts.by_tool) < 2:
        return []
    return ["", "| Tool | New | Fixed | Unchanged |", "|---|---|---|---|",
            *(f"| {md.text(tool[:200].replace('|', '/')) or '?'} | {c.get('new', 0)} | {c.get('fixed', 0)} "
              f"| {c.get('unchanged', 0)} |" for tool, c in sorted(counts.by_tool.items()))]


def marker(fingerprint: str, hidden_html_comments: bool = True) -> str:
    """The hidden, signed tag naming the finding a comment is about, invisible on every forge."""
    key = _safe_key(fingerprint)
    sig = _sign("finding", key)
    if not hidden_html_comments:
        return f"[forge-app:finding={key} sig={sig}]: #"
    return f"<!-- forge-app:finding={key} sig={sig} -->"


def _safe_key(key: str) -> str:
    """A key made only of characters that cannot end the marker (a location key holds a path)."""
    if _KEY_CHARS.fullmatch(key):
        return key
    return "h:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def marker_key(fingerprint: str, identity_id: int) -> str:
    """What a comment's marker names: the fingerprint, for people and other tools, and the
    identity, because two identical findings in one file can share a fingerprint value."""
    return _safe_key(f"{fingerprint}#{identity_id}")


def summary_marker(hidden_html_comments: bool) -> str:
    sig = _sign("summary", "summary")
    if not hidden_html_comments:
        return f"{SUMMARY_REFERENCE}\n[forge-app:sig={sig}]: #"
    return f"{SUMMARY_MARKER}<!-- forge-app:sig={sig} -->"


def markers_in(body: str) -> set[str]:
    """Fingerprints marked in a comment body by forge-app: signed markers anywhere; an unsigned
    one (posted before markers were signed) only on the last line of a body that starts the way
    forge-app's comments do, where no report text can be."""
    text = body or ""
    found = {key for key, sig in SIGNED_MARKER_RE.findall(text) if _signed("finding", key, sig)}
    found |= {key for key, sig in SIGNED_REFERENCE_RE.findall(text) if _signed("finding", key, sig)}
    if found or not text.startswith("**forge-app**"):
        return found
    last = text.rstrip().rsplit("\n", 1)[-1]
    legacy = MARKER_RE.fullmatch(last) or REFERENCE_MARKER_RE.fullmatch(last)
    return {legacy.group(1)} if legacy else set()


def is_summary(body: str) -> bool:
    """The scan summary note: its marker opens the body (signed; or unsigned, from before)."""
    text = (body or "").lstrip()
    if not (text.startswith(SUMMARY_MARKER) or text.startswith(SUMMARY_REFERENCE)):
        return False
    first = text.split("\n", 2)
    head = "\n".join(first[:2])
    sig = _SUMMARY_SIG_RE.search(head)
    if sig is None:
        return "forge-app:sig=" not in head  # an unsigned summary from an earlier version
    return _signed("summary", "summary", sig.group(1) or sig.group(2))


def fence(lines: Iterable[str], lang: str = "") -> str:
    """A fenced block whose fence is longer than any backtick run inside it."""
    text = "\n".join(lines)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def rule_link(finding: Finding) -> str | None:
    """The rule's documentation, when it is an http(s) URL (never `javascript:` and the like)."""
    for candidate in (finding.rule.help_uri, *finding.rule.references):
        url = safe_url(candidate)
        if url is not None:
            return url
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _header(finding: Finding, mode: str, md: Escaper = gfm) -> str:
    return (f"**forge-app** · {MODE_LABEL.get(mode, mode)} · {md.code(finding.rule_id)} · "
            f"{SEVERITY_LABEL.get(finding.severity, md.text(finding.severity))}")


def _taxonomy(finding: Finding, md: Escaper = gfm) -> str | None:
    parts = []
    if finding.rule.cwe:
        parts.append("**CWE:** " + md.text(", ".join(finding.rule.cwe)[:2000]))
    if finding.rule.owasp:
        parts.append("**OWASP:** " + md.text(", ".join(finding.rule.owasp)[:2000]))
    return " · ".join(parts) or None


def fix_block(finding: Finding, style: Rendering, as_suggestion: bool) -> str | None:
    """How this forge shows the fix: a one-click suggestion where it can apply, else a plain block."""
    fix = finding.fix
    if fix is None:
        return None
    if as_suggestion and style.suggestion == "range":
        return "Suggested fix:\n\n" + fence(fix.lines, "suggestion")
    if as_suggestion and style.suggestion == "offset":
        extra = fix.end_line - fix.start_line
        return "Suggested fix:\n\n" + fence(fix.lines, f"suggestion:-0+{extra}")
    if style.fix_as_diff:
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


def finding_comment(finding: Finding, mode: str, style: Rendering, *, as_suggestion: bool,
                    scan_url: str | None = None, key: str | None = None) -> str:
    md = style.markdown
    head = [_header(finding, mode, md), ""]
    tail = []
    taxonomy = _taxonomy(finding, md)
    if taxonomy:
        tail += ["", taxonomy]
    link = md.link("Rule documentation", rule_link(finding))
    if link:
        tail += ["", link]
    block = fix_block(finding, style, as_suggestion)
    end = ["", marker(key or finding.key, style.hidden_html_comments)]
    raw = finding.message.strip() or "(no message)"
    budget = MAX_BODY - len("\n".join(head + tail + end)) - 100
    if block and len(block) > budget - min(len(raw) * 2, 4000):
        # A cut suggestion would apply truncated code in one click: drop it instead.
        block = "The suggested fix is too large to show here."
    if block:
        tail += ["", block]
    budget = MAX_BODY - len("\n".join(head + tail + end)) - 50
    message = md.block(raw)
    if len(message) > budget:
        # Escaping at most triples a character: cut the raw text, then escape, so no escape is split.
        cut = raw[: max(0, budget // 3)]
        message = md.block(cut) + " …(truncated)"
    return "\n".join(head + [message] + tail + end)


def summary_comment(outside: Sequence[tuple[Finding, str]], counts: Counts, scan_url: str | None,
                    style: Rendering) -> str:
    """The one PR/MR note listing new findings outside the changed lines; edited in place."""
    md = style.markdown
    lines = [summary_marker(style.hidden_html_comments), "", "### forge-app scan summary", "",
             f"**{counts.new}** new · **{counts.fixed}** fixed · **{counts.unchanged}** unchanged"
             + (f" · **{counts.blocking}** blocking" if counts.blocking else ""), *_per_tool(counts, md)]
    if outside:
        lines += ["", f"{len(outside)} new finding(s) are outside the lines this change touches, so they "
                      "could not be commented inline:", "",
                  "| | Rule | Location | Message |", "|---|---|---|---|"]
        for finding, mode in outside[:200]:
            msg = md.text(_one_line(finding.message)[:160])
            where = md.code(f"{finding.path}:{finding.start_line}", in_table=True)
            lines.append(f"| {MODE_LABEL.get(mode, mode)} | {md.code(finding.rule_id, in_table=True)} | {where} "
                         f"| {msg} |")
        if len(outside) > 200:
            lines.append(f"\n…and {len(outside) - 200} more.")
    else:
        lines += ["", "No new findings outside the changed lines."]
    link = md.link("Scan details", scan_url)
    if link:
        lines += ["", link]
    return _cut_lines(lines)


def _cut_lines(lines: list[str]) -> str:
    """Whole lines up to MAX_BODY: a line cut in the middle could leave a code span open."""
    out, size = [], 0
    for line in lines:
        if size + len(line) + 1 > MAX_BODY:
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def check_title(counts: Counts) -> str:
    if counts.blocking:
        return f"{counts.blocking} blocking finding(s) introduced"
    if counts.new:
        return f"{counts.new} new finding(s), none blocking"
    return "No new findings"


def check_summary(counts: Counts, outside: Sequence[tuple[Finding, str]], scan_url: str | None) -> str:
    """A check run's summary (GFM) or the source of a commit status description."""
    lines = ["| New | Fixed | Unchanged | Blocking |", "|---|---|---|---|",
             f"| {counts.new} | {counts.fixed} | {counts.unchanged} | {counts.blocking} |", *_per_tool(counts)]
    if outside:
        lines += ["", "New findings outside the diff:", ""]
        for finding, mode in outside[:50]:
            lines.append(f"- {MODE_LABEL.get(mode, mode)} {gfm.code(finding.rule_id)} at "
                         f"{gfm.code(f'{finding.path}:{finding.start_line}')}")
        if len(outside) > 50:
            lines.append(f"- …and {len(outside) - 50} more")
    link = gfm.link("Scan details", scan_url)
    if link:
        lines += ["", link]
    return _cut_lines(lines)


def resolved_reply(commit: str) -> str:
    return f"✅ Fixed in {commit[:12]}. forge-app no longer finds this; resolving the thread."


def reopened_reply(commit: str) -> str:
    return f"⚠️ Reintroduced in {commit[:12]}. forge-app finds this again; reopening the thread."
