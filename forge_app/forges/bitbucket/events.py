"""Processing verified Bitbucket deliveries in a job, after the webhook has answered.

Pull request events record what forge-app needs later (the source branch for the build
status, the head commit, the state); a push to the main branch records the main head.
Pull request payload hashes are 12 characters, so they are resolved to full SHAs first
(commits.py: from known scans, then the pull request, the commit lookup only as a last
resort). Only a trimmed payload is queued: what the handler reads, nothing more.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from forge_app.core.refs import branch_name
from forge_app.forges.bitbucket import FORGE
from forge_app.forges.bitbucket.commits import full_sha
from forge_app.forges.bitbucket.connection import connection_token, split_full_name
from forge_app.forges.bitbucket.http import BitbucketApi, BitbucketError, job_error, seg, transport_error
from forge_app.forges.ratelimit import connection_scope
from forge_app.jobs.errors import GiveUp
from forge_app.jobs.worker import JobContext
from forge_app.security.crypto import SecretsUnavailable
from storage import Job, Repository, Storage

log = logging.getLogger(__name__)

EVENT_JOB = "bitbucket_event"
PR_EVENTS = ("pullrequest:created", "pullrequest:updated", "pullrequest:fulfilled", "pullrequest:rejected")
PUSH_EVENT = "repo:push"
HANDLED_EVENTS = (*PR_EVENTS, PUSH_EVENT)
PR_OBJECT = "pull_request"


def pr_scope(number: int) -> str:
    return f"pr:{number}"


def _get(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _pull_request(doc: dict[str, Any]) -> dict[str, Any] | None:
    pr = doc.get("pullrequest")
    number = _get(pr, "id")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        return None
    return {
        "id": number,
        "state": _get(pr, "state"),
        "draft": bool(_get(pr, "draft")),
        "updated_on": _get(pr, "updated_on"),
        "source_branch": branch_name(_get(pr, "source", "branch", "name")),
        "source_commit": _get(pr, "source", "commit", "hash"),
        "source_repository": _get(pr, "source", "repository", "full_name"),
        "destination_branch": branch_name(_get(pr, "destination", "branch", "name")),
        "destination_commit": _get(pr, "destination", "commit", "hash"),
    }


def _branch_heads(doc: dict[str, Any]) -> list[dict[str, str]]:
    heads = []
    for change in _get(doc, "push", "changes") or []:
        new = _get(change, "new")
        if _get(new, "type") == "branch" and isinstance(_get(new, "name"), str) \
                and isinstance(_get(new, "target", "hash"), str):
            heads.append({"branch": new["name"], "commit": new["target"]["hash"]})
    return heads


def job_payload(event: str, doc: dict[str, Any], full_name: str, connection_id: int,
                main_branch: str | None = None) -> dict[str, Any] | None:
    """The trimmed job payload, or None when the delivery needs no work (e.g. a push to another branch)."""
    base = {"event": event, "repository": full_name, "connection_id": connection_id}
    if event in PR_EVENTS:
        pr = _pull_request(doc)
        return {**base, "pull_request": pr} if pr else None
    if event == PUSH_EVENT:
        heads = _branch_heads(doc)
        if main_branch is not None:
            heads = [h for h in heads if h["branch"] == main_branch]
        return {**base, "heads": heads} if heads else None
    return None


async def _main_branch(storage: Storage, api: BitbucketApi, repo: Repository) -> str | None:
    if repo.default_branch:
        return repo.default_branch
    workspace, slug = split_full_name(repo.full_name)
    doc = await api.get_json(f"/repositories/{seg(workspace)}/{seg(slug)}")
    name = _get(doc, "mainbranch", "name")
    if isinstance(name, str) and name:
        storage.update_repository(repo.id, default_branch=name)
        return name
    return None


async def _on_pull_request(storage: Storage, api: BitbucketApi, repo: Repository, event: str,
                           pr: dict[str, Any]) -> None:
    scope = pr_scope(pr["id"])
    known = storage.forge_object(repo.id, scope, PR_OBJECT) or {}
    if known.get("updated_on") and pr.get("updated_on") and str(pr["updated_on"]) < str(known["updated_on"]):
        log.info("%s #%s: ignoring %s older than what is recorded", repo.full_name, pr["id"], event)
        return
    head = known.get("head_sha")
    if isinstance(pr.get("source_commit"), str):
        source_repo = pr.get("source_repository") or repo.full_name
        if source_repo == repo.full_name:  # a fork's commits are not reachable through this repository
            try:
                head = await full_sha(storage, api, repo.id, repo.full_name, pr["source_commit"],
                                      pull_request=pr["id"])
            except BitbucketError as exc:
                if exc.status != 404:
                    raise
                log.warning("%s #%s: commit %s is unknown to Bitbucket; keeping the last known head",
                            repo.full_name, pr["id"], pr["source_commit"])
            except ValueError as exc:
                log.warning("%s #%s: %s; keeping the last known head", repo.full_name, pr["id"], exc)
    storage.remember_forge_object(repo.id, scope, PR_OBJECT, {
        "state": pr.get("state"), "draft": pr.get("draft"), "updated_on": pr.get("updated_on"),
        "source_branch": pr.get("source_branch"), "destination_branch": pr.get("destination_branch"),
        "head_sha": head, "last_event": event,
    })
    log.info("%s #%s: %s recorded (head %s)", repo.full_name, pr["id"], event, (head or "?")[:12])


async def _on_push(storage: Storage, api: BitbucketApi, repo: Repository, heads: list[dict[str, str]]) -> None:
    main = await _main_branch(storage, api, repo)
    for head in heads:
        if head["branch"] != main:
            continue
        try:
            sha = await full_sha(storage, api, repo.id, repo.full_name, head["commit"])  # push hashes are full
        except ValueError as exc:
            log.warning("%s: %s; the head of %s is not recorded", repo.full_name, exc, main)
            continue
        storage.remember_forge_object(repo.id, f"branch:{main}", "head", {"sha": sha})
        log.info("%s: %s is now at %s", repo.full_name, main, sha[:12])


async def handle_event(context: JobContext, job: Job) -> None:
    storage = context.storage
    payload = job.payload
    full_name = str(payload["repository"])
    connection = storage.connection_for(FORGE, full_name)
    if connection is None:
        log.info("Bitbucket %s for %s: the connection is gone, nothing to do", payload.get("event"), full_name)
        return
    repo = storage.ensure_repository(FORGE, full_name)
    if repo.connection_id != connection.id:
        storage.update_repository(repo.id, connection_id=connection.id)
    try:
        token = connection_token(context.settings, connection)
    except SecretsUnavailable as exc:
        raise GiveUp(str(exc)) from None
    async with BitbucketApi(connection.base_url, token, waits=storage, scope=connection_scope(connection)) as api:
        try:
            if payload["event"] == PUSH_EVENT:
                await _on_push(storage, api, repo, list(payload.get("heads") or []))
            else:
                await _on_pull_request(storage, api, repo, str(payload["event"]), dict(payload["pull_request"]))
        except BitbucketError as exc:
            raise job_error(exc, full_name) from None
        except httpx.HTTPError as exc:
            raise transport_error(exc, connection.base_url) from None
