"""GitHub, described once for the registry: a GitHub App (no connections), its webhook, jobs and links."""

from __future__ import annotations

from forge_app.config import Settings
from forge_app.forges.base import Forge, WebLinks
from forge_app.forges.github import RENDERING, ci, webhook
from forge_app.forges.github.behaviours import JOB_KIND, handle_event
from forge_app.forges.github.credentials import load_credentials
from forge_app.forges.github.publish import github_publisher
from forge_app.forges.github.source import github_diff_reader, github_source_fetcher
from storage import Storage


def _startup_hints(settings: Settings, storage: Storage) -> list[str]:
    credentials = load_credentials(settings, storage)
    if credentials.can_authenticate and credentials.webhook_secret:
        return []
    return ["no GitHub App configured: run `forge-app github setup` or set GITHUB_APP_ID, GITHUB_PRIVATE_KEY(_PATH), "
            "GITHUB_WEBHOOK_SECRET"]


def _web_root(settings: Settings, _connection_base: str | None) -> str | None:
    return settings.github_web_url


def _line(repo: str, sha: str, path: str, line: int | None) -> str:
    return f"{repo}/blob/{sha}/{path}" + (f"#L{line}" if line else "")


FORGE = Forge(
    name="github",
    title="GitHub",
    rendering=RENDERING,
    links=WebLinks(pull_request="pull", commit="commit", line=_line, web_root=_web_root),
    publisher=github_publisher,
    job_handlers={JOB_KIND: handle_event},
    webhook=webhook.WEBHOOK,
    source_fetcher=github_source_fetcher,
    diff_reader=github_diff_reader,
    detect_ci=ci.detect,
    startup_hints=_startup_hints,
)


