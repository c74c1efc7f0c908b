"""`/api/v1/rules[/{name}]` (admin): the Semgrep rule files served to `semgrep ci`.

`PUT` takes the rule file itself (YAML or JSON) as the body and refuses, with the reason, a file
Semgrep would refuse. Files from FORGE_APP_RULES are listed too but are edited on disk (then SIGHUP).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forge_app.core.rules import RuleFile, RuleFileError, check_name, describe, duplicate_ids, parse_rule_file
from forge_app.services.rules import ENV, all_files, catalog_for, semgrep_check
from forge_app.web.auth import require_admin
from forge_app.web.body import read_raw
from forge_app.web.errors import ApiError
from forge_app.web.routes.openapi import error_responses
from storage import Storage


def _name(request: Request) -> str:
    try:
        return check_name(request.path_params["name"])
    except RuleFileError as exc:
        raise ApiError(400, "invalid_name", str(exc)) from None


def _file(request: Request, name: str) -> RuleFile | None:
    for f in all_files(catalog_for(request.app.state), request.app.state.storage):
        if f.name == name:
            return f
    return None


async def list_rules(request: Request) -> JSONResponse:
    require_admin(request)
    catalog = catalog_for(request.app.state)
    files = all_files(catalog, request.app.state.storage)
    return JSONResponse({"files": [describe(f) for f in files], "problems": list(catalog.problems)})


async def get_rule_file(request: Request) -> Response:
    require_admin(request)
    name = _name(request)
    found = _file(request, name)
    if found is None:
        raise ApiError(404, "not_found", f"no rule file {name!r}")
    if "yaml" in request.headers.get("accept", ""):
        return Response(found.text, media_type="application/yaml")
    return JSONResponse({**describe(found), "content": found.text})


async def put_rule_file(request: Request) -> JSONResponse:
    require_admin(request)
    name = _name(request)
    storage: Storage = request.app.state.storage
    raw = await read_raw(request, 2 * 1024 * 1024)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_rules", "the rule file is not UTF-8 text") from None
    existing = _file(request, name)
    if existing is not None and existing.source == "file":
        raise ApiError(409, "managed_by_file", f"{name} comes from {ENV}: edit it there and send SIGHUP to the server")
    try:
        new = RuleFile(name, "api", tuple(parse_rule_file(text, name=name)), text)
        await run_in_threadpool(semgrep_check, text, name)
    except RuleFileError as exc:
        raise ApiError(400, "invalid_rules", str(exc)) from None
    clashes = duplicate_ids(new, all_files(catalog_for(request.app.state), storage))
    if clashes:
        shown = ", ".join(f"{rid} (in {where})" for rid, where in sorted(clashes.items())[:5])
        raise ApiError(409, "duplicate_rule_id", f"rule ids already served by another file: {shown}")
    created = storage.put_rule_file(name, text)
    return JSONResponse(dict(describe(new)), status_code=201 if created else 200)


async def delete_rule_file(request: Request) -> Response:
    require_admin(request)
    name = _name(request)
    existing = _file(request, name)
    if existing is not None and existing.source == "file":
        raise ApiError(409, "managed_by_file",
                       f"{name} comes from {ENV}: remove it there and send SIGHUP to the server")
    if not request.app.state.storage.delete_rule_file(name):
        raise ApiError(404, "not_found", f"no rule file {name!r}")
    return Response(status_code=204)


routes = [
    Route("/api/v1/rules", list_rules, methods=["GET"]),
    Route("/api/v1/rules/{name}", get_rule_file, methods=["GET"]),
    Route("/api/v1/rules/{name}", put_rule_file, methods=["PUT"]),
    Route("/api/v1/rules/{name}", delete_rule_file, methods=["DELETE"]),
]

_FILE: dict[str, Any] = {
    "type": "object", "required": ["name", "source", "rules"],
    "properties": {"name": {"type": "string"}, "source": {"type": "string", "enum": ["file", "api"]},
                   "rules": {"type": "array", "items": {"type": "string"}, "description": "the rule ids"},
                   "content": {"type": "string"}},
}
OPENAPI_SCHEMAS = {"RuleFile": _FILE}
_REF = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/RuleFile"}}}}
_NAME = [{"name": "name", "in": "path", "required": True,
          "schema": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"}}]
OPENAPI_PATHS = {
    "/api/v1/rules": {"get": {
        "summary": "The rule files served to semgrep ci (FORGE_APP_RULES and this API) and files not served",
        "security": [{"adminToken": []}],
        "responses": {"200": {"description": "`{files: [RuleFile], problems: [reason]}`",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      **error_responses(401, 403)},
    }},
    "/api/v1/rules/{name}": {
        "get": {"summary": "A rule file (JSON with `content`; the YAML itself with Accept: application/yaml)",
                "security": [{"adminToken": []}], "parameters": _NAME,
                "responses": {"200": {"description": "the file", **_REF}, **error_responses(400, 401, 403, 404)}},
        "put": {"summary": "Create or replace a rule file; a file Semgrep would refuse is refused with the reason",
                "security": [{"adminToken": []}], "parameters": _NAME,
                "requestBody": {"required": True, "content": {"application/yaml": {"schema": {"type": "string"}}}},
                "responses": {"200": {"description": "replaced", **_REF}, "201": {"description": "created", **_REF},
                              **error_responses(400, 401, 403, 409, 413)}},
        "delete": {"summary": "Stop serving a rule file", "security": [{"adminToken": []}], "parameters": _NAME,
                   "responses": {"204": {"description": "deleted"}, **error_responses(400, 401, 403, 404, 409)}},
    },
}
