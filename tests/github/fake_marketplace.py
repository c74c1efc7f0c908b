"""The Marketplace half of the fake GitHub: the listing, the customer's view, user authorization.

The eight Marketplace operations are validated against GitHub's vendored description
(tests/fixtures/github/marketplace/openapi-marketplace-subset.json) and answer in the shape
of its documented examples. Four calls the Setup URL and cancellations need are in no
vendored description (`POST /login/oauth/access_token`, `GET /user`, `GET /user/installations`,
`DELETE /applications/{client_id}/token`): they are checked here by hand (method,
credentials, body fields) against GitHub's documentation of them.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.responses import JSONResponse, Response

from tests.support.openapi_check import api_description

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "github" / "marketplace" / "examples"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


class MarketplaceFake:
    """Mixed into FakeGitHub; the state lives in plain dicts the tests fill."""

    url: str
    violations: list[str]
    injections: list[Any]
    _check_jwt: Any
    _page: Any
    _fail: Any

    def reset_marketplace(self) -> None:
        self.client_id = "Iv1.fakeclient"
        self.client_secret = "fake-client-secret"
        self.mp_plans: list[dict[str, Any]] = []  # plan objects (example shape)
        self.mp_accounts: dict[int, list[dict[str, Any]]] = {}  # plan id -> account items (example shape)
        self.oauth_codes: dict[str, str] = {}  # code -> user token
        self.users: dict[str, dict[str, Any]] = {}  # user token -> {"user", "installations", "purchases"}
        self.revoked: list[str] = []
        self.public_repos: set[str] = set()  # GET /repos/{owner}/{repo} says private unless listed here

    # helpers for tests ------------------------------------------------------------------
    def mp_plan(self, plan_id: int, name: str, price_model: str = "FLAT_RATE") -> dict[str, Any]:
        plan = copy.deepcopy(example("plans.list.json")[0])
        plan.update(id=plan_id, name=name, price_model=price_model,
                    url=f"https://api.github.com/marketplace_listing/plans/{plan_id}",
                    accounts_url=f"https://api.github.com/marketplace_listing/plans/{plan_id}/accounts")
        self.mp_plans.append(plan)
        self.mp_accounts.setdefault(plan_id, [])
        return plan

    def mp_account(self, plan_id: int, account_id: int, login: str, type_: str = "Organization",
                   pending: dict[str, Any] | None = None) -> dict[str, Any]:
        item = copy.deepcopy(example("plan-accounts.list.json")[0])
        plan = next(p for p in self.mp_plans if p["id"] == plan_id)
        item.update(id=account_id, login=login, type=type_, marketplace_pending_change=pending,
                    url=f"https://api.github.com/orgs/{login}")
        item["marketplace_purchase"]["plan"] = copy.deepcopy(plan)
        item["marketplace_purchase"]["on_free_trial"] = False
        self.mp_accounts[plan_id].append(item)
        return item

    def add_user(self, login: str, user_id: int, installations: list[dict[str, Any]],
                 purchases: list[dict[str, Any]] | None = None) -> str:
        """A GitHub user who will authorize the app; returns the code GitHub would hand out."""
        token = "ghu_" + secrets.token_urlsafe(20)
        code = secrets.token_hex(10)
        self.oauth_codes[code] = token
        self.users[token] = {"user": {"login": login, "id": user_id, "type": "User"},
                             "installations": installations, "purchases": purchases or []}
        return code

    def _get_repo(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        full = f"{m.group('owner')}/{m.group('repo')}"
        return JSONResponse({"id": abs(hash(full)) % 10**8, "name": m.group("repo"), "full_name": full,
                             "private": full not in self.public_repos, "default_branch": "main"})

    # routing ----------------------------------------------------------------------------
    def marketplace_route(self, method: str, rel: str, query: str, headers: dict[str, str],
                          raw: bytes) -> Response | None:
        listing = rel.startswith("/marketplace_listing/") or rel.startswith("/user/marketplace_purchases")
        revoke = re.fullmatch(r"/applications/(?P<client_id>[^/]+)/token", rel)
        if not (listing or revoke or rel in ("/login/oauth/access_token", "/user", "/user/installations")):
            return None
        if listing:
            problems = api_description("github-marketplace").errors(method, rel, query=query, headers=headers,
                                                                    body=raw or None)
            if problems:
                return self._fail(f"{method} {rel}: {problems}")
        for inj in self.injections:
            if inj.times > 0 and inj.method == method and inj.pattern.search(rel):
                inj.times -= 1
                return JSONResponse(inj.body, status_code=inj.status, headers=inj.headers)
        if listing:
            if rel.startswith("/user/"):
                return self._user_purchases(headers, query, rel)
            return self._listing(method, rel, query, headers)
        if rel == "/login/oauth/access_token":
            return self._access_token(method, headers, raw)
        if revoke:
            return self._revoke(method, revoke.group("client_id"), headers, raw)
        return self._user(method, rel, query, headers)

    def _listing(self, method: str, rel: str, query: str, headers: dict[str, str]) -> Response:
        problem = self._check_jwt(headers.get("authorization", ""))
        if problem:
            return self._fail(f"the listing API needs the App's JWT: {problem}", 401)
        rel_plain = rel.replace("/marketplace_listing/stubbed/", "/marketplace_listing/")
        if rel_plain == "/marketplace_listing/plans":
            return self._page(rel, query, self.mp_plans)
        m = re.fullmatch(r"/marketplace_listing/plans/(\d+)/accounts", rel_plain)
        if m:
            if int(m.group(1)) not in self.mp_accounts:
                return JSONResponse({"message": "Not Found"}, status_code=404)
            return self._page(rel, query, self.mp_accounts[int(m.group(1))])
        return self._fail(f"the fake does not implement {method} {rel}", 404)

    def _user_token(self, headers: dict[str, str]) -> dict[str, Any] | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        return self.users.get(token) if token not in self.revoked else None

    def _user(self, method: str, rel: str, query: str, headers: dict[str, str]) -> Response:
        if method != "GET":
            return self._fail(f"{method} {rel} is not an operation GitHub offers", 404)
        user = self._user_token(headers)
        if user is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        if rel == "/user":
            return JSONResponse(user["user"])
        return JSONResponse({"total_count": len(user["installations"]), "installations": user["installations"]})

    def _user_purchases(self, headers: dict[str, str], query: str, rel: str) -> Response:
        user = self._user_token(headers)
        if user is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return self._page(rel, query, user["purchases"])

    def _access_token(self, method: str, headers: dict[str, str], raw: bytes) -> Response:
        if method != "POST":
            return self._fail("the token exchange is POST /login/oauth/access_token", 404)
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if not raw.strip().startswith(b"{") and not form:
            return self._fail("the token exchange needs client_id, client_secret and code")
        if raw.strip().startswith(b"{"):
            form = json.loads(raw)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return JSONResponse({"error": "incorrect_client_credentials"})
        token = self.oauth_codes.pop(form.get("code", ""), None)
        if token is None:
            return JSONResponse({"error": "bad_verification_code"})
        return JSONResponse({"access_token": token, "token_type": "bearer", "scope": ""})

    def _revoke(self, method: str, client_id: str, headers: dict[str, str], raw: bytes) -> Response:
        if method != "DELETE":
            return self._fail(f"{method} /applications/{{client_id}}/token is not the revocation", 404)
        scheme, _, creds = headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(creds).decode().partition(":")
        except Exception:
            user, password = "", ""
        if scheme.lower() != "basic" or user != self.client_id or password != self.client_secret \
                or client_id != self.client_id:
            return self._fail("revoking a token needs basic auth with the App's client id and secret", 401)
        try:
            token = json.loads(raw).get("access_token")
        except ValueError:
            token = None
        if not isinstance(token, str):
            return self._fail("DELETE /applications/{client_id}/token needs {\"access_token\": ...}")
        if token not in self.users or token in self.revoked:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        self.revoked.append(token)
        return Response(status_code=204)
