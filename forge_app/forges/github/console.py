"""GitHub's part of the console: the GitHub App panel on Settings → Connections and its setup action."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from forge_app.console.web import Form, PageError, action, queries, redirect, storage_of
from forge_app.forges.github import registration
from forge_app.forges.github.credentials import load_credentials

PANEL_TEMPLATE = "github/templates/connections_panel.html"


def connections_panel(request: Request) -> dict[str, Any]:
    """The app's status: configured or not, its installations and their repositories."""
    settings = request.app.state.settings
    creds = load_credentials(settings, storage_of(request))
    return {"template": PANEL_TEMPLATE, "context": {
        "configured": creds.can_authenticate, "app_id": creds.app_id, "slug": creds.slug,
        "install_url": registration.install_url(settings, creds.slug) if creds.slug else None,
        "installations": queries(request).github_installations()}}


@action
async def github_setup(request: Request, form: Form) -> Response:
    """A fresh one-time link to the manifest flow (what `forge-app github setup` prints)."""
    settings = request.app.state.settings
    try:
        code = registration.page_code(settings, storage_of(request), None)
    except registration.RegistrationError as exc:
        raise PageError(exc.status if exc.status < 500 else 400, "GitHub App setup", exc.detail) from None
    return redirect(f"/github/setup?token={code}")
