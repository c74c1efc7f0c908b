"""Web links to a scan's pull request, where the forge's web address is known."""

from __future__ import annotations

from urllib.parse import quote

from forge_app.config import Settings
from forge_app.forges.registry import FORGES
from storage import ScanRecord


def pull_request_url(scan: ScanRecord, settings: Settings) -> str | None:
    """Where the forge's web root follows from the settings alone; None elsewhere (a forge whose
    web address comes with a connection is not looked up: the notification is useful without it)."""
    forge = FORGES.get(scan.forge)
    if scan.pull_request is None or forge is None:
        return None
    root = forge.links.web_root(settings, None)
    if root is None:
        return None
    return f"{root}/{quote(scan.repository, safe='/')}/{forge.links.pull_request}/{scan.pull_request}"
