"""The one small interface every forge adapter implements.

The generic publishing flow (forges/flow.py) decides everything through the pure
review core; an adapter only talks to its forge: read the diff, post comments, keep
one summary note, set a status, resolve or reopen a thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from forge_app.core.review.patch import FileDiff
from forge_app.core.review.plan import PlannedComment, ReviewItem
from forge_app.core.review.render import Counts
from forge_app.core.review.style import Rendering
from storage import ReviewComment

if TYPE_CHECKING:
    from forge_app.config import Settings

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
    forge: str  # the forge's name, for logs and metrics
    rendering: Rendering  # how that forge shows review text

    def comment_requests(self, count: int) -> int:
        """Requests `post_comments` makes for `count` comments (GitHub: 2 per review of 50;
        GitLab and Bitbucket, which have no batch endpoint: one each). The request budget
        (forges/flow.py) decides from this how many inline comments a scan may post."""

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


# --- One definition per forge ---------------------------------------------------------------------------
# Each adapter package describes itself once, in `forges/<forge>/forge.py` as `FORGE = Forge(...)`, and
# `forges/registry.py` lists those descriptions explicitly. Nothing outside `forges/` names a forge: it
# asks the registry.


@dataclass
class CiContext:
    """What a CI job knows about itself: repository, commit, branches, PR/MR number."""

    provider: str | None = None
    forge: str | None = None
    repository: str | None = None
    commit: str | None = None
    branch: str | None = None
    base_branch: str | None = None
    base_commit: str | None = None
    pull_request: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


CiDetector = Callable[[Mapping[str, str], Callable[[str], "str | None"]], "CiContext | None"]
"""`(environment, read_file) -> CiContext` when the environment is this forge's CI, else None."""


@dataclass(frozen=True, slots=True)
class WebLinks:
    """Where a repository's pages live on the forge's web UI (link formats, no I/O)."""

    pull_request: str  # path segment before a PR/MR number: "pull", "-/merge_requests", ...
    commit: str  # path segment before a commit SHA
    line: Callable[[str, str, str, int | None], str]  # (repository URL, quoted sha, quoted path, line) -> URL
    web_root: Callable[[Settings, str | None], str | None]  # (settings, a connection's base URL) -> root
    change: str = "Pull request"  # what the forge calls a PR, for people
    change_ref: str = "PR #"  # how a PR number is written there ("MR !5")


@dataclass(frozen=True, slots=True)
class ConnectionKind:
    """A forge reached through admin-added connections (`/api/v1/connections`)."""

    scopes: tuple[str, ...]
    default_base_url: Callable[[Settings], str]
    verify: Callable[[Any, Settings], Awaitable[dict[str, Any]]]  # (ConnectionRequest, settings) -> info
    target_hint: str = ""  # the console form's words for a target ("workspace, or workspace/repo_slug")
    base_url_hint: str = ""  # what base_url defaults to, in words


@dataclass(frozen=True, slots=True)
class Forge:
    """Everything forge-app knows about one forge, in one place."""

    name: str  # the wire name: routes (/webhooks/<name>), JSON fields, `--forge`, storage
    title: str  # for people: "GitHub"
    rendering: Rendering
    links: WebLinks
    publisher: Callable[[Any, Any], Any]  # (JobContext, ScanRecord) -> Publisher | None (None: not set up)
    job_handlers: Mapping[str, Any] = field(default_factory=dict)  # job kind -> Handler
    webhook: Any = None  # a forges.webhooks.Webhook: checking deliveries and what they ask for, sans I/O
    source_fetcher: Callable[[Any, Any], Any] | None = None  # (JobContext, Repository) -> Fetcher | None
    diff_reader: Callable[[Any, Any], Any] | None = None  # (JobContext, Repository) -> DiffReader | None
    connections: ConnectionKind | None = None
    detect_ci: CiDetector | None = None
    routes: Sequence[Any] = ()  # forge-specific Starlette routes (setup pages, extra webhooks)
    console_routes: Sequence[Any] = ()  # forge-specific console pages (HTML)
    settings_cards: Sequence[tuple[str, str, str]] = ()  # Settings page entries: (href, title, description)
    connections_panel: Callable[[Any], dict[str, Any]] | None = None  # (Request) -> {"template", "context"}
    openapi_paths: Mapping[str, Any] = field(default_factory=dict)  # OpenAPI of `routes` machines call
    openapi_schemas: Mapping[str, Any] = field(default_factory=dict)
    cli_verbs: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # verb -> (module, help)
    startup_hints: Callable[[Any, Any], list[str]] | None = None  # (Settings, Storage) -> what to configure
    on_start: Callable[[Any, Any], None] | None = None  # (Settings, Storage): schedule recurring jobs
    # Whether scans of a repository are published (e.g. a marketplace plan), decided at upload time:
    serving: Callable[[Any, Any], Awaitable[Any]] | None = None  # (JobContext, Repository) -> Serving | None
    serving_now: Callable[[Any, Any, Any], Any] | None = None  # (Settings, Storage, Repository), no network
