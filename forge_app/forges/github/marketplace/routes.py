"""GitHub Marketplace routes: the listing webhook, the admin account list, the Setup URL.

`/github/installed` is listed here before forge_app/forges/github/setup_routes.py's route of
the same path: with plans configured it runs the Marketplace setup (user authorization,
account and plan); without, it hands over to the plain "installed" page unchanged.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forge_app.core.plans import AccountPlan, decide
from forge_app.forges.github.marketplace import LISTING, setup_url
from forge_app.forges.github.marketplace.webhook import receive
from forge_app.web.auth import require_admin
from forge_app.web.routes.openapi import error_responses
from storage import MarketplaceAccount, Storage


def account_json(account: MarketplaceAccount | None, login: str, type_: str | None, served: bool | None,
                 reason: str | None) -> dict[str, Any]:
    if account is None or account.plan_id is None:
        plan = None
    else:
        plan = {"id": account.plan_id, "name": account.plan_name, "price_model": account.price_model,
                "unit_count": account.unit_count}
    pending = None
    if account is not None and account.pending_plan_id is not None:
        pending = {"plan": {"id": account.pending_plan_id, "name": account.pending_plan_name},
                   "effective_date": account.pending_effective_date}
    return {
        "account_id": account.account_id if account else None,
        "login": account.login if account else login,
        "type": (account.type if account else None) or type_,
        "plan": plan,
        "on_free_trial": bool(account and account.on_free_trial),
        "free_trial_ends_on": account.free_trial_ends_on if account else None,
        "next_billing_date": account.next_billing_date if account else None,
        "pending_change": pending,
        "state": account.state if account and account.state in ("active", "cancelled") else "none",
        "served": served,
        "reason": reason,
    }


def list_accounts(settings: Any, storage: Storage) -> list[dict[str, Any]]:
    """Every account that bought a plan, and every installation's account that never did."""
    plans = settings.marketplace_plans
    out = []
    seen = set()

    def served(login: str, account: MarketplaceAccount | None) -> tuple[bool | None, str | None]:
        if plans is None:
            return True, None  # Marketplace off: every installation is served
        # The account-level answer: its plan, before any per-repository limit.
        verdict = decide(AccountPlan(login, account.state if account else "none",
                                     account.plan_name if account else None), plans, private=False,
                         scanned_before=0, listing=LISTING)
        return verdict.served, verdict.reason

    for account in storage.marketplace_accounts():
        seen.add(account.login.lower())
        out.append(account_json(account, account.login, account.type, *served(account.login, account)))
    for row in storage.installation_accounts():
        if row["login"].lower() in seen:
            continue
        out.append(account_json(None, row["login"], row["type"], *served(row["login"], None)))
    return sorted(out, key=lambda a: a["login"].lower())


async def accounts(request: Request) -> Response:
    require_admin(request)
    settings = request.app.state.settings
    return JSONResponse(await run_in_threadpool(list_accounts, settings, request.app.state.storage))


async def installed(request: Request) -> Response:
    if request.app.state.settings.marketplace_plans is None:
        from forge_app.forges.github.setup_routes import installed as plain_installed

        return await plain_installed(request)
    return await setup_url.installed(request)


routes = [
    Route("/webhooks/github/marketplace", receive, methods=["POST"]),
    Route("/api/v1/marketplace/accounts", accounts, methods=["GET"]),
    Route("/github/installed", installed, methods=["GET"]),
    Route("/github/marketplace/callback", setup_url.callback, methods=["GET"]),
]

_ACCOUNT_SCHEMA = {
    "type": "object",
    "required": ["account_id", "login", "type", "plan", "state", "served", "reason"],
    "properties": {
        "account_id": {"type": "integer", "nullable": True},
        "login": {"type": "string"},
        "type": {"type": "string", "nullable": True},
        "plan": {"type": "object", "nullable": True, "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"},
            "price_model": {"type": "string", "nullable": True},
            "unit_count": {"type": "integer", "nullable": True}}},
        "on_free_trial": {"type": "boolean"},
        "free_trial_ends_on": {"type": "string", "nullable": True},
        "next_billing_date": {"type": "string", "nullable": True},
        "pending_change": {"type": "object", "nullable": True},
        "state": {"type": "string", "enum": ["active", "cancelled", "none"]},
        "served": {"type": "boolean", "nullable": True},
        "reason": {"type": "string", "nullable": True},
    },
}

OPENAPI_SCHEMAS = {"MarketplaceAccount": _ACCOUNT_SCHEMA}
OPENAPI_PATHS = {
    "/api/v1/marketplace/accounts": {
        "get": {
            "summary": "GitHub Marketplace accounts: plan, trial, pending change, state, and whether they are served",
            "security": [{"adminToken": []}],
            "responses": {
                "200": {"description": "every account that bought a plan, and installations' accounts that never did",
                        "content": {"application/json": {"schema": {
                            "type": "array", "items": {"$ref": "#/components/schemas/MarketplaceAccount"}}}}},
                **error_responses(401, 403),
            },
        }
    },
}
