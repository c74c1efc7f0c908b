"""Validating a request the app sends to Bitbucket: against the vendored subset first.

Two documented gaps, each handled narrowly:
- routes the subset lacks (the `/diff/{spec}` redirect target, `GET .../commit/{commit}`,
  `GET /repositories/{workspace}`, `GET .../pullrequests`) are checked against
  `openapi-supplement.json` beside this file, written from Atlassian's reference;
- Atlassian's description types `report_data.value` as an object, while Code Insights
  takes the number, text or boolean itself (`{"type": "NUMBER", "value": 3}`). A body is
  accepted when this is its only problem: it must pass the subset with that one
  schema loosened.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from openapi_core import OpenAPI

from tests.support.openapi_check import ApiDescription, api_description

SUPPLEMENT = Path(__file__).resolve().parent / "openapi-supplement.json"


def _described(raw: dict[str, Any]) -> ApiDescription:
    description = ApiDescription.__new__(ApiDescription)
    description.forge = "bitbucket"
    description.raw = raw
    description.openapi = OpenAPI.from_dict(raw)
    server = urlsplit(raw["servers"][0]["url"])
    description.host_url = f"{server.scheme}://{server.netloc}"
    description.base_path = server.path.rstrip("/")
    return description


@lru_cache(maxsize=None)
def supplement() -> ApiDescription:
    return _described(json.loads(SUPPLEMENT.read_text()))


@lru_cache(maxsize=None)
def subset_with_report_data_erratum() -> ApiDescription:
    raw = copy.deepcopy(api_description("bitbucket").raw)
    raw["components"]["schemas"]["report_data"]["properties"]["value"].pop("type")
    return _described(raw)


def request_problems(method: str, path: str, *, query: str | Mapping[str, Any] = "",
                     headers: Mapping[str, str] | None = None, body: bytes | None = None) -> list[str]:
    """`path` relative to /2.0. Empty when Bitbucket's description accepts the request."""
    kwargs: dict[str, Any] = {"query": query, "headers": headers, "body": body}
    problems = api_description("bitbucket").errors(method, path, **kwargs)
    if not problems:
        return []
    if all(p.startswith("PathNotFound") for p in problems):
        return [f"(supplement) {p}" for p in supplement().errors(method, path, **kwargs)]
    if any("'data'" in p and "'value'" in p for p in problems) \
            and not subset_with_report_data_erratum().errors(method, path, **kwargs):
        return []
    return problems


def check_request(method: str, path: str, **kwargs: Any) -> None:
    problems = request_problems(method, path, **kwargs)
    if problems:
        raise AssertionError(f"{method} {path} does not match Bitbucket's API description: {problems}")
