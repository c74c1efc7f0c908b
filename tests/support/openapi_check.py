"""Validating every request the app sends to a forge against that forge's official API description.

Fakes and cassette checks call `ApiDescription.check(...)`; a request the real forge
would not accept (unknown route, missing field, wrong type) fails the test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SPECS = {
    "github": FIXTURES / "github" / "openapi-subset.json",
    "github-marketplace": FIXTURES / "github" / "marketplace" / "openapi-marketplace-subset.json",
    "gitlab": FIXTURES / "gitlab" / "api-contract.openapi.json",
    "bitbucket": FIXTURES / "bitbucket" / "openapi-subset.json",
}


# Path parameters that hold several segments (a file path, slashes included). GitHub marks them
# `x-multi-segment`; Bitbucket's description only says so in prose (`.../src/eefd5ef/tests/__init__.py`).
MULTI_SEGMENT = {"bitbucket": {"/repositories/{workspace}/{repo_slug}/src/{commit}/{path}": {"path"}}}


_ROUTES: dict[tuple[str, int], list[tuple[re.Pattern[str], list[bool]]]] = {}


def _multi_segment_routes(forge: str, raw: dict[str, Any]) -> list[tuple[re.Pattern[str], list[bool]]]:
    """(route regex, which of its parameters are multi-segment) for every route that has one."""
    cached = _ROUTES.get((forge, id(raw)))
    if cached is not None:
        return cached
    routes = []
    extra = MULTI_SEGMENT.get(forge, {})
    for template, item in (raw.get("paths") or {}).items():
        params = list(item.get("parameters") or [])
        for op in item.values():
            if isinstance(op, dict):
                params += op.get("parameters") or []
        multi = {p["name"] for p in params if isinstance(p, dict) and p.get("in") == "path"
                 and p.get("x-multi-segment")} | extra.get(template, set())
        if not multi:
            continue
        regex, flags = "", []
        for part in re.split(r"(\{[^}]+\})", template):
            if part.startswith("{"):
                flags.append(part[1:-1] in multi)
                regex += "(.+)" if flags[-1] else "([^/]+)"
            else:
                regex += re.escape(part)
        routes.append((re.compile(regex), flags))
    _ROUTES[(forge, id(raw))] = routes
    return routes


def one_segment(forge: str, raw: dict[str, Any], path: str) -> str:
    """`path` with the slashes inside multi-segment parameters escaped, so that a validator that
    matches one segment per parameter finds the route."""
    for regex, flags in _multi_segment_routes(forge, raw):
        m = regex.fullmatch(path)
        if m is None:
            continue
        for i in reversed(range(len(flags))):
            if flags[i]:
                start, end = m.span(i + 1)
                path = path[:start] + path[start:end].replace("/", "%2F") + path[end:]
        return path
    return path


class ApiDescription:
    def __init__(self, forge: str) -> None:
        self.forge = forge
        self.raw = json.loads(SPECS[forge].read_text())
        self.openapi = OpenAPI.from_dict(self.raw)
        server = urlsplit(self.raw["servers"][0]["url"])
        self.host_url = f"{server.scheme}://{server.netloc}"
        self.base_path = server.path.rstrip("/")

    def errors(self, method: str, path: str, *, query: str | Mapping[str, Any] = "",
               headers: Mapping[str, str] | None = None, body: bytes | None = None) -> list[str]:
        """`path` is relative to the API root (e.g. `/repos/o/r/pulls/1/files`)."""
        if isinstance(query, str):
            args = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(query).items()}
        else:
            args = dict(query)
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        path = one_segment(self.forge, self.raw, path)
        content_type = hdrs.get("content-type", "application/json").split(";")[0].strip()
        request = MockRequest(self.host_url, method.lower(), self.base_path + path, args=args, headers=hdrs,
                              data=body if body else None, content_type=content_type)
        return [_describe(e) for e in self.openapi.iter_request_errors(request)]

    def check(self, method: str, path: str, **kwargs: Any) -> None:
        problems = self.errors(method, path, **kwargs)
        if problems:
            raise AssertionError(f"{method} {path} does not match the {self.forge} API description: {problems}")


def _describe(error: Exception) -> str:
    parts = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__
    while cause is not None:
        schema_errors = getattr(cause, "schema_errors", None)
        if schema_errors:
            parts += [f"{list(e.absolute_path)}: {e.message}" for e in schema_errors]
        else:
            parts.append(str(cause))
        cause = cause.__cause__
    return " | ".join(parts)


@cache
def api_description(forge: str) -> ApiDescription:
    return ApiDescription(forge)
