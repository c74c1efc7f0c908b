"""`GET/PUT /api/v1/policies`: the rule board (admin)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from forge_app.core.policy import PolicyError, parse_policy
from forge_app.web.auth import require_admin
from forge_app.web.body import parse_json, read_raw
from forge_app.web.errors import ApiError
from forge_app.web.routes.openapi import error_responses


async def get_policies(request: Request) -> JSONResponse:
    require_admin(request)
    return JSONResponse(parse_policy(request.app.state.storage.get_policies()).to_dict())


async def put_policies(request: Request) -> JSONResponse:
    require_admin(request)
    doc = parse_json(await read_raw(request, 1024 * 1024))
    try:
        policy = parse_policy(doc)
    except PolicyError as exc:
        raise ApiError(400, "invalid_policy", str(exc)) from None
    request.app.state.storage.put_policies(policy.default, dict(policy.rules))
    return JSONResponse(policy.to_dict())


routes = [
    Route("/api/v1/policies", get_policies, methods=["GET"]),
    Route("/api/v1/policies", put_policies, methods=["PUT"]),
]

_MODE = {"type": "string", "enum": ["monitor", "comment", "block"]}
OPENAPI_SCHEMAS = {
    "Policies": {
        "type": "object",
        "properties": {"default": _MODE, "rules": {"type": "object", "additionalProperties": _MODE}},
    }
}
_BODY = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Policies"}}}}
OPENAPI_PATHS = {
    "/api/v1/policies": {
        "get": {"summary": "The rule board", "security": [{"adminToken": []}],
                "responses": {"200": {"description": "policies", **_BODY}, **error_responses(401, 403)}},
        "put": {"summary": "Replace the rule board", "security": [{"adminToken": []}],
                "requestBody": {"required": True, **_BODY},
                "responses": {"200": {"description": "policies", **_BODY}, **error_responses(400, 401, 403)}},
    }
}
