"""The ForgeClient for Bitbucket Cloud pull requests, driven by forges/flow.py.

Inline comments anchor on added lines (`inline.to`); the summary is one ordinary PR
comment edited in place; a fixed finding's comment gets a reply, then is resolved, and
is reopened (again with a reply) when the finding comes back.
The result is a build status (`forge-app`) plus a Code Insights report with
annotations. What was last published per commit is remembered, so a retried or
repeated publish of the same results sends no status, report or annotation again.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

from forge_app.core.review.patch import FileDiff, parse_git_diff
from forge_app.core.review.plan import PlannedComment
from forge_app.core.review.render import is_summary, markers_in
from forge_app.forges.base import PostedComment, PullRequestRef, StatusReport
from forge_app.forges.bitbucket import RENDERING, REPORT_ID, STATUS_KEY, insights
from forge_app.forges.bitbucket.http import BitbucketApi, seg
from storage import ReviewComment, Storage

BUILD_STATES = {"in_progress": "INPROGRESS", "success": "SUCCESSFUL", "neutral": "SUCCESSFUL", "failure": "FAILED"}
FALLBACK_URL = "https://github.com/forge-app/forge-app"  # a status needs a valid URL; used only without a public URL
MEMO = "bitbucket:insights"
COMMENT = "pullrequest_comment"


def _comment_body(raw: str, **extra: Any) -> dict[str, Any]:
    return {"type": COMMENT, "content": {"raw": raw}, **extra}


class BitbucketClient:
    forge = "bitbucket"
    rendering = RENDERING

    def __init__(self, api: BitbucketApi, storage: Storage, repository_id: int, full_name: str) -> None:
        workspace, _, slug = full_name.partition("/")
        self.api = api
        self.storage = storage
        self.repository_id = repository_id
        self.repo_path = f"/repositories/{seg(workspace)}/{seg(slug)}"
        self._last: dict[int, str] | None = None
        self._listed: list[dict[str, Any]] | None = None

    async def _comments_before(self, pr: PullRequestRef) -> list[dict[str, Any]]:
        """The PR's comments as they were when this run first listed them (every page, once):
        the crash-recovery marker search and the summary search share one listing."""
        if self._listed is None:
            self._listed = [c async for c in self.api.paginate(f"{self._pr(pr)}/comments")]
        return self._listed

    def _pr(self, pr: PullRequestRef) -> str:
        return f"{self.repo_path}/pullrequests/{int(pr.number)}"

    def _commit(self, sha: str) -> str:
        return f"{self.repo_path}/commit/{seg(sha)}"

    async def changed_files(self, pr: PullRequestRef) -> dict[str, FileDiff]:
        # Answers with a redirect to /diff/{spec}; BitbucketApi follows it with the token.
        return parse_git_diff(await self.api.get_text(f"{self._pr(pr)}/diff"))

    async def existing_markers(self, pr: PullRequestRef) -> dict[str, PostedComment]:
        found: dict[str, PostedComment] = {}
        for comment in await self._comments_before(pr):
            if comment.get("deleted") or comment.get("parent") or not isinstance(comment.get("id"), int):
                continue
            raw = (comment.get("content") or {}).get("raw") or ""
            for fingerprint in markers_in(raw):
                found.setdefault(fingerprint, PostedComment(0, str(comment["id"])))
        return found

    def comment_requests(self, count: int) -> int:
        return count  # no batch endpoint for comments; Code Insights annotations (100 a request) show every finding

    def opening_requests(self) -> int:
        return 2  # the PR's diff: Bitbucket answers with a redirect to /diff/{spec}

    def closing_requests(self, report: StatusReport) -> int:
        """The Code Insights report, its annotations 100 at a time, the build status."""
        docs = insights.annotation_docs(report.new_items, report.details_url)
        return 1 + math.ceil(len(docs) / insights.BATCH) + 1

    def _outcome(self, pr: PullRequestRef, report: StatusReport) -> tuple[
            dict[str, Any] | None, list[dict[str, Any]], dict[str, Any], str, str]:
        """What the commit shows now (memo), and the annotations, report, build state and digest of `report`."""
        memo = self.storage.forge_object(self.repository_id, f"commit:{pr.head_sha}", MEMO)
        docs = insights.annotation_docs(report.new_items, report.details_url)
        report_doc = insights.report(report, len(docs))
        state = BUILD_STATES.get(report.state, "SUCCESSFUL")
        return memo, docs, report_doc, state, self._digest(report, report_doc, docs, state, pr.source_branch)

    async def post_comments(self, pr: PullRequestRef, comments: Sequence[PlannedComment]) -> list[PostedComment]:
        """One request per comment: Bitbucket has no batch. A failure midway is recovered by the
        retried job through the hidden markers (existing_markers)."""
        posted = []
        for planned in comments:
            inline: dict[str, Any] = {"path": planned.path, "to": planned.line}
            if planned.start_line is not None and planned.start_line < planned.line:
                inline["start_to"] = planned.start_line
            response = await self.api.request("POST", f"{self._pr(pr)}/comments",
                                              json=_comment_body(planned.body, inline=inline))
            posted.append(PostedComment(planned.item.identity_id, str(response.json()["id"])))
        return posted

    async def upsert_summary(self, pr: PullRequestRef, body: str, existing_id: str | None, *,
                             look_first: bool = True) -> str:
        if existing_id is not None:
            response = await self.api.request("PUT", f"{self._pr(pr)}/comments/{seg(existing_id)}",
                                              json=_comment_body(body), ok=(404,))
            if response.status_code != 404:
                return existing_id
            # someone deleted the summary: post it again
        else:
            found = await self._find_summary(pr) if look_first else None  # a crash may have left one unrecorded
            if found is not None:
                await self.api.request("PUT", f"{self._pr(pr)}/comments/{seg(found)}", json=_comment_body(body))
                return found
        response = await self.api.request("POST", f"{self._pr(pr)}/comments", json=_comment_body(body))
        return str(response.json()["id"])

    async def _find_summary(self, pr: PullRequestRef) -> str | None:
        """The id of a top-level summary comment already on the PR (its hidden marker), if any."""
        for comment in await self._comments_before(pr):
            if comment.get("deleted") or comment.get("parent") or not isinstance(comment.get("id"), int):
                continue
            if is_summary((comment.get("content") or {}).get("raw") or ""):
                return str(comment["id"])
        return None

    async def _last_replies(self, pr: PullRequestRef) -> dict[int, str]:
        """Top-level comment id -> body of its thread's last reply, listed once this run (and kept
        up to date with what this run posts): a retried job replies once."""
        if self._last is None:
            last: dict[int, tuple[int, str]] = {}
            async for c in self.api.paginate(f"{self._pr(pr)}/comments"):
                parent = (c.get("parent") or {}).get("id")
                if c.get("deleted") or not isinstance(parent, int) or not isinstance(c.get("id"), int):
                    continue
                if parent not in last or c["id"] > last[parent][0]:
                    last[parent] = (c["id"], ((c.get("content") or {}).get("raw") or "").strip())
            self._last = {parent: body for parent, (_, body) in last.items()}
        return self._last

    async def _reply_once(self, pr: PullRequestRef, comment: ReviewComment, reply: str) -> bool:
        """Reply unless the thread already ends with this reply; False when the comment is gone."""
        replies = await self._last_replies(pr)
        parent = int(comment.comment_id)
        if replies.get(parent) == reply.strip():
            return True
        response = await self.api.request(
            "POST", f"{self._pr(pr)}/comments",
            json=_comment_body(reply, parent={"type": COMMENT, "id": parent}), ok=(404,))
        if response.status_code == 404:
            return False  # the comment was deleted
        replies[parent] = reply.strip()
        return True

    async def resolve(self, pr: PullRequestRef, comment: ReviewComment, reply: str) -> None:
        """Reply first, then resolve: the thread ends with the reason it was closed."""
        if not await self._reply_once(pr, comment, reply):
            return  # the comment was deleted: nothing left to resolve
        thread = f"{self._pr(pr)}/comments/{seg(comment.comment_id)}"
        await self.api.request("POST", f"{thread}/resolve", ok=(404, 409))  # 409: already resolved

    async def reopen(self, pr: PullRequestRef, comment: ReviewComment, reply: str) -> None:
        """The finding came back: say so in the thread, then reopen it."""
        if not await self._reply_once(pr, comment, reply):
            return  # the comment was deleted: nothing left to reopen
        thread = f"{self._pr(pr)}/comments/{seg(comment.comment_id)}"
        await self.api.request("DELETE", f"{thread}/resolve", ok=(404,))  # 404: not resolved (any more)

    async def set_status(self, pr: PullRequestRef, report: StatusReport) -> None:
        if report.state == "in_progress":
            # Not sent: an INPROGRESS status for the seconds publishing takes costs a request that,
            # within the request budget, buys an inline comment instead (no batch comment endpoint).
            return
        memo, docs, report_doc, state, digest = self._outcome(pr, report)
        if memo is not None and memo.get("digest") == digest:
            return
        report_path = f"{self._commit(pr.head_sha)}/reports/{seg(REPORT_ID)}"
        kept = {d["external_id"] for d in docs}
        if memo is not None and set(memo.get("annotations") or ()) - kept:
            await self.api.request("DELETE", report_path, ok=(404,))  # drops annotations no longer true
        await self.api.request("PUT", report_path, json=report_doc)
        for batch in insights.batches(docs):
            await self.api.request("POST", f"{report_path}/annotations", json=batch)
        await self._build_status(pr, state, report.title, report.details_url)
        self._remember(pr, {"digest": digest, "annotations": sorted(kept)})

    async def _build_status(self, pr: PullRequestRef, state: str, description: str, url: str | None) -> None:
        doc: dict[str, Any] = {
            "type": "commitstatus", "key": STATUS_KEY, "state": state, "name": "forge-app",
            "description": insights.clip(description or "forge-app scan", 255),
            "url": insights.valid_url(url) or FALLBACK_URL,
        }
        if pr.source_branch:
            doc["refname"] = pr.source_branch
        await self.api.request("POST", f"{self._commit(pr.head_sha)}/statuses/build", json=doc)

    def _remember(self, pr: PullRequestRef, value: dict[str, Any]) -> None:
        self.storage.remember_forge_object(self.repository_id, f"commit:{pr.head_sha}", MEMO, value)

    @staticmethod
    def _digest(report: StatusReport, report_doc: dict[str, Any], docs: list[dict[str, Any]], state: str,
                refname: str | None) -> str:
        """What the PR shows, without the scan link: a re-upload of the same results changes nothing."""
        text = json.dumps({"report": report_doc, "annotations": docs, "state": state, "title": report.title,
                           "refname": refname}, sort_keys=True)
        if report.details_url:
            text = text.replace(report.details_url, "{scan}")
        return hashlib.sha256(text.encode()).hexdigest()
