"""`/api/v1/connections`: connections to the forges reached through them (admin). Tokens are
checked against the forge, stored encrypted, and never returned."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forge_app.config import Settings
from forge_app.forges.connections import ConnectionCheckError, ConnectionRequest
from forge_app.forges.registry import FORGES, verify_connection, with_connections
from forge_app.security.crypto import encrypt
from forge_app.web.auth import require_admin
from forge_app.web.body import parse_json, read_raw, require_json
from forge_app.web.errors import ApiError, path_id
from forge_app.web.routes.openapi import error_responses
from storage import Connection

SCOPES = {name: f.connections.scopes for name, f in with_connections().items() if f.connections is not None}
TARGET_RE = {
    "project": re.compile(r"^([A-Za-z0-9_.\-]+/)+[A-Za-z0-9_.\-]+$|^\d+$"),
    "group": re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$"),
    "workspace": re.compile(r"^[A-Za-z0-9_.\-]+$"),
    "repository": re.compile(r"^[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+$"),
}


MAX_URL = 2048
MAX_SECRET = 1024
URL_RE = re.compile(r"https?://[!-~]+")  # printable ASCII, no spaces (an IDN host comes punycoded)
TOKEN_RE = re.compile(r"[!-~]+")


def connection_json(settings: Settings, c: Connection) -> dict[str, Any]:
    return {"id": c.id, "forge": c.forge, "base_url": c.base_url, "scope": c.scope, "target": c.target,
            "webhook_url": f"{settings.public_url}/webhooks/{c.forge}", "info": c.info, "created_at": c.created_at}


def _field(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "invalid_connection", f"{name} is required and must be a non-empty string")
    return value.strip()


def parse_connection(doc: Any, settings: Settings) -> ConnectionRequest:
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_connection", "the body must be a JSON object")
    forge = doc.get("forge")
    if forge not in SCOPES:
        others = [f.title for name, f in FORGES.items() if name not in SCOPES]
        raise ApiError(400, "invalid_connection", f"forge must be {' or '.join(SCOPES)}"
                       + (f" ({' and '.join(others)} uses its app installation)" if others else ""))
    scope = doc.get("scope")
    if scope not in SCOPES[forge]:
        raise ApiError(400, "invalid_connection", f"scope must be one of {', '.join(SCOPES[forge])} for {forge}")
    kind = FORGES[forge].connections
    assert kind is not None
    default_url = kind.default_base_url(settings)
    base_url = (doc.get("base_url") or default_url)
    if not isinstance(base_url, str) or len(base_url) > MAX_URL or not URL_RE.fullmatch(base_url):
        raise ApiError(400, "invalid_connection", f"base_url must be an http(s) URL of at most {MAX_URL} characters")
    target = _field(doc, "target").strip("/")
    if len(target) > 1024 or not TARGET_RE[scope].fullmatch(target):
        raise ApiError(400, "invalid_connection", f"target {target!r} is not a valid {scope} for {forge}")
    token = _field(doc, "token")
    if len(token) > MAX_SECRET or not TOKEN_RE.fullmatch(token):
        # It goes into an HTTP header: httpx cannot even send a non-ASCII one.
        raise ApiError(400, "invalid_connection", "token must be printable ASCII without spaces, "
                                                  f"at most {MAX_SECRET} characters, as the forge issued it")
    secret = doc.get("webhook_secret")
    if not isinstance(secret, str) or not secret.strip():
        raise ApiError(400, "invalid_connection",
                       "webhook_secret is required: forge-app refuses unsigned webhooks")
    if len(secret) > MAX_SECRET or not TOKEN_RE.fullmatch(secret):
        raise ApiError(400, "invalid_connection", "webhook_secret must be printable ASCII without spaces, "
                                                  f"at most {MAX_SECRET} characters (forges send it in a header)")
    return ConnectionRequest(forge=forge, base_url=base_url.rstrip("/"), scope=scope, target=target, token=token,
                             webhook_secret=secret)


async def list_connections(request: Request) -> JSONResponse:
    require_admin(request)
    settings = request.app.state.settings
    return JSONResponse([connection_json(settings, c) for c in request.app.state.storage.connections()])


async def create_connection(request: Request) -> JSONResponse:
    require_admin(request)
    settings: Settings = request.app.state.settings
    if not settings.secret_key:
        raise ApiError(400, "secret_key_missing",
                       "set FORGE_APP_SECRET_KEY on the server first: connection tokens are stored encrypted with it")
    require_json(request)
    req = parse_connection(parse_json(await read_raw(request, 256 * 1024)), settings)
    try:
        info = await verify_connection(req, settings)
    except ConnectionCheckError as exc:
        raise ApiError(400, exc.code, exc.detail) from None
    c = request.app.state.storage.create_connection(
        forge=req.forge, base_url=req.base_url, scope=req.scope, target=req.target,
        token_enc=encrypt(settings.secret_key, req.token),
        webhook_secret_enc=encrypt(settings.secret_key, req.webhook_secret), info=info)
    return JSONResponse(connection_json(settings, c), status_code=201)


def _connection(request: Request) -> Connection:
    connection_id = path_id(request, "connection_id", "connection")
    c = request.app.state.storage.connection(connection_id)
    if c is None:
        raise ApiError(404, "not_found", f"no connection {connection_id}")
    return c


async def get_connection(request: Request) -> JSONResponse:
    require_admin(request)
    return JSONResponse(connection_json(request.app.state.settings, _connection(request)))


async def delete_connection(request: Request) -> Response:
    require_admin(request)
    c = _connection(request)
    request.app.state.storage.delete_connection(c.id)
    return Response(status_code=204)


routes = [
    Route("/api/v1/connections", list_connections, methods=["GET"]),
    Route("/api/v1/connections", create_connection, methods=["POST"]),
    Route("/api/v1/connections/{connection_id}", get_connection, methods=["GET"]),
    Route("/api/v1/connections/{connection_id}", delete_connection, methods=["DELETE"]),
]

_ALL_SCOPES = [scope for scopes in SCOPES.values() for scope in scopes]
_CONNECTION = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "forge": {"type": "string", "enum": list(SCOPES)},
        "base_url": {"type": "string"}, "scope": {"type": "string", "enum": _ALL_SCOPES},
        "target": {"type": "string"}, "webhook_url": {"type": "string"}, "info": {"type": "object"},
        "created_at": {"type": "string"},
    },
}
_NEW_CONNECTION = {
    "type": "object",
    "required": ["forge", "scope", "target", "token", "webhook_secret"],
    "properties": {
        "forge": {"type": "string", "enum": list(SCOPES)},
        "base_url": {"type": "string", "description": "the forge's instance or API URL (a default per forge)"},
        "scope": {"type": "string", "enum": _ALL_SCOPES},
        "target": {"type": "string"}, "token": {"type": "string", "writeOnly": True},
        "webhook_secret": {"type": "string", "writeOnly": True},
    },
}
OPENAPI_SCHEMAS = {"Connection": _CONNECTION, "NewConnection": _NEW_CONNECTION}
_ONE = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Connection"}}}}
_ID = [{"name": "connection_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
OPENAPI_PATHS = {
    "/api/v1/connections": {
        "get": {"summary": "Connections to forges (those without an app)", "security": [{"adminToken": []}],
                "responses": {"200": {"description": "connections", "content": {"application/json": {"schema": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Connection"}}}}},
                    **error_responses(401, 403)}},
        "post": {"summary": "Add a connection (the token is checked against the forge)",
                 "security": [{"adminToken": []}],
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": {"$ref": "#/components/schemas/NewConnection"}}}},
                 "responses": {"201": {"description": "created", **_ONE}, **error_responses(400, 401, 403)}},
    },
    "/api/v1/connections/{connection_id}": {
        "get": {"summary": "One connection", "security": [{"adminToken": []}], "parameters": _ID,
                "responses": {"200": {"description": "connection", **_ONE}, **error_responses(401, 403, 404)}},
        "delete": {"summary": "Remove a connection", "security": [{"adminToken": []}], "parameters": _ID,
                   "responses": {"204": {"description": "deleted"}, **error_responses(401, 403, 404)}},
    },
}
