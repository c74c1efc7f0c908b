"""Pushes to the default branch: its name is recorded for every repository event (events.prepare_repository);
baselines come from uploads, so nothing more is asked of GitHub."""

from __future__ import annotations

from forge_app.forges.router import Call, Router

router = Router()


@router.register("push")
async def default_branch_moved(call: Call) -> None:
    """Nothing beyond what every repository event records (no API call)."""
