"""`GET/PUT/PATCH /api/v1/policies`: the rule board (admin).

PUT replaces the whole board (rules left out are dropped); PATCH merges: `default`
when given, and each rule in `rules` set to its mode, or removed when its mode is null.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from forge_app.core.policy import Policy, PolicyError, parse_policy
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


def merge_policy(current: dict[str, Any], patch: Any) -> Policy:
    """The board after a PATCH: `default` replaced when given, each listed rule set, or removed
    when its mode is null; rules not listed stay as they are."""
    if not isinstance(patch, dict):
        raise PolicyError('the patch must be a JSON object like {"rules": {"my.rule": "block", "old.rule": null}}')
    unknown = set(patch) - {"default", "rules"}
    if unknown:
        raise PolicyError(f"unknown policy field(s): {', '.join(sorted(unknown))}")
    changes = patch.get("rules", {})
    if not isinstance(changes, dict):
        raise PolicyError("rules must be an object mapping a rule id or glob to a mode, or to null to remove it")
    rules = dict(current.get("rules") or {})
    for pattern, mode in changes.items():
        if mode is None:
            rules.pop(pattern, None)
        else:
            rules[pattern] = mode
    return parse_policy({"default": patch.get("default", current.get("default", "comment")), "rules": rules})


async def patch_policies(request: Request) -> JSONResponse:
    require_admin(request)
    doc = parse_json(await read_raw(request, 1024 * 1024))
    storage = request.app.state.storage
    try:
        policy = merge_policy(storage.get_policies(), doc)
    except PolicyError as exc:
        raise ApiError(400, "invalid_policy", str(exc)) from None
    storage.put_policies(policy.default, dict(policy.rules))
    return JSONResponse(policy.to_dict())


routes = [
    Route("/api/v1/policies", get_policies, methods=["GET"]),
    Route("/api/v1/policies", put_policies, methods=["PUT"]),
    Route("/api/v1/policies", patch_policies, methods=["PATCH"]),
]

_MODE = {"type": "string", "enum": ["monitor", "comment", "block"]}
OPENAPI_SCHEMAS = {
    "Policies": {
        "type": "object",
        "properties": {"default": _MODE, "rules": {"type": "object", "additionalProperties": _MODE}},
    }
}
_PATCH_BODY = {"content": {"application/json": {"schema": {
    "type": "object",
    "properties": {"default": _MODE,
                   "rules": {"type": "object", "additionalProperties": {**_MODE, "nullable": True},
                             "description": "each rule or glob set to a mode; null removes it"}}}}}}
_BODY = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Policies"}}}}
OPENAPI_PATHS = {
    "/api/v1/policies": {
        "get": {"summary": "The rule board", "security": [{"adminToken": []}],
                "responses": {"200": {"description": "policies", **_BODY}, **error_responses(401, 403)}},
        "patch": {"summary": "Merge into the rule board: set the listed rules (null removes one), keep the rest",
                  "security": [{"adminToken": []}], "requestBody": {"required": True, **_PATCH_BODY},
                  "responses": {"200": {"description": "policies", **_BODY}, **error_responses(400, 401, 403)}},
        "put": {"summary": "Replace the whole rule board (rules left out are dropped; use PATCH to merge)",
                "security": [{"adminToken": []}],
                "requestBody": {"required": True, **_BODY},
                "responses": {"200": {"description": "policies", **_BODY}, **error_responses(400, 401, 403)}},
    }
}
