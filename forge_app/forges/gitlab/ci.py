"""GitLab CI/CD: what a pipeline job knows about itself (`CI_*`, `GITLAB_USER_*`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from forge_app.forges.base import CiContext


def detect(env: Mapping[str, str], read_event: Callable[[str], str | None]) -> CiContext | None:
    """This CI's context from its documented variables, or None when this is not it."""
    if not (env.get("GITLAB_CI") or env.get("CI_PROJECT_PATH")):
        return None
    return _read(env)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _read(env: Mapping[str, str]) -> CiContext:
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
