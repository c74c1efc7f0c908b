"""Bitbucket Cloud, described once for the registry: connections, webhook, jobs, links."""

from __future__ import annotations

from forge_app.config import DEFAULT_BITBUCKET_API_URL, Settings
from forge_app.forges.base import ConnectionKind, Forge, WebLinks
from forge_app.forges.bitbucket import FORGE as NAME
from forge_app.forges.bitbucket import RENDERING, ci, connection, webhook
from forge_app.forges.bitbucket.events import EVENT_JOB, handle_event
from forge_app.forges.bitbucket.publish import publisher_for
from forge_app.forges.bitbucket.source import bitbucket_source_fetcher

WEB_ROOT = "https://bitbucket.org"


def _web_root(settings: Settings, _connection_base: str | None) -> str | None:
    """Bitbucket Cloud's web UI; unknown for another API URL (a test double, a proxy)."""
    return WEB_ROOT if settings.bitbucket_api_url.rstrip("/") == DEFAULT_BITBUCKET_API_URL else None


def _line(repo: str, sha: str, path: str, line: int | None) -> str:
    return f"{repo}/src/{sha}/{path}" + (f"#lines-{line}" if line else "")


FORGE = Forge(
    name=NAME,
    title="Bitbucket",
    rendering=RENDERING,
    links=WebLinks(pull_request="pull-requests", commit="commits", line=_line, web_root=_web_root),
    publisher=publisher_for,
    job_handlers={EVENT_JOB: handle_event},
    webhook=webhook.WEBHOOK,
    source_fetcher=bitbucket_source_fetcher,
    connections=ConnectionKind(scopes=("workspace", "repository"),
                               default_base_url=lambda settings: settings.bitbucket_api_url,
                               verify=connection.verify, target_hint="workspace, or workspace/repo_slug.",
                               base_url_hint="Bitbucket Cloud's API"),
    detect_ci=ci.detect,
)
