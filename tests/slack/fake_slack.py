"""A small, stateful Slack Web API on loopback, strict where the real one is.

Every request is checked against Slack's vendored Web API description
(tests/fixtures/slack/web-api.openapi-subset.json, Swagger 2.0): the method must be
described, every parameter sent must be declared for it, required ones present, and
simple types right. The token goes in `Authorization: Bearer` as Slack's docs say (the
old spec models it as a parameter) and must be one this fake issued and did not revoke.
Problems are answered `{"ok": false, "error": "invalid_arguments"}` and kept in
`violations`, which the tests assert empty.

Two documented things the 2020 description lacks are allowed, from
tests/slack/web-api-supplement.json: token rotation's `grant_type`/`refresh_token` on
oauth.v2.access (docs.slack.dev/authentication/using-token-rotation), and POST for
methods the old description declares as GET (docs.slack.dev lists POST for them).
Message bodies are also held to Slack's Block Kit limits (50 blocks, 3,000 characters
per section, ~13,000 characters of blocks in all).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slack"
SUPPLEMENT = Path(__file__).resolve().parent / "web-api-supplement.json"
CLIENT_ID = "111.222"
CLIENT_SECRET = "fake-client-secret"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documented example secret
BLOCKS_TOTAL_MAX = 13000


@lru_cache(maxsize=1)
def web_api() -> dict[str, Any]:
    return json.loads((FIXTURES / "web-api.openapi-subset.json").read_text())


@lru_cache(maxsize=1)
def supplement() -> dict[str, Any]:
    return json.loads(SUPPLEMENT.read_text())


def describe_errors(method: str, http_method: str, params: dict[str, Any], *, has_bearer: bool) -> list[str]:
    """What is wrong with this call according to the Web API description (+ supplement)."""
    op_item = web_api()["paths"].get(f"/{method}")
    if op_item is None:
        return [f"{method} is not a Web API method in the vendored description"]
    declared_verb, op = next(iter(op_item.items()))
    extra = supplement()["methods"].get(method, {})
    if http_method.lower() != declared_verb and http_method.upper() not in extra.get("also_http_methods", []) \
            and http_method.upper() not in supplement()["any_method_may_use"]:
        return [f"{method} does not take HTTP {http_method}"]
    declared = {p["name"]: p for p in op.get("parameters", [])}
    for name in extra.get("extra_parameters", []):
        declared.setdefault(name, {"name": name, "type": "string"})
    problems = []
    optional = set(extra.get("not_required", []))
    for name, spec in declared.items():
        if name == "token" or name in optional or not spec.get("required"):
            continue
        if name not in params:
            problems.append(f"{method}: required parameter {name} missing")
    for name, value in params.items():
        spec = declared.get(name)
        if spec is None:
            problems.append(f"{method}: parameter {name} is not declared")
            continue
        kind = spec.get("type")
        if kind == "boolean" and value not in (True, False, "true", "false", "1", "0", 1, 0):
            problems.append(f"{method}: {name} is not a boolean")
        if kind == "integer" and not str(value).lstrip("-").isdigit():
            problems.append(f"{method}: {name} is not an integer")
        if kind == "string" and not isinstance(value, (str, list, dict)):
            # lists and objects travel as JSON text in a form and as JSON values in a JSON body
            problems.append(f"{method}: {name} is not a string")
    security = op.get("security") or []
    if (method != "oauth.v2.access" and security and "token" in declared and not has_bearer
            and (declared["token"].get("required") or method in ("apps.uninstall",))):
        problems.append(f"{method}: no Authorization: Bearer token")
    return problems


def block_problems(blocks: Any, *, limit_blocks: int) -> list[str]:
    if blocks is None:
        return []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    problems = []
    if len(blocks) > limit_blocks:
        problems.append(f"{len(blocks)} blocks > {limit_blocks}")
    total = 0
    for b in blocks:
        text = (b.get("text") or {}).get("text") if isinstance(b.get("text"), dict) else None
        if b.get("type") == "section" and text is not None and len(text) > 3000:
            problems.append("section text > 3000 characters")
        total += len(json.dumps(b))
    if total > BLOCKS_TOTAL_MAX:
        problems.append(f"blocks of {total} characters (Slack refuses around 13,000)")
    return problems


@dataclass
class Channel:
    id: str
    name: str
    private: bool = False
    bot_member: bool = False
    archived: bool = False


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.team = {"id": "T111", "name": "Acme"}
        self.bot_user_id = "UBOT111"
        self.rotation = False
        self.channels: dict[str, Channel] = {}
        self.codes: dict[str, str] = {}  # OAuth code -> team id
        self.tokens: dict[str, dict[str, Any]] = {}  # token -> {"team", "expires_at"}
        self.refresh_tokens: set[str] = set()
        self.triggers: dict[str, float] = {}
        self.calls: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.messages: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self.published: dict[str, dict[str, Any]] = {}
        self.responses: list[dict[str, Any]] = []
        self.failures: dict[str, list[Failure]] = {}
        self.uninstalled = False
        self.base_url = ""
        self.latency = 0.0  # seconds each Web API answer takes (the bench sets Slack-like delays)

    # --- test controls -------------------------------------------------------------------

    def add_channel(self, id: str, name: str, *, private: bool = False, bot_member: bool = False) -> None:
        self.channels[id] = Channel(id, name, private, bot_member)

    def new_code(self) -> str:
        code = secrets.token_hex(8)
        self.codes[code] = self.team["id"]
        return code

    def new_trigger(self) -> str:
        trigger = f"{int(time.time())}.{secrets.token_hex(6)}"
        self.triggers[trigger] = time.time() + 3
        return trigger

    def response_url(self) -> str:
        return f"{self.base_url}/respond/{secrets.token_hex(6)}"

    def fail(self, method: str, error: str | None = None, *, status: int = 200, headers: dict[str, str] | None = None,
             times: int = 1, body: dict[str, Any] | None = None) -> None:
        """Answer the next `times` calls of `method` with this failure."""
        payload = body if body is not None else {"ok": False, "error": error}
        self.failures.setdefault(method, []).extend(Failure(status, payload, headers or {}) for _ in range(times))

    def count(self, method: str) -> int:
        return sum(1 for c in self.calls if c["method"] == method)

    def revoke_all(self) -> None:
        self.tokens.clear()

    # --- HTTP ------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/api/{method}", self._api, methods=["GET", "POST"]),
            Route("/respond/{id}", self._respond, methods=["POST"]),
        ])

    async def _respond(self, request: Request) -> Response:
        body = json.loads(await request.body())
        with self.lock:
            self.responses.append(body)
        return Response("ok")

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        raw = await request.body()
        if self.latency:
            await asyncio.sleep(self.latency)
        params: dict[str, Any] = {k: v for k, v in request.query_params.items()}
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if raw:
            if ctype == "application/json":
                params.update(json.loads(raw))
            else:
                params.update({k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()})
        auth = request.headers.get("authorization", "")
        with self.lock:
            self.calls.append({"method": method, "params": params, "at": time.time()})
            problems = describe_errors(method, request.method, {k: v for k, v in params.items() if k != "token"},
                                       has_bearer=auth.lower().startswith("bearer "))
            if problems:
                self.violations.extend(problems)
                return JSONResponse({"ok": False, "error": "invalid_arguments", "problems": problems})
            queued = self.failures.get(method)
            if queued:
                f = queued.pop(0)
                return JSONResponse(f.body, status_code=f.status, headers=f.headers)
            if method == "oauth.v2.access":
                return self._oauth(auth, params)
            token = auth[7:] if auth.lower().startswith("bearer ") else params.get("token")
            grant = self.tokens.get(token or "")
            if grant is None:
                return JSONResponse({"ok": False, "error": "invalid_auth"})
            if grant["expires_at"] is not None and grant["expires_at"] < time.time():
                return JSONResponse({"ok": False, "error": "token_expired"})
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                return JSONResponse({"ok": False, "error": "unknown_method"})
            return JSONResponse(handler(params))

    def _issue(self) -> dict[str, Any]:
        if self.rotation:
            token = f"xoxe.xoxb-{secrets.token_hex(8)}"
            refresh = f"xoxe-1-{secrets.token_hex(8)}"
            self.refresh_tokens.add(refresh)
            self.tokens[token] = {"team": self.team["id"], "expires_at": time.time() + 43200}
            return {"access_token": token, "refresh_token": refresh, "expires_in": 43200}
        token = f"xoxb-{secrets.token_hex(8)}"
        self.tokens[token] = {"team": self.team["id"], "expires_at": None}
        return {"access_token": token}

    def _oauth(self, auth: str, params: dict[str, Any]) -> Response:
        if auth.lower().startswith("basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            cid, secret = params.get("client_id", ""), params.get("client_secret", "")
        if (cid, secret) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"ok": False, "error": "invalid_client_id"})
        if params.get("grant_type") == "refresh_token":
            if params.get("refresh_token") not in self.refresh_tokens:
                return JSONResponse({"ok": False, "error": "invalid_refresh_token"})
            self.refresh_tokens.discard(params["refresh_token"])
            issued = self._issue()
            return JSONResponse({"ok": True, "app_id": "A111", "scope": "commands,chat:write", "token_type": "bot",
                                 "bot_user_id": self.bot_user_id, "team": self.team, "enterprise": None,
                                 "is_enterprise_install": False, **issued})
        if self.codes.pop(params.get("code", ""), None) is None:
            return JSONResponse({"ok": False, "error": "invalid_code"})
        base = json.loads((FIXTURES / "oauth" / "oauth.v2.access.json").read_text())
        base.update({"team": dict(self.team), "bot_user_id": self.bot_user_id,
                     "scope": "commands,chat:write,chat:write.public,channels:read,groups:read,team:read",
                     **self._issue()})
        return JSONResponse(base)

    def _channel(self, channel_id: str) -> Channel | None:
        c = self.channels.get(channel_id)
        if c is None or (c.private and not c.bot_member):
            return None
        return c

    def _m_conversations_info(self, p: dict[str, Any]) -> dict[str, Any]:
        c = self._channel(p.get("channel", ""))
        if c is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": {"id": c.id, "name": c.name, "is_channel": not c.private,
                                         "is_group": c.private, "is_private": c.private, "is_archived": c.archived,
                                         "is_im": False, "is_mpim": False, "is_member": c.bot_member}}

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel", "")
        problems = block_problems(p.get("blocks"), limit_blocks=50)
        if len(p.get("text") or "") > 40000:
            problems.append("text > 40,000 characters")
        if problems:
            self.violations.extend(problems)
            return {"ok": False, "error": "invalid_blocks"}
        if channel.startswith("U"):  # a direct message from the app
            self.messages.append({"channel": channel, **p})
            return {"ok": True, "channel": channel, "ts": f"{time.time():.6f}"}
        c = self.channels.get(channel)
        if c is None:
            return {"ok": False, "error": "channel_not_found"}
        if c.private and not c.bot_member:
            return {"ok": False, "error": "not_in_channel"}
        if c.archived:
            return {"ok": False, "error": "is_archived"}
        self.messages.append({"channel": channel, **p})
        return {"ok": True, "channel": channel, "ts": f"{time.time():.6f}"}

    def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        deadline = self.triggers.pop(p.get("trigger_id", ""), None)
        if deadline is None or deadline < time.time():
            return {"ok": False, "error": "expired_trigger_id"}
        view = p["view"] if isinstance(p["view"], dict) else json.loads(p["view"])
        problems = block_problems(view.get("blocks"), limit_blocks=100)
        if problems:
            self.violations.extend(problems)
            return {"ok": False, "error": "invalid_arguments"}
        self.views.append(view)
        return {"ok": True, "view": {"id": f"V{len(self.views)}", **view}}

    def _m_views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        view = p["view"] if isinstance(p["view"], dict) else json.loads(p["view"])
        problems = block_problems(view.get("blocks"), limit_blocks=100)
        if problems:
            self.violations.extend(problems)
            return {"ok": False, "error": "invalid_arguments"}
        self.published[p["user_id"]] = view
        return {"ok": True, "view": {"id": "VHOME", **view}}

    def _m_apps_uninstall(self, p: dict[str, Any]) -> dict[str, Any]:
        if (p.get("client_id"), p.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return {"ok": False, "error": "invalid_client_id"}
        self.uninstalled = True
        self.tokens.clear()
        return {"ok": True}
