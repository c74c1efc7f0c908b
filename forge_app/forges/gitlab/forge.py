"""GitLab (gitlab.com and self-managed), described once for the registry: connections, webhook, jobs, links."""

from __future__ import annotations

from forge_app.config import Settings
from forge_app.forges.base import ConnectionKind, Forge, WebLinks
from forge_app.forges.gitlab import RENDERING, ci, connection, webhook
from forge_app.forges.gitlab.publish import handle_event, publisher_for_scan
from forge_app.forges.gitlab.source import gitlab_diff_reader
from forge_app.forges.gitlab.webhook import JOB_KIND

DEFAULT_URL = "https://gitlab.com"


def _web_root(_settings: Settings, connection_base: str | None) -> str | None:
    """The web UI lives at the connection's base URL (an API URL given there loses its `/api/v4`)."""
    return connection_base.rstrip("/").removesuffix("/api/v4") if connection_base else None


def _line(repo: str, sha: str, path: str, line: int | None) -> str:
    return f"{repo}/-/blob/{sha}/{path}" + (f"#L{line}" if line else "")


FORGE = Forge(
    name="gitlab",
    title="GitLab",
    rendering=RENDERING,
    links=WebLinks(pull_request="-/merge_requests", commit="-/commit", line=_line, web_root=_web_root,
                   change="Merge request", change_ref="MR !"),
    publisher=publisher_for_scan,
    job_handlers={JOB_KIND: handle_event},
    webhook=webhook.WEBHOOK,
    source_fetcher=None,  # its vendored API contract has no file endpoint (forges/sources.py)
    diff_reader=gitlab_diff_reader,
    connections=ConnectionKind(scopes=("project", "group"), default_base_url=lambda _settings: DEFAULT_URL,
                               verify=connection.verify, target_hint="group/project or group path.",
                               base_url_hint=DEFAULT_URL),
    detect_ci=ci.detect,
)
