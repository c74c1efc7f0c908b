"""Reading a repository's files at a commit from its forge (a forge's `source_fetcher`).

An upload whose findings carry neither a fingerprint from the uploader's checkout nor a
code snippet (raw `semgrep scan --json` without login writes "requires login") can only
get context fingerprints from the files themselves; when the repository's forge can hand
them out, the server fetches them (forge_app/services/completion.py).

A factory `factory(context, repository) -> Fetcher | None` answers from storage and
settings only (no network): it runs while an upload request waits. It returns None when
that forge is not set up for the repository (GitHub: no active installation of the app;
Bitbucket: no connection). GitLab has no fetcher: its vendored API contract has no file
endpoint, so GitLab uploads use snippets or the fallback (or `forge-app upload` from the
checkout).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from forge_app.core.linemap import ForgeDiff
from forge_app.jobs.errors import RetryLater
from forge_app.jobs.worker import JobContext
from storage import Repository

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Larger files are not fetched: their findings keep the fingerprint they have."""
MAX_FILES = 500
"""At most this many files per scan, so one huge report cannot spend a forge's hourly rate limit."""


class Fetcher(Protocol):
    async def fetch(self, path: str, commit: str) -> str | None:
        """The file's text at `commit`; None when it is absent, binary or larger than MAX_FILE_BYTES.

        Transient trouble (rate limit, 5xx, network) raises RetryLater; a refusal that retrying
        cannot change (revoked token, missing permission) raises SourceUnavailable."""

    async def aclose(self) -> None:
        """Release what fetching opened (HTTP clients); a fetcher that never fetched holds nothing."""


class SourceUnavailable(Exception):
    """The forge refuses to hand out this repository's files; the message says why (never a secret)."""


FetcherFactory = Callable[[JobContext, Repository], "Fetcher | None"]


async def can_fetch_sources(fetcher: Fetcher | None) -> bool:
    """Whether the repository's forge is set up to hand out its files (`registry.fetcher_for`; no network)."""
    if fetcher is None:
        return False
    await fetcher.aclose()
    return True


async def read_sources(fetcher: Fetcher | None, repository: Repository, commit: str,
                       paths: Iterable[str]) -> tuple[dict[str, str | None], list[str]]:
    """Each path fetched once at `commit`: ({path: text or None}, notes for the scan's errors).

    A path left out (no fetcher, over MAX_FILES, the forge refusing) is simply not in the
    answer: its findings keep the fingerprints they have."""
    wanted = list(paths)
    if fetcher is None or not wanted:
        if fetcher is not None:
            await fetcher.aclose()
        return {}, []
    if len(wanted) > MAX_FILES:
        log.warning("%s@%s: %d files lack a snippet; only the first %d are fetched", repository.full_name,
                    commit[:12], len(wanted), MAX_FILES)
        wanted = wanted[:MAX_FILES]
    texts: dict[str, str | None] = {}
    try:
        for path in wanted:
            texts[path] = await fetcher.fetch(path, commit)
    except SourceUnavailable as exc:
        log.warning("%s@%s: source files are unavailable: %s", repository.full_name, commit[:12], exc)
        return texts, [f"forge-app could not read source files from {repository.forge}: {exc}; findings "
                       "without a code snippet keep context-free fingerprints"]
    finally:
        await fetcher.aclose()
    found = sum(1 for t in texts.values() if t is not None)
    log.info("%s@%s: %d of %d source file(s) read from %s", repository.full_name, commit[:12], found, len(texts),
             repository.forge)
    return texts, []


def decode_text(data: bytes) -> str | None:
    """A file's bytes as text the way `forge-app upload` reads a checkout; None for binary data."""
    if len(data) > MAX_FILE_BYTES or b"\x00" in data:
        return None
    return data.decode("utf-8", errors="replace")


class DiffReader(Protocol):
    async def pull_request_diff(self, number: int) -> ForgeDiff | None:
        """The PR/MR's diff and the commits it runs between (core/linemap.py `ForgeDiff`); None when the
        forge has no such PR/MR. Transient trouble raises RetryLater, a refusal SourceUnavailable."""

    async def aclose(self) -> None:
        """Release what reading opened."""


DiffReaderFactory = Callable[[JobContext, Repository], "DiffReader | None"]
"""A forge's `diff_reader` (registry.diff_reader_for): answers from storage and settings only (no network),
like source fetcher factories; None when the forge cannot hand out the PR/MR's diff for this repository."""


async def can_read_diffs(reader: DiffReader | None) -> bool:
    """Whether the repository's forge is set up to hand out its PR/MR diffs (`registry.diff_reader_for`;
    no network)."""
    if reader is None:
        return False
    await reader.aclose()
    return True


DIFF_TIMEOUT = 15.0
"""Seconds an upload waits for its PR/MR's diff; past that, fingerprints decide alone."""


async def read_pull_request_diff(reader: DiffReader | None, repository: Repository,
                                 number: int) -> ForgeDiff | None:
    """The PR/MR's diff from its forge (`reader`: registry.diff_reader_for), or None: no reader, no such
    PR/MR, or the forge refusing, failing or slower than DIFF_TIMEOUT (the diff only sharpens identity:
    an upload never waits long or fails for it)."""
    if reader is None:
        return None
    try:
        diff = await asyncio.wait_for(reader.pull_request_diff(number), DIFF_TIMEOUT)
    except (SourceUnavailable, RetryLater, TimeoutError) as exc:
        log.warning("%s: the diff of PR/MR %s is unavailable (%s); fingerprints decide identity",
                    repository.full_name, number, exc or type(exc).__name__)
        return None
    except Exception:  # an answer of a shape nobody expected: the upload must not fail for it
        log.exception("%s: reading the diff of PR/MR %s failed; fingerprints decide identity",
                      repository.full_name, number)
        return None
    finally:
        await reader.aclose()
    if diff is not None:
        log.info("%s: PR/MR %s diff read from %s (%s..%s)", repository.full_name, number, repository.forge,
                 (diff.base or "?")[:12], diff.head[:12])
    return diff
