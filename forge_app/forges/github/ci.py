"""GitHub Actions: what a workflow run knows about itself (`GITHUB_*`, the event file)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from forge_app.forges.base import CiContext


def detect(env: Mapping[str, str], read_event: Callable[[str], str | None]) -> CiContext | None:
    """This CI's context from its documented variables, or None when this is not it."""
    if not (env.get("GITHUB_ACTIONS") == "true" or env.get("GITHUB_REPOSITORY")):
        return None
    return _read(env, read_event)


def _read(env: Mapping[str, str], read_event: Callable[[str], str | None]) -> CiContext:
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
