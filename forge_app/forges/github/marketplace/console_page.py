"""Settings → Marketplace: the GitHub Marketplace accounts, as `GET /api/v1/marketplace/accounts` lists them."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from forge_app.console.web import page, render, storage_of
from forge_app.forges.github.marketplace.routes import list_accounts


@page
async def marketplace_page(request: Request) -> Response:
    settings = request.app.state.settings
    accounts = await run_in_threadpool(list_accounts, settings, storage_of(request))
    return render(request, "github/templates/marketplace.html", title="Marketplace", accounts=accounts,
                  enabled=settings.marketplace_plans is not None, listing_url=settings.marketplace_url,
                  plans=sorted((settings.marketplace_plans or {}).items()))
