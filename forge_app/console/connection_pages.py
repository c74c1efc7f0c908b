"""Settings → Connections: connections to the forges reached through them, and each forge's own panel
(an app's status), from the registry.

A connection is added with the API's own parsing and the same check against the forge
(`verify_connection`); tokens and webhook secrets are stored encrypted and never shown.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from forge_app.console.web import Form, PageError, action, int_param, page, redirect, render, storage_of
from forge_app.forges.connections import ConnectionCheckError
from forge_app.forges.registry import FORGES, verify_connection
from forge_app.security.crypto import encrypt
from forge_app.web.errors import ApiError
from forge_app.web.routes.connections import SCOPES, parse_connection


def _context(request: Request, values: dict[str, str] | None = None) -> dict[str, Any]:
    settings = request.app.state.settings
    storage = storage_of(request)
    return dict(
        title="Connections", connections=storage.connections(), scopes=SCOPES,
        webhook_base=f"{settings.public_url}/webhooks",
        panels=[f.connections_panel(request) for f in FORGES.values() if f.connections_panel is not None],
        values=values or {"forge": next(iter(SCOPES)), "scope": next(iter(SCOPES.values()))[0], "base_url": "",
                          "target": ""},
        connection_forges={name: FORGES[name].title for name in SCOPES},
        connection_kinds={name: FORGES[name].connections for name in SCOPES},
    )


@page
async def connections_page(request: Request) -> Response:
    return render(request, "connections.html", **_context(request))


@action
async def add_connection(request: Request, form: Form) -> Response:
    settings = request.app.state.settings
    values = {k: form.get(k).strip() for k in ("forge", "scope", "base_url", "target")}
    doc = {**values, "token": form.get("token"), "webhook_secret": form.get("webhook_secret")}
    if not doc["base_url"]:
        del doc["base_url"]
    try:
        if not settings.secret_key:
            raise ApiError(400, "secret_key_missing", "the server has no FORGE_APP_SECRET_KEY to encrypt the token "
                                                      "with: set it and restart")
        req = parse_connection(doc, settings)
        info = await verify_connection(req, settings)
    except ApiError as exc:
        return render(request, "connections.html", status=exc.status, error=exc.detail, **_context(request, values))
    except ConnectionCheckError as exc:
        return render(request, "connections.html", status=400, error=exc.detail, **_context(request, values))
    storage_of(request).create_connection(
        forge=req.forge, base_url=req.base_url, scope=req.scope, target=req.target,
        token_enc=encrypt(settings.secret_key, req.token),
        webhook_secret_enc=encrypt(settings.secret_key, req.webhook_secret), info=info)
    return redirect("/settings/connections?added=1")


def _connection(request: Request) -> Any:
    c = storage_of(request).connection(int_param(request, "connection_id"))
    if c is None:
        raise PageError(404, "Not found", "This connection does not exist (any more).")
    return c


@page
async def delete_connection_confirm(request: Request) -> Response:
    c = _connection(request)
    return render(request, "confirm_delete.html", title=f"Delete the {c.forge} connection?",
                  what=f"the {c.forge} connection to {c.target} ({c.base_url}); its repositories stop getting comments",
                  action_url=f"/settings/connections/{c.id}/delete", cancel_url="/settings/connections")


@action
async def delete_connection(request: Request, form: Form) -> Response:
    c = _connection(request)
    storage_of(request).delete_connection(c.id)
    return redirect("/settings/connections?deleted=1")
