"""Checking a GitLab connection before it is saved: is the instance reachable, is the
token valid and `api`-scoped, can it see the project or group?

Each failure becomes one sentence naming what is wrong (never the token). What GitLab
told us (project/group id, default branch, web URL, token scopes) is kept with the connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from forge_app.config import Settings
from forge_app.forges.connections import ConnectionCheckError, ConnectionRequest, register_verifier
from forge_app.forges.gitlab.api import GitLabApi, GitLabBadAnswer, project_ref
from forge_app.forges.gitlab.errors import (
    GitLabError, GitLabForbidden, GitLabNotFound, GitLabRateLimited, GitLabRejected, GitLabServerError,
    GitLabUnauthorized, GitLabUnreachable,
)
from forge_app.forges.gitlab.status import STATUS_NAME

CHECK_TIMEOUT = 15.0
DEVELOPER = 30
NO_SUCH_COMMIT = "0" * 40  # a write probe that can never change anything


def _fail(api: GitLabApi, exc: GitLabError) -> ConnectionCheckError:
    """The sentence for failures that mean the same on every request of the check."""
    where = api.base_url
    if isinstance(exc, GitLabUnreachable):
        return ConnectionCheckError(f"cannot reach GitLab at {where}: {exc.message}", code="forge_unreachable")
    if isinstance(exc, GitLabUnauthorized):
        return ConnectionCheckError(
            f"GitLab at {where} rejected the token (401 Unauthorized): it is invalid, expired or revoked",
            code="invalid_token")
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


def _missing_api_scope(scopes: list[str] | None) -> ConnectionCheckError:
    have = f"has the scope(s) {', '.join(scopes)}" if scopes else "lacks the needed scope"
    return ConnectionCheckError(
        f"the token {have}, but forge-app needs the `api` scope to post discussions and set commit statuses: "
        "create a token with the api scope", code="insufficient_scope")


def token_scopes(api: GitLabApi) -> list[str] | None:
    """The token's scopes, or None when this GitLab or this kind of token cannot tell."""
    try:
        doc = api.get("/personal_access_tokens/self")
    except GitLabForbidden as exc:
        if exc.insufficient_scope:
            raise _missing_api_scope(None) from None
        return None
    except GitLabNotFound as exc:
        if not exc.from_gitlab:
            raise _fail(api, exc) from None
        return None
    scopes = doc.get("scopes") if isinstance(doc, dict) else None
    return sorted(str(s) for s in scopes) if isinstance(scopes, list) else None


def _access_level(project: dict[str, Any]) -> int | None:
    perms = project.get("permissions")
    if not isinstance(perms, dict):
        return None
    levels = [p.get("access_level") for p in (perms.get("project_access"), perms.get("group_access"))
              if isinstance(p, dict) and isinstance(p.get("access_level"), int)]
    return max(levels) if levels else None


def _probe_write(api: GitLabApi, project: dict[str, Any]) -> None:
    """Without readable scopes, a write call tells: a read-only token gets 403 insufficient_scope
    before GitLab even looks for the (impossible) commit."""
    try:
        api.post(f"/projects/{project['id']}/statuses/{NO_SUCH_COMMIT}", {"state": "pending", "name": STATUS_NAME})
    except GitLabForbidden as exc:
        if exc.insufficient_scope:
            raise _missing_api_scope(None) from None
        raise ConnectionCheckError(
            f"the token may not set commit statuses on {project.get('path_with_namespace')} (403 Forbidden): its "
            "user needs at least the Developer role", code="insufficient_access") from None
    except (GitLabNotFound, GitLabRejected):
        return  # 404 commit not found / 400: the write itself was allowed


def _check_project(api: GitLabApi, target: str, scopes: list[str] | None) -> dict[str, Any]:
    try:
        project = api.get(f"/projects/{project_ref(target)}")
    except (GitLabNotFound, GitLabForbidden) as exc:
        if isinstance(exc, GitLabNotFound) and not exc.from_gitlab:
            raise
        raise ConnectionCheckError(
            f"project {target} was not found on {api.base_url}, or the token cannot see it (a project access "
            "token only sees its own project, a group access token only its group)",
            code="target_not_found") from None
    if not isinstance(project, dict) or "id" not in project:
        raise GitLabBadAnswer("the project answer has no id")
    info: dict[str, Any] = {
        "project_id": project["id"], "path_with_namespace": project.get("path_with_namespace"),
        "default_branch": project.get("default_branch"), "web_url": project.get("web_url"), "warnings": [],
    }
    if scopes is None:
        _probe_write(api, project)
    level = _access_level(project)
    if level is not None and level < DEVELOPER:
        info["warnings"].append("the token's user has less than the Developer role on this project, so GitLab "
                                "may refuse commit statuses")
    return info


def _check_group(api: GitLabApi, target: str, scopes: list[str] | None) -> dict[str, Any]:
    try:
        group = api.get(f"/groups/{project_ref(target)}", {"with_projects": "false"})
    except (GitLabNotFound, GitLabForbidden) as exc:
        if isinstance(exc, GitLabNotFound) and not exc.from_gitlab:
            raise
        raise ConnectionCheckError(
            f"group {target} was not found on {api.base_url}, or the token cannot see it", code="target_not_found"
        ) from None
    if not isinstance(group, dict) or "id" not in group:
        raise GitLabBadAnswer("the group answer has no id")
    info: dict[str, Any] = {"group_id": group["id"], "full_path": group.get("full_path"),
                            "web_url": group.get("web_url"), "warnings": []}
    if scopes is None:
        info["warnings"].append("GitLab did not tell the token's scopes; make sure it has the api scope")
    return info


def check_connection(api: GitLabApi, request: ConnectionRequest) -> dict[str, Any]:
    """Blocking: the whole check, in order of what an admin would fix first."""
    try:
        scopes = token_scopes(api)
        if api.redirected_to:  # GETs follow redirects, but GitLab's writes would not
            raise ConnectionCheckError(f"{api.base_url} redirects to {api.redirected_to}: use that as base_url",
                                       code="redirected")
        if scopes is not None and "api" not in scopes:
            raise _missing_api_scope(scopes)
        check = _check_project if request.scope == "project" else _check_group
        info = check(api, request.target, scopes)
    except GitLabError as exc:
        raise _fail(api, exc) from None
    info.update(api_url=f"{api.base_url}/api/v4", token_scopes=scopes)
    return info


async def verify(request: ConnectionRequest, settings: Settings) -> dict[str, Any]:
    api = GitLabApi(request.base_url, request.token, timeout=CHECK_TIMEOUT)
    try:
        return await asyncio.to_thread(check_connection, api, request)
    finally:
        api.close()


register_verifier("gitlab", verify)
