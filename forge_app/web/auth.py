"""Bearer-token checks for admin and upload routes (constant-time, never logged)."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from forge_app.web.errors import ApiError


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def is_admin(request: Request) -> bool:
    expected = request.app.state.settings.admin_token
    token = bearer(request)
    return bool(expected and token and hmac.compare_digest(token.encode(), expected.encode()))


def require_admin(request: Request) -> None:
    if not request.app.state.settings.admin_token:
        raise ApiError(403, "admin_disabled", "the admin API is disabled: set FORGE_APP_ADMIN_TOKEN on the server")
    if bearer(request) is None:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <FORGE_APP_ADMIN_TOKEN>",
                       headers={"WWW-Authenticate": "Bearer"})
    if not is_admin(request):
        token = bearer(request)
        if token and request.app.state.storage.repository_for_token(token) is not None:
            raise ApiError(403, "forbidden", "this is an upload token; admin routes need FORGE_APP_ADMIN_TOKEN")
        raise ApiError(401, "unauthorized", "the admin token is not valid", headers={"WWW-Authenticate": "Bearer"})
