"""Recorded GitHub interactions (vcrpy cassettes): app auth, one publish, one resolve.

The cassette was recorded against the fake GitHub with URLs rewritten to
https://api.github.com, Authorization headers removed and tokens scrubbed. It replays
offline (record_mode "none"): the app must send the same requests, bodies included
(timestamps aside), and every recorded request must match GitHub's OpenAPI description
(or, for GraphQL, GitHub's schema).

Re-record with: FORGE_APP_RECORD_CASSETTES=1 pytest tests/github/test_github_cassettes.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import vcr
import yaml

from tests.conftest import drain
from tests.github.fake_github import graphql_errors
from tests.github.gh_helpers import INSTALLATION, PR, REPO, open_pull_request, push_pull_request, sha
from tests.support.openapi_check import api_description

CASSETTE = Path(__file__).parent / "cassettes" / "github_auth_and_publish.yaml"
API = "https://api.github.com"
VOLATILE = {"started_at", "completed_at"}
RULES = ["python.lang.security.eval", "python.requests.no-timeout", "python.sqli.string-format"]
BASE = {"svc/api.py": "import requests\n\n\ndef ok():\n    return 1\n"}
HEAD1 = {"svc/api.py": BASE["svc/api.py"] + (
    "\n\ndef run(expr):\n    return eval(expr)\n\n\ndef fetch(url):\n    resp = requests.get(\n        url)\n"
    "    return resp\n")}
HEAD2 = {"svc/api.py": HEAD1["svc/api.py"].replace("return eval(expr)", "return int(expr)")}


def _normalized(body: Any) -> Any:
    if body in (None, b"", ""):
        return None
    text = body.decode() if isinstance(body, bytes) else body
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if k not in VOLATILE}
    return doc


def json_body_matcher(r1: Any, r2: Any) -> None:
    assert _normalized(r1.body) == _normalized(r2.body), f"{r1.method} {r1.uri}: the body differs from the recording"


def _recorder(fake_url: str) -> vcr.VCR:
    def scrub_request(request: Any) -> Any:
        request.uri = request.uri.replace(fake_url, API)
        if "host" in request.headers:
            request.headers["host"] = urlsplit(API).netloc
        return request

    def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
        body = response["body"]["string"]
        text = body.decode() if isinstance(body, bytes) else body
        text = re.sub(r'"token": ?"ghs_[^"]+"', '"token":"ghs_REDACTED"', text)
        text = re.sub(r'"expires_at": ?"[^"]+"', '"expires_at":"2099-01-01T00:00:00Z"', text)
        response["body"]["string"] = text.replace(fake_url, API).encode()
        for name in list(response["headers"]):
            if name.lower() == "content-length":
                response["headers"][name] = [str(len(response["body"]["string"]))]
            if name.lower() == "link":
                response["headers"][name] = [v.replace(fake_url, API) for v in response["headers"][name]]
            if name.lower() in ("date", "server"):
                del response["headers"][name]
        return response

    return vcr.VCR(record_mode="all", filter_headers=["authorization"], before_record_request=scrub_request,
                   before_record_response=scrub_response, decode_compressed_response=True)


def _player() -> vcr.VCR:
    player = vcr.VCR(record_mode="none", match_on=["method", "scheme", "host", "port", "path", "query", "json_body"])
    player.register_matcher("json_body", json_body_matcher)
    return player


def _scenario(client, app, storage, fake, tmp_path: Path) -> None:
    """Install, publish a PR scan, then publish the scan of a commit that fixes one finding."""
    token, _ = open_pull_request(client, storage, fake, tmp_path, BASE, HEAD1, head_sha=sha("cassette-1"),
                                 rules=RULES)
    drain(app)
    push_pull_request(client, token, fake, tmp_path / "fix", BASE, HEAD2, head_sha=sha("cassette-2"), rules=RULES)
    drain(app)


@pytest.mark.skipif(not os.environ.get("FORGE_APP_RECORD_CASSETTES"), reason="set FORGE_APP_RECORD_CASSETTES=1")
def test_record_cassette(client, app, storage, fake_github, tmp_path: Path) -> None:
    CASSETTE.parent.mkdir(exist_ok=True)
    if CASSETTE.exists():
        CASSETTE.unlink()
    with _recorder(fake_github.url).use_cassette(str(CASSETTE)):
        _scenario(client, app, storage, fake_github, tmp_path)
    assert "authorization" not in CASSETTE.read_text().lower()


def _recorded() -> list[dict[str, Any]]:
    return yaml.safe_load(CASSETTE.read_text())["interactions"]


def test_cassette_replays_offline(settings, storage, tmp_path: Path, fake_github) -> None:
    from starlette.testclient import TestClient

    from forge_app.web.app import create_app

    offline = dataclasses.replace(settings, github_api_url=API)
    app = create_app(offline, storage, run_worker=False)
    mark = fake_github.mark()
    with TestClient(app) as client, _player().use_cassette(str(CASSETTE)) as cassette:
        _scenario(client, app, storage, fake_github, tmp_path)
        assert cassette.all_played, "the app sent fewer requests than recorded"
    assert fake_github.since(mark) == []  # uploads went to the app; GitHub calls came from the cassette
    repo = storage.find_repository("github", REPO)
    ledger = storage.review_comments(repo.id, PR)
    assert sorted(rc.resolved for rc in ledger) == [False, True]
    assert storage.github_token(INSTALLATION) is not None


def test_cassette_requests_match_github_descriptions() -> None:
    interactions = _recorded()
    seen = []
    for interaction in interactions:
        request = interaction["request"]
        url = urlsplit(request["uri"])
        assert f"{url.scheme}://{url.netloc}" == API
        assert not any(k.lower() == "authorization" for k in request["headers"])
        body = request["body"]
        raw = body.encode() if isinstance(body, str) else body
        if url.path == "/graphql":
            assert graphql_errors(json.loads(raw)["query"]) == []
            seen.append(("POST", "/graphql"))
            continue
        headers = {k: v[0] if isinstance(v, list) else v for k, v in request["headers"].items()}
        api_description("github").check(request["method"], url.path, query=url.query, headers=headers,
                                        body=raw or None)
        seen.append((request["method"], re.sub(r"/\d+", "/N", url.path)))
    assert ("POST", "/app/installations/N/access_tokens") in seen
    assert ("POST", "/repos/octo/demo/pulls/N/reviews") in seen
    assert ("POST", "/repos/octo/demo/pulls/N/comments/N/replies") in seen
    assert seen.count(("POST", "/graphql")) == 2
    text = CASSETTE.read_text()
    assert "ghs_REDACTED" in text and not re.search(r"ghs_(?!REDACTED)", text)
