"""Marketplace plans and the serving decision, pure: no I/O, no clock.

Whoever sells forge-app on a marketplace listing maps each listing plan to limits in a
plans file; whether a scan of a repository is published follows from the account's plan,
the repository's visibility and how many of the account's repositories already have
scans. The decision is made once, when the scan is uploaded, so it is a database read
and never a forge call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from forge_app.core.triage import Triage

LIMITS = ("repositories", "private_repositories", "block")
NO_PLAN = "no active plan"
LIMIT_REACHED = "plan limit reached"


class PlansError(ValueError):
    """The plans file cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class PlanLimits:
    repositories: int | None = None  # None: any number of repositories with scans
    private_repositories: bool = True
    block: bool = True  # False: block rules act as comment rules


@dataclass(frozen=True, slots=True)
class AccountPlan:
    """What the database knows of an account's purchase, as the decision needs it."""

    login: str
    state: str  # active | cancelled | none
    plan_name: str | None = None


@dataclass(frozen=True, slots=True)
class Serving:
    served: bool
    reason: str | None = None  # a sentence for the user when not served
    title: str | None = None  # the neutral check run's title: NO_PLAN or LIMIT_REACHED
    block_allowed: bool = True

    def as_meta(self) -> dict[str, Any]:
        return {"published": self.served, "reason": self.reason, "title": self.title,
                "block_allowed": self.block_allowed}

    @classmethod
    def from_meta(cls, value: Any) -> Serving | None:
        if not isinstance(value, dict) or not isinstance(value.get("published"), bool):
            return None
        return cls(served=value["published"], reason=value.get("reason"), title=value.get("title"),
                   block_allowed=value.get("block_allowed") is not False)


SERVED = Serving(True)


def parse_plans(text: str, source: str = "the plans file") -> dict[str, PlanLimits]:
    """`{"plans": {"<name>": {"repositories": N|null, "private_repositories": bool, "block": bool}}}`.

    Strict on purpose: a typo in a limit would otherwise silently serve (or refuse) paying
    customers, so an unknown key or a wrong type stops the server from starting."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise PlansError(f"{source} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("plans"), dict):
        raise PlansError(f'{source} must be an object with a "plans" object mapping plan names to limits')
    unknown_top = sorted(set(doc) - {"plans"})
    if unknown_top:
        raise PlansError(f"{source}: unknown key(s) {', '.join(unknown_top)} (only \"plans\" is read)")
    plans: dict[str, PlanLimits] = {}
    for name, limits in doc["plans"].items():
        if not name.strip():
            raise PlansError(f"{source}: a plan name is empty")
        if not isinstance(limits, dict):
            raise PlansError(f"{source}: plan {name!r} must map to an object of limits")
        unknown = sorted(set(limits) - set(LIMITS))
        if unknown:
            raise PlansError(f"{source}: plan {name!r} names unknown limit(s) {', '.join(unknown)} "
                             f"(known: {', '.join(LIMITS)})")
        repos = limits.get("repositories")
        if repos is not None and (isinstance(repos, bool) or not isinstance(repos, int) or repos < 0):
            raise PlansError(f"{source}: plan {name!r}: repositories must be a whole number >= 0 or null")
        for flag in ("private_repositories", "block"):
            if flag in limits and not isinstance(limits[flag], bool):
                raise PlansError(f"{source}: plan {name!r}: {flag} must be true or false")
        plans[name] = PlanLimits(repositories=repos, private_repositories=limits.get("private_repositories", True),
                                 block=limits.get("block", True))
    return plans


def decide(account: AccountPlan | None, plans: Mapping[str, PlanLimits], *, private: bool | None,
           scanned_before: int, listing: str = "the marketplace listing") -> Serving:
    """Is a scan of this repository published?

    `private` is the repository's visibility (None: not known yet, taken as private, since a
    public repository is the one a free plan covers); `scanned_before` counts the account's
    OTHER repositories that had scans before this one, so a repository over the limit never
    takes the place of one already served. `listing` names the listing in the reason."""
    if account is None or account.state == "none":
        login = account.login if account else "this account"
        return Serving(False, f"{login} has no plan on {listing}", NO_PLAN)
    if account.state != "active" or not account.plan_name:
        return Serving(False, f"the plan of {account.login} was cancelled", NO_PLAN)
    limits = plans.get(account.plan_name)
    if limits is None:
        return Serving(False, f"the plan {account.plan_name!r} of {account.login} is not in this server's plans "
                              "file", NO_PLAN)
    if private is not False and not limits.private_repositories:
        what = "this repository is private" if private else "this repository's visibility is not known yet"
        return Serving(False, f"the {account.plan_name!r} plan covers public repositories only and {what}",
                       LIMIT_REACHED, limits.block)
    if limits.repositories is not None and scanned_before >= limits.repositories:
        return Serving(False, f"the {account.plan_name!r} plan covers {limits.repositories} "
                              f"repositor{'y' if limits.repositories == 1 else 'ies'} with scans and "
                              f"{account.login} already has {scanned_before}", LIMIT_REACHED, limits.block)
    return Serving(True, None, None, limits.block)


def comment_instead_of_block(result: Triage) -> Triage:
    """A plan without `block`: every block rule acts as a comment rule (check, `blocking`, exit code)."""
    return Triage([replace(e, mode="comment") if e.mode == "block" else e for e in result.entries])


SERVING_META = "marketplace"
"""The key of a scan's meta holding its serving decision (set by the server, never taken from an upload)."""


def scan_serving(meta: object) -> Serving | None:
    """The serving decision a scan's meta holds (None: its forge decided none when it was uploaded)."""
    return Serving.from_meta(meta.get(SERVING_META)) if isinstance(meta, dict) else None


def published_fields(meta: object) -> dict[str, Any]:
    """`published` / `reason` of the scans API: true and null unless a serving decision withheld the scan."""
    serving = scan_serving(meta)
    if serving is None or serving.served:
        return {"published": True, "reason": None}
    return {"published": False, "reason": serving.reason}
