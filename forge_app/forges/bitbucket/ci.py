"""Bitbucket Pipelines: what a pipeline step knows about itself (`BITBUCKET_*`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from forge_app.forges.base import CiContext


def detect(env: Mapping[str, str], read_event: Callable[[str], str | None]) -> CiContext | None:
    """This CI's context from its documented variables, or None when this is not it."""
    if not (env.get("BITBUCKET_REPO_FULL_NAME") or env.get("BITBUCKET_BUILD_NUMBER")):
        return None
    return _read(env)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _read(env: Mapping[str, str]) -> CiContext:
    ctx = CiContext(provider="bitbucket-pipelines", forge="bitbucket", repository=env.get("BITBUCKET_REPO_FULL_NAME"),
                    commit=env.get("BITBUCKET_COMMIT"))
    ctx.pull_request = _int(env.get("BITBUCKET_PR_ID"))
    ctx.branch = env.get("BITBUCKET_BRANCH")
    ctx.base_branch = env.get("BITBUCKET_PR_DESTINATION_BRANCH") or None
    origin = env.get("BITBUCKET_GIT_HTTP_ORIGIN")
    if origin and env.get("BITBUCKET_BUILD_NUMBER"):
        ctx.meta["ci_job_url"] = f"{origin}/addon/pipelines/home#!/results/{env['BITBUCKET_BUILD_NUMBER']}"
    return ctx
