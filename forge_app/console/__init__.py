"""The web console: server-rendered pages for admins on the same Starlette app.

`install(app)` adds the console's routes (none under /api, /webhooks, /healthz, /slack)
and one small middleware: a browser opening a scan's API URL (`/api/v1/scans/{id}`, the
link in PR comments and notifications) without credentials is sent to `/scans/{id}`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
_SCAN_API = re.compile(r"^/api/v1/scans/(\d{1,15})$")


def console_routes() -> list[BaseRoute]:
    from forge_app.console import auth_pages, connection_pages, project_pages, rule_pages
    from forge_app.console import integration_pages as ip
    from forge_app.forges.registry import FORGES

    return [
        Route("/", auth_pages.home, methods=["GET"]),
        Route("/", auth_pages.sign_in, methods=["POST"]),
        Route("/signout", auth_pages.sign_out, methods=["POST"]),
        Route("/projects", project_pages.projects, methods=["GET"]),
        Route("/projects/{repository_id}", project_pages.repository, methods=["GET"]),
        Route("/scans/{scan_id}", project_pages.scan, methods=["GET"]),
        Route("/rules", rule_pages.board_page, methods=["GET"]),
        Route("/rules", rule_pages.set_rule, methods=["POST"]),
        Route("/rules/notifications", rule_pages.set_notifications, methods=["POST"]),
        Route("/settings", ip.settings_home, methods=["GET"]),
        Route("/settings/integrations", ip.list_page, methods=["GET"]),
        Route("/settings/integrations/new", ip.choose_type, methods=["GET"]),
        Route("/settings/integrations/new/{type}", ip.new_form, methods=["GET"]),
        Route("/settings/integrations/new/{type}", ip.new_submit, methods=["POST"]),
        Route("/settings/integrations/{integration_id}", ip.edit_form, methods=["GET"]),
        Route("/settings/integrations/{integration_id}", ip.edit_submit, methods=["POST"]),
        Route("/settings/integrations/{integration_id}/delete", ip.delete_confirm, methods=["GET"]),
        Route("/settings/integrations/{integration_id}/delete", ip.delete_submit, methods=["POST"]),
        Route("/settings/connections", connection_pages.connections_page, methods=["GET"]),
        Route("/settings/connections", connection_pages.add_connection, methods=["POST"]),
        Route("/settings/connections/{connection_id}/delete", connection_pages.delete_connection_confirm,
              methods=["GET"]),
        Route("/settings/connections/{connection_id}/delete", connection_pages.delete_connection, methods=["POST"]),
        *(route for forge in FORGES.values() for route in forge.console_routes),
        Mount("/console/static", app=StaticFiles(directory=str(STATIC)), name="console-static"),
    ]


class ScanLinkRedirect:
    """GET /api/v1/scans/{id} from a browser (Accept: text/html, no Authorization) → 303 /scans/{id}.
    API clients (a Bearer token, or no text/html in Accept) get the JSON as before."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = _SCAN_API.match(scope["path"])
            if match:
                headers = dict(scope["headers"])
                accept = headers.get(b"accept", b"").decode("latin-1").lower()
                if "text/html" in accept and b"authorization" not in headers:
                    await send({"type": "http.response.start", "status": 303,
                                "headers": [(b"location", f"/scans/{match.group(1)}".encode()),
                                            (b"content-length", b"0")]})
                    await send({"type": "http.response.body", "body": b""})
                    return
        await self.app(scope, receive, send)


def install(app: Any) -> None:
    """Add the console to the forge-app Starlette app (called from web/app.py)."""
    app.router.routes.extend(console_routes())
    app.add_middleware(ScanLinkRedirect)
