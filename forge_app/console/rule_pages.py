"""The Rule board: Monitor, Comment, Block columns; per-column notification switches.

Moving a rule is a merge into the board (the same as `PATCH /api/v1/policies`); a
column's switch for an integration adds or removes that mode in the integration's
`filters.policies`, exactly what the integrations API shows.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from forge_app.console.web import Form, action, page, queries, redirect, render, storage_of
from forge_app.core.models import MODES
from forge_app.core.policy import _GLOB_CHARS, PolicyError, _from_metadata, _specificity, parse_policy
from forge_app.notify.validation import InvalidIntegration, parse_patch
from forge_app.services.rules import all_files, catalog_for
from forge_app.web.routes.policies import merge_policy

LABELS = {"monitor": "Monitor", "comment": "Comment", "block": "Block"}
HINTS = {"monitor": "Recorded and sent to integrations that ask for them; never commented.",
         "comment": "Commented on pull and merge requests.",
         "block": "Commented, and the check (and the uploader's exit code) fails."}


def is_glob(pattern: str) -> bool:
    return bool(_GLOB_CHARS & set(pattern))


def board(rules_seen: dict[str, int], policy_doc: dict[str, Any],
          served: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Columns of rules by effective mode, with why each rule is there (pure). `served` maps the
    rules served to `semgrep ci` to their metadata (their own `dev.semgrep.actions` count).

    Resolves like `core.policy.mode_for` (exact id, most specific glob, the rule's metadata, the
    default) with the globs compiled once: thousands of rules times dozens of globs stay fast."""
    policy = parse_policy(policy_doc)
    served = served or {}
    columns: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    globs: dict[str, list[str]] = {m: [] for m in MODES}
    compiled = sorted(((p, re.compile(fnmatch.translate(p))) for p in policy.rules if is_glob(p)),
                      key=lambda item: _specificity(item[0]), reverse=True)
    names = set(rules_seen) | set(served) | {p for p in policy.rules if not is_glob(p)}
    for rule in sorted(names):
        metadata = served.get(rule) or {}
        glob = next((p for p, rx in compiled if rx.match(rule)), None)
        if rule in policy.rules:
            mode, why = policy.rules[rule], "set on the board"
        elif glob is not None:
            mode, why = policy.rules[glob], f"by glob {glob}"
        elif (own := _from_metadata(metadata)) is not None:
            mode, why = own, "by the rule's own dev.semgrep.actions"
        else:
            mode, why = policy.default, "board default"
        columns[mode].append({"rule": rule, "mode": mode, "why": why, "repos": rules_seen.get(rule, 0),
                              "served": rule in served})
    for pattern, mode in sorted(policy.rules.items()):
        if is_glob(pattern):
            globs[mode].append(pattern)
    return {"columns": columns, "globs": globs, "default": policy.default}


def _back(error: str) -> Response:
    return redirect("/rules?" + urlencode({"error": error}))


@page
async def board_page(request: Request) -> Response:
    storage = storage_of(request)
    served = {str(r.get("id")): dict(r.get("metadata") or {})
              for f in all_files(catalog_for(request.app.state), storage) for r in f.rules}
    data = board(queries(request).rules_seen(), storage.get_policies(), served)
    integrations = storage.list_integrations()
    switches = {m: [{"integration": i, "on": m in (i.filters.get("policies") or MODES)} for i in integrations]
                for m in MODES}
    return render(request, "rules.html", title="Rule board", labels=LABELS, hints=HINTS, modes=MODES,
                  switches=switches, error=request.query_params.get("error"), **data)


@action
async def set_rule(request: Request, form: Form) -> Response:
    """Move a rule or glob to a column, add a glob, remove one, or change the default."""
    storage = storage_of(request)
    pattern = form.get("pattern").strip()
    mode = form.get("mode")
    patch: dict[str, Any]
    if form.get("action") == "default":
        patch = {"default": mode}
    elif form.get("action") == "remove":
        patch = {"rules": {pattern: None}}
    else:
        if not pattern:
            return _back("Enter a rule id or a glob such as python.lang.*")
        patch = {"rules": {pattern: mode}}
    try:
        policy = merge_policy(storage.get_policies(), patch)
    except PolicyError as exc:
        return _back(str(exc))
    storage.put_policies(policy.default, dict(policy.rules))
    return redirect("/rules")


@action
async def set_notifications(request: Request, form: Form) -> Response:
    """One column's switches: each shown integration gets this mode added or removed."""
    mode = form.get("column")
    if mode not in MODES:
        return _back("Unknown column")
    storage = storage_of(request)
    on = set(form.all("on"))
    refused = []
    for raw in form.all("shown"):
        integration = storage.integration(int(raw)) if raw.isdigit() and len(raw) < 16 else None
        if integration is None:
            continue
        current = list(integration.filters.get("policies") or MODES)
        wanted = [m for m in MODES if (m in current and m != mode) or (m == mode and raw in on)]
        if wanted == [m for m in MODES if m in current]:
            continue
        if not wanted:
            refused.append(integration.name)
            continue
        try:
            draft = parse_patch({"filters": {"policies": wanted}}, integration.type, integration.name,
                                integration.enabled, integration.filters, integration.config)
        except InvalidIntegration:
            refused.append(integration.name)
            continue
        storage.update_integration(integration.id, filters=draft.filters)
    if refused:
        return _back(", ".join(refused)[:200] + " would receive nothing at all: turn another "
                        "column on first, or disable the integration in Settings → Integrations")
    return redirect(f"/rules#notify-{mode}")
