"""GitLab webhook payloads, boiled down to the few facts the app acts on.

Pure and lenient: payloads differ between GitLab versions and between project
webhooks, group webhooks, integrations ("Service Hook") and system hooks, so only
the fields used are read, and a delivery that lacks them is ignored, not an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from forge_app.core.refs import branch_name

HOOK_KINDS = {
    "Merge Request Hook": "merge_request", "Push Hook": "push", "Tag Push Hook": "tag_push",
    "Note Hook": "note", "Pipeline Hook": "pipeline", "Job Hook": "build", "Issue Hook": "issue",
    "Confidential Issue Hook": "issue", "Confidential Note Hook": "note", "Wiki Page Hook": "wiki_page",
    "Release Hook": "release", "Deployment Hook": "deployment",
}
MR_ACTIONS = ("open", "reopen", "update", "merge", "close")
NO_SHA = "0" * 40


def event_kind(header: str | None, doc: Mapping[str, Any]) -> str:
    """`X-Gitlab-Event` when it names an event; otherwise (integrations send `Service Hook`,
    system hooks `System Hook`) the payload's own `object_kind` / `event_name`."""
    kind = HOOK_KINDS.get((header or "").strip())
    if kind:
        return kind
    return str(doc.get("object_kind") or doc.get("event_name") or "unknown")


def project_of(doc: Mapping[str, Any]) -> tuple[str, int | None] | None:
    """(path_with_namespace, id) of the project the delivery is about."""
    project = doc.get("project")
    if not isinstance(project, dict):
        return None
    path = project.get("path_with_namespace")
    if not isinstance(path, str) or not path.strip():
        return None
    pid = project.get("id") if isinstance(project.get("id"), int) else doc.get("project_id")
    return path.strip(), pid if isinstance(pid, int) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class GitLabEvent:
    kind: str  # merge_request | push
    action: str  # open | reopen | update | merge | close | push
    project: str
    project_id: int | None = None
    default_branch: str | None = None
    iid: int | None = None
    state: str | None = None
    head_sha: str | None = None
    oldrev: str | None = None
    source_branch: str | None = None
    target_branch: str | None = None
    ref: str | None = None
    before: str | None = None
    after: str | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}.{self.action}" if self.kind == "merge_request" else self.kind

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> GitLabEvent:
        values: dict[str, Any] = {f.name: payload.get(f.name) for f in fields(cls) if f.name in payload}
        return cls(**values)

    def ignore_reason(self) -> str | None:
        """Why this event needs no work, or None when it does."""
        if self.kind == "merge_request":
            if self.action not in MR_ACTIONS:
                return f"merge request action {self.action!r} needs nothing"
            if self.action == "update" and not self.oldrev:
                return "merge request update without code changes (no oldrev)"
            if self.iid is None:
                return "merge request event without an iid"
            return None
        if self.kind == "push":
            if not self.default_branch or self.ref != f"refs/heads/{self.default_branch}":
                return "push to a branch other than the default branch"
            if self.after in (None, NO_SHA):
                return "the default branch was deleted"
            return None
        return f"{self.kind} events need nothing"


def parse_event(kind: str, doc: Mapping[str, Any]) -> GitLabEvent | None:
    """The event (other kinds come back with nothing but the project), or None without a project."""
    project = project_of(doc)
    if project is None:
        return None
    path, pid = project
    default_branch = branch_name(doc["project"].get("default_branch"))
    if kind == "merge_request":
        attrs = doc.get("object_attributes")
        if not isinstance(attrs, dict):
            return None
        raw_commit = attrs.get("last_commit")
        last_commit = raw_commit if isinstance(raw_commit, dict) else {}
        iid = attrs.get("iid")
        return GitLabEvent(
            kind="merge_request", action=str(attrs.get("action") or "unknown"), project=path, project_id=pid,
            default_branch=default_branch, iid=iid if isinstance(iid, int) else None, state=_str(attrs.get("state")),
            head_sha=_str(last_commit.get("id")), oldrev=_str(attrs.get("oldrev")),
            source_branch=branch_name(attrs.get("source_branch")),
            target_branch=branch_name(attrs.get("target_branch")),
        )
    if kind == "push":
        return GitLabEvent(kind="push", action="push", project=path, project_id=pid, default_branch=default_branch,
                           ref=_str(doc.get("ref")), before=_str(doc.get("before")), after=_str(doc.get("after")))
    return GitLabEvent(kind=kind, action=kind, project=path, project_id=pid, default_branch=default_branch)
