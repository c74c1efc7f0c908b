"""GitHub webhook payloads boiled down to what forge-app's behaviours read, and the repository they are about.

Deliveries are compacted to the few fields the behaviours act on (forges/github/behaviours/),
so the job row stays small and real-world payloads are read leniently. Which events and actions
are queued at all is the behaviours' router's answer; `compact` only drops deliveries that lack
what any behaviour needs (a pull request without a number, a push to another branch than the
default one, another app's check run). `prepare_repository` records, for every repository
event, the repository, its installation and its default branch before the behaviours run.
"""

from __future__ import annotations

import logging
from typing import Any

from forge_app.core.refs import branch_name
from forge_app.forges.github import CHECK_NAME
from storage import Storage

log = logging.getLogger(__name__)

JOB_KIND = "github_event"


def installation_group(installation_id: int) -> str:
    return f"gh-installation:{installation_id}"


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _names(repos: Any) -> list[str]:
    return [r["full_name"] for r in repos or [] if isinstance(r, dict) and isinstance(r.get("full_name"), str)]


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _visibility(payload: dict[str, Any]) -> dict[str, bool]:
    """full name -> private, for every repository a delivery describes (Marketplace plans read it)."""
    repos = [payload.get("repository"), *(payload.get("repositories") or []),
             *(payload.get("repositories_added") or [])]
    return {r["full_name"]: r["private"] for r in repos
            if isinstance(r, dict) and isinstance(r.get("full_name"), str) and isinstance(r.get("private"), bool)}


def compact(event: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The fields a job needs, or None when forge-app ignores this delivery."""
    job = _compact(event, payload)
    if job is not None and _visibility(payload):
        job["visibility"] = _visibility(payload)
    return job


def _compact(event: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    action = payload.get("action")
    installation_id = _int(_get(payload, "installation", "id"))
    repository = _get(payload, "repository", "full_name")
    base: dict[str, Any] = {"event": event, "action": action, "installation_id": installation_id}
    if event == "installation":
        if installation_id is None:
            return None
        return {**base, "account": _get(payload, "installation", "account", "login"),
                "account_type": _get(payload, "installation", "account", "type"),
                "repository_selection": _get(payload, "installation", "repository_selection"),
                "repositories": _names(payload.get("repositories"))}
    if event == "installation_repositories":
        if installation_id is None:
            return None
        return {**base, "added": _names(payload.get("repositories_added")),
                "removed": _names(payload.get("repositories_removed"))}
    if not isinstance(repository, str):
        return None
    base["repository"] = repository
    base["default_branch"] = branch_name(_get(payload, "repository", "default_branch"))
    if event == "pull_request":
        if action == "edited" and not isinstance(_get(payload, "changes", "base"), dict):
            return None  # only a changed base matters
        pr = payload.get("pull_request") or {}
        number = _int(payload.get("number")) or _int(pr.get("number"))
        if number is None:
            return None
        return {**base, "number": number, "head_sha": _get(pr, "head", "sha"),
                "head_ref": branch_name(_get(pr, "head", "ref")), "base_ref": branch_name(_get(pr, "base", "ref")),
                "state": pr.get("state") or "open", "merged": bool(pr.get("merged"))}
    if event == "push":
        default = base["default_branch"]
        if not default or payload.get("ref") != f"refs/heads/{default}" or payload.get("deleted"):
            return None
        return {**base, "after": payload.get("after")}
    if event in ("check_suite", "check_run"):
        head_sha = _get(payload, event, "head_sha")
        if event == "check_run" and _get(payload, "check_run", "name") != CHECK_NAME:
            return None  # another app's (or another tool's) check
        if not isinstance(head_sha, str):
            return None
        return {**base, "head_sha": head_sha.lower()}
    return None


def revoke_installation(storage: Storage, installation_id: int) -> int:
    """Uninstalled or suspended: no token may be used again and pending work is cancelled."""
    storage.drop_github_token(installation_id)
    cancelled = storage.cancel_jobs(installation_group(installation_id))
    for repo_id in storage.github_installation_repository_ids(installation_id):
        cancelled += storage.cancel_jobs(f"repo:{repo_id}")
    return cancelled


def prepare_repository(storage: Storage, p: dict[str, Any]) -> int:
    """The repository row of a repository event, linked to the delivery's installation (unless that
    installation was removed) and with the default branch the delivery names."""
    repo = storage.ensure_repository("github", p["repository"])
    installation_id = p.get("installation_id")
    fields: dict[str, Any] = {}
    if installation_id is not None and repo.installation_id != installation_id:
        installation = storage.github_installation(installation_id)
        if installation is None or not installation.deleted:
            storage.upsert_github_installation(installation_id)
            fields["installation_id"] = installation_id
    if p.get("default_branch") and repo.default_branch != p["default_branch"]:
        fields["default_branch"] = p["default_branch"]
    if fields:
        storage.update_repository(repo.id, **fields)
    return repo.id
