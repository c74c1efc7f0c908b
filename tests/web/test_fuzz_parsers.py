"""Hypothesis fuzzers on the two parsers everyone can reach: the upload (CI) and the webhooks
(signed, so the fuzzer signs what it sends, as an attacker holding a leaked secret would).

Real documents are mutated at random places with hostile values; every answer must be the
documented success or a JSON 4xx, never a 5xx, and a refused upload stores nothing."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from forge_app.core.envelope import UploadError, parse_upload
from forge_app.core.models import ReportError
from forge_app.web.app import create_app
from tests.conftest import FIXTURES
from tests.gitlab.gitlab_helpers import adapt, delivery_headers, fixture
from tests.gitlab.test_gitlab_webhook import PROJECT, PROJECT_ID, SECRET, connect
from tests.web.scan_helpers import finding, upload

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))
GH_SECRET = "fuzz-webhook-secret-0123456789abcdef"
HOSTILE = st.one_of(
    st.sampled_from([None, True, 0, -1, 1.5, 2**31, 2**63 - 1, 2**63, 2**64 - 1, "", "x" * 70_000, [], {},
                     "../../etc/passwd", "file:///etc/passwd", "a\x00b", "¹", "٣", "javascript:alert(1)",
                     "`x` <img src=x> @org/team #1", [[[[[[]]]]]], {"a": {"b": {"c": {}}}}]),
    st.integers(), st.text(max_size=30), st.floats(allow_nan=False, allow_infinity=False),
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:3]):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def mutated(draw: Any, original: Any) -> Any:
    doc = copy.deepcopy(original)
    paths = [p for p in _paths(doc) if p]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        target = doc
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = draw(HOSTILE)
        except (KeyError, IndexError, TypeError):
            continue
    return doc


def _rows(storage) -> tuple[int, int, int]:
    one = storage.database.one
    return (one("SELECT COUNT(*) AS n FROM scans")["n"], one("SELECT COUNT(*) AS n FROM findings")["n"],
            one("SELECT COUNT(*) AS n FROM identities")["n"])


UPLOAD = upload([finding(), finding(rule="r2", path="b/c.py", line=9, metadata={"k": [1, 2]})], pr=3,
                base_branch="main")
SARIF = json.loads((FIXTURES / "sarif" / "examples" / "semgrep.with-autofix.sarif").read_text())


@SETTINGS
@given(doc=st.one_of(mutated(UPLOAD), mutated({"commit": "a" * 40, "report": SARIF})))
def test_upload_parser_raises_only_upload_errors(doc) -> None:
    with contextlib.suppress(UploadError, ReportError):
        parse_upload(doc, {}, None)


def test_upload_route_answers_4xx_or_201_and_never_half_stores(client, upload_token, storage) -> None:
    headers = {"Authorization": f"Bearer {upload_token}", "Content-Type": "application/json"}

    @SETTINGS
    @given(doc=st.one_of(mutated(UPLOAD), mutated({"commit": "a" * 40, "report": SARIF})))
    def run(doc) -> None:
        before = _rows(storage)
        r = client.post("/api/v1/scans", content=json.dumps(doc).encode(), headers=headers)
        assert r.status_code in (201, 400, 403, 413), r.text
        if r.status_code != 201:
            assert set(r.json()) == {"error", "detail"}
            assert _rows(storage) == before

    run()


def _gh_sign(body: bytes) -> str:
    return "sha256=" + hmac.new(GH_SECRET.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("event,name", [("pull_request", "pull_request/opened"),
                                        ("installation", "installation/created"),
                                        ("installation_repositories", "installation_repositories/added")])
def test_signed_github_webhooks_never_5xx(settings, storage, event, name) -> None:
    original = json.loads((FIXTURES / "github" / "webhooks" / f"{name}.json").read_text())
    app = create_app(dataclasses.replace(settings, github_webhook_secret=GH_SECRET), storage, run_worker=False)
    with TestClient(app) as c:
        @SETTINGS
        @given(doc=mutated(original), n=st.integers(0, 10**9))
        def run(doc, n) -> None:
            body = json.dumps(doc).encode()
            r = c.post("/webhooks/github", content=body, headers={
                "X-GitHub-Event": event, "X-GitHub-Delivery": f"fuzz-{n}", "X-Hub-Signature-256": _gh_sign(body),
                "Content-Type": "application/json"})
            assert r.status_code < 500, r.text
            assert r.headers["content-type"].startswith("application/json")

        run()


def test_gitlab_webhooks_never_5xx(client, storage) -> None:
    connect(storage)
    original = adapt(fixture("captured/merge_request.open"), project=PROJECT, project_id=PROJECT_ID, iid=7)

    @SETTINGS
    @given(doc=mutated(original))
    def run(doc) -> None:
        headers = delivery_headers(original, SECRET)
        r = client.post("/webhooks/gitlab", content=json.dumps(doc).encode(), headers=headers)
        assert r.status_code < 500, r.text

    run()



_SHAPES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**64), max_value=2**64 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=80)


def _refusal(doc: Any, **kw: Any) -> str | None:
    from forge_app.web.body import check_shape
    from forge_app.web.errors import ApiError

    try:
        check_shape(doc, **kw)
    except ApiError as exc:
        return exc.detail
    return None


@settings(max_examples=300, deadline=None)
@given(doc=_SHAPES, depth=st.integers(min_value=1, max_value=6))
def test_the_fast_shape_check_refuses_exactly_what_the_full_walk_refuses(doc, depth) -> None:
    """Webhooks use the fast path (the body is known and small); it must agree with the full walk."""
    body = json.dumps(doc).encode()
    fast, full = _refusal(doc, max_depth=depth, body=body), _refusal(doc, max_depth=depth)
    assert (fast is None) == (full is None), (fast, full)  # with two faults, either may be named
