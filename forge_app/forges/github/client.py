"""GitHubClient: the ForgeClient the generic publish flow drives for one pull request.

Cheap by design: one review per scan (split only past 50 comments), one listing of
that review's comments to learn their ids, one check run per head SHA, and GraphQL
only when a thread must be resolved or reopened.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from gidgethub import HTTPException

from forge_app.core.review.patch import FileDiff, parse_hunks
from forge_app.core.review.plan import PlannedComment
from forge_app.core.review.render import is_summary, markers_in
from forge_app.forges.base import PostedComment, PullRequestRef, StatusReport
from forge_app.forges.github import RENDERING
from forge_app.forges.github.checks import CheckRuns
from forge_app.forges.github.http import GitHubApi, status_of
from storage import ReviewComment, Storage

log = logging.getLogger(__name__)

COMMENTS_PER_REVIEW = 50

THREADS_QUERY = """
query($owner: String!, $name: String!, $number: Int!, $cursor: String) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviewThreads(first: 100, after: $cursor) {
        pageInfo { hasNextPage endCursor }
        nodes {
          id
          isResolved
          first: comments(first: 1) { nodes { databaseId } }
          last: comments(last: 1) { nodes { body } }
        }
      }
    }
  }
}
"""

RESOLVE_MUTATION = """
mutation($threadId: ID!) {
  resolveReviewThread(input: {threadId: $threadId}) { thread { id isResolved } }
}
"""

UNRESOLVE_MUTATION = """
mutation($threadId: ID!) {
  unresolveReviewThread(input: {threadId: $threadId}) { thread { id isResolved } }
}
"""


class GitHubClient:
    forge = "github"
    rendering = RENDERING

    def __init__(self, api: GitHubApi, storage: Storage, repository_id: int, full_name: str) -> None:
        self.api = api
        self.storage = storage
        self.repository_id = repository_id
        self.owner, _, self.repo = full_name.partition("/")
        self.checks = CheckRuns(api, storage, repository_id, self.owner, self.repo)
        self._threads: dict[int, dict[str, Any]] | None = None

    def _vars(self, pr: PullRequestRef, **extra: Any) -> dict[str, Any]:
        return {"owner": self.owner, "repo": self.repo, "pull_number": pr.number, **extra}

    # the diff ----------------------------------------------------------------------------
    async def changed_files(self, pr: PullRequestRef) -> dict[str, FileDiff]:
        files = await self.api.paginate("/repos/{owner}/{repo}/pulls/{pull_number}/files?per_page=100",
                                        self._vars(pr))
        diff: dict[str, FileDiff] = {}
        for f in files:
            path = f["filename"]
            patch = f.get("patch")
            deleted = f.get("status") == "removed"
            old_path = f.get("previous_filename")
            if patch is None:  # binary, or too large for GitHub to show
                diff[path] = FileDiff(path=path, old_path=old_path, binary=not deleted, deleted=deleted)
            else:
                diff[path] = FileDiff(path=path, old_path=old_path, hunks=parse_hunks(patch), deleted=deleted)
        return diff

    # inline comments ---------------------------------------------------------------------
    async def existing_markers(self, pr: PullRequestRef) -> dict[str, PostedComment]:
        comments = await self.api.paginate("/repos/{owner}/{repo}/pulls/{pull_number}/comments?per_page=100",
                                           self._vars(pr))
        found: dict[str, PostedComment] = {}
        for c in comments:
            if c.get("in_reply_to_id") or (c.get("user") or {}).get("type") not in (None, "Bot"):
                continue
            for fingerprint in markers_in(c.get("body") or ""):
                found.setdefault(fingerprint, PostedComment(0, str(c["id"])))
        return found

    def comment_requests(self, count: int) -> int:
        """A review of up to 50 comments, then one page listing what it created."""
        return 2 * math.ceil(count / COMMENTS_PER_REVIEW)

    def opening_requests(self) -> int:
        return 2  # the check run (in progress), the changed files

    def closing_requests(self, report: StatusReport) -> int:
        return self.checks.report_requests(report)

    async def post_comments(self, pr: PullRequestRef, comments: Sequence[PlannedComment]) -> list[PostedComment]:
        chunks = [list(comments[i : i + COMMENTS_PER_REVIEW]) for i in range(0, len(comments), COMMENTS_PER_REVIEW)]
        posted: list[PostedComment] = []
        for n, chunk in enumerate(chunks, 1):
            part = f" (part {n} of {len(chunks)})" if len(chunks) > 1 else ""
            posted += await self._post_review(pr, chunk, part)
        return posted

    async def _post_review(self, pr: PullRequestRef, chunk: list[PlannedComment], part: str) -> list[PostedComment]:
        body = {
            "commit_id": pr.head_sha,
            "event": "COMMENT",
            "body": f"**forge-app** found {len(chunk)} new finding(s) on the lines this change touches{part}.",
            "comments": [_review_comment(c) for c in chunk],
        }
        try:
            review = await self.api.call("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
                                         self._vars(pr), body)
        except HTTPException as exc:
            if status_of(exc) != 422:
                raise
            # A line GitHub will not accept (e.g. the diff changed under us): isolate it, post the rest.
            if len(chunk) == 1:
                log.warning("GitHub refused an inline comment on %s:%s of %s#%s: %s", chunk[0].path, chunk[0].line,
                            pr.repository, pr.number, exc)
                return []
            half = len(chunk) // 2
            return await self._post_review(pr, chunk[:half], part) + await self._post_review(pr, chunk[half:], part)
        created = await self.api.paginate(
            "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments?per_page=100",
            self._vars(pr, review_id=review["id"]))
        by_key: dict[str, PlannedComment] = {c.marker: c for c in chunk}
        posted = []
        for c in created:
            for fingerprint in markers_in(c.get("body") or ""):
                planned = by_key.pop(fingerprint, None)
                if planned is not None:
                    posted.append(PostedComment(planned.item.identity_id, str(c["id"])))
        if by_key:
            log.warning("review %s on %s#%s: %d comment(s) not found after posting", review["id"], pr.repository,
                        pr.number, len(by_key))
        return posted

    # the summary note --------------------------------------------------------------------
    async def upsert_summary(self, pr: PullRequestRef, body: str, existing_id: str | None, *,
                             look_first: bool = True) -> str:
        if existing_id:
            try:
                await self.api.call("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}",
                                    {"owner": self.owner, "repo": self.repo, "comment_id": int(existing_id)},
                                    {"body": body})
                return existing_id
            except HTTPException as exc:
                if status_of(exc) != 404:
                    raise
                log.info("summary comment %s on %s#%s was deleted; posting a new one", existing_id,
                         pr.repository, pr.number)
        found = await self._find_summary(pr) if look_first else None  # a crash may have left one unrecorded
        if found is not None:
            await self.api.call("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}",
                                {"owner": self.owner, "repo": self.repo, "comment_id": int(found)}, {"body": body})
            return found
        created = await self.api.call("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments",
                                      {"owner": self.owner, "repo": self.repo, "issue_number": pr.number},
                                      {"body": body})
        return str(created["id"])

    async def _find_summary(self, pr: PullRequestRef) -> str | None:
        """The id of a summary comment of ours already on the PR (its hidden marker), if any."""
        comments = await self.api.paginate("/repos/{owner}/{repo}/issues/{issue_number}/comments?per_page=100",
                                           {"owner": self.owner, "repo": self.repo, "issue_number": pr.number})
        for c in comments:
            if (c.get("user") or {}).get("type") in (None, "Bot") and is_summary(c.get("body") or ""):
                return str(c["id"])
        return None

    # resolving fixed findings ------------------------------------------------------------
    async def _thread_map(self, pr: PullRequestRef) -> dict[int, dict[str, Any]]:
        """databaseId of a thread's first comment -> {id, isResolved, last_body}, every page."""
        if self._threads is not None:
            return self._threads
        threads: dict[int, dict[str, Any]] = {}
        cursor = None
        while True:
            data = await self.api.graphql(THREADS_QUERY, owner=self.owner, name=self.repo, number=pr.number,
                                          cursor=cursor)
            pull = ((data or {}).get("repository") or {}).get("pullRequest") or {}
            conn = pull.get("reviewThreads") or {}
            for node in conn.get("nodes") or []:
                firsts = ((node.get("first") or {}).get("nodes")) or []
                lasts = ((node.get("last") or {}).get("nodes")) or []
                if firsts and firsts[0].get("databaseId") is not None:
                    threads[int(firsts[0]["databaseId"])] = {
                        "id": node["id"], "resolved": bool(node.get("isResolved")),
                        "last_body": (lasts[0].get("body") if lasts else None) or ""}
            page = conn.get("pageInfo") or {}
            if not page.get("hasNextPage"):
                break
            cursor = page.get("endCursor")
        self._threads = threads
        return threads

    async def _reply_once(self, pr: PullRequestRef, comment: ReviewComment, thread: dict[str, Any] | None,
                          reply: str) -> bool:
        """Reply unless the thread already ends with this reply (a retried job replies once).
        False when the comment is gone."""
        if thread is not None and thread["last_body"].strip() == reply.strip():
            return True
        try:
            await self.api.call("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/comments/{comment_id}/replies",
                                self._vars(pr, comment_id=int(comment.comment_id)), {"body": reply})
        except HTTPException as exc:
            if status_of(exc) != 404:
                raise
            log.info("comment %s on %s#%s is gone", comment.comment_id, pr.repository, pr.number)
            return False
        if thread is not None:
            thread["last_body"] = reply
        return True

    async def resolve(self, pr: PullRequestRef, comment: ReviewComment, reply: str) -> None:
        threads = await self._thread_map(pr)
        thread = threads.get(int(comment.comment_id))
        if thread is not None and thread["resolved"]:
            return  # someone resolved it already: leave the thread alone
        if not await self._reply_once(pr, comment, thread, reply):
            return
        await self._mark_thread(pr, comment, thread, resolved=True)

    async def reopen(self, pr: PullRequestRef, comment: ReviewComment, reply: str) -> None:
        """Reply first (why it is open again), then unresolve the thread."""
        threads = await self._thread_map(pr)
        thread = threads.get(int(comment.comment_id))
        if not await self._reply_once(pr, comment, thread, reply):
            return
        if thread is not None and not thread["resolved"]:
            return  # someone reopened it already
        await self._mark_thread(pr, comment, thread, resolved=False)

    async def _mark_thread(self, pr: PullRequestRef, comment: ReviewComment, thread: dict[str, Any] | None, *,
                           resolved: bool) -> None:
        """Resolve or unresolve the comment's review thread (GraphQL), keeping the cached copy in step."""
        thread_id = comment.thread_id or (thread["id"] if thread else None)
        if thread_id is None:
            log.info("no review thread found for comment %s on %s#%s", comment.comment_id, pr.repository, pr.number)
            return
        await self.api.graphql(RESOLVE_MUTATION if resolved else UNRESOLVE_MUTATION, threadId=thread_id)
        if thread is not None:
            thread["resolved"] = resolved

    # the check run -----------------------------------------------------------------------
    async def set_status(self, pr: PullRequestRef, report: StatusReport) -> None:
        await self.checks.report(pr.head_sha, report)


def _review_comment(c: PlannedComment) -> dict[str, Any]:
    out: dict[str, Any] = {"path": c.path, "body": c.body, "line": c.line, "side": "RIGHT"}
    if c.start_line is not None and c.start_line < c.line:
        out["start_line"] = c.start_line
        out["start_side"] = "RIGHT"
    return out
