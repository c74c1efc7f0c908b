"""`GET /openapi.json`: the OpenAPI 3 description of the /api/v1 routes.

Each route module describes its own paths in `OPENAPI_PATHS` (and schemas in
`OPENAPI_SCHEMAS`), so the description lives next to the code it documents.
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
    return {str(c): {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for c in codes}


def build_spec(public_url: str) -> dict[str, Any]:
    import importlib

    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for name in ("scans", "policies", "integrations", "connections", "marketplace", "semgrep_ci", "rules"):
        try:
            module = importlib.import_module(f"forge_app.web.routes.{name}")
        except ModuleNotFoundError:
            continue
        paths.update(getattr(module, "OPENAPI_PATHS", {}))
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    paths.update(importlib.import_module("forge_app.slackapp.routes").OPENAPI_PATHS)  # the Slack app (#18)
    return {
        "openapi": "3.0.3",
        "info": {"title": "forge-app API", "version": forge_app.__version__,
                 "description": "Scan uploads from CI and the admin API of forge-app."},
        "servers": [{"url": public_url}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "uploadToken": {"type": "http", "scheme": "bearer", "description": "an upload token (forge-app token create)"},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "FORGE_APP_ADMIN_TOKEN"},
            },
        },
    }


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(build_spec(request.app.state.settings.public_url))


routes = [Route("/openapi.json", openapi, methods=["GET"])]
