"""What a CI job knows about itself: repository, commit, branches, PR/MR number.

Pure functions of the environment (and, for GitHub Actions, the event file's
content), so each CI is tested with its real variable names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CiContext:
    provider: str | None = None
    forge: str | None = None
    repository: str | None = None
    commit: str | None = None
    branch: str | None = None
    base_branch: str | None = None
    base_commit: str | None = None
    pull_request: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _github(env: Mapping[str, str], read_event: Callable[[str], str | None]) -> CiContext:
    ctx = CiContext(provider="github-actions", forge="github", repository=env.get("GITHUB_REPOSITORY"),
                    commit=env.get("GITHUB_SHA"))
    event: dict[str, Any] = {}
    if env.get("GITHUB_EVENT_PATH"):
        raw = read_event(env["GITHUB_EVENT_PATH"])
        try:
            event = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            event = {}
    pr = event.get("pull_request") if isinstance(event, dict) else None
    if isinstance(pr, dict):
        # GITHUB_SHA is the merge commit on pull_request events; comments belong on the PR head.
        ctx.commit = (pr.get("head") or {}).get("sha") or ctx.commit
        ctx.base_commit = (pr.get("base") or {}).get("sha")
        ctx.pull_request = pr.get("number") if isinstance(pr.get("number"), int) else None
        ctx.meta["pull_request_title"] = pr.get("title")
        ctx.meta["pull_request_author_username"] = (pr.get("user") or {}).get("login")
    if ctx.pull_request is None:
        m = re.match(r"^refs/pull/(\d+)/", env.get("GITHUB_REF", ""))
        ctx.pull_request = int(m.group(1)) if m else None
    ctx.branch = env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME")
    ctx.base_branch = env.get("GITHUB_BASE_REF") or None
    if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_RUN_ID") and ctx.repository:
        ctx.meta["ci_job_url"] = f"{env['GITHUB_SERVER_URL']}/{ctx.repository}/actions/runs/{env['GITHUB_RUN_ID']}"
    ctx.meta["commit_author_username"] = env.get("GITHUB_ACTOR")
    return ctx


def _gitlab(env: Mapping[str, str]) -> CiContext:
    # In merged-results pipelines CI_COMMIT_SHA is a merge commit the MR never shows; comments
    # and statuses belong on the MR's head, which GitLab gives as the source branch SHA.
    ctx = CiContext(provider="gitlab-ci", forge="gitlab", repository=env.get("CI_PROJECT_PATH"),
                    commit=env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA") or env.get("CI_COMMIT_SHA"))
    ctx.pull_request = _int(env.get("CI_MERGE_REQUEST_IID"))
    ctx.branch = (env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or env.get("CI_COMMIT_BRANCH")
                  or env.get("CI_COMMIT_REF_NAME"))
    ctx.base_branch = env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME") or None
    ctx.base_commit = env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA") or None
    ctx.meta.update({
        "ci_job_url": env.get("CI_JOB_URL"),
        "commit_title": env.get("CI_COMMIT_TITLE"),
        "commit_author_username": env.get("GITLAB_USER_LOGIN"),
        "commit_author_email": env.get("GITLAB_USER_EMAIL"),
        "pull_request_title": env.get("CI_MERGE_REQUEST_TITLE"),
    })
    author = env.get("CI_COMMIT_AUTHOR") or ""
    m = re.match(r"^(.*?)\s*<([^>]+)>$", author)
    if m:
        ctx.meta["commit_author_name"], ctx.meta["commit_author_email"] = m.group(1), m.group(2)
    return ctx


def _bitbucket(env: Mapping[str, str]) -> CiContext:
    ctx = CiContext(provider="bitbucket-pipelines", forge="bitbucket", repository=env.get("BITBUCKET_REPO_FULL_NAME"),
                    commit=env.get("BITBUCKET_COMMIT"))
    ctx.pull_request = _int(env.get("BITBUCKET_PR_ID"))
    ctx.branch = env.get("BITBUCKET_BRANCH")
    ctx.base_branch = env.get("BITBUCKET_PR_DESTINATION_BRANCH") or None
    origin = env.get("BITBUCKET_GIT_HTTP_ORIGIN")
    if origin and env.get("BITBUCKET_BUILD_NUMBER"):
        ctx.meta["ci_job_url"] = f"{origin}/addon/pipelines/home#!/results/{env['BITBUCKET_BUILD_NUMBER']}"
    return ctx


def detect_ci(env: Mapping[str, str], read_event: Callable[[str], str | None] = lambda _p: None) -> CiContext:
    """The CI this runs in, from its documented variables; an empty context elsewhere."""
    if env.get("GITHUB_ACTIONS") == "true" or env.get("GITHUB_REPOSITORY"):
        ctx = _github(env, read_event)
    elif env.get("GITLAB_CI") or env.get("CI_PROJECT_PATH"):
        ctx = _gitlab(env)
    elif env.get("BITBUCKET_REPO_FULL_NAME") or env.get("BITBUCKET_BUILD_NUMBER"):
        ctx = _bitbucket(env)
    else:
        ctx = CiContext()
    ctx.meta = {k: v for k, v in ctx.meta.items() if v}
    if ctx.provider:
        ctx.meta["ci_provider"] = ctx.provider
    return ctx
