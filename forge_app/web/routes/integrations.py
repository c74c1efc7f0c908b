"""`/api/v1/integrations`: where notifications go (webhook, Slack, email), for admins.

Webhook signing is opt-in: without `secret` a webhook is unsigned; `"secret": true`
has the server generate one, returned once in the answer that created it; a
`"whsec_..."` secret is used as given. Secrets are write-only (GET says `has_secret`).

Targets are checked against SSRF when saved: a URL that resolves to a non-public
address is refused. What cannot be judged now is saved with a `warnings` list in the
answer: a host that does not resolve (yet), an email integration on a server without
SMTP settings. Deliveries check again and report the problem.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forge_app.config import Settings
from forge_app.notify.delivery import seal_secret, send_test
from forge_app.notify.mail import SmtpConfigError, smtp_config
from forge_app.notify.signing import generate_secret
from forge_app.notify.ssrf import TargetRefused, TargetUnresolvable, vet_url
from forge_app.notify.validation import EVENTS, TYPES, IntegrationDraft, InvalidIntegration, parse_new, parse_patch
from forge_app.web.auth import require_admin
from forge_app.web.body import parse_json, read_raw, require_json
from forge_app.web.errors import ApiError, path_id
from forge_app.web.routes.openapi import error_responses
from storage import Storage
from storage.integrations import Integration, NotificationDelivery

BODY_LIMIT = 64 * 1024
DELIVERIES_LIMIT = 100


def integration_json(i: Integration) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": i.id, "type": i.type, "name": i.name}
    if i.type == "email":
        doc["addresses"] = list(i.config.get("addresses") or [])
    else:
        doc["url"] = i.config.get("url")
    if i.type == "webhook":
        doc["events"] = list(i.config.get("events") or EVENTS)
        doc["has_secret"] = bool(i.secret)
    doc.update({"enabled": i.enabled,
                "filters": {"repositories": list(i.filters.get("repositories") or []),
                            "policies": list(i.filters.get("policies") or [])},
                "created_at": i.created_at, "updated_at": i.updated_at})
    return doc


def delivery_json(d: NotificationDelivery) -> dict[str, Any]:
    return {"id": d.id, "kind": d.kind, "status": d.status, "status_code": d.status_code, "attempts": d.attempts,
            "latency_ms": d.latency_ms, "error": d.error, "webhook_id": d.webhook_id, "scan_id": d.scan_id,
            "created_at": d.created_at, "last_attempt_at": d.last_attempt_at, "next_attempt_at": d.next_attempt_at}


def _invalid(exc: InvalidIntegration) -> ApiError:
    return ApiError(400, exc.code, exc.detail)


async def _body(request: Request) -> Any:
    require_json(request)
    return parse_json(await read_raw(request, BODY_LIMIT))


def _storage(request: Request) -> Storage:
    return request.app.state.storage


def _integration(request: Request) -> Integration:
    integration_id = path_id(request, "integration_id", "integration")
    integration = _storage(request).integration(integration_id)
    if integration is None:
        raise ApiError(404, "not_found", f"no integration {integration_id}")
    return integration


async def _vet_target(settings: Settings, draft: IntegrationDraft, *, check_url: bool) -> list[str]:
    """Refuse (400 `unsafe_target`) a URL that resolves inside our own network, before
    anything is saved; return warnings for what does not stop the save."""
    warnings: list[str] = []
    if draft.type == "email":
        try:
            smtp_config(settings)
        except SmtpConfigError as exc:
            warnings.append(f"{exc}; the integration is saved, but its emails fail until then")
        return warnings
    if not check_url:
        return warnings
    try:
        await vet_url(draft.config["url"], allow_private=settings.allow_private_targets)
    except TargetRefused as exc:
        raise ApiError(400, "unsafe_target", f"url refused: {exc}") from None
    except TargetUnresolvable as exc:
        # Offline CI, split-horizon DNS, a receiver not deployed yet: not a reason to refuse.
        # Every delivery checks again (and retries while it does not resolve).
        warnings.append(f"url: {exc} (checked from this server just now); saved anyway: each delivery resolves "
                        "it again, retries while it does not resolve, and refuses it if it points inside the network")
    return warnings


def _secret_to_store(settings: Settings, draft: IntegrationDraft) -> tuple[str | None, str | None]:
    """(sealed secret to store, plain secret to show once); only for "generate" and "set"."""
    if draft.secret_action not in ("generate", "set"):
        return None, None
    if not settings.secret_key:
        raise ApiError(400, "secret_key_missing",
                       "this webhook asks for a signing secret, but the server has no FORGE_APP_SECRET_KEY to "
                       "encrypt it with: set FORGE_APP_SECRET_KEY (at least 32 characters, e.g. the output of "
                       "openssl rand -base64 32) and restart the server, or leave out \"secret\" "
                       "for an unsigned webhook")
    plain = generate_secret() if draft.secret_action == "generate" else draft.secret
    assert plain is not None
    return seal_secret(settings, plain), plain if draft.secret_action == "generate" else None


async def list_integrations(request: Request) -> JSONResponse:
    require_admin(request)
    return JSONResponse([integration_json(i) for i in _storage(request).list_integrations()])


async def create_integration(request: Request) -> JSONResponse:
    require_admin(request)
    settings: Settings = request.app.state.settings
    try:
        draft = parse_new(await _body(request))
    except InvalidIntegration as exc:
        raise _invalid(exc) from None
    warnings = await _vet_target(settings, draft, check_url=True)
    sealed, shown = _secret_to_store(settings, draft)
    integration = _storage(request).create_integration(draft.type, draft.name, draft.config, sealed, draft.filters,
                                                       draft.enabled)
    doc = integration_json(integration)
    if shown:
        doc["secret"] = shown  # the only time it is ever returned
    if warnings:
        doc["warnings"] = warnings
    return JSONResponse(doc, status_code=201,
                        headers={"Location": f"{settings.public_url}/api/v1/integrations/{integration.id}"})


async def get_integration(request: Request) -> JSONResponse:
    require_admin(request)
    return JSONResponse(integration_json(_integration(request)))


async def update_integration(request: Request) -> JSONResponse:
    require_admin(request)
    settings: Settings = request.app.state.settings
    current = _integration(request)
    try:
        draft = parse_patch(await _body(request), current.type, current.name, current.enabled, current.filters,
                            current.config)
    except InvalidIntegration as exc:
        raise _invalid(exc) from None
    # A new URL is checked whatever `enabled` says (a disabled integration is one PATCH away
    # from sending); re-enabling checks the stored URL again, since DNS may have changed.
    changed_url = draft.config.get("url") != current.config.get("url")
    enabling = draft.enabled and not current.enabled
    warnings = await _vet_target(settings, draft, check_url=changed_url or enabling)
    fields: dict[str, Any] = {"name": draft.name, "enabled": draft.enabled, "filters": draft.filters,
                              "config": draft.config}
    sealed, shown = _secret_to_store(settings, draft)
    if draft.secret_action in ("generate", "set"):
        fields["secret"] = sealed
    elif draft.secret_action == "remove":
        fields["secret"] = None
    integration = _storage(request).update_integration(current.id, **fields)
    if integration is None:
        raise ApiError(404, "not_found", f"no integration {current.id}")
    doc = integration_json(integration)
    if shown:
        doc["secret"] = shown
    if warnings:
        doc["warnings"] = warnings
    return JSONResponse(doc)


async def delete_integration(request: Request) -> Response:
    require_admin(request)
    current = _integration(request)
    if not _storage(request).delete_integration(current.id):
        raise ApiError(404, "not_found", f"no integration {current.id}")
    return Response(status_code=204)


async def test_integration(request: Request) -> JSONResponse:
    """Send a marked sample now; 200 even when the target fails (the result says how)."""
    require_admin(request)
    integration = _integration(request)
    delivery_id, outcome = await send_test(_storage(request), request.app.state.settings, integration)
    return JSONResponse({"ok": outcome.ok, "status_code": outcome.status_code, "latency_ms": outcome.latency_ms,
                         "error": outcome.error, "delivery_id": delivery_id})


async def list_deliveries(request: Request) -> JSONResponse:
    require_admin(request)
    integration = _integration(request)
    raw = request.query_params.get("limit", str(DELIVERIES_LIMIT))
    limit = int(raw) if re.fullmatch(r"[0-9]{1,6}", raw) and int(raw) > 0 else DELIVERIES_LIMIT
    deliveries = _storage(request).recent_notification_deliveries(integration.id, min(limit, DELIVERIES_LIMIT))
    return JSONResponse([delivery_json(d) for d in deliveries])


routes = [
    Route("/api/v1/integrations", list_integrations, methods=["GET"]),
    Route("/api/v1/integrations", create_integration, methods=["POST"]),
    Route("/api/v1/integrations/{integration_id}", get_integration, methods=["GET"]),
    Route("/api/v1/integrations/{integration_id}", update_integration, methods=["PATCH"]),
    Route("/api/v1/integrations/{integration_id}", delete_integration, methods=["DELETE"]),
    Route("/api/v1/integrations/{integration_id}/test", test_integration, methods=["POST"]),
    Route("/api/v1/integrations/{integration_id}/deliveries", list_deliveries, methods=["GET"]),
]

# --- OpenAPI ---------------------------------------------------------------------------

_FILTERS = {
    "type": "object",
    "properties": {
        "repositories": {"type": "array", "items": {"type": "string"},
                         "description": "repository names or fnmatch globs (octo/*); empty: all"},
        "policies": {"type": "array", "items": {"type": "string", "enum": ["monitor", "comment", "block"]},
                     "description": "policy modes of the findings to forward; default all three, so monitor "
                                    "findings are forwarded unless this list leaves monitor out"},
    },
}
OPENAPI_SCHEMAS = {
    "Integration": {
        "type": "object",
        "required": ["id", "type", "name", "enabled", "filters"],
        "properties": {
            "id": {"type": "integer"},
            "type": {"type": "string", "enum": list(TYPES)},
            "name": {"type": "string"},
            "url": {"type": "string", "description": "webhook and slack: the http(s) URL to POST to"},
            "addresses": {"type": "array", "items": {"type": "string"}, "description": "email: recipients"},
            "events": {"type": "array", "items": {"type": "string", "enum": list(EVENTS)},
                       "description": "webhook: which payloads to send; default both"},
            "has_secret": {"type": "boolean", "description": "webhook: requests are signed (Standard Webhooks)"},
            "secret": {"type": "string",
                       "description": 'webhook: the generated signing secret, only in the answer to the POST or '
                                      'PATCH that sent "secret": true (never again)'},
            "warnings": {"type": "array", "items": {"type": "string"},
                         "description": "POST and PATCH answers only, when there is something to say: problems that "
                                        "did not stop the save (the host does not resolve now; email without "
                                        "FORGE_APP_SMTP_URL / FORGE_APP_EMAIL_FROM on the server)"},
            "enabled": {"type": "boolean"},
            "filters": _FILTERS,
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
        },
    },
    "IntegrationInput": {
        "type": "object",
        "description": "POST: type and url/addresses required. PATCH: any subset (type cannot change). "
                       "A url resolving to a loopback, private, link-local, multicast or reserved address is "
                       "refused (400 unsafe_target) unless FORGE_APP_ALLOW_PRIVATE_TARGETS; one that does not "
                       "resolve now is saved with a warning.",
        "properties": {
            "type": {"type": "string", "enum": list(TYPES)},
            "name": {"type": "string"},
            "url": {"type": "string"},
            "addresses": {"type": "array", "items": {"type": "string"}},
            "events": {"type": "array", "items": {"type": "string", "enum": list(EVENTS)}},
            "secret": {"description": "webhook signing (Standard Webhooks), opt-in. Left out or null on POST: "
                                      "unsigned requests (webhook-id and webhook-timestamp headers, no "
                                      'webhook-signature). true: generate a secret (whsec_ + base64 of 32 random '
                                      "bytes), returned once in this answer (on PATCH: rotation). "
                                      '"whsec_<base64 key of 24-64 bytes>": use this one (not echoed). '
                                      "PATCH null: remove the secret. Needs FORGE_APP_SECRET_KEY on the server "
                                      "(400 secret_key_missing otherwise).",
                       "oneOf": [{"type": "string"}, {"type": "boolean"}], "nullable": True},
            "enabled": {"type": "boolean"},
            "filters": _FILTERS,
        },
    },
    "TestResult": {
        "type": "object",
        "required": ["ok", "status_code", "latency_ms", "error"],
        "properties": {
            "ok": {"type": "boolean"},
            "status_code": {"type": "integer", "nullable": True,
                            "description": "HTTP status, or the SMTP reply code for email"},
            "latency_ms": {"type": "integer"},
            "error": {"type": "string", "nullable": True},
            "delivery_id": {"type": "integer"},
        },
    },
    "NotificationDelivery": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["scan", "findings", "slack", "email", "test"]},
            "status": {"type": "string", "enum": ["pending", "succeeded", "failed", "retrying"]},
            "status_code": {"type": "integer", "nullable": True},
            "attempts": {"type": "integer"},
            "latency_ms": {"type": "integer", "nullable": True},
            "error": {"type": "string", "nullable": True},
            "webhook_id": {"type": "string", "nullable": True},
            "scan_id": {"type": "integer", "nullable": True},
            "created_at": {"type": "string"},
            "last_attempt_at": {"type": "string", "nullable": True},
            "next_attempt_at": {"type": "string", "nullable": True},
        },
    },
}


def _json(ref: str, array: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": f"#/components/schemas/{ref}"}
    if array:
        schema = {"type": "array", "items": schema}
    return {"content": {"application/json": {"schema": schema}}}


_ID = [{"name": "integration_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}]
OPENAPI_PATHS = {
    "/api/v1/integrations": {
        "get": {"summary": "List notification integrations", "security": _ADMIN,
                "responses": {"200": {"description": "integrations", **_json("Integration", True)},
                              **error_responses(401, 403)}},
        "post": {"summary": "Add a webhook, Slack or email integration", "security": _ADMIN,
                 "requestBody": {"required": True, **_json("IntegrationInput")},
                 "responses": {"201": {"description": "created", **_json("Integration")},
                               **error_responses(400, 401, 403)}},
    },
    "/api/v1/integrations/{integration_id}": {
        "get": {"summary": "One integration (never its secret)", "security": _ADMIN, "parameters": _ID,
                "responses": {"200": {"description": "the integration", **_json("Integration")},
                              **error_responses(401, 403, 404)}},
        "patch": {"summary": "Change some fields of an integration", "security": _ADMIN, "parameters": _ID,
                  "requestBody": {"required": True, **_json("IntegrationInput")},
                  "responses": {"200": {"description": "updated", **_json("Integration")},
                                **error_responses(400, 401, 403, 404)}},
        "delete": {"summary": "Remove an integration, its history and pending deliveries", "security": _ADMIN,
                   "parameters": _ID,
                   "responses": {"204": {"description": "deleted"}, **error_responses(401, 403, 404)}},
    },
    "/api/v1/integrations/{integration_id}/test": {
        "post": {"summary": "Send a clearly marked sample now and report how it went", "security": _ADMIN,
                 "parameters": _ID,
                 "responses": {"200": {"description": "the attempt's result (also when the target failed)",
                                       **_json("TestResult")},
                               **error_responses(401, 403, 404)}},
    },
    "/api/v1/integrations/{integration_id}/deliveries": {
        "get": {"summary": "Recent deliveries, newest first (at most 100)", "security": _ADMIN,
                "parameters": [*_ID, {"name": "limit", "in": "query", "required": False,
                                      "schema": {"type": "integer", "minimum": 1, "maximum": 100}}],
                "responses": {"200": {"description": "deliveries", **_json("NotificationDelivery", True)},
                              **error_responses(401, 403, 404)}},
    },
}
