"""Checking a GitLab connection before it is saved: is the instance reachable, is the
token valid and `api`-scoped, may it set commit statuses on the project?

The check stays within the routes forge-app uses anyway (docs/gitlab.md, "API routes"):
one harmless write probe, `POST /projects/:id/statuses/<40 zeros>`. A commit with that SHA
cannot exist, so the probe never changes anything, and GitLab answers it in an order
that tells everything the check needs:

- no answer at all: the instance is unreachable;
- 401: the token is invalid, expired or revoked;
- 403 `insufficient_scope`: the token lacks the `api` scope (checked before anything else);
- 404 `Project Not Found`: the project does not exist or the token cannot see it;
- 403 otherwise: the token's user may not set statuses (below the Developer role);
- 404 `Commit Not Found` (or `References for commit Not Found`): everything is in order.
  A 2xx or 400 also means the write itself was allowed.

A group connection has no project to probe, and the contract has no group route: the
probe goes to project id 0 (which never exists: 404 with an `api` token, 403
`insufficient_scope` without), then one `GET /groups/:id` checks that the group exists
and the token sees it. That GET is the only request of the check outside the contract.

Each failure becomes one sentence naming what is wrong (never the token). The default
branch is not asked for: webhooks tell it (forges/gitlab/publish.py).
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
NO_SUCH_COMMIT = "0" * 40  # a write probe that can never change anything
NO_SUCH_PROJECT = "0"  # GitLab project ids start at 1


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


def _project_missing(exc: GitLabNotFound) -> bool:
    """GitLab says `404 Project Not Found` for a project that does not exist or is invisible to
    the token, and `404 Commit Not Found` (or `404 References for commit Not Found`) for the
    probe's impossible commit once the project was found."""
    return "project" in exc.message.lower()


def _probe(api: GitLabApi, project: str) -> None:
    """The status write on the impossible commit; raises what GitLab refused (see the module doc)."""
    answer = api.post(f"/projects/{project}/statuses/{NO_SUCH_COMMIT}", {"state": "pending", "name": STATUS_NAME})
    if answer is None:  # a 2xx that is not GitLab's JSON
        raise GitLabBadAnswer("the answer is not JSON")


def _check_project(api: GitLabApi, target: str) -> dict[str, Any]:
    try:
        _probe(api, project_ref(target))
    except GitLabNotFound as exc:
        if not exc.from_gitlab:
            raise
        if _project_missing(exc):
            raise ConnectionCheckError(
                f"project {target} was not found on {api.base_url}, or the token cannot see it (a project access "
                "token only sees its own project, a group access token only its group)",
                code="target_not_found") from None
        # 404 Commit Not Found: the token may write statuses on the project.
    except GitLabForbidden as exc:
        if exc.insufficient_scope:
            raise
        raise ConnectionCheckError(
            f"the token may not set commit statuses on {target} (403 Forbidden): its user needs at least the "
            "Developer role", code="insufficient_access") from None
    except GitLabRejected:
        if api.redirected_to:
            raise
        # 400 (e.g. a GitLab that validates the state transition first): the write itself was allowed.
    info: dict[str, Any] = {"checked": "commit status write"}
    if target.isdigit():
        info["project_id"] = int(target)  # so webhooks (which carry the id) find this connection
    return info


def _check_group(api: GitLabApi, target: str) -> dict[str, Any]:
    try:
        _probe(api, NO_SUCH_PROJECT)
    except GitLabNotFound as exc:
        if not exc.from_gitlab:
            raise
        # 404 Project Not Found: a valid token with the api scope.
    except GitLabForbidden as exc:
        if exc.insufficient_scope:
            raise
    except GitLabRejected:
        if api.redirected_to:
            raise
    # Outside the contract, the one request that can tell whether the group exists for this token.
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
    return {"checked": "commit status write and group", "group_id": group["id"], "full_path": group.get("full_path"),
            "web_url": group.get("web_url")}


def check_connection(api: GitLabApi, request: ConnectionRequest) -> dict[str, Any]:
    """Blocking: the whole check, in order of what an admin would fix first."""
    try:
        check = _check_project if request.scope == "project" else _check_group
        info = check(api, request.target)
    except GitLabError as exc:
        raise _fail(api, exc) from None
    if api.redirected_to:  # a redirected GET (the group check) worked, but writes would not
        raise _fail(api, GitLabRejected("redirected"))
    info["api_url"] = f"{api.base_url}/api/v4"
    return info


async def verify(request: ConnectionRequest, settings: Settings) -> dict[str, Any]:
    api = GitLabApi(request.base_url, request.token, timeout=CHECK_TIMEOUT)
    try:
        return await asyncio.to_thread(check_connection, api, request)
    finally:
        api.close()


register_verifier("gitlab", verify)
