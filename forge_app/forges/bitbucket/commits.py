"""Full commit SHAs for the 12-character hashes Bitbucket puts in webhook payloads.

Scans, statuses and reports are keyed on full SHAs, so a short hash is resolved through
`GET /repositories/{workspace}/{repo_slug}/commit/{hash}` once and remembered.
"""

from __future__ import annotations

import re

from forge_app.forges.bitbucket.api import BitbucketApi, seg
from storage import Storage

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
CACHE_SCOPE = "bitbucket:commits"


async def full_sha(storage: Storage, api: BitbucketApi, repository_id: int, full_name: str, commit: str) -> str:
    """The 40-character SHA of `commit` (a full or abbreviated hash) in `workspace/repo_slug`."""
    commit = commit.strip().lower()
    if FULL_SHA.match(commit):
        return commit
    known = storage.forge_object(repository_id, CACHE_SCOPE, commit)
    if isinstance(known, str) and FULL_SHA.match(known):
        return known
    workspace, _, slug = full_name.partition("/")
    doc = await api.get_json(f"/repositories/{seg(workspace)}/{seg(slug)}/commit/{seg(commit)}")
    resolved = str(doc.get("hash") or "").lower()
    if not FULL_SHA.match(resolved) or not resolved.startswith(commit):
        raise ValueError(f"Bitbucket resolved commit {commit} of {full_name} to an unexpected hash")
    storage.remember_forge_object(repository_id, CACHE_SCOPE, commit, resolved)
    return resolved
