"""What a CI job knows about itself: repository, commit, branches, PR/MR number.

Pure functions of the environment (and, for some CIs, an event file's content); each
forge's CI reads its own variables (forges/<forge>/ci.py, listed in the registry), so
each is tested with its real variable names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from forge_app.forges.base import CiContext
from forge_app.forges.registry import FORGES

__all__ = ["CiContext", "detect_ci"]


def detect_ci(env: Mapping[str, str], read_event: Callable[[str], str | None] = lambda _p: None) -> CiContext:
    """The CI this runs in, from its documented variables; an empty context elsewhere."""
    ctx = CiContext()
    for forge in FORGES.values():
        found = forge.detect_ci(env, read_event) if forge.detect_ci is not None else None
        if found is not None:
            ctx = found
            break
    ctx.meta = {k: v for k, v in ctx.meta.items() if v}
    if ctx.provider:
        ctx.meta["ci_provider"] = ctx.provider
    return ctx
