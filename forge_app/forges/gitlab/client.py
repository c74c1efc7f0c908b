"""The GitLab ForgeClient: reads an MR's latest version and diff, posts diff discussions,
keeps one summary note, sets the `forge-app` commit status, resolves fixed threads and reopens
those whose finding came back.

python-gitlab is blocking, so every call runs in a worker thread (asyncio.to_thread).
One instance serves one publish run; it caches the MR's versions and diff for that run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from forge_app.core.review.patch import FileDiff, parse_hunks
from forge_app.core.review.plan import PlannedComment
from forge_app.core.review.render import is_summary, markers_in
from forge_app.forges.base import PostedComment, PullRequestRef, StatusReport
from forge_app.forges.gitlab import RENDERING
from forge_app.forges.gitlab.errors import GitLabNotFound, GitLabRejected
from forge_app.forges.gitlab.http import GitLabApi, project_ref
from forge_app.forges.gitlab.positions import DiffFile, DiffRefs, added_line_position, added_lines_old_counter
from forge_app.forges.gitlab.status import status_body
from storage import ReviewComment

log = logging.getLogger(__name__)
T = TypeVar("T")


def latest_version(versions: list[dict[str, Any]]) -> dict[str, Any]:
    """GitLab lists versions newest first; the highest id wins if an answer is ever unordered."""
    if all(isinstance(v.get("id"), int) for v in versions):
        return max(versions, key=lambda v: v["id"])
    return versions[0]


def _is_binary(diff: str) -> bool:
    return diff.startswith("Binary files") or "GIT binary patch" in diff[:200]


class GitLabClient:
    forge = "gitlab"
    rendering = RENDERING

    def __init__(self, api: GitLabApi, project: str | int) -> None:
        self.api = api
        self.project = project_ref(project)
        self._versions: dict[int, list[dict[str, Any]]] = {}
        self._files: dict[int, dict[str, DiffFile]] = {}
        self._threads: dict[int, dict[str, dict[str, Any]]] = {}

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def _mr(self, pr: PullRequestRef) -> str:
        return f"/projects/{self.project}/merge_requests/{pr.number}"

    # -- reading -------------------------------------------------------------------------------

    async def versions(self, pr: PullRequestRef) -> list[dict[str, Any]]:
        """The MR's diff versions (cached for this run)."""
        if pr.number not in self._versions:
            found = await self._run(self.api.get, f"{self._mr(pr)}/versions")
            self._versions[pr.number] = [v for v in found or [] if isinstance(v, dict)]
        return self._versions[pr.number]

    async def diff_refs(self, pr: PullRequestRef) -> DiffRefs:
        versions = await self.versions(pr)
        if not versions:
            raise GitLabRejected(f"merge request !{pr.number} has no diff version yet")
        return DiffRefs.from_version(latest_version(versions))

    async def changed_files(self, pr: PullRequestRef) -> dict[str, FileDiff]:
        """The latest version's diff, every page of it, keyed by new path."""
        await self.diff_refs(pr)
        items = await self._run(self.api.list, f"{self._mr(pr)}/diffs")
        out: dict[str, FileDiff] = {}
        files: dict[str, DiffFile] = {}
        for item in items:
            new_path, old_path = item.get("new_path"), item.get("old_path") or item.get("new_path")
            if not isinstance(new_path, str):
                continue
            raw_diff = item.get("diff")
            diff = raw_diff if isinstance(raw_diff, str) else ""
            binary = _is_binary(diff)
            out[new_path] = FileDiff(path=new_path, old_path=old_path, hunks=[] if binary else parse_hunks(diff),
                                     binary=binary, deleted=bool(item.get("deleted_file")))
            files[new_path] = DiffFile(new_path=new_path, old_path=str(old_path),
                                       added_old=added_lines_old_counter(diff))
        self._files[pr.number] = files
        return out

    async def discussions(self, pr: PullRequestRef) -> list[dict[str, Any]]:
        return await self._run(self.api.list, f"{self._mr(pr)}/discussions")

    async def existing_markers(self, pr: PullRequestRef) -> dict[str, PostedComment]:
        """Fingerprint -> thread that already carries it (only a thread's first note counts)."""
        out: dict[str, PostedComment] = {}
        for d in await self.discussions(pr):
            notes = d.get("notes") or []
            if not notes or not isinstance(notes[0], dict):
                continue
            first = notes[0]
            for fingerprint in markers_in(str(first.get("body") or "")):
                out.setdefault(fingerprint, PostedComment(0, str(first.get("id")), str(d.get("id"))))
        return out

    # -- writing -------------------------------------------------------------------------------

    def comment_requests(self, count: int) -> int:
        return count  # no batch endpoint for published notes (draft notes are created one by one too)

    def opening_requests(self) -> int:
        return 2  # the MR's versions, its diff

    def closing_requests(self, report: StatusReport) -> int:
        return 1  # the commit status

    async def post_comments(self, pr: PullRequestRef, comments: Sequence[PlannedComment]) -> list[PostedComment]:
        """One diff discussion per finding (GitLab has no batch endpoint for published notes)."""
        if not comments:
            return []
        refs = await self.diff_refs(pr)
        if pr.number not in self._files:
            await self.changed_files(pr)
        files = self._files[pr.number]
        posted: list[PostedComment] = []
        for c in comments:
            file = files.get(c.path)
            data: dict[str, Any] = {"body": c.body}
            if file is not None:
                data["position"] = added_line_position(refs, file, c.line, c.start_line)
            try:
                d = await self._run(self.api.post, f"{self._mr(pr)}/discussions", data)
            except GitLabRejected as exc:
                # The diff moved under us or GitLab disagrees about the line: keep the finding visible.
                log.warning("GitLab refused the diff position for %s:%s on !%s (%s); posting an MR thread instead",
                            c.path, c.line, pr.number, exc.message)
                try:
                    d = await self._run(self.api.post, f"{self._mr(pr)}/discussions",
                                        {"body": f"**`{c.path}`, line {c.line}**\n\n{c.body}"})
                except GitLabRejected as again:
                    log.error("GitLab refused the thread for %s:%s on !%s: %s", c.path, c.line, pr.number,
                              again.message)
                    continue
            notes = (d or {}).get("notes") or [{}]
            posted.append(PostedComment(c.item.identity_id, str(notes[0].get("id")), str((d or {}).get("id"))))
        return posted

    async def upsert_summary(self, pr: PullRequestRef, body: str, existing_id: str | None, *,
                             look_first: bool = True) -> str:
        """The one summary note, edited in place. Its id is kept as `<discussion id>:<note id>`
        because notes are edited through their discussion (the contract's edit route). A new note
        is kept as `:<note id>` (GitLab's answer does not name its discussion): the discussion is
        looked up when the note is first edited, so creating it costs one request, not two."""
        if existing_id:
            discussion_id, _, note_id = existing_id.partition(":")
            if note_id and not discussion_id:
                discussion_id = self._discussion_of(await self.discussions(pr), note_id) or ""
            if discussion_id and note_id:
                try:
                    await self._edit_note(pr, discussion_id, note_id, body)
                    return f"{discussion_id}:{note_id}"
                except GitLabNotFound:
                    pass
            log.info("the summary note on !%s was deleted; posting a new one", pr.number)
        # A crash may have left one unrecorded.
        found = self._find_summary(await self.discussions(pr)) if look_first else None
        if found is not None:
            await self._edit_note(pr, found[0], found[1], body)
            return f"{found[0]}:{found[1]}"
        note = await self._run(self.api.post, f"{self._mr(pr)}/notes", {"body": body})
        return f":{(note or {}).get('id')}"

    @staticmethod
    def _discussion_of(discussions: list[dict[str, Any]], note_id: str) -> str | None:
        for d in discussions:
            if any(str(n.get("id")) == note_id for n in d.get("notes") or [] if isinstance(n, dict)):
                return str(d.get("id"))
        return None

    @staticmethod
    def _find_summary(discussions: list[dict[str, Any]]) -> tuple[str, str] | None:
        for d in discussions:
            for n in d.get("notes") or []:
                if isinstance(n, dict) and is_summary(str(n.get("body") or "")):
                    return str(d.get("id")), str(n.get("id"))
        return None

    async def _edit_note(self, pr: PullRequestRef, discussion_id: str, note_id: str, body: str) -> None:
        await self._run(self.api.put, f"{self._mr(pr)}/discussions/{discussion_id}/notes/{note_id}", {"body": body})

    async def _thread(self, pr: PullRequestRef, thread_id: str) -> dict[str, Any] | None:
        """The discussion as listed once this run (kept up to date with what this run posts)."""
        if pr.number not in self._threads:
            self._threads[pr.number] = {str(d.get("id")): d for d in await self.discussions(pr) if isinstance(d, dict)}
        return self._threads[pr.number].get(thread_id)

    @staticmethod
    def _last_body(discussion: dict[str, Any] | None) -> str | None:
        notes = [n for n in (discussion or {}).get("notes") or [] if isinstance(n, dict)]
        return str(notes[-1].get("body") or "").strip() if notes else None

    @staticmethod
    def _resolved(discussion: dict[str, Any] | None) -> bool:
        notes = [n for n in (discussion or {}).get("notes") or [] if isinstance(n, dict) and n.get("resolvable")]
        return bool(notes) and all(n.get("resolved") for n in notes)

    async def _reply(self, pr: PullRequestRef, discussion: dict[str, Any] | None, path: str, reply: str) -> None:
        note = await self._run(self.api.post, f"{path}/notes", {"body": reply})
        if discussion is not None:
            discussion.setdefault("notes", []).append(
                note if isinstance(note, dict) else {"body": reply, "resolvable": True, "resolved": False})

    async def _reply_once(self, pr: PullRequestRef, thread_id: str, path: str,
                          reply: str) -> tuple[dict[str, Any] | None, bool]:
        """The discussion, after adding `reply` unless it already ends with it (a retried job);
        True when this call replied."""
        discussion = await self._thread(pr, thread_id)
        if self._last_body(discussion) == reply.strip():
            return discussion, False
        await self._reply(pr, discussion, path, reply)
        return discussion, True

    async def resolve(self, pr: PullRequestRef, comment: ReviewComment, reply: str) -> None:
        """Reply first, then resolve: a note added to a resolved discussion would reopen it.
        A retried job does not reply twice: a thread already ending with the reply is only resolved."""
        if not comment.thread_id:
            return
        path = f"{self._mr(pr)}/discussions/{comment.thread_id}"
        try:
            discussion, replied = await self._reply_once(pr, comment.thread_id, path, reply)
            if not replied and self._resolved(discussion):
                return  # replied and resolved by an earlier attempt
            await self._run(self.api.put, path, {"resolved": True})
            for n in (discussion or {}).get("notes") or []:
                if isinstance(n, dict) and n.get("resolvable"):
                    n["resolved"] = True
        except GitLabNotFound:
            log.info("thread %s on !%s is gone; nothing to resolve", comment.thread_id, pr.number)

    async def reopen(self, pr: PullRequestRef, comment: ReviewComment, reply: str) -> None:
        """The finding came back: a note on the resolved discussion says so, and reopens it
        (a discussion is resolved only while all its resolvable notes are)."""
        if not comment.thread_id:
            return
        path = f"{self._mr(pr)}/discussions/{comment.thread_id}"
        try:
            discussion, replied = await self._reply_once(pr, comment.thread_id, path, reply)
            if not replied and self._resolved(discussion):
                # replied by an earlier attempt, but resolved since: reopen it explicitly
                await self._run(self.api.put, path, {"resolved": False})
        except GitLabNotFound:
            log.info("thread %s on !%s is gone; nothing to reopen", comment.thread_id, pr.number)

    async def set_status(self, pr: PullRequestRef, report: StatusReport) -> None:
        if report.state == "in_progress":
            # Not sent: a "running" status for the seconds publishing takes costs a request that,
            # within the request budget, buys an inline comment instead (GitLab has no batch).
            return
        body = status_body(report, pr.source_branch)
        try:
            await self._run(self.api.post, f"/projects/{self.project}/statuses/{pr.head_sha}", body)
        except GitLabRejected as exc:
            if "transition" in exc.message.lower():  # e.g. running -> running after a retried job
                log.info("commit status of %s is already %s", pr.head_sha[:12], body["state"])
                return
            raise
        except GitLabNotFound:
            log.warning("commit %s is not in the project any more (force-pushed?); no status set", pr.head_sha[:12])


