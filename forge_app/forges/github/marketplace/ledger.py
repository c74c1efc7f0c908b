"""What an account's record becomes after a `marketplace_purchase` event or a listing sync. Pure.

GitHub never resends a failed delivery and may deliver out of order, so every change is
compared by its `effective_date`: an event older than the one already applied changes
nothing (a late `purchased` after a `changed` keeps the newer plan). `pending_change`
only records what will happen; the `changed` or `cancelled` that follows applies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from storage import MarketplaceAccount

ACTIONS = ("purchased", "pending_change", "pending_change_cancelled", "changed", "cancelled")
RETENTION = timedelta(days=30)


class PayloadError(ValueError):
    """A delivery lacks what forge-app needs to act on it (the message names the field)."""


@dataclass(frozen=True, slots=True)
class Purchase:
    """The fields of a `marketplace_purchase` object forge-app keeps; all but the ids are optional."""

    account_id: int
    login: str
    type: str | None
    plan_id: int
    plan_name: str
    price_model: str | None = None
    unit_count: int | None = None
    billing_cycle: str | None = None
    on_free_trial: bool = False
    free_trial_ends_on: str | None = None
    next_billing_date: str | None = None


@dataclass(frozen=True, slots=True)
class PurchaseEvent:
    action: str
    effective_date: str  # normalised UTC ISO-8601
    purchase: Purchase
    previous: Purchase | None = None


def iso_utc(value: Any) -> str | None:
    """Dates arrive as `2017-10-25T00:00:00+00:00`, `...Z` or bare dates: one comparable form."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_purchase(obj: Any, where: str, account: Any = None) -> Purchase:
    """A purchase object of a webhook or of the listing API (whose account sits outside it)."""
    if not isinstance(obj, dict):
        raise PayloadError(f"{where} is missing or not an object")
    account = obj.get("account") if account is None else account
    plan = obj.get("plan")
    if not isinstance(account, dict) or _int(account.get("id")) is None or not _str(account.get("login")):
        raise PayloadError(f"{where}.account needs an integer id and a login")
    if not isinstance(plan, dict) or _int(plan.get("id")) is None or not _str(plan.get("name")):
        raise PayloadError(f"{where}.plan needs an integer id and a name")
    return Purchase(
        account_id=account["id"], login=account["login"], type=_str(account.get("type")),
        plan_id=plan["id"], plan_name=plan["name"], price_model=_str(plan.get("price_model")),
        unit_count=_int(obj.get("unit_count")), billing_cycle=_str(obj.get("billing_cycle")),
        on_free_trial=obj.get("on_free_trial") is True, free_trial_ends_on=iso_utc(obj.get("free_trial_ends_on")),
        next_billing_date=iso_utc(obj.get("next_billing_date")),
    )


def parse_event(payload: Mapping[str, Any]) -> PurchaseEvent:
    """Lenient on purpose: an extra key, a null billing date or `per-unit` for `PER_UNIT` is no
    reason to drop a purchase; only what forge-app acts on is required."""
    action = payload.get("action")
    if action not in ACTIONS:
        raise PayloadError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    effective = iso_utc(payload.get("effective_date"))
    if effective is None:
        raise PayloadError("effective_date is missing or not a date")
    purchase = parse_purchase(payload.get("marketplace_purchase"), "marketplace_purchase")
    previous = None
    if isinstance(payload.get("previous_marketplace_purchase"), dict):
        try:
            previous = parse_purchase(payload["previous_marketplace_purchase"], "previous_marketplace_purchase")
        except PayloadError:
            previous = None  # only informative
    return PurchaseEvent(action, effective, purchase, previous)


def _with_plan(base: MarketplaceAccount, p: Purchase) -> MarketplaceAccount:
    return replace(base, login=p.login, type=p.type or base.type, plan_id=p.plan_id, plan_name=p.plan_name,
                   price_model=p.price_model, unit_count=p.unit_count, billing_cycle=p.billing_cycle,
                   on_free_trial=p.on_free_trial, free_trial_ends_on=p.free_trial_ends_on,
                   next_billing_date=p.next_billing_date)


def _blank(p: Purchase) -> MarketplaceAccount:
    return MarketplaceAccount(account_id=p.account_id, login=p.login, type=p.type, state="none")


def _stale(current: MarketplaceAccount | None, effective: str) -> bool:
    return current is not None and current.effective_date is not None and effective < current.effective_date


def apply_event(current: MarketplaceAccount | None, event: PurchaseEvent) -> MarketplaceAccount | None:
    """The account's new record, or None when the event changes nothing (stale or a no-op)."""
    p = event.purchase
    base = current or _blank(p)
    if event.action in ("purchased", "changed"):
        if _stale(current, event.effective_date):
            return None
        keep_pending = (event.action == "changed" and base.pending_effective_date is not None
                        and base.pending_plan_id != p.plan_id and event.effective_date < base.pending_effective_date)
        updated = _with_plan(base, p)
        updated = replace(updated, state="active", effective_date=event.effective_date, cancelled_at=None,
                          purge_after=None, purged_at=None)
        if not keep_pending:
            updated = replace(updated, pending_plan_id=None, pending_plan_name=None, pending_effective_date=None)
        return updated
    if event.action == "cancelled":
        if _stale(current, event.effective_date):
            return None
        moment = datetime.fromisoformat(event.effective_date)
        updated = _with_plan(base, p) if current is None else replace(base, login=p.login)
        return replace(updated, state="cancelled", effective_date=event.effective_date,
                       cancelled_at=event.effective_date,
                       purge_after=(moment + RETENTION).isoformat(timespec="seconds"),
                       pending_plan_id=None, pending_plan_name=None, pending_effective_date=None)
    if event.action == "pending_change":
        applied = current.effective_date if current is not None else None
        if applied is not None and event.effective_date <= applied:
            return None  # the change it announces has already been applied
        updated = base
        if current is None and event.previous is not None:
            # The purchase itself was missed: the previous purchase is the plan in force today.
            updated = replace(_with_plan(base, event.previous), state="active")
        return replace(updated, login=p.login, pending_plan_id=p.plan_id, pending_plan_name=p.plan_name,
                       pending_effective_date=event.effective_date)
    # pending_change_cancelled
    if current is None or current.pending_plan_id is None:
        return None
    return replace(current, pending_plan_id=None, pending_plan_name=None, pending_effective_date=None)


def from_listing(current: MarketplaceAccount | None, item: Mapping[str, Any], now: str) -> MarketplaceAccount:
    """An account as `GET /marketplace_listing/plans/{id}/accounts` lists it: active on that plan
    today, with its pending change if any. The listing is the truth at `now`."""
    purchase = parse_purchase(item.get("marketplace_purchase"), "marketplace_purchase", account=item)
    base = current or _blank(purchase)
    updated = replace(_with_plan(base, purchase), state="active", cancelled_at=None, purge_after=None,
                      purged_at=None, effective_date=max(filter(None, [base.effective_date, now])))
    pending = item.get("marketplace_pending_change")
    if not isinstance(pending, dict):
        pending = {}
    plan = pending.get("plan")
    if isinstance(plan, dict) and _int(plan.get("id")) is not None and _str(plan.get("name")):
        return replace(updated, pending_plan_id=plan["id"], pending_plan_name=plan["name"],
                       pending_effective_date=iso_utc(pending.get("effective_date")))
    return replace(updated, pending_plan_id=None, pending_plan_name=None, pending_effective_date=None)


def missing_from_listing(current: MarketplaceAccount, now: str) -> MarketplaceAccount | None:
    """An account recorded active that no plan lists any more: its `cancelled` delivery was lost."""
    if current.state != "active":
        return None
    moment = datetime.fromisoformat(now)
    return replace(current, state="cancelled", effective_date=now, cancelled_at=now,
                   purge_after=(moment + RETENTION).isoformat(timespec="seconds"),
                   pending_plan_id=None, pending_plan_name=None, pending_effective_date=None)
