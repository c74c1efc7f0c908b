"""A small, stateful Bitbucket Cloud on loopback, for the whole publish flow over real HTTP.

Every request is validated against Bitbucket's API description (bitbucket_api_check)
before it is answered. A route the description does not have is answered 404 and kept
in `problems` (which tests assert empty), unless it is on bitbucket_api_check's explicit
allow-list (kept in `outside_description`) or follows a redirect this fake answered with
(kept in `followed_redirects`). A described request the real API would not accept (wrong body,
query) is answered 400 and kept in `problems` too. Tokens are access tokens with a scope
(a workspace or one repository) and OAuth scopes, reported in `X-OAuth-Scopes` like
Bitbucket does. Lists are paginated (pagelen 10 by default, at most 100, `next` links).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.bitbucket.bitbucket_api_check import NOT_IN_DESCRIPTION, described_route, request_problems
from tests.support.live_server import serve

ALL_SCOPES = ("pullrequest:write", "pullrequest", "repository:write", "repository")
READ_REPO = {"repository", "repository:write", "repository:admin", "pullrequest", "pullrequest:write"}
READ_PR = {"pullrequest", "pullrequest:write"}
WRITE_PR = {"pullrequest:write"}


def now() -> str:
    return datetime.now(UTC).isoformat()


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"type": "error", "error": {"message": message}}, status_code=status, headers=headers)


@dataclass
class Grant:
    scope: str  # workspace | repository
    target: str
    scopes: tuple[str, ...] = ALL_SCOPES

    def covers(self, full_name: str) -> bool:
        if self.scope == "repository":
            return full_name.lower() == self.target.lower()
        return full_name.lower().split("/")[0] == self.target.lower()


@dataclass
class FakePR:
    id: int
    source_branch: str
    destination_branch: str
    head: str
    base: str
    state: str = "OPEN"


@dataclass
class FakeRepo:
    full_name: str
    mainbranch: str = "main"
    commits: dict[str, dict[str, str]] = field(default_factory=dict)  # sha -> {path: text}
    prs: dict[int, FakePR] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str  # relative to /2.0
    query: str
    headers: dict[str, str]
    body: bytes
    status: int = 0

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    method: str
    pattern: str
    status: int
    headers: dict[str, str]
    times: int
    after: int = 0  # let this many matching requests through first


def git_diff(old: dict[str, str], new: dict[str, str]) -> str:
    """What `git diff` prints between two trees of text files."""
    out: list[str] = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        out.append(f"diff --git a/{path} b/{path}")
        if a is None:
            out.append("new file mode 100644")
        elif b is None:
            out.append("deleted file mode 100644")
        blobs = [hashlib.sha1((text or "").encode()).hexdigest()[:7] for text in (a, b)]
        out.append(f"index {blobs[0]}..{blobs[1]}")
        lines = list(difflib.unified_diff((a or "").splitlines(), (b or "").splitlines(),
                                          "/dev/null" if a is None else f"a/{path}",
                                          "/dev/null" if b is None else f"b/{path}", lineterm=""))
        out.extend(lines)
    return "\n".join(out) + "\n"


class FakeBitbucket:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.grants: dict[str, Grant] = {}
        self.comments: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.reports: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.annotations: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
        self.statuses: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.status_history: list[tuple[str, str, dict[str, Any]]] = []
        self.seen: list[Seen] = []
        self.problems: list[str] = []
        self.outside_description: list[str] = []  # allow-listed requests outside the description, "GET /path"
        self.followed_redirects: list[str] = []  # requests to a redirect target this fake answered with
        self.redirect_targets: set[str] = set()  # paths this fake redirected to (the app may follow them)
        self.full_hashes_in_pull_requests = False  # Bitbucket's PR answers carry 12-character hashes
        self.faults: list[Fault] = []
        self.scope_headers = True
        self.max_pagelen = 100
        self._next_id = 1000
        self.base_url = ""
        self.app = Starlette(routes=[Route("/2.0/{rest:path}", self.dispatch,
                                           methods=["GET", "POST", "PUT", "DELETE"])])

    # -- set-up -------------------------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[FakeBitbucket]:
        with serve(self.app, lifespan="off") as url:
            self.base_url = url + "/2.0"
            yield self

    def add_repo(self, full_name: str, mainbranch: str = "main") -> FakeRepo:
        repo = self.repos.setdefault(full_name, FakeRepo(full_name, mainbranch))
        return repo

    def add_commit(self, full_name: str, files: dict[str, str], salt: str = "") -> str:
        blob = json.dumps(files, sort_keys=True) + salt
        sha = hashlib.sha1(blob.encode()).hexdigest()
        self.repos[full_name].commits[sha] = dict(files)
        return sha

    def open_pr(self, full_name: str, number: int, *, source_branch: str, head: str, base: str,
                destination_branch: str = "main") -> FakePR:
        pr = FakePR(number, source_branch, destination_branch, head, base)
        self.repos[full_name].prs[number] = pr
        return pr

    def grant(self, token: str, scope: str, target: str, scopes: tuple[str, ...] = ALL_SCOPES) -> None:
        self.grants[token] = Grant(scope, target, scopes)

    def fail(self, method: str, pattern: str, status: int, *, times: int = 1, after: int = 0,
             headers: dict[str, str] | None = None) -> None:
        """After `after` matching requests, the next `times` ones get `status` (429, 500, ...)."""
        self.faults.append(Fault(method, pattern, status, headers or {}, times, after))

    # -- views for assertions -----------------------------------------------------------
    def pr_comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        return self.comments.get((full_name, number), [])

    def add_comment(self, full_name: str, number: int, raw: str) -> dict[str, Any]:
        """A comment written by a person on the PR."""
        comment = {"type": "pullrequest_comment", "id": self._new_id(), "deleted": False, "created_on": now(),
                   "content": {"type": "rendered", "raw": raw, "markup": "markdown", "html": ""}}
        self.comments.setdefault((full_name, number), []).append(comment)
        return comment

    def requests(self, method: str | None = None, contains: str = "") -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method) and contains in s.path]

    # -- dispatch ------------------------------------------------------------------------
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def dispatch(self, request: Request) -> Response:
        path = "/" + request.path_params["rest"]
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        seen = Seen(request.method, path, request.url.query, headers, body)
        self.seen.append(seen)
        redirected = path in self.redirect_targets
        problems = request_problems(request.method, path, query=request.url.query,
                                    headers={k: v for k, v in headers.items()
                                             if k in ("authorization", "content-type")},
                                    body=body or None, redirected=redirected)
        response: Response
        if problems and problems[0].startswith(NOT_IN_DESCRIPTION):
            self.problems.append(f"{request.method} {path}: {problems}")
            response = error(404, f"Resource not found (not in the API description): {request.method} {path}")
        elif problems:
            self.problems.append(f"{request.method} {path}: {problems}")
            response = error(400, f"request does not match the API description: {problems}")
        else:
            if redirected:
                self.followed_redirects.append(f"{request.method} {path}")
            elif not described_route(request.method, path):  # allow-listed (else it is a problem): recorded
                self.outside_description.append(f"{request.method} {path}")
            response = self._handle(request, path, body)
        seen.status = response.status_code
        return response

    def _handle(self, request: Request, path: str, body: bytes) -> Response:
        auth = request.headers.get("authorization", "")
        grant = self.grants.get(auth[7:]) if auth.startswith("Bearer ") else None
        if grant is None:
            return error(401, "Token is invalid, expired, or not supported for this endpoint.")
        extra = {"x-oauth-scopes": ", ".join(grant.scopes)} if self.scope_headers else {}
        for fault in self.faults:
            if fault.times > 0 and fault.method == request.method and re.search(fault.pattern, path):
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.times -= 1
                return error(fault.status, "injected failure", {**fault.headers, **extra})
        query = {k: v[-1] for k, v in parse_qs(request.url.query).items()}
        response = self._route(request.method, path, query, body, grant)
        response.headers.update(extra)
        return response

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes, grant: Grant) -> Response:
        m = re.fullmatch(r"/repositories/([^/]+)", path)
        if m and method == "GET":
            return self._list_repos(m.group(1), query, grant)
        m = re.fullmatch(r"/repositories/([^/]+)/([^/]+)(/.*)?", path)
        if not m:
            return error(404, "Resource not found")
        full_name, rest = f"{m.group(1)}/{m.group(2)}", m.group(3) or ""
        repo = self.repos.get(full_name)
        if repo is None or not grant.covers(full_name):
            return error(404, f"Repository {full_name} not found")
        need = READ_REPO
        if "/pullrequests" in rest:
            need = WRITE_PR if method in ("POST", "PUT", "DELETE") else READ_PR
        if not need & set(grant.scopes):
            return error(403, "Your credentials lack one or more required privilege scopes.",
                         {"x-accepted-oauth-scopes": ", ".join(sorted(need))})
        doc = json.loads(body) if body else None
        if rest == "" and method == "GET":
            return JSONResponse(self._repo_json(repo))
        routes = [
            (r"/commit/([^/]+)", "GET", self._get_commit),
            (r"/src/([^/]+)/(.+)", "GET", self._src),
            (r"/pullrequests/(\d+)", "GET", self._get_pr),
            (r"/pullrequests/(\d+)/diff", "GET", self._pr_diff),
            (r"/diff/(.+)", "GET", self._diff),
            (r"/pullrequests/(\d+)/comments", "GET", self._list_comments),
            (r"/pullrequests/(\d+)/comments", "POST", self._post_comment),
            (r"/pullrequests/(\d+)/comments/(\d+)", "PUT", self._put_comment),
            (r"/pullrequests/(\d+)/comments/(\d+)", "GET", self._get_comment),
            (r"/pullrequests/(\d+)/comments/(\d+)/resolve", "POST", self._resolve),
            (r"/pullrequests/(\d+)/comments/(\d+)/resolve", "DELETE", self._reopen),
            (r"/commit/([^/]+)/reports/([^/]+)", "PUT", self._put_report),
            (r"/commit/([^/]+)/reports/([^/]+)", "GET", self._get_report),
            (r"/commit/([^/]+)/reports/([^/]+)", "DELETE", self._delete_report),
            (r"/commit/([^/]+)/reports/([^/]+)/annotations", "POST", self._post_annotations),
            (r"/commit/([^/]+)/statuses/build", "POST", self._post_status),
        ]
        for pattern, verb, handler in routes:
            hit = re.fullmatch(pattern, rest)
            if hit and verb == method:
                return handler(repo, *hit.groups(), query=query, doc=doc)
        return error(404, f"no fake route for {method} {path}")

    # -- helpers -----------------------------------------------------------------------
    def _links(self, path: str) -> dict[str, Any]:
        return {"self": {"href": self.base_url + path}}

    def _repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        _ws, slug = repo.full_name.split("/")
        return {"type": "repository", "full_name": repo.full_name, "name": slug, "slug": slug,
                "is_private": True, "mainbranch": {"type": "branch", "name": repo.mainbranch},
                "links": self._links(f"/repositories/{repo.full_name}")}

    def _page(self, path: str, items: list[Any], query: dict[str, str]) -> JSONResponse:
        pagelen = max(1, min(int(query.get("pagelen", 10)), 100, self.max_pagelen))
        page = max(1, int(query.get("page", 1)))
        chunk = items[(page - 1) * pagelen : page * pagelen]
        doc: dict[str, Any] = {"pagelen": pagelen, "size": len(items), "page": page, "values": chunk}
        if page * pagelen < len(items):
            doc["next"] = f"{self.base_url}{path}?{urlencode({'pagelen': pagelen, 'page': page + 1})}"
        return JSONResponse(doc)

    def _commit_sha(self, repo: FakeRepo, commit: str) -> str | None:
        found = [sha for sha in repo.commits if sha.startswith(commit.lower())] if len(commit) >= 7 else []
        return found[0] if len(found) == 1 else None

    # -- handlers --------------------------------------------------------------------------
    def _list_repos(self, workspace: str, query: dict[str, str], grant: Grant) -> Response:
        mine = [r for name, r in sorted(self.repos.items()) if name.split("/")[0] == workspace and grant.covers(name)]
        if not mine and not any(name.split("/")[0] == workspace for name in self.repos):
            return error(404, f"Workspace {workspace} not found")
        if grant.target.split("/")[0].lower() != workspace.lower():
            return error(404, f"Workspace {workspace} not found")
        return self._page(f"/repositories/{workspace}", [self._repo_json(r) for r in mine], query)

    def _get_commit(self, repo: FakeRepo, commit: str, **_: Any) -> Response:
        sha = self._commit_sha(repo, commit)
        if sha is None:
            return error(404, f"Commit not found: {commit}")
        return JSONResponse({"type": "commit", "hash": sha, "date": now(), "message": "fake commit",
                             "links": self._links(f"/repositories/{repo.full_name}/commit/{sha}")})

    def _src(self, repo: FakeRepo, commit: str, path: str, **_: Any) -> Response:
        """A file's raw contents at a commit (Content-Type from the extension, like Bitbucket)."""
        sha = self._commit_sha(repo, commit)
        if sha is None:
            return error(404, f"Commit not found: {commit}")
        content = repo.commits[sha].get(path)
        if content is None:
            return error(404, "No such file or directory: " + path)
        media = "text/x-python" if path.endswith(".py") else "application/octet-stream"
        return Response(content.encode() if isinstance(content, str) else content, media_type=media)

    def _get_pr(self, repo: FakeRepo, number: str, **_: Any) -> Response:
        """Like Bitbucket, the commit hashes are 12 characters (full ones when the test asks)."""
        pr = self._pr(repo, number)
        if pr is None:
            return error(404, "pull request not found")
        size = 40 if self.full_hashes_in_pull_requests else 12
        sides = {}
        for side, branch, sha in (("source", pr.source_branch, pr.head), ("destination", pr.destination_branch,
                                                                          pr.base)):
            sides[side] = {"branch": {"name": branch}, "commit": {"type": "commit", "hash": sha[:size]},
                           "repository": {"type": "repository", "full_name": repo.full_name}}
        return JSONResponse({"type": "pullrequest", "id": pr.id, "title": f"PR {pr.id}", "state": pr.state,
                             **sides, "merge_commit": None, "created_on": now(), "updated_on": now(),
                             "links": self._links(f"/repositories/{repo.full_name}/pullrequests/{pr.id}")})

    def _pr(self, repo: FakeRepo, number: str) -> FakePR | None:
        return repo.prs.get(int(number))

    def _pr_diff(self, repo: FakeRepo, number: str, **_: Any) -> Response:
        pr = self._pr(repo, number)
        if pr is None:
            return error(404, "pull request not found")
        target_path = f"/repositories/{repo.full_name}/diff/{pr.head[:12]}..{pr.base[:12]}"
        self.redirect_targets.add(target_path)
        target = f"{self.base_url}{target_path}?{urlencode({'from_pullrequest_id': pr.id, 'topic': 'true'})}"
        return RedirectResponse(target, status_code=302)

    def _diff(self, repo: FakeRepo, spec: str, **_: Any) -> Response:
        new, _, old = spec.partition("..")
        new_sha, old_sha = self._commit_sha(repo, new), self._commit_sha(repo, old)
        if new_sha is None or old_sha is None:
            return error(404, f"revision not found: {spec}")
        return PlainTextResponse(git_diff(repo.commits[old_sha], repo.commits[new_sha]))

    def _comment_list(self, repo: FakeRepo, number: str) -> list[dict[str, Any]] | None:
        if self._pr(repo, number) is None:
            return None
        return self.comments.setdefault((repo.full_name, int(number)), [])

    def _list_comments(self, repo: FakeRepo, number: str, *, query: dict[str, str], **_: Any) -> Response:
        comments = self._comment_list(repo, number)
        if comments is None:
            return error(404, "pull request not found")
        return self._page(f"/repositories/{repo.full_name}/pullrequests/{number}/comments", comments, query)

    def _post_comment(self, repo: FakeRepo, number: str, *, doc: dict[str, Any], **_: Any) -> Response:
        comments = self._comment_list(repo, number)
        if comments is None:
            return error(404, "pull request not found")
        raw = (doc.get("content") or {}).get("raw")
        if not raw:
            return error(400, "content.raw is required")
        comment: dict[str, Any] = {"type": "pullrequest_comment", "id": self._new_id(), "created_on": now(),
                                   "updated_on": now(), "deleted": False, "pending": False,
                                   "content": {"type": "rendered", "raw": raw, "markup": "markdown", "html": ""}}
        if doc.get("inline"):
            comment["inline"] = dict(doc["inline"])
        parent = doc.get("parent")
        if parent:
            if not any(c["id"] == parent.get("id") for c in comments):
                return error(404, "parent comment not found")
            comment["parent"] = {"id": parent["id"]}
        comment["links"] = self._links(f"/repositories/{repo.full_name}/pullrequests/{number}/comments/{comment['id']}")
        comments.append(comment)
        return JSONResponse(comment, status_code=201)

    def _find_comment(self, repo: FakeRepo, number: str, comment_id: str) -> dict[str, Any] | None:
        for c in self._comment_list(repo, number) or []:
            if c["id"] == int(comment_id) and not c["deleted"]:
                return c
        return None

    def _get_comment(self, repo: FakeRepo, number: str, comment_id: str, **_: Any) -> Response:
        c = self._find_comment(repo, number, comment_id)
        return JSONResponse(c) if c else error(404, "comment not found")

    def _put_comment(self, repo: FakeRepo, number: str, comment_id: str, *, doc: dict[str, Any], **_: Any) -> Response:
        c = self._find_comment(repo, number, comment_id)
        if c is None:
            return error(404, "comment not found")
        c["content"]["raw"] = doc["content"]["raw"]
        c["updated_on"] = now()
        return JSONResponse(c)

    def _resolve(self, repo: FakeRepo, number: str, comment_id: str, **_: Any) -> Response:
        c = self._find_comment(repo, number, comment_id)
        if c is None:
            return error(404, "comment not found")
        if c.get("parent") or not c.get("inline"):
            return error(400, "only top-level inline comments can be resolved")
        if c.get("resolution"):
            return error(409, "comment thread is already resolved")
        c["resolution"] = {"type": "comment_resolution", "created_on": now()}
        return JSONResponse(c["resolution"])

    def _reopen(self, repo: FakeRepo, number: str, comment_id: str, **_: Any) -> Response:
        c = self._find_comment(repo, number, comment_id)
        if c is None or not c.get("resolution"):
            return error(404, "comment not found or not resolved")
        if c.get("parent"):
            return error(403, "only top-level comments can be reopened")
        del c["resolution"]
        return Response(status_code=204)

    def _report_key(self, repo: FakeRepo, commit: str, report_id: str) -> tuple[str, str, str] | None:
        sha = self._commit_sha(repo, commit)
        return (repo.full_name, sha, report_id) if sha and len(commit) == 40 else None

    def _put_report(self, repo: FakeRepo, commit: str, report_id: str, *, doc: dict[str, Any], **_: Any) -> Response:
        key = self._report_key(repo, commit, report_id)
        if key is None:
            return error(404, f"commit {commit} not found")
        if len(doc.get("data") or []) > 10:
            return error(400, "a report has at most 10 data fields")
        report = {**doc, "type": "report", "uuid": "{" + report_id + "}", "external_id": report_id,
                  "updated_on": now()}
        self.reports[key] = report
        self.annotations.setdefault(key, {})
        return JSONResponse(report)

    def _get_report(self, repo: FakeRepo, commit: str, report_id: str, **_: Any) -> Response:
        key = self._report_key(repo, commit, report_id)
        return JSONResponse(self.reports[key]) if key in self.reports else error(404, "report not found")

    def _delete_report(self, repo: FakeRepo, commit: str, report_id: str, **_: Any) -> Response:
        key = self._report_key(repo, commit, report_id)
        self.reports.pop(key, None)  # type: ignore[arg-type]
        self.annotations.pop(key, None)  # type: ignore[arg-type]
        return Response(status_code=204)

    def _post_annotations(self, repo: FakeRepo, commit: str, report_id: str, *, doc: list[dict[str, Any]],
                          **_: Any) -> Response:
        key = self._report_key(repo, commit, report_id)
        if key is None or key not in self.reports:
            return error(404, "report not found")
        existing = self.annotations[key]
        for a in doc:
            summary = a.get("summary")
            if not a.get("external_id") or not isinstance(summary, str) or not summary or len(summary) > 450:
                return error(400, "each annotation needs an external_id and a summary of at most 450 characters")
        new_ids = {a["external_id"] for a in doc} - set(existing)
        if len(existing) + len(new_ids) > 1000:
            return error(400, "a report has at most 1000 annotations")
        out = []
        for a in doc:
            stored = {**a, "type": "report_annotation", "uuid": "{" + a["external_id"] + "}", "updated_on": now()}
            existing[a["external_id"]] = stored
            out.append(stored)
        return JSONResponse(out)

    def _post_status(self, repo: FakeRepo, commit: str, *, doc: dict[str, Any], **_: Any) -> Response:
        sha = self._commit_sha(repo, commit)
        if sha is None or len(commit) != 40:
            return error(404, f"commit {commit} not found")
        url = doc.get("url") or ""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return error(400, "url: Enter a valid URL.")
        status = {**doc, "type": "build", "created_on": now(), "updated_on": now(),
                  "links": self._links(f"/repositories/{repo.full_name}/commit/{sha}/statuses/build/{doc['key']}")}
        self.statuses.setdefault((repo.full_name, sha), {})[doc["key"]] = status
        self.status_history.append((repo.full_name, sha, status))
        return JSONResponse(status, status_code=201)
