"""Settings → Integrations: list, add (Webhook | Slack | Email), Test, Save, edit, delete.

Every change goes through the API's own validation (`parse_new`/`parse_patch`), its SSRF
vetting and secret handling, so the console can save nothing the API would refuse.
"Test" on the add form sends the sample to the unsaved draft (nothing is stored);
on a saved integration it is the API's test (recorded among its deliveries).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from forge_app.console.web import Form, PageError, action, int_param, page, queries, redirect, render, storage_of
from forge_app.core.models import MODES
from forge_app.forges.registry import FORGES
from forge_app.notify.delivery import compose_test, send, send_test
from forge_app.notify.mail import SmtpConfigError
from forge_app.notify.sender import Outcome
from forge_app.notify.signing import new_message_id
from forge_app.notify.validation import IntegrationDraft, InvalidIntegration, parse_new, parse_patch
from forge_app.security.crypto import SecretsUnavailable
from forge_app.web.errors import ApiError
from forge_app.web.routes.integrations import _secret_to_store, _vet_target
from storage.integrations import Integration

TYPES = {"webhook": "Webhook", "slack": "Slack", "email": "Email"}
URL_LABEL = {"webhook": "Webhook URL", "slack": "Webhook URL"}
URL_HINT = {"webhook": "Where forge-app POSTs JSON in Semgrep's webhook format.",
            "slack": "A Slack incoming-webhook URL (https://hooks.slack.com/services/…)."}


@dataclass
class TestResult:
    """What the Test button reports, in words."""

    ok: bool
    text: str


def describe(outcome: Outcome) -> TestResult:
    parts = ["Test succeeded" if outcome.ok else "Test failed"]
    if outcome.status_code is not None:
        parts.append(f"HTTP {outcome.status_code}")
    parts.append(f"{outcome.latency_ms} ms")
    text = ": ".join([parts[0], ", ".join(parts[1:])])
    if outcome.error:
        text += f" ({outcome.error})"
    return TestResult(outcome.ok, text)


def _split(text: str) -> list[str]:
    return [p for p in re.split(r"[\s,;]+", text) if p]


def _doc_from_form(form: Form, type_: str, *, new: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": form.get("name").strip() or None}
    if type_ == "email":
        doc["addresses"] = _split(form.get("addresses"))
    else:
        doc["url"] = form.get("url").strip()
    if type_ == "webhook" and new and form.get("sign") == "on":
        doc["secret"] = True
    doc["filters"] = {"repositories": _split(form.get("repositories")),
                      "policies": [m for m in MODES if m in form.all("policies")]}
    if not new:
        doc["enabled"] = form.get("enabled") == "on"
        if doc["name"] is None:
            del doc["name"]
    return doc


def _values(form: Form | None, integration: Integration | None = None) -> dict[str, Any]:
    """What the form's fields show: the posted values, else the stored ones, else defaults."""
    if form is not None:
        return {"name": form.get("name"), "url": form.get("url"), "addresses": form.get("addresses"),
                "repositories": form.get("repositories"), "policies": form.all("policies"),
                "sign": form.get("sign") == "on", "enabled": form.get("enabled") == "on"}
    if integration is not None:
        return {"name": integration.name, "url": integration.config.get("url", ""),
                "addresses": ", ".join(integration.config.get("addresses") or []),
                "repositories": ", ".join(integration.filters.get("repositories") or []),
                "policies": list(integration.filters.get("policies") or MODES), "sign": bool(integration.secret),
                "enabled": integration.enabled}
    return {"name": "", "url": "", "addresses": "", "repositories": "", "policies": list(MODES), "sign": False,
            "enabled": True}


def _type(request: Request) -> str:
    type_ = request.path_params.get("type", "")
    if type_ not in TYPES:
        raise PageError(404, "Not found", "Integrations are of type Webhook, Slack or Email.")
    return type_


def _integration(request: Request) -> Integration:
    integration = storage_of(request).integration(int_param(request, "integration_id"))
    if integration is None:
        raise PageError(404, "Not found", "This integration does not exist (any more).")
    return integration


async def _test_draft(request: Request, draft: IntegrationDraft) -> TestResult:
    settings = request.app.state.settings
    try:
        await _vet_target(settings, draft, check_url=True)
    except ApiError as exc:
        return TestResult(False, f"Test failed: nothing was sent: {exc.detail}")
    transient = Integration(id=0, type=draft.type, name=draft.name, config=draft.config, secret=None,
                            filters=draft.filters, enabled=True, created_at="", updated_at="")
    message_id = new_message_id()
    try:
        outcome = await send(settings, transient, compose_test(settings, transient, message_id), message_id)
    except (SmtpConfigError, SecretsUnavailable) as exc:
        outcome = Outcome(False, None, 0, str(exc))
    return describe(outcome)


# --- pages -------------------------------------------------------------------------------

@page
async def settings_home(request: Request) -> Response:
    with_connections = [f.title for f in FORGES.values() if f.connections is not None]
    with_panels = [f.title for f in FORGES.values() if f.connections_panel is not None]
    blurb = f"{' and '.join(with_connections)} connections" + (
        f", and the {' and '.join(with_panels)} App." if with_panels else ".")
    return render(request, "settings.html", title="Settings", connections_blurb=blurb,
                  forge_cards=[card for f in FORGES.values() for card in f.settings_cards])


@page
async def list_page(request: Request) -> Response:
    integrations = storage_of(request).list_integrations()
    return render(request, "integrations.html", title="Integrations", integrations=integrations,
                  last=queries(request).last_deliveries(), types=TYPES)


@page
async def choose_type(request: Request) -> Response:
    return render(request, "integration_choose.html", title="Add integration", types=TYPES)


@page
async def new_form(request: Request) -> Response:
    type_ = _type(request)
    return render(request, "integration_form.html", title=f"Add a {TYPES[type_]} integration", type=type_,
                  types=TYPES, values=_values(None), url_label=URL_LABEL.get(type_), url_hint=URL_HINT.get(type_),
                  modes=MODES, integration=None)


@action
async def new_submit(request: Request, form: Form) -> Response:
    type_ = _type(request)
    settings = request.app.state.settings
    context: dict[str, Any] = dict(
        title=f"Add a {TYPES[type_]} integration", type=type_, types=TYPES, values=_values(form),
        url_label=URL_LABEL.get(type_), url_hint=URL_HINT.get(type_), modes=MODES, integration=None)
    try:
        draft = parse_new({"type": type_, **_doc_from_form(form, type_, new=True)})
    except InvalidIntegration as exc:
        return render(request, "integration_form.html", status=400, error=exc.detail, **context)
    if form.get("action") == "test":
        return render(request, "integration_form.html", result=await _test_draft(request, draft), **context)
    try:
        warnings = await _vet_target(settings, draft, check_url=True)
        sealed, shown = _secret_to_store(settings, draft)
    except ApiError as exc:
        return render(request, "integration_form.html", status=exc.status, error=exc.detail, **context)
    integration = storage_of(request).create_integration(draft.type, draft.name, draft.config, sealed,
                                                         draft.filters, draft.enabled)
    if not shown and not warnings:
        return redirect(f"/settings/integrations?saved={integration.id}")
    return render(request, "integration_saved.html", title="Integration saved", integration=integration,
                  secret=shown, warnings=warnings)


def _edit_context(request: Request, integration: Integration, form: Form | None) -> dict[str, Any]:
    return dict(title=f"Integration {integration.name}", type=integration.type, types=TYPES,
                values=_values(form, integration), url_label=URL_LABEL.get(integration.type),
                url_hint=URL_HINT.get(integration.type), modes=MODES, integration=integration,
                deliveries=storage_of(request).recent_notification_deliveries(integration.id, 20))


@page
async def edit_form(request: Request) -> Response:
    integration = _integration(request)
    return render(request, "integration_form.html", **_edit_context(request, integration, None))


@action
async def edit_submit(request: Request, form: Form) -> Response:
    integration = _integration(request)
    settings = request.app.state.settings
    storage = storage_of(request)
    what = form.get("action")
    if what == "test":
        _, outcome = await send_test(storage, settings, integration)
        return render(request, "integration_form.html", result=describe(outcome),
                      **_edit_context(request, integration, form))
    if what in ("enable", "disable"):
        doc: dict[str, Any] = {"enabled": what == "enable"}
    elif what in ("new_secret", "remove_secret") and integration.type == "webhook":
        doc = {"secret": True if what == "new_secret" else None}
    else:
        doc = _doc_from_form(form, integration.type, new=False)
    try:
        draft = parse_patch(doc, integration.type, integration.name, integration.enabled, integration.filters,
                            integration.config)
        changed_url = draft.config.get("url") != integration.config.get("url")
        enabled_now = draft.enabled and not integration.enabled
        warnings = await _vet_target(settings, draft, check_url=changed_url or enabled_now)
        sealed, shown = _secret_to_store(settings, draft)
    except InvalidIntegration as exc:
        return render(request, "integration_form.html", status=400, error=exc.detail,
                      **_edit_context(request, integration, form))
    except ApiError as exc:
        return render(request, "integration_form.html", status=exc.status, error=exc.detail,
                      **_edit_context(request, integration, form if what == "save" else None))
    fields: dict[str, Any] = {"name": draft.name, "enabled": draft.enabled, "filters": draft.filters,
                              "config": draft.config}
    if draft.secret_action in ("generate", "set"):
        fields["secret"] = sealed
    elif draft.secret_action == "remove":
        fields["secret"] = None
    updated = storage.update_integration(integration.id, **fields)
    if updated is None:
        raise PageError(404, "Not found", "This integration was deleted meanwhile.")
    if shown or warnings:
        return render(request, "integration_saved.html", title="Integration saved", integration=updated,
                      secret=shown, warnings=warnings)
    return redirect(f"/settings/integrations?saved={updated.id}")


@page
async def delete_confirm(request: Request) -> Response:
    integration = _integration(request)
    return render(request, "confirm_delete.html", title=f"Delete {integration.name}?",
                  what=f"the {TYPES[integration.type]} integration “{integration.name}” and its delivery history",
                  action_url=f"/settings/integrations/{integration.id}/delete",
                  cancel_url=f"/settings/integrations/{integration.id}")


@action
async def delete_submit(request: Request, form: Form) -> Response:
    integration = _integration(request)
    storage_of(request).delete_integration(integration.id)
    return redirect("/settings/integrations?deleted=1")
