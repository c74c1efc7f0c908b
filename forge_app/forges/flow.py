"""The generic flow that publishes one PR/MR scan on any forge, safe to run twice.

Idempotency comes from the review_comments ledger (one comment per finding identity
per PR), from remembering the summary note, and, on a retried job, from reading the
hidden markers already on the PR before posting anything.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from forge_app.core.review.plan import PlannedComment, ReviewItem, plan_review
from forge_app.core.review.render import (
    Counts,
    check_summary,
    check_title,
    marker_key,
    reopened_reply,
    resolved_reply,
    summary_comment,
)
from forge_app.forges.base import ForgeClient, PullRequestRef, StatusReport, StatusState
from forge_app.jobs.worker import JobContext
from forge_app.web.metrics import counting_scan_requests
from storage import Job, ScanRecord, Storage

log = logging.getLogger(__name__)

Publisher = Callable[[JobContext, ScanRecord, Job], Awaitable[None]]
"""What a forge's `publisher` factory hands out for a scan it can publish."""


def scan_url(public_url: str, scan_id: int) -> str:
    return f"{public_url}/api/v1/scans/{scan_id}"


def _state(scan: ScanRecord) -> StatusState:
    if scan.blocking:
        return "failure"
    if scan.errors:
        return "neutral"
    return "success"


SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
DEFAULT_MAX_INLINE = 50
BUDGET_FIXED, BUDGET_PER_50 = 6, 1  # a PR scan with n new findings: at most 6 + ceil(n / 50) forge requests


def request_budget(new_findings: int) -> int:
    """The forge requests a first publication of a PR scan may cost, whatever the forge: GitLab and
    Bitbucket have no batch comment endpoint, and Bitbucket allows ~1,000 requests an hour."""
    return BUDGET_FIXED + BUDGET_PER_50 * math.ceil(new_findings / 50)


def inline_limit(client: ForgeClient, *, budget: int, spent: int, closing: int, planned: int, max_inline: int,
                 summary_needed: bool) -> int:
    """How many of the `planned` inline comments fit: at most `max_inline`, and no more than the
    requests left once the summary note (needed when anything is left out) and the final status
    are paid for. Pure arithmetic over the client's cost model."""
    for count in range(min(planned, max_inline) if max_inline >= 0 else planned, 0, -1):
        summary = 1 if summary_needed or count < planned else 0
        if spent + client.comment_requests(count) + summary + closing <= budget:
            return count
    return 0


def cap_comments(comments: list[PlannedComment], limit: int) -> tuple[list[PlannedComment], list[PlannedComment]]:
    """The `limit` comments to post (blocking first, then most severe, then by place) and the rest,
    which the summary note lists instead: a 1,000-finding PR must not cost 1,000 forge requests."""
    if limit < 0 or len(comments) <= limit:
        return comments, []
    ranked = sorted(comments, key=lambda c: (c.item.mode != "block", SEVERITY_RANK.get(c.item.finding.severity, 3),
                                             c.item.finding.path, c.item.finding.start_line))
    return ranked[:limit], ranked[limit:]


def _capped_note(capped: int, limit: int, max_inline: int) -> str:
    if not capped:
        return ""
    why = ("FORGE_APP_MAX_INLINE_COMMENTS" if limit == max_inline else
           "what fits in this forge's request budget per scan, FORGE_APP_MAX_INLINE_COMMENTS at most")
    return (f"\n\n{capped} of these are on changed lines but past this scan's limit of {limit} inline comments "
            f"({why}): the most severe and blocking ones were commented first.")


async def publish_pull_request_scan(
    storage: Storage, client: ForgeClient, scan: ScanRecord, pr: PullRequestRef, *, public_url: str,
    retrying: bool = False, max_inline: int = DEFAULT_MAX_INLINE,
) -> None:
    """Publish, counting the forge requests it costs (job log and `forge_app_scan_forge_requests`)."""
    with counting_scan_requests(client.forge) as tally:
        await _publish(storage, client, scan, pr, public_url=public_url, retrying=retrying, max_inline=max_inline)
    log.info("scan %s on %s #%s: %d %s API requests", scan.id, scan.repository, scan.pull_request, tally["n"],
             client.forge)


async def _publish(
    storage: Storage, client: ForgeClient, scan: ScanRecord, pr: PullRequestRef, *, public_url: str,
    retrying: bool, max_inline: int,
) -> None:
    assert scan.pull_request is not None
    url = scan_url(public_url, scan.id)
    stored = storage.scan_findings(scan.id, ["new", "unchanged"])
    new_items = [ReviewItem(sf.identity_id, sf.finding, sf.mode) for sf in stored if sf.status == "new"]
    counts = Counts(scan.count_new, scan.count_fixed, scan.count_unchanged,
                    blocking=sum(1 for i in new_items if i.mode == "block"), by_tool=scan.tool_counts)
    latest_id = storage.latest_pull_request_scan_id(scan.repository_id, scan.pull_request)
    if latest_id is not None and latest_id != scan.id:
        # A newer scan of this PR exists: its comments win. A retry still records comments an
        # earlier attempt posted, or the newer scan would post them again.
        if retrying:
            ledger = {rc.identity_id: rc for rc in storage.review_comments(scan.repository_id, scan.pull_request)}
            await _recover_unrecorded(storage, client, scan, pr, new_items, ledger)
        newer = storage.scan(latest_id)
        if newer is not None and newer.commit == scan.commit:
            # Same commit rescanned (e.g. after a policy change): its verdict is the one that stands.
            log.info("scan %s is superseded by scan %s of the same commit; nothing published", scan.id, latest_id)
            return
        log.info("scan %s is superseded by scan %s; only its status is published", scan.id, latest_id)
        await client.set_status(pr, StatusReport(_state(scan), check_title(counts),
                                                 check_summary(counts, [], url), counts, url, new_items))
        return

    await client.set_status(pr, StatusReport("in_progress", "Publishing scan results", "", counts, url))
    diff = await client.changed_files(pr)
    ledger = {rc.identity_id: rc for rc in storage.review_comments(scan.repository_id, scan.pull_request)}
    if retrying:
        await _recover_unrecorded(storage, client, scan, pr, new_items, ledger)
        ledger = {rc.identity_id: rc for rc in storage.review_comments(scan.repository_id, scan.pull_request)}

    plan = plan_review(new_items, present_identities={sf.identity_id for sf in stored},
                       posted={i: rc.resolved for i, rc in ledger.items()}, diff=diff,
                       style=client.rendering, counts=counts, scan_url=url)
    # The inline comments this scan may show: what fits in the request budget of a first
    # publication, from a cost model of the scan alone (so a re-upload or a retried job shows the
    # same ones), less those already on the PR.
    shown = sum(1 for i in new_items if i.identity_id in ledger)
    closing = client.closing_requests(StatusReport(_state(scan), check_title(counts), "", counts, url, new_items))
    has_summary = storage.forge_object(scan.repository_id, f"pr:{scan.pull_request}", "summary") is not None
    allowed = inline_limit(client, budget=request_budget(len(new_items)),
                           spent=client.opening_requests(), closing=closing,
                           planned=len(plan.comments) + shown, max_inline=max_inline,
                           summary_needed=bool(plan.outside) or has_summary)
    limit = max(0, allowed - shown)
    to_post, capped = cap_comments(plan.comments, limit)
    if to_post:
        posted = await client.post_comments(pr, to_post)
        by_identity = {c.item.identity_id: c for c in to_post}
        for p in posted:
            planned = by_identity[p.identity_id]
            storage.record_review_comment(
                scan.repository_id, scan.pull_request, p.identity_id, fingerprint=planned.item.finding.key,
                comment_id=p.comment_id, thread_id=p.thread_id, scan_id=scan.id, path=planned.path,
                line=planned.line)

    outside = [(i.finding, i.mode) for i in plan.outside] + [(c.item.finding, c.item.mode) for c in capped]
    await _publish_summary(storage, client, scan, pr, outside, counts, url,
                           note=_capped_note(len(capped), allowed, max_inline))

    for identity_id in plan.resolve:
        rc = ledger[identity_id]
        await client.resolve(pr, rc, resolved_reply(scan.commit))
        storage.mark_review_comment_resolved(rc.id, scan.id)

    for identity_id in plan.reopen:
        rc = ledger[identity_id]
        await client.reopen(pr, rc, reopened_reply(scan.commit))
        storage.mark_review_comment_reopened(rc.id)

    await client.set_status(pr, StatusReport(_state(scan), check_title(counts),
                                             check_summary(counts, outside, url), counts, url, new_items))
    log.info("published scan %s on %s #%s: %d comments (%d more past the limit), %d outside the diff, %d resolved, "
             "%d reopened", scan.id, scan.repository, scan.pull_request, len(to_post), len(capped), len(plan.outside),
             len(plan.resolve), len(plan.reopen))


async def _publish_summary(storage: Storage, client: ForgeClient, scan: ScanRecord, pr: PullRequestRef,
                           outside: list, counts: Counts, url: str, note: str = "") -> None:
    """One summary note per PR, created only when something is outside the diff, then edited in place.

    Before creating it, an intent record (no id yet) is stored: if the process dies between
    the forge's answer and remembering the id, the next run sees the intent and looks for
    the note's hidden marker on the PR instead of posting a second one. The first creation
    on a PR costs no extra request."""
    scope = f"pr:{scan.pull_request}"
    existing = storage.forge_object(scan.repository_id, scope, "summary")
    if not outside and existing is None:
        return
    # Compare without the scan link: a re-upload of the same results should not edit the note.
    content = _with_note(summary_comment(outside, counts, None, client.rendering), note)
    if existing is not None and existing.get("id") and existing.get("content") == content:
        return
    body = _with_note(summary_comment(outside, counts, url, client.rendering), note)
    known_id = existing.get("id") if existing else None
    maybe_posted = existing is not None and not known_id  # an earlier run may have posted it unrecorded
    if existing is None:
        storage.remember_forge_object(scan.repository_id, scope, "summary", {"id": None, "content": None})
    summary_id = await client.upsert_summary(pr, body, known_id, look_first=maybe_posted)
    storage.remember_forge_object(scan.repository_id, scope, "summary", {"id": summary_id, "content": content})


def _with_note(summary: str, note: str) -> str:
    """The cap's explanation goes right after the findings table (before the scan link)."""
    if not note:
        return summary
    head, sep, tail = summary.rpartition("\n\n[Scan details](")
    return f"{head}{note}{sep}{tail}" if sep else summary + note


async def _recover_unrecorded(storage: Storage, client: ForgeClient, scan: ScanRecord, pr: PullRequestRef,
                              new_items: list[ReviewItem], ledger: dict) -> None:
    """A previous attempt may have posted comments and crashed before recording them."""
    markers = await client.existing_markers(pr)
    for item in new_items:
        if item.identity_id in ledger:
            continue
        found = markers.get(marker_key(item.finding.key, item.identity_id))
        if found is not None:
            storage.record_review_comment(
                scan.repository_id, scan.pull_request or 0, item.identity_id, fingerprint=item.finding.key,
                comment_id=found.comment_id, thread_id=found.thread_id, scan_id=scan.id,
                path=item.finding.path, line=item.finding.start_line)
