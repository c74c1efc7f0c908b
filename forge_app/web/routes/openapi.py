"""`GET /openapi.json`: the OpenAPI 3 description of the HTTP routes machines call.

Each route module describes its own paths in `OPENAPI_PATHS` (and schemas in
`OPENAPI_SCHEMAS`), so the description lives next to the code it documents. The
forges' webhook receivers and the health routes are described here; any route module
listed in `DESCRIBED` that exists (e.g. the `semgrep ci` backend) adds its own paths.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import forge_app

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}


def error_responses(*codes: int) -> dict[str, Any]:
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {str(c): {"description": "error", "content": body} for c in codes}


DESCRIBED = ("scans", "policies", "integrations", "connections", "rules", "jobs", "semgrep_ci", "slack")
"""Route modules (forge_app.web.routes.<name>) whose OPENAPI_PATHS/OPENAPI_SCHEMAS are collected when present."""

_JSON_OBJECT = {"content": {"application/json": {"schema": {"type": "object"}}}}
_ANSWER = {"content": {"application/json": {"schema": {
    "type": "object", "properties": {"status": {"type": "string", "description": "queued, accepted, duplicate, "
                                                                               "ignored or ok (ping)"},
                                     "event": {"type": "string"}}}}}}


def webhook_operation(forge: str, event_header: str, auth: str) -> dict[str, Any]:
    return {"post": {
        "summary": f"{forge} webhook events (configured on the forge; not called by people)",
        "description": f"Authenticated by {auth}; anything else is a 401 and has no effect. Events are stored "
                       "and answered at once (202); the work runs in the job worker. A delivery seen before is "
                       "answered `duplicate` and has no second effect.",
        "security": [],
        "parameters": [{"name": event_header, "in": "header", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"required": True, **_JSON_OBJECT},
        "responses": {"200": {"description": "ping or duplicate", **_ANSWER},
                      "202": {"description": "accepted (queued, or ignored: an event forge-app does not use)",
                              **_ANSWER},
                      **error_responses(400, 401, 413)},
    }}


def webhook_paths() -> dict[str, Any]:
    """`POST /webhooks/<forge>` of every forge in the registry, from its Webhook's own words."""
    from forge_app.forges.registry import FORGES  # the forges' route modules import this module

    return {f"/webhooks/{f.name}": webhook_operation(f.webhook.described_as or f.title, f.webhook.event_header,
                                                     f.webhook.auth)
            for f in FORGES.values() if f.webhook is not None}


def _slack(what: str) -> dict[str, Any]:
    return {"post": {
        "summary": f"Slack {what} (Slack calls this; only with the Slack app configured, else 404)",
        "description": "Verified with SLACK_SIGNING_SECRET (v0= HMAC-SHA256 of v0:<X-Slack-Request-Timestamp>:<raw "
                       "body>, timestamp within 5 minutes), else 401 and no effect.",
        "security": [],
        "parameters": [{"name": "X-Slack-Signature", "in": "header", "required": True, "schema": {"type": "string"}},
                       {"name": "X-Slack-Request-Timestamp", "in": "header", "required": True,
                        "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
        "responses": {"200": {"description": "handled"}, **error_responses(401, 404)},
    }}


FALLBACK_PATHS = {
    "/slack/events": _slack("Events API (url_verification, app_home_opened, channel and team changes)"),
    "/slack/commands": _slack("slash commands /forgeapp_subscribe and /forgeapp_unsubscribe"),
    "/slack/interactions": _slack("interactivity (modal submissions, App Home menus)"),
    "/api/agent/deployments/current": {"get": {
        "summary": "semgrep ci: which deployment an upload token (SEMGREP_APP_TOKEN) belongs to",
        "security": [{"uploadToken": []}],
        "responses": {"200": {"description": "the deployment", **_JSON_OBJECT}, **error_responses(401)}}},
    "/api/agent/deployments/deepbinary/{platform}": {"get": {
        "summary": "semgrep ci: the Pro engine download (not offered by forge-app)",
        "security": [{"uploadToken": []}],
        "parameters": [{"name": "platform", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {**error_responses(401, 404)}}},
}
"""Machine routes whose own modules do not describe them (yet): used only where a module is silent."""

_STATUS = {"type": "object", "properties": {"status": {"type": "string"}, "database": {"type": "string"}}}
HEALTH_PATHS = {
    "/healthz": {"get": {"summary": "Liveness: the process answers", "security": [],
                         "responses": {"200": {"description": "alive", "content": {
                             "application/json": {"schema": _STATUS}}}}}},
    "/readyz": {"get": {"summary": "Readiness: the database is reachable", "security": [],
                        "responses": {"200": {"description": "ready", "content": {
                            "application/json": {"schema": _STATUS}}}, **error_responses(503)}}},
    "/metrics": {"get": {"summary": "Prometheus metrics (text exposition format)", "security": [],
                         "responses": {"200": {"description": "metrics", "content": {
                             "text/plain": {"schema": {"type": "string"}}}}}}},
    "/openapi.json": {"get": {"summary": "This description", "security": [],
                              "responses": {"200": {"description": "OpenAPI 3", **_JSON_OBJECT}}}},
}


def build_spec(public_url: str) -> dict[str, Any]:
    import importlib

    from forge_app.forges.registry import FORGES

    paths: dict[str, Any] = {**webhook_paths(), **HEALTH_PATHS}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for name in DESCRIBED:
        try:
            module = importlib.import_module(f"forge_app.web.routes.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"forge_app.web.routes.{name}":
                continue
            raise
        paths.update(getattr(module, "OPENAPI_PATHS", {}))
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    paths.update(importlib.import_module("forge_app.slackapp.routes").OPENAPI_PATHS)  # the Slack app (#18)
    for forge in FORGES.values():
        paths.update(forge.openapi_paths)
        schemas.update(forge.openapi_schemas)
    for path, doc in FALLBACK_PATHS.items():
        for method, operation in doc.items():
            paths.setdefault(path, {}).setdefault(method, operation)
    return {
        "openapi": "3.0.3",
        "info": {"title": "forge-app API", "version": forge_app.__version__,
                 "description": "Scan uploads from CI, the admin API, the forges' webhook receivers and the health "
                                "routes of forge-app. The HTML console (/, /projects, /rules, /settings) is for "
                                "people and not described here."},
        "servers": [{"url": public_url}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "uploadToken": {"type": "http", "scheme": "bearer",
                                "description": "an upload token (forge-app token create)"},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "FORGE_APP_ADMIN_TOKEN"},
            },
        },
    }


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(build_spec(request.app.state.settings.public_url))


routes = [Route("/openapi.json", openapi, methods=["GET"])]
