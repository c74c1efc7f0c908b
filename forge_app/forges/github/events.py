"""What each GitHub webhook event means to forge-app, and the job that acts on it.

Deliveries are boiled down (`compact`) to the few fields we act on, so the job row stays
small and the handler reads real-world payloads leniently. What each event does:

- `installation` created / new_permissions_accepted / unsuspend: remember the installation
  and link its repositories; deleted / suspend: forget its token, cancel its pending jobs
  (done at once in the webhook, again here), and (deleted) unlink its repositories;
- `installation_repositories` added / removed: link / unlink those repositories;
- `pull_request` opened / reopened / synchronize: record head SHA and branches; when the
  repository already uploads scans, put a `queued` "waiting for a scan upload" check run on
  the head (one API call, once per SHA); edited with a new base: record the base; closed:
  mark the PR closed, so a late publish job does nothing;
- `push` to the default branch: remember the default branch name (no API call);
- `check_suite` / `check_run` (ours) rerequested: publish the latest scan of that head SHA
  again, on a new check run.
"""

from __future__ import annotations

import logging
from typing import Any

from gidgethub import HTTPException

from forge_app.core.refs import branch_name
from forge_app.forges.github import CHECK_NAME
from forge_app.forges.github.api import as_permanent
from forge_app.jobs.worker import JobContext
from storage import Job, Storage

log = logging.getLogger(__name__)

JOB_KIND = "github_event"
PR_ACTIONS = ("opened", "reopened", "synchronize", "closed", "edited")
INSTALLATION_ACTIONS = ("created", "deleted", "suspend", "unsuspend", "new_permissions_accepted")


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
        if action not in INSTALLATION_ACTIONS or installation_id is None:
            return None
        return {**base, "account": _get(payload, "installation", "account", "login"),
                "account_type": _get(payload, "installation", "account", "type"),
                "repository_selection": _get(payload, "installation", "repository_selection"),
                "repositories": _names(payload.get("repositories"))}
    if event == "installation_repositories":
        if action not in ("added", "removed") or installation_id is None:
            return None
        return {**base, "added": _names(payload.get("repositories_added")),
                "removed": _names(payload.get("repositories_removed"))}
    if not isinstance(repository, str):
        return None
    base["repository"] = repository
    base["default_branch"] = branch_name(_get(payload, "repository", "default_branch"))
    if event == "pull_request":
        if action not in PR_ACTIONS:
            return None
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
        if action != "rerequested":
            return None
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


async def handle_event(context: JobContext, job: Job) -> None:
    """The `github_event` job: act on one verified, de-duplicated delivery."""
    p = job.payload
    storage = context.storage
    event, installation_id = p.get("event"), p.get("installation_id")
    storage.record_repository_visibility("github", p.get("visibility") or {})
    if event == "installation":
        _installation(storage, p)
        return
    if event == "installation_repositories":
        listed: int = p["installation_id"]  # the parser drops these events when they name no installation
        if p.get("added"):
            storage.upsert_github_installation(listed)
            storage.link_github_repositories(listed, p["added"])
        if p.get("removed"):
            storage.unlink_github_repositories(listed, p["removed"])
        return
    repo = storage.ensure_repository("github", p["repository"])
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
    if event == "pull_request":
        await _pull_request(context, repo.id, p)
    elif event in ("check_suite", "check_run"):
        _rerequested(context, repo.id, p, job)
    # push: the default branch was recorded above; baselines come from uploads


def _installation(storage: Storage, p: dict[str, Any]) -> None:
    installation_id, action = p["installation_id"], p["action"]
    if action == "deleted":
        revoke_installation(storage, installation_id)
        storage.upsert_github_installation(installation_id, account=p.get("account"), deleted=True)
        storage.unlink_github_repositories(installation_id)
        log.info("GitHub installation %s (%s) removed", installation_id, p.get("account"))
        return
    if action == "suspend":
        revoke_installation(storage, installation_id)
        storage.upsert_github_installation(installation_id, account=p.get("account"), suspended=True)
        return
    storage.upsert_github_installation(installation_id, account=p.get("account"), account_type=p.get("account_type"),
                                       repository_selection=p.get("repository_selection"),
                                       suspended=False if action in ("unsuspend", "created") else None)
    if p.get("repositories"):
        storage.link_github_repositories(installation_id, p["repositories"])


async def _pull_request(context: JobContext, repo_id: int, p: dict[str, Any]) -> None:
    storage = context.storage
    action = p["action"]
    closed = action == "closed" or p.get("state") == "closed"
    raw_sha = p.get("head_sha")
    head_sha = raw_sha.lower() if isinstance(raw_sha, str) else None
    storage.record_github_pull_request(repo_id, p["number"], head_sha=head_sha, head_ref=p.get("head_ref"),
                                       base_ref=p.get("base_ref"), state="closed" if closed else "open",
                                       merged=bool(p.get("merged")))
    if closed or action not in ("opened", "reopened", "synchronize") or not head_sha:
        return
    if not storage.repository_has_scans(repo_id) or storage.latest_pull_request_scan_of_commit(repo_id, head_sha):
        return  # not set up yet (no noise), or the scan is already here and publishing
    from forge_app.forges.github.publish import open_installation_client

    async with open_installation_client(context, repo_id) as client:
        if client is None:
            return
        try:
            await client.checks.waiting(head_sha)
        except HTTPException as exc:
            permanent = as_permanent(exc, f"the waiting check run on {p['repository']}@{head_sha[:12]}")
            if permanent is not None:
                raise permanent from None
            raise


def _rerequested(context: JobContext, repo_id: int, p: dict[str, Any], job: Job) -> None:
    storage = context.storage
    scan_id = storage.latest_pull_request_scan_of_commit(repo_id, p["head_sha"])
    if scan_id is None:
        log.info("re-run requested for %s@%s but no pull request scan of it was uploaded", p["repository"],
                 p["head_sha"][:12])
        return
    storage.remember_forge_object(repo_id, f"sha:{p['head_sha']}", "check_run", None)  # a new run
    storage.enqueue_job("publish_scan", {"scan_id": scan_id, "forge": "github", "rerequested": True},
                        key=f"publish_scan:{scan_id}:rerun:{job.key or job.id}", group=f"repo:{repo_id}")
