"""Email notifications: one message per scan with new findings, plain text and HTML.

Sent with the standard library's smtplib in a thread. `FORGE_APP_SMTP_URL` is
`smtp://user:pass@host:port` (STARTTLS whenever the server offers it; credentials
are never sent over a connection that is not encrypted) or `smtps://...` (TLS from
the first byte). Composing the message is pure; only `send_email` does I/O.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import unquote, urlsplit

from forge_app.config import Settings
from forge_app.core.escape import html as safe_html
from forge_app.core.models import SEVERITIES
from forge_app.notify.payloads import NotifiedFinding
from forge_app.notify.sender import Outcome
from storage import ScanRecord

SMTP_TIMEOUT = 10.0
LISTED = 100
MAX_ADDRESSES = 50
ADDRESS_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class SmtpConfigError(ValueError):
    """FORGE_APP_SMTP_URL / FORGE_APP_EMAIL_FROM are missing or unusable (never echoes them)."""


@dataclass(frozen=True)
class SmtpConfig:
    implicit_tls: bool
    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    sender: str = ""


def smtp_config(settings: Settings) -> SmtpConfig:
    smtp_url, sender = settings.smtp_url, settings.email_from
    if not smtp_url or not sender:
        unset = [name for name, value in (("FORGE_APP_SMTP_URL", smtp_url), ("FORGE_APP_EMAIL_FROM", sender))
                 if not value]
        raise SmtpConfigError(f"email is not configured on this server: {' and '.join(unset)} "
                              f"{'is' if len(unset) == 1 else 'are'} not set (email needs both "
                              "FORGE_APP_SMTP_URL=smtp://user:pass@host:port or smtps://..., and "
                              "FORGE_APP_EMAIL_FROM=an address such as forge-app@example.com)")
    try:
        parts = urlsplit(smtp_url)
        port = parts.port
    except ValueError:
        raise SmtpConfigError("FORGE_APP_SMTP_URL cannot be parsed (expected smtp://user:pass@host:port)") from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise SmtpConfigError("FORGE_APP_SMTP_URL must look like smtp://user:pass@host:port or smtps://...")
    if not is_address(parseaddr(sender)[1]):
        raise SmtpConfigError("FORGE_APP_EMAIL_FROM is not an email address")
    implicit = parts.scheme == "smtps"
    return SmtpConfig(
        implicit_tls=implicit, host=parts.hostname, port=port or (465 if implicit else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        sender=sender,
    )


def is_address(value: str) -> bool:
    return isinstance(value, str) and len(value) <= 254 and ADDRESS_RE.match(value) is not None


# --- composing (pure) ------------------------------------------------------------------

def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _where(scan: ScanRecord) -> str:
    return f"PR #{scan.pull_request}" if scan.pull_request is not None else f"branch {scan.branch or '?'}"


def subject(scan: ScanRecord, items: Sequence[NotifiedFinding], *, test: bool = False) -> str:
    if test:
        return "[forge-app] Test notification"
    text = f"[forge-app] {_plural(len(items), 'new finding')} in {scan.repository} ({_where(scan)})"
    return " ".join(text.split())[:200]


def _counts(items: Sequence[NotifiedFinding]) -> str:
    counts = Counter(i.finding.severity for i in items)
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in SEVERITIES)


def plain_body(scan: ScanRecord, items: Sequence[NotifiedFinding], pr_url: str | None, *, test: bool) -> str:
    lines = []
    if test:
        lines += ["This is a test message from forge-app: the email integration works.",
                  "The finding below is a sample, not a real finding.", ""]
    lines += [f"Repository: {scan.repository}",
              f"Pull request: #{scan.pull_request}" + (f" {pr_url}" if pr_url else "")
              if scan.pull_request is not None else f"Branch: {scan.branch or '?'}",
              f"Commit: {scan.commit}",
              f"New findings: {len(items)} ({_counts(items)})", ""]
    for item in items[:LISTED]:
        f = item.finding
        lines += [f"- [{f.severity}] {f.rule_id} ({item.mode})", f"  {f.path}:{f.start_line}",
                  f"  {' '.join(f.message.split())[:1000]}", ""]
    if len(items) > LISTED:
        lines.append(f"and {len(items) - LISTED} more")
    return "\n".join(lines).rstrip() + "\n"


def html_body(scan: ScanRecord, items: Sequence[NotifiedFinding], pr_url: str | None, *, test: bool) -> str:
    e = safe_html.text  # everything from a report or a scan is untrusted text
    parts = ["<!DOCTYPE html><html><body style=\"font-family: sans-serif\">"]
    if test:
        parts.append("<p><strong>This is a test message from forge-app: the email integration works.</strong> "
                     "The finding below is a sample, not a real finding.</p>")
    parts.append(f"<h2>{e(_plural(len(items), 'new finding'))} in {e(scan.repository)}</h2>")
    if scan.pull_request is not None:
        label = e(f"#{scan.pull_request}")
        where = safe_html.link(f"#{scan.pull_request}", pr_url) if pr_url else label
        parts.append(f"<p>Pull request {where} · commit <code>{e(scan.commit[:12])}</code></p>")
    else:
        parts.append(f"<p>Branch <code>{e(scan.branch or '?')}</code> · commit <code>{e(scan.commit[:12])}</code></p>")
    parts.append(f"<p>By severity: {e(_counts(items))}</p>")
    parts.append("<table cellpadding=\"4\" style=\"border-collapse: collapse\"><thead><tr>"
                 "<th align=\"left\">Severity</th><th align=\"left\">Rule</th><th align=\"left\">Where</th>"
                 "<th align=\"left\">Message</th></tr></thead><tbody>")
    for item in items[:LISTED]:
        f = item.finding
        parts.append(f"<tr><td>{e(f.severity)}</td><td><code>{e(f.rule_id)}</code><br>{e(item.mode)}</td>"
                     f"<td><code>{e(f.path)}:{f.start_line}</code></td><td>{e(f.message[:1000])}</td></tr>")
    parts.append("</tbody></table>")
    if len(items) > LISTED:
        parts.append(f"<p>and {len(items) - LISTED} more</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def scan_email(scan: ScanRecord, items: Sequence[NotifiedFinding], *, sender: str, recipients: Sequence[str],
               message_id: str, date: datetime, pr_url: str | None = None, test: bool = False) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject(scan, items, test=test)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<{message_id}@forge-app>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(plain_body(scan, items, pr_url, test=test))
    msg.add_alternative(html_body(scan, items, pr_url, test=test), subtype="html")
    return msg


# --- sending -----------------------------------------------------------------------------

def _send_blocking(config: SmtpConfig, message: EmailMessage, timeout: float) -> int:
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if config.implicit_tls:
        smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(config.host, config.port, timeout=timeout)
    with smtp:
        smtp.ehlo()
        encrypted = config.implicit_tls
        if not encrypted and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
            encrypted = True
        if config.username:
            if not encrypted:
                raise SmtpConfigError("the SMTP server does not offer STARTTLS: refusing to send the SMTP password "
                                      "unencrypted (use smtps:// or a server with STARTTLS)")
            smtp.login(config.username, config.password or "")
        refused = smtp.send_message(message)
        if refused:
            # Some recipients were refused, the rest accepted: retrying would duplicate.
            return 250
    return 250


async def send_email(config: SmtpConfig, message: EmailMessage, timeout: float = SMTP_TIMEOUT) -> Outcome:
    """One SMTP transaction; 4xx replies and network trouble are worth retrying, 5xx are not."""
    started = time.monotonic()

    def done(ok: bool, code: int | None, error: str | None = None, retryable: bool = False) -> Outcome:
        return Outcome(ok, code, int((time.monotonic() - started) * 1000), error, retryable)

    try:
        code = await asyncio.to_thread(_send_blocking, config, message, timeout)
    except SmtpConfigError as exc:
        return done(False, None, str(exc))
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [c for c, _ in exc.recipients.values()]
        temporary = all(400 <= c < 500 for c in codes)
        return done(False, codes[0] if codes else None, "the SMTP server refused every recipient", temporary)
    except smtplib.SMTPAuthenticationError as exc:
        return done(False, exc.smtp_code, "the SMTP server refused the login (check FORGE_APP_SMTP_URL)")
    except smtplib.SMTPResponseException as exc:
        reply = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return done(False, exc.smtp_code, f"SMTP {exc.smtp_code}: {' '.join(reply.split())[:200]}",
                    400 <= exc.smtp_code < 500)
    except (smtplib.SMTPException, ssl.SSLError) as exc:
        return done(False, None, f"SMTP error: {type(exc).__name__}: {str(exc)[:200]}", True)
    except TimeoutError:
        return done(False, None, f"the SMTP server did not answer within {timeout:g} s", True)
    except OSError as exc:
        return done(False, None, f"cannot reach the SMTP server {config.host}:{config.port}: "
                                 f"{exc.strerror or type(exc).__name__}", True)
    return done(True, code)
