"""GitHub, described once for the registry: a GitHub App (no connections), its webhook, jobs and links."""

from __future__ import annotations

from starlette.routing import Route

from forge_app.config import Settings
from forge_app.forges.base import Forge, WebLinks
from forge_app.forges.github import RENDERING, ci, console, setup_routes, webhook
from forge_app.forges.github.behaviours import JOB_KIND, handle_event
from forge_app.forges.github.credentials import load_credentials
from forge_app.forges.github.marketplace import console_page
from forge_app.forges.github.marketplace import jobs as marketplace_jobs
from forge_app.forges.github.marketplace import routes as marketplace_routes
from forge_app.forges.github.marketplace.serving import decide_for_repository, decide_for_upload
from forge_app.forges.github.publish import github_publisher
from forge_app.forges.github.source import github_diff_reader, github_source_fetcher
from forge_app.web.routes.openapi import webhook_operation
from storage import Storage


def _startup_hints(settings: Settings, storage: Storage) -> list[str]:
    credentials = load_credentials(settings, storage)
    if credentials.can_authenticate and credentials.webhook_secret:
        return []
    return ["no GitHub App configured: run `forge-app github setup` or set GITHUB_APP_ID, GITHUB_PRIVATE_KEY(_PATH), "
            "GITHUB_WEBHOOK_SECRET"]


def _on_start(settings: Settings, storage: Storage) -> None:
    """With Marketplace plans configured, the daily reconciliation with the listing is scheduled."""
    if settings.marketplace:
        marketplace_jobs.schedule_daily(storage, settings)


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
    job_handlers={JOB_KIND: handle_event, **marketplace_jobs.handlers()},
    webhook=webhook.WEBHOOK,
    source_fetcher=github_source_fetcher,
    diff_reader=github_diff_reader,
    detect_ci=ci.detect,
    startup_hints=_startup_hints,
    on_start=_on_start,
    # The Marketplace's routes come first: its /github/installed (the Setup URL) wins over the setup flow's.
    routes=(*marketplace_routes.routes, *setup_routes.routes),
    console_routes=(Route("/settings/marketplace", console_page.marketplace_page, methods=["GET"]),
                    Route("/settings/connections/github-setup", console.github_setup, methods=["POST"])),
    connections_panel=console.connections_panel,
    settings_cards=(("/settings/marketplace", "Marketplace",
                     "GitHub Marketplace accounts: plan, trial, pending change, served or not."),),
    openapi_paths={**marketplace_routes.OPENAPI_PATHS, "/webhooks/github/marketplace": webhook_operation(
        "GitHub Marketplace listing", "X-GitHub-Event",
        "X-Hub-Signature-256 (HMAC-SHA256 of the body with GITHUB_MARKETPLACE_WEBHOOK_SECRET)")},
    openapi_schemas=marketplace_routes.OPENAPI_SCHEMAS,
    cli_verbs={"github": ("forge_app.forges.github.cli", "GitHub App helpers (github setup)")},
    serving=decide_for_upload,
    serving_now=decide_for_repository,
)


