"""Full commit SHAs for the 12-character hashes Bitbucket puts in pull request webhook payloads.

Scans, statuses and reports are keyed on full SHAs. A short hash is resolved, in order:

1. from what is already known: a hash resolved before, or a scan of this repository whose
   commit starts with it (CI uploads full 40-character SHAs), when exactly one does;
2. from the pull request itself (`GET .../pullrequests/{id}`), when its answer carries a full
   hash starting with the short one;
3. only then, as a last resort, from `GET /repositories/{workspace}/{repo_slug}/commit/{hash}`.
   That route is outside the API description forge-app is tested against (docs/bitbucket.md,
   "API routes"): it is sent only when neither a scan nor the pull request tells the SHA.

What was resolved is remembered per repository, so a hash costs at most one lookup.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from forge_app.forges.bitbucket.http import BitbucketApi, BitbucketError, seg
from storage import Storage

log = logging.getLogger(__name__)

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
SHORT_SHA = re.compile(r"^[0-9a-f]{7,39}$")
CACHE_SCOPE = "bitbucket:commits"


def _pr_hashes(doc: Any) -> list[str]:
    """Every commit hash a pull request answer carries (source, destination, merge commit)."""
    found = []
    if isinstance(doc, dict):
        for key in ("source", "destination"):
            side = doc.get(key)
            commit = side.get("commit") if isinstance(side, dict) else None
            if isinstance(commit, dict) and isinstance(commit.get("hash"), str):
                found.append(commit["hash"].lower())
        merge = doc.get("merge_commit")
        if isinstance(merge, dict) and isinstance(merge.get("hash"), str):
            found.append(merge["hash"].lower())
    return found


async def _from_pull_request(api: BitbucketApi, repo_path: str, number: int, commit: str) -> str | None:
    try:
        doc = (await api.request("GET", f"{repo_path}/pullrequests/{int(number)}")).json()
    except BitbucketError as exc:
        if exc.status in (403, 404):  # gone, or not readable with this token: the next step may still work
            return None
        raise
    except ValueError:
        return None
    matches = {h for h in _pr_hashes(doc) if FULL_SHA.match(h) and h.startswith(commit)}
    return matches.pop() if len(matches) == 1 else None


async def full_sha(storage: Storage, api: BitbucketApi, repository_id: int, full_name: str, commit: str, *,
                   pull_request: int | None = None) -> str:
    """The 40-character SHA of `commit` (a full or abbreviated hash) in `workspace/repo_slug`.

    `pull_request`: the pull request the hash came from, asked before the commit lookup."""
    commit = commit.strip().lower()
    if FULL_SHA.match(commit):
        return commit
    if not SHORT_SHA.match(commit):
        raise ValueError(f"{commit!r} is not a commit hash")
    known = storage.forge_object(repository_id, CACHE_SCOPE, commit)
    if isinstance(known, str) and FULL_SHA.match(known):
        return known
    resolved = storage.scanned_commit_with_prefix(repository_id, commit)
    how = "a scan"
    workspace, _, slug = full_name.partition("/")
    repo_path = f"/repositories/{seg(workspace)}/{seg(slug)}"
    if resolved is None and pull_request is not None:
        resolved = await _from_pull_request(api, repo_path, pull_request, commit)
        how = f"pull request #{pull_request}"
    if resolved is None:
        # Last resort, outside the tested API description (see the module doc).
        doc = await api.get_json(f"{repo_path}/commit/{seg(commit)}")
        resolved = str((doc.get("hash") if isinstance(doc, dict) else "") or "").lower()
        how = "the commit lookup"
        if not FULL_SHA.match(resolved) or not resolved.startswith(commit):
            raise ValueError(f"Bitbucket resolved commit {commit} of {full_name} to an unexpected hash")
    log.info("%s: %s is %s (from %s)", full_name, commit, resolved, how)
    storage.remember_forge_object(repository_id, CACHE_SCOPE, commit, resolved)
    return resolved
