"""Bitbucket connections: checking an access token before it is saved, and finding the
connection that serves a repository.

Access tokens cannot call `/user`, so a token is checked against what it is for, with
one request: a repository token against `GET /repositories/{workspace}/{repo_slug}`, a
workspace token against `GET /repositories/{workspace}` (the only route of the check
outside the API description forge-app is tested against: every route of that description
names a repository, and a workspace connection has none yet; see docs/bitbucket.md).
The scopes come from `X-OAuth-Scopes`, which Bitbucket sends for access tokens; without
it the token is saved, and a missing scope shows as a 403 with a sentence on the first
publish (`job_error`).
"""

from __future__ import annotations

from typing import Any

import httpx

from forge_app.config import Settings
from forge_app.forges.bitbucket import FORGE
from forge_app.forges.bitbucket.http import BitbucketApi, BitbucketError, display_url, scopes_of, seg
from forge_app.forges.connections import ConnectionCheckError, ConnectionRequest
from forge_app.security.crypto import SecretsUnavailable, decrypt
from storage import Connection, Storage

WRITE_SCOPE = "pullrequest:write"


def covering_connection(storage: Storage, full_name: str) -> Connection | None:
    """The connection serving `workspace/repo_slug`: its repository connection, else its workspace's."""
    return storage.connection_for(FORGE, full_name)


def connection_token(settings: Settings, connection: Connection) -> str:
    return decrypt(settings.secret_key, connection.token_enc)


def connection_secret(settings: Settings, connection: Connection) -> str | None:
    try:
        return decrypt(settings.secret_key, connection.webhook_secret_enc)
    except SecretsUnavailable:
        return None


def split_full_name(full_name: str) -> tuple[str, str]:
    workspace, _, slug = full_name.partition("/")
    return workspace, slug


def _refused(exc: BitbucketError, what: str, scope: str) -> ConnectionCheckError:
    if exc.status == 401:
        return ConnectionCheckError("Bitbucket refused the access token (401): it is invalid, expired or revoked",
                                    code="invalid_token")
    if exc.status == 403:
        wanted = f" (Bitbucket wants: {exc.accepted_scopes})" if exc.accepted_scopes else ""
        return ConnectionCheckError(f"the access token may not read {what} (403){wanted}; give it "
                                    "Repositories: Read and Pull requests: Write (repository, pullrequest:write)",
                                    code="insufficient_scope")
    if exc.status == 404:
        hint = ("a repository access token only reaches the repository it was created in"
                if scope == "repository" else "a workspace access token only reaches its own workspace")
        return ConnectionCheckError(f"{what} was not found, or this token cannot see it: {hint}",
                                    code="not_in_scope")
    if exc.status == 429 or exc.status >= 500:
        return ConnectionCheckError(f"Bitbucket is unavailable ({exc.status}); try again in a minute",
                                    code="forge_unavailable")
    return ConnectionCheckError(f"Bitbucket rejected the check of {what} ({exc.status}): {exc.message}")


def _check_scopes(scopes: set[str] | None) -> None:
    if scopes is not None and WRITE_SCOPE not in scopes:
        has = ", ".join(sorted(scopes)) or "none"
        raise ConnectionCheckError(
            f"the access token lacks pull request write access (it has: {has}); create it with the "
            "pullrequest:write scope (Pull requests: Write) so forge-app can comment",
            code="insufficient_scope")


def _scope_info(scopes: set[str] | None) -> dict[str, Any]:
    if scopes is not None:
        return {"scopes": sorted(scopes)}
    return {"scopes": None, "warnings": [
        "Bitbucket did not say which scopes the token has; if it lacks Pull requests: Write (pullrequest:write), "
        "publishing stops at the first refused request with a 403 naming the missing scope"]}


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


async def _check_repository(api: BitbucketApi, target: str) -> dict[str, Any]:
    workspace, slug = split_full_name(target)
    what = f"repository {target}"
    try:
        response = await api.request("GET", f"/repositories/{seg(workspace)}/{seg(slug)}")
    except BitbucketError as exc:
        raise _refused(exc, what, "repository") from None
    scopes = scopes_of(response)
    _check_scopes(scopes)
    doc = _json(response)
    mainbranch = (doc.get("mainbranch") or {}).get("name") if isinstance(doc, dict) else None
    return {"checked": "repository", "repository": doc.get("full_name", target) if isinstance(doc, dict) else target,
            "mainbranch": mainbranch, **_scope_info(scopes)}


async def _check_workspace(api: BitbucketApi, target: str) -> dict[str, Any]:
    what = f"workspace {target}"
    try:
        # Outside the tested API description (see the module doc): the one workspace-level route.
        response = await api.request("GET", f"/repositories/{seg(target)}", params={"pagelen": 1})
    except BitbucketError as exc:
        raise _refused(exc, what, "workspace") from None
    scopes = scopes_of(response)
    _check_scopes(scopes)
    doc = _json(response)
    return {"checked": "workspace", "workspace": target,
            "repositories": doc.get("size") if isinstance(doc, dict) else None, **_scope_info(scopes)}


async def verify(request: ConnectionRequest, settings: Settings) -> dict[str, Any]:
    """What Bitbucket told about the token (kept with the connection); raises a clear sentence otherwise."""
    try:
        async with BitbucketApi(request.base_url, request.token, timeout=20.0) as api:
            if request.scope == "repository":
                return await _check_repository(api, request.target)
            return await _check_workspace(api, request.target)
    except httpx.HTTPError as exc:
        raise ConnectionCheckError(
            f"Bitbucket at {display_url(request.base_url)} could not be reached ({type(exc).__name__}); check base_url "
            "and that this server can reach it", code="forge_unreachable") from None

