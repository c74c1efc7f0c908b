"""Web links to a scan's pull request, where the forge's web address is known."""

from __future__ import annotations

from urllib.parse import quote

from forge_app.config import DEFAULT_BITBUCKET_API_URL, Settings
from storage import ScanRecord


def pull_request_url(scan: ScanRecord, settings: Settings) -> str | None:
    """GitHub (FORGE_APP_GITHUB_WEB_URL) and Bitbucket Cloud; None elsewhere (a GitLab
    connection's base URL is not needed for a notification to be useful)."""
    if scan.pull_request is None:
        return None
    repo = quote(scan.repository, safe="/")
    if scan.forge == "github":
        return f"{settings.github_web_url}/{repo}/pull/{scan.pull_request}"
    if scan.forge == "bitbucket" and settings.bitbucket_api_url == DEFAULT_BITBUCKET_API_URL:
        return f"https://bitbucket.org/{repo}/pull-requests/{scan.pull_request}"
    return None
