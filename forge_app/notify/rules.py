"""Which integration gets what from a scan (pure).

A finding of a scan is forwarded to an integration iff its status is "new" (against
the baseline: findings already on the base branch are "unchanged" and never go out
from a PR scan), the integration's filters match (repository glob, policy mode),
and — checked by storage, inside the claiming transaction — its identity is not yet
in that integration's ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from fnmatch import fnmatchcase

from forge_app.core.models import MODES
from storage import ScanRecord, StoredFinding
from storage.integrations import Integration, NotificationPlan, PlannedDelivery


def repository_matches(patterns: Iterable[str], repository: str) -> bool:
    """Names or fnmatch globs, case-insensitive (forges treat names so); none means all."""
    patterns = list(patterns)
    name = repository.lower()
    return not patterns or any(fnmatchcase(name, p.lower()) for p in patterns)


def mode_wanted(integration: Integration, mode: str) -> bool:
    return mode in (integration.filters.get("policies") or MODES)


def delivery_kinds(integration: Integration) -> list[str]:
    """What one scan can produce for this integration, in sending order."""
    if integration.type == "webhook":
        events = integration.config.get("events") or ["findings", "scan"]
        return [k for k in ("findings", "scan") if k in events]
    return [integration.type]  # "slack" | "email"


def plan_notifications(
    scan: ScanRecord, findings: Sequence[StoredFinding], integrations: Iterable[Integration],
    new_message_id: Callable[[], str],
) -> list[NotificationPlan]:
    plans = []
    new = [sf for sf in findings if sf.status == "new"]
    for integration in integrations:
        if not integration.enabled or not repository_matches(integration.filters.get("repositories") or [],
                                                             scan.repository):
            continue
        identities = sorted({sf.identity_id for sf in new if mode_wanted(integration, sf.mode)})
        deliveries = [PlannedDelivery(kind, new_message_id()) for kind in delivery_kinds(integration)]
        plans.append(NotificationPlan(integration.id, identities, deliveries))
    return plans
