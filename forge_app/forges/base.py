"""The one small interface every forge adapter implements.

The generic publishing flow (forges/publish.py) decides everything through the pure
review core; an adapter only talks to its forge: read the diff, post comments, keep
one summary note, set a status, resolve or reopen a thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from forge_app.core.review.patch import FileDiff
from forge_app.core.review.plan import PlannedComment, ReviewItem
from forge_app.core.review.render import Counts, Flavour
from storage import ReviewComment

StatusState = Literal["in_progress", "success", "failure", "neutral"]


@dataclass(frozen=True, slots=True)
class PostedComment:
    """What the forge answered for one planned comment."""

    identity_id: int
    comment_id: str
    thread_id: str | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Everything a check run / commit status / Code Insights report may show."""

    state: StatusState
    title: str
    summary: str
    counts: Counts
    details_url: str | None = None
    new_items: Sequence[ReviewItem] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class PullRequestRef:
    repository: str  # owner/name, group/project, workspace/repo_slug
    number: int
    head_sha: str
    source_branch: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ForgeClient(Protocol):
    flavour: Flavour

    def comment_requests(self, count: int) -> int:
        """Requests `post_comments` makes for `count` comments (GitHub: 2 per review of 50;
        GitLab and Bitbucket, which have no batch endpoint: one each). The request budget
        (forges/publish.py) decides from this how many inline comments a scan may post."""

    def opening_requests(self) -> int:
        """Requests a first publication makes before its comments (GitHub: the check run and the
        changed files; GitLab: the MR versions and diff; Bitbucket: the diff and its redirect)."""

    def closing_requests(self, report: StatusReport) -> int:
        """Requests the final `set_status(report)` makes on a commit that shows nothing yet
        (check-run annotation pages, Code Insights report and annotation batches, commit status).
        With `opening_requests`, a cost model of the scan alone: the same scan always gets the
        same inline comments, whatever was published before."""

    async def changed_files(self, pr: PullRequestRef) -> dict[str, FileDiff]:
        """The PR's diff, every page of it, keyed by new path."""

    async def existing_markers(self, pr: PullRequestRef) -> dict[str, PostedComment]:
        """Fingerprint -> comment already on the PR (recovers from a crash between posting and recording)."""

    async def post_comments(self, pr: PullRequestRef, comments: Sequence[PlannedComment]) -> list[PostedComment]:
        """Post the inline comments (GitHub: in one review) and say what was created."""

    async def upsert_summary(self, pr: PullRequestRef, body: str, existing_id: str | None, *,
                             look_first: bool = True) -> str:
        """Create or edit in place the one summary note; returns its id. With `look_first` and no
        `existing_id`, a note already on the PR (found by its hidden marker) is edited, not duplicated."""

    async def resolve(self, pr: PullRequestRef, comment: ReviewComment, reply: str) -> None:
        """Reply to a finding's thread, then resolve it (a retry replies once)."""

    async def reopen(self, pr: PullRequestRef, comment: ReviewComment, reply: str) -> None:
        """Reply to a resolved finding's thread whose finding came back, and reopen it (a retry replies once)."""

    async def set_status(self, pr: PullRequestRef, report: StatusReport) -> None:
        """Create or update the check / commit status for the PR head."""
