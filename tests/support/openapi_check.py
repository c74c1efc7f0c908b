"""Validating every request the app sends to a forge against that forge's official API description.

Fakes and cassette checks call `ApiDescription.check(...)`; a request the real forge
would not accept (unknown route, missing field, wrong type) fails the test.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qs, urlsplit

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SPECS = {
    "github": FIXTURES / "github" / "openapi-subset.json",
    "gitlab": FIXTURES / "gitlab" / "api-contract.openapi.json",
    "bitbucket": FIXTURES / "bitbucket" / "openapi-subset.json",
}


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


@lru_cache(maxsize=None)
def api_description(forge: str) -> ApiDescription:
    return ApiDescription(forge)
