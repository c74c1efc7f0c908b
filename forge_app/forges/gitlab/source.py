"""Reading a merge request's diff from GitLab for identity (forges/sources.py `DiffReader`; forges/gitlab/forge.py
lists it). GitLab has no file fetcher here: the vendored API contract has no file endpoint this app uses for
sources (docs/fingerprints.md).

The MR's latest version (`GET .../versions`) gives `base_commit_sha` (the merge base), `start_commit_sha`
(the target branch's tip) and `head_commit_sha`; `GET .../diffs` the diff of that version, from the merge
base. The merge base counts as the diff's base only when it is the target's tip (start == base): then the
MR is up to date, and a merged-results pipeline scanned the head's files.
"""

from __future__ import annotations

import logging

from forge_app.core.linemap import ForgeDiff, file_patch
from forge_app.forges.gitlab.client import GitLabClient, _is_binary, latest_version
from forge_app.forges.gitlab.errors import GitLabError, GitLabNotFound, to_job_error
from forge_app.forges.gitlab.http import GitLabApi
from forge_app.forges.gitlab.lookup import connection_for_project
from forge_app.forges.sources import DiffReader, SourceUnavailable
from forge_app.jobs.errors import GiveUp
from forge_app.jobs.worker import JobContext
from forge_app.security.crypto import SecretsUnavailable, decrypt
from storage import Connection, Repository

log = logging.getLogger(__name__)


class GitLabDiffs:
    """One project's MR diffs, read with the token of the connection covering it."""

    def __init__(self, context: JobContext, repository: Repository, connection: Connection) -> None:
        self._context = context
        self._repository = repository
        self._connection = connection

    async def aclose(self) -> None:
        """Nothing stays open: python-gitlab's session lives for one call."""

    async def pull_request_diff(self, number: int) -> ForgeDiff | None:
        what = f"reading the diff of {self._repository.full_name}!{number}"
        try:
            token = decrypt(self._context.settings.secret_key, self._connection.token_enc)
        except SecretsUnavailable as exc:
            raise SourceUnavailable(f"GitLab connection {self._connection.id}: {exc}") from None
        try:
            client = GitLabClient(GitLabApi(self._connection.base_url, token), self._repository.full_name)
            mr = f"/projects/{client.project}/merge_requests/{number}"
            versions = [v for v in await client._run(client.api.get, f"{mr}/versions") or [] if isinstance(v, dict)]
            if not versions:
                return None
            version = latest_version(versions)
            items = await client._run(client.api.list, f"{mr}/diffs")
        except GitLabNotFound:
            return None
        except GitLabError as exc:
            err = to_job_error(exc, what)
            if isinstance(err, GiveUp):
                raise SourceUnavailable(str(err)) from None
            raise err from None
        base, start, head = (version.get(k) for k in ("base_commit_sha", "start_commit_sha", "head_commit_sha"))
        if not isinstance(head, str):
            return None
        text, unknown = [], set()
        for item in items:
            new, old = item.get("new_path"), item.get("old_path") or item.get("new_path")
            diff = item.get("diff")
            if not isinstance(new, str) or item.get("deleted_file"):
                continue
            if not isinstance(diff, str) or _is_binary(diff) or item.get("too_large") or item.get("collapsed") \
                    or (not diff and not item.get("renamed_file")):
                unknown.add(new)  # changed, but GitLab shows no lines
                continue
            text.append(file_patch(None if item.get("new_file") else str(old), new, diff))
        known_base = base if isinstance(base, str) and base == start else None
        return ForgeDiff("".join(text), head, known_base, frozenset(unknown))


def gitlab_diff_reader(context: JobContext, repository: Repository) -> DiffReader | None:
    """A reader when a GitLab connection covers the project."""
    connection = connection_for_project(context.storage, repository.full_name, repository_id=repository.id)
    return None if connection is None else GitLabDiffs(context, repository, connection)

