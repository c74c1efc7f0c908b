"""The app's installations: remember them and their repositories; forget them when removed or suspended."""

from __future__ import annotations

import logging

from forge_app.forges.github.events import revoke_installation
from forge_app.forges.router import Call, Router

log = logging.getLogger(__name__)
router = Router()


@router.register("installation", "deleted")
async def removed(call: Call) -> None:
    storage, p = call.context.storage, call.payload
    installation_id = p["installation_id"]
    revoke_installation(storage, installation_id)
    storage.upsert_github_installation(installation_id, account=p.get("account"), deleted=True)
    storage.unlink_github_repositories(installation_id)
    log.info("GitHub installation %s (%s) removed", installation_id, p.get("account"))


@router.register("installation", "suspend")
async def suspended(call: Call) -> None:
    storage, p = call.context.storage, call.payload
    revoke_installation(storage, p["installation_id"])
    storage.upsert_github_installation(p["installation_id"], account=p.get("account"), suspended=True)


@router.register("installation", "created", "unsuspend", "new_permissions_accepted")
async def installed(call: Call) -> None:
    storage, p = call.context.storage, call.payload
    installation_id, action = p["installation_id"], p["action"]
    storage.upsert_github_installation(installation_id, account=p.get("account"), account_type=p.get("account_type"),
                                       repository_selection=p.get("repository_selection"),
                                       suspended=False if action in ("unsuspend", "created") else None)
    if p.get("repositories"):
        storage.link_github_repositories(installation_id, p["repositories"])


@router.register("installation_repositories", "added", "removed")
async def repositories_changed(call: Call) -> None:
    storage, p = call.context.storage, call.payload
    installation_id = p["installation_id"]
    if p.get("added"):
        storage.upsert_github_installation(installation_id)
        storage.link_github_repositories(installation_id, p["added"])
    if p.get("removed"):
        storage.unlink_github_repositories(installation_id, p["removed"])
