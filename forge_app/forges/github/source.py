"""Reading a file at a commit from GitHub: the source fetcher (forges/github/forge.py lists it).

`GET /repos/{owner}/{repo}/contents/{path}?ref={sha}` as the repository's installation
(the app asks for Contents: read, see app.yml). The `object` media type answers the
content base64-encoded up to 1 MB and with `encoding: none` beyond; such a file (up to
MAX_FILE_BYTES) is then read once more with the `raw` media type. A 404 (no such file
or commit) is None; rate limits and 5xx are RetryLater, like everywhere in the adapter.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
from gidgethub import HTTPException

from forge_app.core.linemap import ForgeDiff, file_patch
from forge_app.forges.github.credentials import load_credentials
from forge_app.forges.github.http import GitHubApi, open_http, status_of
from forge_app.forges.sources import MAX_FILE_BYTES, DiffReader, Fetcher, SourceUnavailable, decode_text
from forge_app.jobs.errors import GiveUp, RetryLater
from forge_app.jobs.worker import JobContext
from storage import Repository

log = logging.getLogger(__name__)

MAX_PR_FILES = 3000
"""GitHub lists at most this many files of a PR: a list that long may be cut short."""
OBJECT_MEDIA_TYPE = "application/vnd.github.object+json"
RAW_MEDIA_TYPE = "application/vnd.github.raw+json"


class GitHubSources:
    """Files of one repository, read as its installation; the HTTP client opens on the first fetch."""

    def __init__(self, context: JobContext, repository: Repository, installation_id: int) -> None:
        self._context = context
        self._installation_id = installation_id
        self.owner, _, self.repo = repository.full_name.partition("/")
        self._http: httpx.AsyncClient | None = None
        self._api: GitHubApi | None = None

    def _client(self) -> GitHubApi:
        if self._api is None:
            credentials = load_credentials(self._context.settings, self._context.storage)
            self._http = open_http()
            self._api = GitHubApi(self._http, self._context.settings, self._context.storage, credentials,
                                  self._installation_id)
        return self._api

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = self._api = None

    async def _get(self, path: str, commit: str, accept: str) -> Any:
        url = "/repos/{owner}/{repo}/contents/" + quote(path, safe="/") + "{?ref}"
        what = f"{self.owner}/{self.repo}/{path}@{commit[:12]}"
        try:
            return await self._client().call("GET", url, {"owner": self.owner, "repo": self.repo, "ref": commit},
                                             accept=accept)
        except HTTPException as exc:
            status = status_of(exc)
            if status >= 500:
                raise RetryLater(f"GitHub is failing ({status}) on reading {what}; retrying later") from None
            if status in (401, 403) and "too large" not in str(exc).lower():
                raise SourceUnavailable(f"GitHub answered {status} to reading {what} ({exc}); the app needs the "
                                        "Contents: read permission on the repository") from None
            log.info("GitHub answered %s to reading %s: the file's findings keep their fingerprints", status, what)
            return None
        except GiveUp as exc:  # no token for the installation: removed or suspended since the upload
            raise SourceUnavailable(str(exc)) from None
        except httpx.HTTPError as exc:
            raise RetryLater(f"GitHub could not be reached ({type(exc).__name__}) reading {what}") from None
        except UnicodeDecodeError:
            return None  # a raw answer that is not UTF-8 text: binary

    async def fetch(self, path: str, commit: str) -> str | None:
        doc = await self._get(path, commit, OBJECT_MEDIA_TYPE)
        if not isinstance(doc, dict) or doc.get("type") != "file":
            return None  # absent, a directory, a submodule, a symlink out of the repository
        size = doc.get("size")
        if not isinstance(size, int) or size > MAX_FILE_BYTES:
            return None
        content = doc.get("content")
        if doc.get("encoding") == "base64" and isinstance(content, str) and (content or size == 0):
            try:
                return decode_text(base64.b64decode(content))
            except (binascii.Error, ValueError):
                return None
        raw = await self._get(path, commit, RAW_MEDIA_TYPE)  # over 1 MB: only the raw form carries it
        if not isinstance(raw, str) or "\x00" in raw:
            return None
        return raw


    # the PR's diff, for identity (forges/sources.py DiffReader) ----------------------------------
    async def _read(self, what: str, call: Callable[[GitHubApi], Awaitable[Any]]) -> Any:
        try:
            return await call(self._client())
        except HTTPException as exc:
            status = status_of(exc)
            if status >= 500 or status == 429:
                raise RetryLater(f"GitHub is failing ({status}) on reading {what}; retrying later") from None
            if status in (401, 403):
                raise SourceUnavailable(f"GitHub answered {status} to reading {what}") from None
            log.info("GitHub answered %s to reading %s", status, what)
            return None
        except GiveUp as exc:
            raise SourceUnavailable(str(exc)) from None
        except httpx.HTTPError as exc:
            raise RetryLater(f"GitHub could not be reached ({type(exc).__name__}) reading {what}") from None

    async def pull_request_diff(self, number: int) -> ForgeDiff | None:
        """`GET /pulls/{n}` (head and base SHAs), `/pulls/{n}/files` (the diff from the merge base) and
        `/pulls/{n}/commits` (up to 250, with parents): the base tip counts as the diff's base only when
        it is a parent of one of the PR's commits, i.e. in the head's history (then it is the merge base,
        and the PR's merge commit holds the head's files)."""
        where = {"owner": self.owner, "repo": self.repo, "pull_number": number}
        what = f"{self.owner}/{self.repo} PR #{number}"
        pull = await self._read(what, lambda api: api.call("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", where))
        if not isinstance(pull, dict) or not isinstance((pull.get("head") or {}).get("sha"), str):
            return None
        files = await self._read(what, lambda api: api.paginate(
            "/repos/{owner}/{repo}/pulls/{pull_number}/files?per_page=100", where))
        commits = await self._read(what, lambda api: api.paginate(
            "/repos/{owner}/{repo}/pulls/{pull_number}/commits?per_page=100", where))
        if not isinstance(files, list):
            return None
        base_tip = (pull.get("base") or {}).get("sha")
        parents = {p.get("sha") for c in (commits or []) if isinstance(c, dict) for p in c.get("parents") or ()
                   if isinstance(p, dict)}
        text, unknown = [], set()
        for f in files:
            path, status, patch = f.get("filename"), f.get("status"), f.get("patch")
            if not isinstance(path, str) or status == "removed":
                continue
            old = None if status == "added" else f.get("previous_filename") or path
            if patch is None and not (status == "renamed" and not f.get("changes")):
                unknown.add(path)  # binary, or too large for GitHub to show
                continue
            text.append(file_patch(old, path, patch or ""))
        return ForgeDiff("".join(text), pull["head"]["sha"], base_tip if base_tip in parents else None,
                         frozenset(unknown), complete=len(files) < MAX_PR_FILES)


def github_source_fetcher(context: JobContext, repository: Repository) -> Fetcher | None:
    """A fetcher when the GitHub App is configured and installed (and active) on the repository."""
    if repository.installation_id is None:
        return None
    if not load_credentials(context.settings, context.storage).can_authenticate:
        return None
    installation = context.storage.github_installation(repository.installation_id)
    if installation is not None and not installation.active:
        return None
    return GitHubSources(context, repository, repository.installation_id)



def github_diff_reader(context: JobContext, repository: Repository) -> DiffReader | None:
    """The same installation's reader, for the PR's diff."""
    fetcher = github_source_fetcher(context, repository)
    return fetcher if isinstance(fetcher, GitHubSources) else None
