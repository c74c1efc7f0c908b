"""Sending one notification delivery: compose it from the database, send it, record the attempt.

A delivery's content is rebuilt from the ledger on every attempt (the identities its
scan claimed for its integration), so retries send the same findings without storing
bodies; its `webhook-id` is fixed when it is created. Retries follow our own
schedule (forge_app.notify.retry), not the worker's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from forge_app.config import Settings
from forge_app.jobs.errors import GiveUp, RetryLater
from forge_app.jobs.worker import JobContext
from forge_app.notify import retry
from forge_app.notify.links import pull_request_url
from forge_app.notify.mail import SmtpConfigError, scan_email, send_email, smtp_config
from forge_app.notify.payloads import (
    NotifiedFinding,
    batches,
    findings_payload,
    sample_finding,
    sample_scan,
    semgrep_scan,
    syntactic_indexes,
)
from forge_app.notify.sender import Outcome, post_json
from forge_app.notify.signing import new_message_id, webhook_headers
from forge_app.notify.slack import slack_message
from forge_app.security.crypto import SecretsUnavailable, decrypt, encrypt
from storage import Job, ScanRecord, Storage
from storage.integrations import Integration, NotificationDelivery

log = logging.getLogger(__name__)

JOB_KIND = "deliver_notification"
PARTS_BUDGET = 150.0  # seconds of sending parts per run: a huge delivery yields the worker now and then
FINAL = ("succeeded", "failed")
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Outbound:
    """What to send: a JSON document (webhook, Slack) or an email."""

    document: Any = None
    email: EmailMessage | None = None


# --- secrets at rest -------------------------------------------------------------------

def seal_secret(settings: Settings, secret: str) -> str:
    """Webhook secrets are stored encrypted with FORGE_APP_SECRET_KEY, like forge tokens."""
    return encrypt(settings.secret_key, secret)


def open_secret(settings: Settings, integration: Integration) -> str | None:
    """The webhook's signing secret, or None (unsigned); SecretsUnavailable, saying what to do,
    when it cannot be decrypted (FORGE_APP_SECRET_KEY unset or changed)."""
    if not integration.secret:
        return None
    try:
        return decrypt(settings.secret_key, integration.secret)
    except SecretsUnavailable as exc:
        raise SecretsUnavailable(
            f"the webhook's signing secret cannot be read, so nothing was sent: {exc}. Restore the "
            'FORGE_APP_SECRET_KEY it was stored with, or PATCH the integration with "secret": true (a new '
            'secret) or "secret": null (unsigned)') from None


# --- composing ---------------------------------------------------------------------------

def notified_findings(storage: Storage, scan: ScanRecord, integration_id: int) -> list[NotifiedFinding]:
    """The findings this scan claimed for this integration, most severe first."""
    claimed = storage.notified_identities(integration_id, scan.id)
    if not claimed:
        return []
    present = storage.scan_findings(scan.id, ["new", "unchanged"])
    indexes = syntactic_indexes([sf.finding for sf in present])
    details = storage.identity_details(claimed)
    items: dict[int, NotifiedFinding] = {}
    for sf, index in zip(present, indexes, strict=True):
        if sf.identity_id not in claimed or sf.identity_id in items:
            continue
        info = details.get(sf.identity_id)
        items[sf.identity_id] = NotifiedFinding(
            finding=sf.finding, mode=sf.mode, identity=(info.fingerprint if info else None) or sf.finding.key,
            first_seen_scan_id=info.first_seen_scan_id if info else scan.id,
            first_seen_at=info.created_at if info else None, index=index,
        )
    return sorted(items.values(), key=lambda i: (_SEVERITY_ORDER.get(i.finding.severity, 3), i.finding.path,
                                                 i.finding.start_line, i.finding.rule_id))


def _email(settings: Settings, integration: Integration, scan: ScanRecord, items: list[NotifiedFinding],
           message_id: str, *, test: bool = False) -> EmailMessage:
    config = smtp_config(settings)
    return scan_email(scan, items, sender=config.sender, recipients=integration.config.get("addresses") or [],
                      message_id=message_id, date=datetime.now(UTC),
                      pr_url=pull_request_url(scan, settings), test=test)


def compose(storage: Storage, settings: Settings, integration: Integration,
            delivery: NotificationDelivery) -> Outbound | None:
    """The delivery's content, or None when there is nothing (left) to send."""
    if delivery.scan_id is None:
        return None
    scan = storage.scan(delivery.scan_id)
    if scan is None:
        return None
    if delivery.kind == "scan":
        return Outbound(document=semgrep_scan(scan))
    items = notified_findings(storage, scan, integration.id)
    if not items:
        return None
    if delivery.kind == "findings":
        return Outbound(document=findings_payload(items, scan))
    if delivery.kind == "slack":
        return Outbound(document=slack_message(scan, items, pull_request_url(scan, settings)))
    if delivery.kind == "email":
        return Outbound(email=_email(settings, integration, scan, items, delivery.webhook_id or new_message_id()))
    return None


def compose_test(settings: Settings, integration: Integration, message_id: str) -> Outbound:
    """A clearly marked sample in the integration's own format."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    scan, items = sample_scan(now), [sample_finding(now)]
    if integration.type == "webhook":
        return Outbound(document=findings_payload(items, scan))
    if integration.type == "slack":
        return Outbound(document=slack_message(scan, items, None, test=True))
    return Outbound(email=_email(settings, integration, scan, items, message_id, test=True))


# --- sending -----------------------------------------------------------------------------

def encode(document: Any) -> bytes:
    """Compact JSON: the bytes signed are exactly the bytes sent."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def send(settings: Settings, integration: Integration, outbound: Outbound, message_id: str) -> Outcome:
    if integration.type == "email":
        if outbound.email is None:
            return Outcome(False, None, 0, "nothing to send")
        return await send_email(smtp_config(settings), outbound.email)
    body = encode(outbound.document)
    headers: dict[str, str] = {}
    if integration.type == "webhook":
        headers = webhook_headers(message_id, int(time.time()), body, open_secret(settings, integration))
    return await post_json(integration.config["url"], body, headers, allow_private=settings.allow_private_targets)


async def send_test(storage: Storage, settings: Settings, integration: Integration) -> tuple[int, Outcome]:
    """The `test` button: send now, record it as a `test` delivery, never retry."""
    message_id = new_message_id()
    delivery_id = storage.add_notification_delivery(integration.id, "test", message_id)
    try:
        outcome = await send(settings, integration, compose_test(settings, integration, message_id), message_id)
    except (SmtpConfigError, SecretsUnavailable) as exc:
        outcome = Outcome(False, None, 0, str(exc))
    storage.record_delivery_attempt(delivery_id, status="succeeded" if outcome.ok else "failed",
                                    status_code=outcome.status_code, latency_ms=outcome.latency_ms,
                                    error=outcome.error)
    return delivery_id, outcome


async def deliver_notification(context: JobContext, job: Job) -> None:
    """Job handler: one attempt of one delivery; RetryLater/GiveUp tell the worker what next."""
    storage, settings = context.storage, context.settings
    delivery = storage.notification_delivery(int(job.payload["delivery_id"]))
    if delivery is None or delivery.status in FINAL:
        return  # deleted with its integration, or already settled by an earlier run
    integration = storage.integration(delivery.integration_id)
    if integration is None:
        return
    if not integration.enabled:
        storage.close_notification_delivery(delivery.id, "the integration was disabled before this was sent")
        return
    attempt = job.attempts
    try:
        outbound = compose(storage, settings, integration, delivery)
        if outbound is None:
            storage.close_notification_delivery(delivery.id, "nothing to send: the scan or its findings are gone")
            return
        if integration.type == "webhook" and delivery.kind == "findings":
            outcome = await _send_parts(storage, settings, integration, delivery, outbound)
        else:
            outcome = await send(settings, integration, outbound, delivery.webhook_id or new_message_id())
    except (SmtpConfigError, SecretsUnavailable) as exc:
        # Server configuration, not the target: retrying cannot help until an admin acts, so fail at once.
        outcome = Outcome(False, None, 0, str(exc))
    except Exception as exc:  # a bug: keep the delivery visible as retrying, let the worker retry
        storage.record_delivery_attempt(delivery.id, status="retrying", status_code=None, latency_ms=None,
                                        error=f"internal error: {type(exc).__name__}")
        raise
    _settle(storage, delivery, integration, outcome, attempt)


def part_id(webhook_id: str, part: int) -> str:
    """The `webhook-id` of one part of a batched delivery: the delivery's own for the first, then
    `<id>_<n>`; fixed across retries, so a receiver dedupes a part sent twice."""
    return webhook_id if part == 0 else f"{webhook_id}_{part}"


async def _send_parts(storage: Storage, settings: Settings, integration: Integration,
                      delivery: NotificationDelivery, outbound: Outbound) -> Outcome:
    """A findings webhook in parts (payloads.batches), each its own POST and `webhook-id`, resuming
    after the parts already accepted: every finding goes out once, however big the scan. A run
    stops starting parts after PARTS_BUDGET seconds and continues in the next."""
    parts = batches(outbound.document, encode)
    base_id = delivery.webhook_id or new_message_id()
    started = time.monotonic()
    outcome = Outcome(True, None, 0)
    for i in range(delivery.parts_sent, len(parts)):
        if i > delivery.parts_sent and time.monotonic() - started > PARTS_BUDGET:
            raise RetryLater(f"notification {delivery.id}: {i} of {len(parts)} parts sent, continuing", 0)
        outcome = await send(settings, integration, Outbound(document=parts[i]), part_id(base_id, i))
        if not outcome.ok:
            if len(parts) > 1:
                return dataclasses.replace(outcome, error=f"part {i + 1} of {len(parts)}: {outcome.error}")
            return outcome
        if len(parts) > 1:
            storage.record_delivery_parts(delivery.id, i + 1)
    return outcome


def _settle(storage: Storage, delivery: NotificationDelivery, integration: Integration, outcome: Outcome,
            attempt: int) -> None:
    from forge_app.web.metrics import notification_delivery

    notification_delivery(integration.type, "succeeded" if outcome.ok else "failed")  # one per attempt
    if outcome.ok:
        storage.record_delivery_attempt(delivery.id, status="succeeded", error=None,
                                        status_code=outcome.status_code, latency_ms=outcome.latency_ms)
        log.info("notification %s (%s) to integration %s delivered in %s ms", delivery.id, delivery.kind,
                 integration.id, outcome.latency_ms)
        return
    if outcome.retryable and attempt < retry.MAX_ATTEMPTS:
        delay = outcome.retry_after if outcome.retry_after is not None else retry.retry_delay(attempt)
        storage.record_delivery_attempt(delivery.id, status="retrying", error=outcome.error,
                                        next_attempt_at=retry.iso(time.time() + delay),
                                        status_code=outcome.status_code, latency_ms=outcome.latency_ms)
        raise RetryLater(f"notification {delivery.id}: {outcome.error}", delay)
    error = outcome.error or "failed"
    if outcome.retryable:
        error += f" (gave up after {attempt} attempts)"
    storage.record_delivery_attempt(delivery.id, status="failed", error=error,
                                    status_code=outcome.status_code, latency_ms=outcome.latency_ms)
    raise GiveUp(f"notification {delivery.id} ({delivery.kind}) to integration {integration.id}: {error}")
