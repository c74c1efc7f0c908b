"""Reading a file at a commit from Bitbucket Cloud: the source fetcher, registered on import.

`GET /repositories/{workspace}/{repo_slug}/src/{commit}/{path}` answers the raw file with
the token of the connection covering the repository (it needs Repositories: Read, which
every connection has). The body is read as a stream and dropped past MAX_FILE_BYTES.
A 404 (no such file or commit) is None; 429 and 5xx are RetryLater.
"""

from __future__ import annotations

import logging

import httpx

from forge_app.forges.bitbucket.connection import connection_token, covering_connection, split_full_name
from forge_app.forges.bitbucket.http import BitbucketApi, BitbucketError, job_error, seg, transport_error
from forge_app.forges.ratelimit import connection_scope
from forge_app.forges.sources import MAX_FILE_BYTES, Fetcher, SourceUnavailable, decode_text
from forge_app.jobs.errors import RetryLater
from forge_app.jobs.worker import JobContext
from forge_app.security.crypto import SecretsUnavailable
from storage import Connection, Repository

log = logging.getLogger(__name__)


class BitbucketSources:
    """Files of one repository through its connection; the HTTP session opens on the first fetch."""

    def __init__(self, context: JobContext, repository: Repository, connection: Connection) -> None:
        self._context = context
        self._connection = connection
        workspace, slug = split_full_name(repository.full_name)
        self._repo_path = f"/repositories/{seg(workspace)}/{seg(slug)}"
        self._api: BitbucketApi | None = None

    def _client(self) -> BitbucketApi:
        if self._api is None:
            try:
                token = connection_token(self._context.settings, self._connection)
            except SecretsUnavailable as exc:
                raise SourceUnavailable(str(exc)) from None
            self._api = BitbucketApi(self._connection.base_url, token, waits=self._context.storage,
                                     scope=connection_scope(self._connection))
        return self._api

    async def aclose(self) -> None:
        if self._api is not None:
            await self._api.aclose()
            self._api = None

    async def fetch(self, path: str, commit: str) -> str | None:
        file_path = "/".join(seg(part) for part in path.split("/"))
        where = f"{path}@{commit[:12]}"
        try:
            data = await self._client().get_bytes(f"{self._repo_path}/src/{seg(commit)}/{file_path}",
                                                  MAX_FILE_BYTES)
        except BitbucketError as exc:
            if exc.status in (401, 403):
                raise SourceUnavailable(f"Bitbucket answered {exc.status} to reading {where}: {exc.message}") from None
            outcome = job_error(exc, f"reading {where}")
            if isinstance(outcome, RetryLater):
                raise outcome from None
            log.info("Bitbucket answered %s to reading %s: the file's findings keep their fingerprints",
                     exc.status, where)
            return None
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._connection.base_url) from None
        return None if data is None else decode_text(data)


def bitbucket_source_fetcher(context: JobContext, repository: Repository) -> Fetcher | None:
    """A fetcher when a connection (repository or workspace token) covers the repository."""
    connection = covering_connection(context.storage, repository.full_name)
    return None if connection is None else BitbucketSources(context, repository, connection)

