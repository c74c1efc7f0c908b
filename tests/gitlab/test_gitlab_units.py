"""The adapter's pure parts: positions and line codes, status text, error translation."""

from __future__ import annotations

import hashlib
import json

import gitlab.exceptions
import pytest

from forge_app.core.review.render import Counts
from forge_app.forges.base import StatusReport
from forge_app.forges.gitlab.errors import (
    GitLabForbidden,
    GitLabNotFound,
    GitLabRateLimited,
    GitLabRejected,
    GitLabServerError,
    GitLabUnauthorized,
    GitLabUnreachable,
    to_job_error,
)
from forge_app.forges.gitlab.http import _retry_after, instance_url, project_ref, translate
from forge_app.forges.gitlab.positions import (
    DiffFile,
    DiffRefs,
    added_line_position,
    added_lines_old_counter,
    line_code,
)
from forge_app.forges.gitlab.status import description, status_body
from forge_app.jobs.errors import GiveUp, RetryLater
from tests.support.openapi_check import api_description

DIFF = """@@ -1,4 +1,6 @@
 import os
+import yaml
+import subprocess

 def main():
-    pass
+    run()
@@ -20,3 +22,4 @@ def other():
     a = 1
+    b = 2
     c = 3
"""
REFS = DiffRefs("a" * 40, "b" * 40, "c" * 40)


def test_added_lines_carry_the_old_side_counter() -> None:
    assert added_lines_old_counter(DIFF) == {2: 2, 3: 2, 6: 5, 23: 21}


def test_line_code_is_sha1_of_path_old_new() -> None:
    assert line_code("app/a.py", 2, 3) == hashlib.sha1(b"app/a.py").hexdigest() + "_2_3"


def _check_body(body: dict) -> list[str]:
    return api_description("gitlab").errors(
        "POST", "/projects/group%2Fproject/merge_requests/3/discussions", body=json.dumps(body).encode(),
        headers={"PRIVATE-TOKEN": "x", "Content-Type": "application/json"})


def test_single_line_position_matches_the_contract() -> None:
    file = DiffFile("app/a.py", "app/a.py", added_lines_old_counter(DIFF))
    position = added_line_position(REFS, file, 6)
    assert position == {"position_type": "text", "base_sha": "a" * 40, "start_sha": "b" * 40, "head_sha": "c" * 40,
                        "old_path": "app/a.py", "new_path": "app/a.py", "new_line": 6}
    assert _check_body({"body": "x", "position": position}) == []


def test_multi_line_position_has_a_line_range_with_line_codes() -> None:
    file = DiffFile("app/new.py", "app/old.py", added_lines_old_counter(DIFF))
    position = added_line_position(REFS, file, 3, 2)
    sha = hashlib.sha1(b"app/new.py").hexdigest()
    assert position["new_line"] == 3 and "old_line" not in position
    assert position["line_range"] == {"start": {"line_code": f"{sha}_2_2", "type": "new", "new_line": 2},
                                      "end": {"line_code": f"{sha}_2_3", "type": "new", "new_line": 3}}
    assert _check_body({"body": "x", "position": position}) == []


def test_status_description_fits_in_255_characters() -> None:
    huge = Counts(10**40, 10**40, 10**40, blocking=10**40)
    for state in ("in_progress", "success", "failure", "neutral"):
        text = description(StatusReport(state, "t" * 400, "", huge))
        assert 0 < len(text) <= 255
    body = status_body(StatusReport("neutral", "", "", Counts(1, 0, 2), "https://x/" + "y" * 300), "feature")
    assert body["state"] == "success" and "errors" in body["description"]
    assert "target_url" not in body and body["ref"] == "feature" and body["name"] == "forge-app"
    assert status_body(StatusReport("failure", "", "", Counts(2, 0, 0, 1)), None)["state"] == "failed"
    assert status_body(StatusReport("in_progress", "Publishing", "", Counts(0, 0, 0)), None)["state"] == "running"


def _http_error(status: int, body: dict | str) -> gitlab.exceptions.GitlabHttpError:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    cls = gitlab.exceptions.GitlabAuthenticationError if status == 401 else gitlab.exceptions.GitlabHttpError
    return cls(response_code=status, error_message="x", response_body=raw)


def test_translate_python_gitlab_errors() -> None:
    assert isinstance(translate(_http_error(401, {"message": "401 Unauthorized"})), GitLabUnauthorized)
    scope = translate(_http_error(403, {"error": "insufficient_scope", "scope": "api"}))
    assert isinstance(scope, GitLabForbidden) and scope.insufficient_scope
    role = translate(_http_error(403, {"message": "403 Forbidden"}))
    assert isinstance(role, GitLabForbidden) and not role.insufficient_scope
    assert translate(_http_error(404, {"message": "404 Project Not Found"})).from_gitlab  # type: ignore[attr-defined]
    html = translate(_http_error(404, "<html>nope</html>"))
    assert isinstance(html, GitLabNotFound) and not html.from_gitlab
    assert isinstance(translate(_http_error(502, "bad gateway")), GitLabServerError)
    rejected = translate(_http_error(400, {"message": {"base": ["bad position"]}}))
    assert isinstance(rejected, GitLabRejected) and "bad position" in rejected.message


def test_retry_after_header_forms() -> None:
    assert _retry_after({"Retry-After": "42"}) == 42
    assert _retry_after({}) is None
    assert 0 <= (_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) or 0) < 1


@pytest.mark.parametrize("exc, kind, delay", [
    (GitLabRateLimited("429", 17), RetryLater, 17),
    (GitLabServerError("502", 502), RetryLater, None),
    (GitLabUnreachable("connection refused"), RetryLater, None),
    (GitLabUnauthorized("401"), GiveUp, None),
    (GitLabForbidden("403", insufficient_scope=True), GiveUp, None),
    (GitLabForbidden("403"), GiveUp, None),
    (GitLabNotFound("404"), GiveUp, None),
])
def test_job_errors(exc: Exception, kind: type, delay: float | None) -> None:
    out = to_job_error(exc, "publishing")  # type: ignore[arg-type]
    assert isinstance(out, kind)
    if isinstance(out, RetryLater):
        assert out.delay == delay
    if isinstance(exc, GitLabUnauthorized):
        assert "401" in str(out) and "token" in str(out)
    if isinstance(exc, GitLabForbidden) and exc.insufficient_scope:
        assert "api" in str(out)


def test_urls() -> None:
    assert instance_url("https://gitlab.example.com/api/v4/") == "https://gitlab.example.com"
    assert instance_url("https://example.com/gitlab") == "https://example.com/gitlab"
    assert project_ref("group/sub/project") == "group%2Fsub%2Fproject"
    assert project_ref(123) == "123"
