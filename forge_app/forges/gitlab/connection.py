"""Checking a GitLab connection before it is saved: is the instance reachable, is the
token valid and `api`-scoped, does it see the project or group?

Two reads, both in GitLab's documented API (docs/gitlab.md, "API routes"):

1. `GET /personal_access_tokens/self` describes the token itself, whatever its kind
   (personal, project or group access token): 401 means invalid, expired or revoked;
   `active: false` or `revoked: true` the same; `scopes` must include `api`, since
   forge-app posts discussions and sets commit statuses.
2. `GET /projects/:id` or `GET /groups/:id`: 404 means it does not exist or the token
   cannot see it. A project answer's `permissions` tell the token user's role; below
   Developer (30) it could not set statuses or resolve threads.

Nothing is written: an earlier version probed with a status write on a commit that cannot
exist, which read as a write to anyone auditing the token. Each failure becomes one
sentence naming what is wrong (never the token). The default branch is not asked for:
webhooks tell it (forges/gitlab/publish.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from forge_app.config import Settings
from forge_app.forges.connections import ConnectionCheckError, ConnectionRequest
from forge_app.forges.gitlab.errors import (
    GitLabError,
    GitLabForbidden,
    GitLabNotFound,
    GitLabRateLimited,
    GitLabRejected,
    GitLabServerError,
    GitLabUnauthorized,
    GitLabUnreachable,
)
from forge_app.forges.gitlab.http import GitLabApi, GitLabBadAnswer, project_ref

CHECK_TIMEOUT = 15.0
DEVELOPER = 30  # GitLab's access level that may set commit statuses and resolve threads


def _fail(api: GitLabApi, exc: GitLabError) -> ConnectionCheckError:
    """The sentence for failures that mean the same on every request of the check."""
    where = api.base_url
    if api.redirected_to:  # GitLab's writes would not follow the redirect
        return ConnectionCheckError(f"{where} redirects to {api.redirected_to}: use that as base_url",
                                    code="redirected")
    if isinstance(exc, GitLabUnreachable):
        return ConnectionCheckError(f"cannot reach GitLab at {where}: {exc.message}", code="forge_unreachable")
    if isinstance(exc, GitLabUnauthorized):
        return ConnectionCheckError(
            f"GitLab at {where} rejected the token (401 Unauthorized): it is invalid, expired or revoked",
            code="invalid_token")
    if isinstance(exc, GitLabForbidden) and exc.insufficient_scope:
        return ConnectionCheckError(
            "the token lacks the `api` scope, which forge-app needs to post discussions and set commit statuses: "
            "create a token with the api scope", code="insufficient_scope")
    if isinstance(exc, GitLabBadAnswer) or (isinstance(exc, GitLabNotFound) and not exc.from_gitlab):
        return ConnectionCheckError(
            f"{where} does not answer like a GitLab instance (no GitLab API at {where}/api/v4): base_url must be "
            "the instance URL, e.g. https://gitlab.example.com", code="not_gitlab")
    if isinstance(exc, GitLabRateLimited):
        wait = f" in {int(exc.retry_after)} seconds" if exc.retry_after else " later"
        return ConnectionCheckError(f"GitLab at {where} is rate limiting requests; try again{wait}",
                                    code="forge_unavailable")
    if isinstance(exc, GitLabServerError):
        return ConnectionCheckError(f"GitLab at {where} failed to answer ({exc.message}); try again later",
                                    code="forge_unavailable")
    return ConnectionCheckError(f"GitLab at {where} refused the check ({exc.status}): {exc.message}")


def _check_token(api: GitLabApi) -> list[str]:
    """The token's own description; its scopes must include `api`."""
    token = api.get("/personal_access_tokens/self")
    if not isinstance(token, dict) or not isinstance(token.get("scopes"), list):
        raise GitLabBadAnswer("the token answer has no scopes")
    if token.get("revoked") or token.get("active") is False:
        raise GitLabUnauthorized("the token is inactive or revoked")
    scopes = [str(s) for s in token["scopes"]]
    if "api" not in scopes:
        raise GitLabForbidden("insufficient_scope", insufficient_scope=True)
    return scopes


def _access_level(project: dict[str, Any]) -> int | None:
    """The token user's role on the project, from `permissions` (project or inherited group
    access, whichever is higher); None when GitLab did not say."""
    permissions = project.get("permissions")
    if not isinstance(permissions, dict):
        return None
    levels = [p.get("access_level") for p in permissions.values() if isinstance(p, dict)]
    known = [level for level in levels if isinstance(level, int)]
    return max(known) if known else None


def _check_project(api: GitLabApi, target: str) -> dict[str, Any]:
    try:
        project = api.get(f"/projects/{project_ref(target)}")
    except GitLabNotFound as exc:
        if not exc.from_gitlab:
            raise
        raise ConnectionCheckError(
            f"project {target} was not found on {api.base_url}, or the token cannot see it (a project access "
            "token only sees its own project, a group access token only its group)",
            code="target_not_found") from None
    if not isinstance(project, dict) or "id" not in project:
        raise GitLabBadAnswer("the project answer has no id")
    level = _access_level(project)
    if level is not None and level < DEVELOPER:
        raise ConnectionCheckError(
            f"the token may not set commit statuses on {target}: its user needs at least the Developer role",
            code="insufficient_access")
    return {"checked": "token scopes and project", "project_id": project["id"],
            "path_with_namespace": project.get("path_with_namespace"), "web_url": project.get("web_url")}


def _check_group(api: GitLabApi, target: str) -> dict[str, Any]:
    try:
        group = api.get(f"/groups/{project_ref(target)}", {"with_projects": "false"})
    except (GitLabNotFound, GitLabForbidden) as exc:
        if isinstance(exc, GitLabNotFound) and not exc.from_gitlab:
            raise
        if isinstance(exc, GitLabForbidden) and exc.insufficient_scope:
            raise
        raise ConnectionCheckError(
            f"group {target} was not found on {api.base_url}, or the token cannot see it", code="target_not_found"
        ) from None
    if not isinstance(group, dict) or "id" not in group:
        raise GitLabBadAnswer("the group answer has no id")
    return {"checked": "token scopes and group", "group_id": group["id"], "full_path": group.get("full_path"),
            "web_url": group.get("web_url")}


def check_connection(api: GitLabApi, request: ConnectionRequest) -> dict[str, Any]:
    """Blocking: the whole check, in order of what an admin would fix first."""
    try:
        scopes = _check_token(api)
        check = _check_project if request.scope == "project" else _check_group
        info = check(api, request.target)
        info["scopes"] = scopes
    except GitLabError as exc:
        raise _fail(api, exc) from None
    if api.redirected_to:  # the redirected GETs worked, but GitLab's writes would not follow
        raise _fail(api, GitLabRejected("redirected"))
    info["api_url"] = f"{api.base_url}/api/v4"
    return info


async def verify(request: ConnectionRequest, settings: Settings) -> dict[str, Any]:
    api = GitLabApi(request.base_url, request.token, timeout=CHECK_TIMEOUT)
    try:
        return await asyncio.to_thread(check_connection, api, request)
    finally:
        api.close()

