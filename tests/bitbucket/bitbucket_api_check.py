"""Validating a request the app sends to Bitbucket against the vendored description
(tests/fixtures/bitbucket/openapi-subset.json).

A request whose route the description lacks is refused ("NotInDescription"), except:
- the explicit allow-list ALLOWED_OUTSIDE below, each entry with its reason, and
- following a redirect Bitbucket itself answered with (the `.../pullrequests/{id}/diff`
  route of the description answers with a redirect to `/diff/{spec}`, which the app
  follows with the token); the fake allows only the exact targets it handed out.
Those requests are checked against `openapi-supplement.json` beside this file instead,
written from Atlassian's reference, so their shape is still validated.

One erratum: Atlassian's description types `report_data.value` as an object, while Code
Insights takes the number, text or boolean itself (`{"type": "NUMBER", "value": 3}`). A
body is accepted when this is its only problem: it must pass the subset with that one
schema loosened.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openapi_core import OpenAPI

from tests.support.openapi_check import ApiDescription, api_description

SUPPLEMENT = Path(__file__).resolve().parent / "openapi-supplement.json"
NOT_IN_DESCRIPTION = "NotInDescription"
UNKNOWN_ROUTE = ("PathNotFound", "OperationNotFound")

# The ONLY routes outside the description the app may choose to call: (method, path regex) -> why.
ALLOWED_OUTSIDE: dict[tuple[str, str], str] = {
    # Every route of the description names a repository; a workspace connection has none yet.
    # Sent once, when a workspace connection is created (forges/bitbucket/connection.py).
    ("GET", r"/repositories/[^/]+"):
        "workspace connection check: the token reaches the workspace, and its scopes",
    # A pull request webhook's 12-character hash that no scan and no pull request answer
    # resolves (forges/bitbucket/commits.py): the last resort, remembered once resolved.
    ("GET", r"/repositories/[^/]+/[^/]+/commit/[^/]+"):
        "last-resort resolution of a short commit hash",
}
REDIRECT_TARGETS = (("GET", r"/repositories/[^/]+/[^/]+/diff/.+"),)


def _described(raw: dict[str, Any]) -> ApiDescription:
    description = ApiDescription.__new__(ApiDescription)
    description.forge = "bitbucket"
    description.raw = raw
    description.openapi = OpenAPI.from_dict(raw)
    server = urlsplit(raw["servers"][0]["url"])
    description.host_url = f"{server.scheme}://{server.netloc}"
    description.base_path = server.path.rstrip("/")
    return description


@cache
def supplement() -> ApiDescription:
    return _described(json.loads(SUPPLEMENT.read_text()))


@cache
def subset_with_report_data_erratum() -> ApiDescription:
    raw = copy.deepcopy(api_description("bitbucket").raw)
    raw["components"]["schemas"]["report_data"]["properties"]["value"].pop("type")
    return _described(raw)


def described_route(method: str, path: str) -> bool:
    """Whether the description has this route at all (its request may still be refused)."""
    problems = api_description("bitbucket").errors(method, path.split("?", 1)[0])
    return not problems or not all(p.startswith(UNKNOWN_ROUTE) for p in problems)


def allowed_outside(method: str, path: str, *, redirected: bool = False) -> bool:
    """Whether a route the description lacks is on the allow-list (or a redirect being followed)."""
    path = path.split("?", 1)[0]
    if any(m == method and re.fullmatch(p, path) for m, p in ALLOWED_OUTSIDE):
        return True
    return redirected and any(m == method and re.fullmatch(p, path) for m, p in REDIRECT_TARGETS)


def request_problems(method: str, path: str, *, query: str | Mapping[str, Any] = "",
                     headers: Mapping[str, str] | None = None, body: bytes | None = None,
                     redirected: bool = False) -> list[str]:
    """`path` relative to /2.0. Empty when Bitbucket's description (or, for an allowed route
    outside it, the supplement) accepts the request. `redirected`: the request follows a
    redirect Bitbucket answered with."""
    kwargs: dict[str, Any] = {"query": query, "headers": headers, "body": body}
    problems = api_description("bitbucket").errors(method, path, **kwargs)
    if not problems:
        return []
    if all(p.startswith(UNKNOWN_ROUTE) for p in problems):
        if not allowed_outside(method, path, redirected=redirected):
            return [f"{NOT_IN_DESCRIPTION}: {method} {path} is not in Bitbucket's API description "
                    "(openapi-subset.json) nor in the allow-list"]
        return [f"(supplement) {p}" for p in supplement().errors(method, path, **kwargs)]
    if any("'data'" in p and "'value'" in p for p in problems) \
            and not subset_with_report_data_erratum().errors(method, path, **kwargs):
        return []
    return problems


def check_request(method: str, path: str, **kwargs: Any) -> None:
    problems = request_problems(method, path, **kwargs)
    if problems:
        raise AssertionError(f"{method} {path} does not match Bitbucket's API description: {problems}")
