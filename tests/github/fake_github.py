"""A small, stateful GitHub on loopback, strict where the real one is.

It keeps installations, tokens, pull requests (files with patches), reviews, review
comments and their threads, issue comments and check runs. Every REST request is
validated against GitHub's OpenAPI description and every GraphQL query against
GitHub's schema; problems are answered with 400 and kept in `violations`. Each call
checks its credentials: the app JWT (RS256, lifetime within 10 minutes) or an
installation token (unexpired, and only for that installation's repositories).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt as pyjwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from graphql import build_schema, graphql_sync, parse, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.github.fake_marketplace import MarketplaceFake
from tests.support.openapi_check import api_description

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "github"
HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
BOT = {"login": "forge-app-test[bot]", "id": 90001, "type": "Bot"}


@lru_cache(maxsize=1)
def graphql_schema():
    schema = build_schema((FIXTURES / "graphql" / "schema.graphql").read_text(), assume_valid_sdl=True)
    schema._validation_errors = []
    return schema


def graphql_errors(query: str) -> list[str]:
    try:
        document = parse(query)
    except Exception as exc:  # a syntax error
        return [str(exc)]
    return [e.message for e in validate(graphql_schema(), document)]


@lru_cache(maxsize=1)
def app_key() -> tuple[str, Any]:
    """(PEM private key for the app under test, public key for the fake) — made once per run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, key.public_key()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def right_lines(patch: str) -> list[set[int]]:
    """New-side line numbers of each hunk (added and context): where GitHub accepts a RIGHT comment."""
    hunks: list[set[int]] = []
    new = 0
    for line in patch.splitlines():
        m = HUNK_RE.match(line)
        if m:
            new = int(m.group(3))
            hunks.append(set())
            continue
        if not hunks or line.startswith("\\"):
            continue
        if line.startswith("-"):
            continue
        hunks[-1].add(new)
        new += 1
    return hunks


@dataclass
class PullRequest:
    repo: str
    number: int
    head_sha: str
    base_ref: str = "main"
    head_ref: str = "feature"
    files: list[dict[str, Any]] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)
    state: str = "open"
    base_sha: str | None = None  # the base branch's tip; the PR's first commit has it as parent when set


@dataclass
class Injection:
    method: str
    pattern: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    times: int


class FakeGitHub(MarketplaceFake):
    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix.rstrip("/")  # "/api/v3" behaves like GitHub Enterprise Server
        self.lock = threading.RLock()
        self.private_key, self._public_key = app_key()
        self.url = ""
        self.reset()

    # state ----------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.app_id = 4242
            self.installations: dict[int, dict[str, Any]] = {}
            self.tokens: dict[str, dict[str, Any]] = {}
            self.token_ttl = 3600.0
            self.pulls: dict[tuple[str, int], PullRequest] = {}
            self.reviews: dict[int, dict[str, Any]] = {}
            self.comments: dict[int, dict[str, Any]] = {}  # review comments
            self.threads: dict[str, dict[str, Any]] = {}
            self.issue_comments: dict[int, dict[str, Any]] = {}
            self.check_runs: dict[int, dict[str, Any]] = {}
            self.conversions: dict[str, dict[str, Any]] = {}
            self.requests: list[dict[str, Any]] = []
            self.violations: list[str] = []
            self.injections: list[Injection] = []
            self.trees: dict[tuple[str, str], dict[str, str | bytes]] = {}  # (repo, commit sha) -> {path: content}
            self._headers: dict[str, str] = {}
            self._next = 1000
            self.reset_marketplace()

    def _id(self) -> int:
        self._next += 1
        return self._next

    def add_installation(self, installation_id: int, account: str, repos: list[str]) -> None:
        with self.lock:
            self.installations[installation_id] = {"account": account, "repos": set(repos), "suspended": False}

    def set_pull(self, repo: str, number: int, head_sha: str, files: list[dict[str, Any]], base_ref: str = "main",
                 head_ref: str = "feature", base_sha: str | None = None) -> PullRequest:
        with self.lock:
            pr = self.pulls.get((repo, number))
            if pr is None:
                pr = self.pulls[(repo, number)] = PullRequest(repo, number, head_sha, base_ref, head_ref)
            if base_sha is not None:
                pr.base_sha = base_sha
            pr.head_sha = head_sha
            pr.files = files
            pr.commits.append(head_sha)
            return pr

    def add_commit(self, repo: str, sha: str, files: dict[str, str | bytes]) -> None:
        """The repository's files at a commit, for the contents API."""
        with self.lock:
            self.trees[(repo, sha)] = dict(files)

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (as after an hour, or a revocation)."""
        with self.lock:
            for token in self.tokens.values():
                token["expires_at"] = time.time() - 1

    def inject(self, method: str, path_regex: str, status: int, headers: dict[str, str] | None = None,
               message: str = "injected failure", times: int = 1) -> None:
        with self.lock:
            self.injections.append(Injection(method, re.compile(path_regex), status, headers or {},
                                             {"message": message}, times))

    def mark(self) -> int:
        return len(self.requests)

    def since(self, mark: int) -> list[dict[str, Any]]:
        return self.requests[mark:]

    def count(self, method: str | None = None, path_regex: str | None = None, since: int = 0) -> int:
        return sum(1 for r in self.requests[since:]
                   if (method is None or r["method"] == method)
                   and (path_regex is None or re.search(path_regex, r["path"])))

    def reviews_of(self, repo: str, number: int) -> list[dict[str, Any]]:
        return [r for r in self.reviews.values() if r["_repo"] == repo and r["_number"] == number]

    def comments_of(self, repo: str, number: int, *, top_level: bool = True) -> list[dict[str, Any]]:
        return [c for c in self.comments.values() if c["_repo"] == repo and c["_number"] == number
                and (not top_level or not c.get("in_reply_to_id"))]

    def runs_of(self, repo: str, sha: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.check_runs.values() if r["_repo"] == repo and (sha is None or r["head_sha"] == sha)]

    # auth -------------------------------------------------------------------------------
    def _check_jwt(self, header: str) -> str | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "a JWT (Authorization: Bearer) is required"
        try:
            claims = pyjwt.decode(token, self._public_key, algorithms=["RS256"],
                                  options={"require": ["iat", "exp", "iss"]})
        except pyjwt.PyJWTError as exc:
            return f"bad JWT: {exc}"
        now = time.time()
        if str(claims["iss"]) != str(self.app_id):
            return "JWT issuer is not this app"
        if claims["iat"] > now + 1:
            return "JWT issued in the future"
        if claims["exp"] - claims["iat"] > 600 or claims["exp"] > now + 600:
            return "JWT expiry is too far in the future"
        return None

    def _token_installation(self, header: str) -> tuple[int | None, int, str]:
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token:
            return None, 401, "Requires authentication"
        info = self.tokens.get(token)
        if info is None:
            return None, 401, "Bad credentials"
        if info["expires_at"] <= time.time():
            return None, 401, "Bad credentials"
        return info["installation_id"], 200, ""

    # the server -------------------------------------------------------------------------
    def app(self) -> Starlette:
        methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", self._dispatch, methods=methods)])

    async def _dispatch(self, request: Request) -> Response:
        raw = await request.body()
        path = request.url.path
        query = request.url.query
        method = request.method
        with self.lock:
            return self._handle(method, path, query, dict(request.headers), raw)

    def _handle(self, method: str, path: str, query: str, headers: dict[str, str], raw: bytes) -> Response:
        entry = {"method": method, "path": path, "query": query, "status": None}
        self.requests.append(entry)
        self._headers = headers
        response = self._route(method, path, query, headers, raw)
        entry["status"] = response.status_code
        return response

    def _fail(self, problem: str, status: int = 400) -> JSONResponse:
        self.violations.append(problem)
        return JSONResponse({"message": problem}, status_code=status)

    def _route(self, method: str, path: str, query: str, headers: dict[str, str], raw: bytes) -> Response:
        graphql_path = (self.prefix[: -len("/v3")] + "/graphql") if self.prefix.endswith("/v3") else "/graphql"
        if path == graphql_path and method == "POST":
            return self._graphql(headers, raw)
        if not path.startswith(self.prefix + "/"):
            return self._fail(f"{method} {path} is outside the API root {self.prefix or '/'}", 404)
        rel = path[len(self.prefix):]
        handled = self.marketplace_route(method, rel, query, headers, raw)
        if handled is not None:
            return handled
        problems = api_description("github").errors(method, rel, query=query, headers=headers, body=raw or None)
        if problems:
            return self._fail(f"{method} {rel}: {problems}")
        for inj in self.injections:
            if inj.times > 0 and inj.method == method and inj.pattern.search(rel):
                inj.times -= 1
                return JSONResponse(inj.body, status_code=inj.status, headers=inj.headers)
        for route_method, pattern, auth, handler in self._routes():
            m = re.fullmatch(pattern, rel)
            if m is None or route_method != method:
                continue
            auth_header = headers.get("authorization", "")
            if auth == "jwt":
                problem = self._check_jwt(auth_header)
                if problem:
                    return self._fail(problem, 401)
                return handler(m, query, raw, None)
            if auth == "token":
                installation_id, status, message = self._token_installation(auth_header)
                if installation_id is None:
                    return JSONResponse({"message": message}, status_code=status)
                repo = f"{m.group('owner')}/{m.group('repo')}" if "owner" in m.groupdict() else None
                if repo is not None and repo not in self.installations.get(installation_id, {}).get("repos", ()):
                    return self._fail(f"a token of installation {installation_id} was used for {repo}", 404)
                return handler(m, query, raw, installation_id)
            return handler(m, query, raw, None)
        return self._fail(f"the fake does not implement {method} {rel}", 404)

    def _routes(self) -> list[tuple[str, str, str, Callable[..., Response]]]:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        pull = repo + r"/pulls/(?P<number>\d+)"
        return [
            ("POST", r"/app/installations/(?P<id>\d+)/access_tokens", "jwt", self._create_token),
            ("GET", repo + r"/installation", "jwt", self._repo_installation),
            ("GET", repo, "token", self._get_repo),
            ("POST", r"/app-manifests/(?P<code>[^/]+)/conversions", "none", self._conversion),
            ("GET", pull, "token", self._get_pull),
            ("GET", repo + r"/contents/(?P<path>.+)", "token", self._contents),
            ("GET", pull + r"/files", "token", self._files),
            ("GET", pull + r"/commits", "token", self._pull_commits),
            ("POST", pull + r"/reviews", "token", self._create_review),
            ("GET", pull + r"/reviews/(?P<review>\d+)/comments", "token", self._review_comments),
            ("GET", pull + r"/comments", "token", self._pull_comments),
            ("POST", pull + r"/comments/(?P<comment>\d+)/replies", "token", self._reply),
            ("POST", repo + r"/issues/(?P<number>\d+)/comments", "token", self._create_issue_comment),
            ("GET", repo + r"/issues/(?P<number>\d+)/comments", "token", self._issue_comments),
            ("PATCH", repo + r"/issues/comments/(?P<comment>\d+)", "token", self._edit_issue_comment),
            ("POST", repo + r"/check-runs", "token", self._create_check_run),
            ("PATCH", repo + r"/check-runs/(?P<run>\d+)", "token", self._update_check_run),
        ]

    # pagination ---------------------------------------------------------------------------
    def _page(self, path: str, query: str, items: list[Any]) -> JSONResponse:
        args = {k: v[0] for k, v in parse_qs(query).items()}
        per_page = min(100, int(args.get("per_page", 30)))
        page = int(args.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(items) // per_page))
        headers = {}
        links = []
        if page < last:
            links.append(f'<{self.url}{path}?{urlencode({**args, "page": page + 1})}>; rel="next"')
            links.append(f'<{self.url}{path}?{urlencode({**args, "page": last})}>; rel="last"')
        if links:
            headers["Link"] = ", ".join(links)
        return JSONResponse(chunk, headers=headers)

    # handlers -----------------------------------------------------------------------------
    def _create_token(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        installation_id = int(m.group("id"))
        inst = self.installations.get(installation_id)
        if inst is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        if inst["suspended"]:
            return JSONResponse({"message": "This installation has been suspended"}, status_code=403)
        token = "ghs_" + secrets.token_urlsafe(27)
        expires = time.time() + self.token_ttl
        self.tokens[token] = {"installation_id": installation_id, "expires_at": expires}
        return JSONResponse({"token": token, "expires_at": iso(expires),
                             "permissions": {"pull_requests": "write", "checks": "write"},
                             "repository_selection": "selected"}, status_code=201)

    def _repo_installation(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        full = f"{m.group('owner')}/{m.group('repo')}"
        for installation_id, inst in self.installations.items():
            if full in inst["repos"]:
                return JSONResponse({"id": installation_id, "app_id": self.app_id,
                                     "account": {"login": inst["account"], "type": "Organization"},
                                     "repository_selection": "selected"})
        return JSONResponse({"message": "Not Found"}, status_code=404)

    def _conversion(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        found = self.conversions.pop(m.group("code"), None)
        if found is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        return JSONResponse(found, status_code=201)

    def _pr(self, m: re.Match[str]) -> PullRequest | None:
        return self.pulls.get((f"{m.group('owner')}/{m.group('repo')}", int(m.group("number"))))

    def _get_pull(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        pr = self._pr(m)
        if pr is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        return JSONResponse({"number": pr.number, "state": pr.state, "merged": False,
                             "head": {"sha": pr.head_sha, "ref": pr.head_ref},
                             "base": {"ref": pr.base_ref, "sha": self._base_tip(pr)}})

    @staticmethod
    def _base_tip(pr: PullRequest) -> str:
        """The base branch's tip: the PR's own base when the test set one, else a commit the PR does not
        contain (the base moved on since the branch was made)."""
        return pr.base_sha or hashlib.sha1(f"{pr.repo}:{pr.base_ref}:moved-on".encode()).hexdigest()

    def _pull_commits(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        """The PR's commits, oldest first, each the parent of the next; the first one's parent is the
        base's tip when the PR was made from it (`base_sha`), else an older commit."""
        pr = self._pr(m)
        if pr is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        first_parent = pr.base_sha or hashlib.sha1(f"{pr.repo}:{pr.base_ref}:older".encode()).hexdigest()
        items, parent = [], first_parent
        for c in dict.fromkeys(pr.commits):
            items.append({"sha": c, "node_id": "C_" + c[:12], "url": f"{self.url}/repos/{pr.repo}/commits/{c}",
                          "html_url": f"https://github.com/{pr.repo}/commit/{c}",
                          "comments_url": f"{self.url}/repos/{pr.repo}/commits/{c}/comments",
                          "commit": {"url": f"{self.url}/repos/{pr.repo}/git/commits/{c}", "message": "change",
                                     "author": None, "committer": None, "comment_count": 0,
                                     "tree": {"sha": c, "url": f"{self.url}/repos/{pr.repo}/git/trees/{c}"}},
                          "author": None, "committer": None,
                          "parents": [{"sha": parent, "url": f"{self.url}/repos/{pr.repo}/commits/{parent}"}]})
            parent = c
        return self._page(self.prefix + m.group(0), query, items)

    def _files(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        pr = self._pr(m)
        if pr is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        return self._page(self.prefix + m.group(0), query, pr.files)

    def _contents(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        """A file at a commit. The default and `object` media types carry the content base64-encoded
        up to 1 MB (beyond: empty, `encoding: none`); the `raw` media type carries the bytes."""
        full, path = f"{m.group('owner')}/{m.group('repo')}", m.group("path")
        ref = (parse_qs(query).get("ref") or [None])[0]
        if ref is None:
            return self._fail(f"contents of {full}/{path} read without ?ref=: that is the default branch, "
                              "not the scanned commit")
        tree = self.trees.get((full, ref))
        if tree is None:
            return JSONResponse({"message": f"No commit found for the ref {ref}"}, status_code=404)
        if path not in tree:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        content = tree[path]
        data = content.encode() if isinstance(content, str) else content
        accept = self._headers.get("accept", "")
        if "raw" in accept:
            return Response(data, media_type="application/vnd.github.raw")
        url = f"{self.url}{self.prefix}/repos/{full}/contents/{path}?ref={ref}"
        blob = hashlib.sha1(data).hexdigest()
        small = len(data) <= 1024 * 1024
        encoded = base64.encodebytes(data).decode() if small else ""
        return JSONResponse({
            "type": "file", "encoding": "base64" if small else "none", "size": len(data),
            "name": path.rsplit("/", 1)[-1], "path": path, "content": encoded, "sha": blob, "url": url,
            "git_url": None, "html_url": None, "download_url": None,
            "_links": {"self": url, "git": None, "html": None}})

    def _comment_json(self, c: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in c.items() if not k.startswith("_")}

    def _create_review(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        pr = self._pr(m)
        if pr is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        body = json.loads(raw)
        if body.get("event") != "COMMENT":
            return self._fail(f"forge-app must only COMMENT, not {body.get('event')!r}", 422)
        if body.get("commit_id") not in pr.commits:
            return JSONResponse({"message": "Unprocessable Entity",
                                 "errors": ["commit_id is not part of the pull request"]}, status_code=422)
        if len(body.get("body") or "") > 65536:
            return self._fail("review body longer than 65,536 characters", 422)
        files = {f["filename"]: f for f in pr.files}
        for c in body.get("comments") or []:
            problem = self._comment_problem(c, files)
            if problem:
                return JSONResponse({"message": "Unprocessable Entity", "errors": [problem]}, status_code=422)
        review_id = self._id()
        review = {"id": review_id, "node_id": f"PRR_{review_id}", "user": BOT, "body": body.get("body") or "",
                  "state": "COMMENTED", "commit_id": body["commit_id"], "_repo": pr.repo, "_number": pr.number}
        self.reviews[review_id] = review
        for c in body.get("comments") or []:
            cid = self._id()
            comment = {"id": cid, "node_id": f"PRRC_{cid}", "pull_request_review_id": review_id, "path": c["path"],
                       "line": c["line"], "side": c.get("side", "RIGHT"), "start_line": c.get("start_line"),
                       "start_side": c.get("start_side"), "body": c["body"], "commit_id": body["commit_id"],
                       "user": BOT, "_repo": pr.repo, "_number": pr.number}
            self.comments[cid] = comment
            thread_id = f"PRRT_{cid}"
            self.threads[thread_id] = {"id": thread_id, "resolved": False, "comments": [cid], "_repo": pr.repo,
                                       "_number": pr.number}
        return JSONResponse(self._comment_json(review))

    @staticmethod
    def _comment_problem(c: dict[str, Any], files: dict[str, dict[str, Any]]) -> str | None:
        if "position" in c:
            return "use line/side, not position"
        f = files.get(c.get("path"))
        if f is None or not f.get("patch"):
            return f"path {c.get('path')!r} is not part of the diff"
        if c.get("side", "RIGHT") != "RIGHT" or (c.get("start_line") and c.get("start_side", "RIGHT") != "RIGHT"):
            return "comments must be on the RIGHT side"
        if len(c.get("body") or "") > 65536:
            return "comment body longer than 65,536 characters"
        line, start = c.get("line"), c.get("start_line") or c.get("line")
        for hunk in right_lines(f["patch"]):
            if line in hunk:
                if start > line or any(n not in hunk for n in range(start, line + 1)):
                    return "start_line must be in the same hunk, before line"
                return None
        return "pull_request_review_thread.line must be part of the diff"

    def _review_comments(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        review_id = int(m.group("review"))
        items = [self._comment_json(c) for c in self.comments.values() if c.get("pull_request_review_id") == review_id]
        return self._page(self.prefix + m.group(0), query, items)

    def _pull_comments(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        pr = self._pr(m)
        items = [self._comment_json(c) for c in self.comments_of(pr.repo, pr.number, top_level=False)] if pr else []
        return self._page(self.prefix + m.group(0), query, items)

    def _reply(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        parent = self.comments.get(int(m.group("comment")))
        if parent is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        body = json.loads(raw)
        cid = self._id()
        comment = {"id": cid, "in_reply_to_id": parent["id"], "path": parent["path"], "line": parent["line"],
                   "body": body["body"], "user": BOT, "pull_request_review_id": None,
                   "_repo": parent["_repo"], "_number": parent["_number"]}
        self.comments[cid] = comment
        for thread in self.threads.values():
            if parent["id"] in thread["comments"]:
                thread["comments"].append(cid)
        return JSONResponse(self._comment_json(comment), status_code=201)

    def _create_issue_comment(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        body = json.loads(raw)
        cid = self._id()
        comment = {"id": cid, "body": body["body"], "user": BOT, "_repo": f"{m.group('owner')}/{m.group('repo')}",
                   "_number": int(m.group("number"))}
        self.issue_comments[cid] = comment
        return JSONResponse(self._comment_json(comment), status_code=201)

    def _issue_comments(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        full, number = f"{m.group('owner')}/{m.group('repo')}", int(m.group("number"))
        items = [self._comment_json(c) for c in self.issue_comments.values()
                 if c["_repo"] == full and c["_number"] == number]
        return self._page(self.prefix + m.group(0), query, items)

    def _edit_issue_comment(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        comment = self.issue_comments.get(int(m.group("comment")))
        if comment is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        comment["body"] = json.loads(raw)["body"]
        return JSONResponse(self._comment_json(comment))

    def _create_check_run(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        body = json.loads(raw)
        run_id = self._id()
        run = {"id": run_id, "name": body["name"], "head_sha": body["head_sha"], "status": "queued",
               "conclusion": None, "output": {}, "annotations": [], "details_url": None,
               "_repo": f"{m.group('owner')}/{m.group('repo')}", "_updates": 0}
        self.check_runs[run_id] = run
        self._apply_run(run, body)
        return JSONResponse(self._comment_json(run), status_code=201)

    def _update_check_run(self, m: re.Match[str], query: str, raw: bytes, _: Any) -> Response:
        run = self.check_runs.get(int(m.group("run")))
        if run is None or run["_repo"] != f"{m.group('owner')}/{m.group('repo')}":
            return JSONResponse({"message": "Not Found"}, status_code=404)
        run["_updates"] += 1
        self._apply_run(run, json.loads(raw))
        return JSONResponse(self._comment_json(run))

    @staticmethod
    def _apply_run(run: dict[str, Any], body: dict[str, Any]) -> None:
        if "conclusion" in body:
            run["conclusion"] = body["conclusion"]
            run["status"] = "completed"
        elif "status" in body:
            run["status"] = body["status"]
            if body["status"] != "completed":
                run["conclusion"] = None
        if "details_url" in body:
            run["details_url"] = body["details_url"]
        output = body.get("output") or {}
        run["annotations"] += output.get("annotations") or []
        run["output"] = {**run["output"], **{k: v for k, v in output.items() if k != "annotations"}}

    # GraphQL ----------------------------------------------------------------------------
    def _graphql(self, headers: dict[str, str], raw: bytes) -> Response:
        installation_id, status, message = self._token_installation(headers.get("authorization", ""))
        if installation_id is None:
            return JSONResponse({"message": message}, status_code=status)
        try:
            doc = json.loads(raw)
        except ValueError:
            return self._fail("GraphQL body is not JSON")
        problems = graphql_errors(doc.get("query") or "")
        if problems:
            return self._fail(f"GraphQL query does not match GitHub's schema: {problems}")
        repos = self.installations.get(installation_id, {}).get("repos", set())
        result = graphql_sync(graphql_schema(), doc["query"], root_value=_GraphQLRoot(self, repos),
                              variable_values=doc.get("variables") or {})
        if result.errors:
            return JSONResponse({"data": result.data, "errors": [{"message": e.message} for e in result.errors]})
        return JSONResponse({"data": result.data})


class _GraphQLRoot:
    """Resolvers for the few fields forge-app reads and the two mutations it calls."""

    def __init__(self, fake: FakeGitHub, repos: set[str]) -> None:
        self.fake = fake
        self.repos = repos

    def repository(self, info: Any, owner: str, name: str, **_: Any) -> dict[str, Any] | None:
        full = f"{owner}/{name}"
        if full not in self.repos:
            return None
        return {"pullRequest": lambda info, number, **_: self._pull(full, number)}

    def _pull(self, repo: str, number: int) -> dict[str, Any] | None:
        if (repo, number) not in self.fake.pulls:
            return None
        threads = [t for t in self.fake.threads.values() if t["_repo"] == repo and t["_number"] == number]

        def review_threads(info: Any, first: int | None = None, after: str | None = None, **_: Any) -> dict[str, Any]:
            start = int(after) if after else 0
            size = min(first or 100, 100)
            chunk = threads[start : start + size]
            end = start + len(chunk)
            return {"pageInfo": {"hasNextPage": end < len(threads), "endCursor": str(end)},
                    "nodes": [self._thread(t) for t in chunk], "totalCount": len(threads)}

        return {"reviewThreads": review_threads}

    def _thread(self, thread: dict[str, Any]) -> dict[str, Any]:
        comments = [self.fake.comments[c] for c in thread["comments"]]

        def connection(info: Any, first: int | None = None, last: int | None = None, **_: Any) -> dict[str, Any]:
            chosen = comments[:first] if first else (comments[-last:] if last else comments)
            return {"nodes": [{"databaseId": c["id"], "body": c["body"], "id": c.get("node_id") or f"PRRC_{c['id']}"}
                              for c in chosen], "totalCount": len(comments)}

        return {"id": thread["id"], "isResolved": thread["resolved"], "comments": connection}

    def resolveReviewThread(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        thread = self.fake.threads.get(input["threadId"])
        if thread is None or thread["_repo"] not in self.repos:
            raise ValueError("Could not resolve to a node with the global id")
        thread["resolved"] = True
        return {"thread": self._thread(thread)}

    def unresolveReviewThread(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        thread = self.fake.threads.get(input["threadId"])
        if thread is None or thread["_repo"] not in self.repos:
            raise ValueError("Could not resolve to a node with the global id")
        thread["resolved"] = False
        return {"thread": self._thread(thread)}


class ServerThread:
    """Runs an ASGI app with uvicorn on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("the fake GitHub did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()
