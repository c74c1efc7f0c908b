"""A small stateful GitLab on loopback for the adapter's tests.

It keeps projects, commits, merge requests with their diff versions, discussions,
notes and commit statuses, and behaves like GitLab where the adapter depends on it:
positions must name the latest version and an added line (with correct line codes),
a note added to a resolved discussion reopens it, a commit status cannot go from
running to running, lists are paginated with Link headers, tokens have scopes.

EVERY request is validated against tests/fixtures/gitlab/api-contract.openapi.json.
A route the contract does not have is answered 404 and recorded in `violations`
(which fails the test), unless it is in the explicit allow-list OUTSIDE_CONTRACT;
a request the contract describes but would refuse (wrong body, query) is answered 400
and recorded the same way. Allowed requests are recorded in `outside_contract`.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.support.openapi_check import api_description

# The ONLY requests outside the contract the app may send (method, path regex) -> why.
# Everything else outside it is answered 404 and recorded as a violation. Empty: the
# connection check's token, project and group reads are in the contract now.
OUTSIDE_CONTRACT: dict[tuple[str, str], str] = {}
UNKNOWN_ROUTE = ("PathNotFound", "OperationNotFound")
TIMESTAMP = "2024-05-01T12:00:00.000Z"
BOT = {"id": 77, "username": "forge-app-bot", "name": "forge-app", "state": "active"}
SUGGESTION_RE = re.compile(r"^(`{3,})suggestion:-(\d+)\+(\d+)\s*$", re.M)


def sha_of(*parts: str) -> str:
    return hashlib.sha1("\x00".join(parts).encode()).hexdigest()


def unified(old: str | None, new: str | None) -> str:
    """A per-file diff as GitLab's API gives it: hunks only, starting at `@@`."""
    a = (old or "").splitlines()
    b = (new or "").splitlines()
    lines = list(difflib.unified_diff(a, b, n=3, lineterm=""))[2:]
    return "".join(line + "\n" for line in lines)


def added_lines(diff: str) -> dict[int, tuple[int, int]]:
    """new line -> (hunk index, old-side counter) for every added line."""
    out: dict[int, tuple[int, int]] = {}
    hunk = -1
    old = new = 0
    for line in diff.splitlines():
        m = re.match(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@", line)
        if m:
            hunk += 1
            old, new = int(m.group(1)), int(m.group(2))
            continue
        if line.startswith("+"):
            out[new] = (hunk, old)
            new += 1
        elif line.startswith("-"):
            old += 1
        else:
            old += 1
            new += 1
    return out


@dataclass
class Token:
    scopes: list[str]
    access_level: int = 40  # the token user's role on every project (30: Developer, 20: Reporter)
    active: bool = True
    revoked: bool = False


@dataclass
class Project:
    id: int
    path: str
    default_branch: str = "main"
    commits: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def web_url(self) -> str:
        return f"https://gitlab.example.com/{self.path}"


@dataclass
class MergeRequest:
    project: Project
    iid: int
    source_branch: str
    target_branch: str
    versions: list[dict[str, Any]] = field(default_factory=list)  # newest first
    diffs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # version id -> file diffs
    discussions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def latest(self) -> dict[str, Any]:
        return self.versions[0]


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    body: Any
    status: int = 0


class FakeGitLab:
    def __init__(self) -> None:
        self.contract = api_description("gitlab")
        self.lock = threading.RLock()
        self.url = ""  # set by whoever serves it (FakeServer)
        self.reset()

    def reset(self) -> None:
        self.tokens: dict[str, Token] = {}
        self.projects: dict[int, Project] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.mrs: dict[tuple[int, int], MergeRequest] = {}
        self.statuses: dict[tuple[int, str], list[dict[str, Any]]] = {}
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.outside_contract: list[str] = []
        self.injected: list[dict[str, Any]] = []
        self._ids = itertools.count(5001)
        self._version_ids = itertools.count(900)
        self._discussions = itertools.count(1)

    # -- building state ----------------------------------------------------------------------

    def add_token(self, token: str, scopes: list[str] | None = None, **kwargs: Any) -> None:
        self.tokens[token] = Token(scopes if scopes is not None else ["api"], **kwargs)

    def add_project(self, path: str, project_id: int, default_branch: str = "main") -> Project:
        project = Project(project_id, path, default_branch)
        self.projects[project_id] = project
        return project

    def add_group(self, full_path: str, group_id: int) -> None:
        self.groups[group_id] = {"id": group_id, "full_path": full_path, "path": full_path.rsplit("/", 1)[-1],
                                 "web_url": f"https://gitlab.example.com/groups/{full_path}"}

    def commit(self, project: Project, files: dict[str, str], message: str = "") -> str:
        sha = sha_of(project.path, message, json.dumps(files, sort_keys=True))
        project.commits[sha] = dict(files)
        return sha

    def open_mr(self, project: Project, iid: int, base_sha: str, head_sha: str, source_branch: str = "feature",
                target_branch: str = "main") -> MergeRequest:
        mr = MergeRequest(project, iid, source_branch, target_branch)
        self.mrs[(project.id, iid)] = mr
        self.push(mr, base_sha, head_sha)
        return mr

    def push(self, mr: MergeRequest, base_sha: str, head_sha: str) -> dict[str, Any]:
        """A new MR version (what GitLab records after a push to the source branch)."""
        version = {"id": next(self._version_ids), "head_commit_sha": head_sha, "base_commit_sha": base_sha,
                   "start_commit_sha": base_sha, "created_at": TIMESTAMP, "merge_request_id": 10_000 + mr.iid,
                   "state": "collected", "real_size": "0"}
        old, new = mr.project.commits[base_sha], mr.project.commits[head_sha]
        files = []
        for path in sorted(set(old) | set(new)):
            if old.get(path) == new.get(path):
                continue
            files.append({"old_path": path, "new_path": path, "a_mode": "100644", "b_mode": "100644",
                          "new_file": path not in old, "renamed_file": False, "deleted_file": path not in new,
                          "diff": unified(old.get(path), new.get(path))})
        version["real_size"] = str(len(files))
        mr.versions.insert(0, version)
        mr.diffs[version["id"]] = files
        return version

    def inject(self, method: str, path_regex: str, status: int, *, headers: dict[str, str] | None = None,
               body: Any = None, times: int = 1, after: int = 0) -> None:
        """Answer `times` matching requests, after letting `after` of them through, with this status."""
        self.injected.append({"method": method, "re": re.compile(path_regex), "status": status, "after": after,
                              "headers": headers or {}, "body": body if body is not None else
                              {"message": f"{status} injected"}, "times": times})

    # -- reading state (tests) -----------------------------------------------------------------

    def mr(self, project_id: int, iid: int) -> MergeRequest:
        return self.mrs[(project_id, iid)]

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    @staticmethod
    def resolved(discussion: dict[str, Any]) -> bool:
        notes = [n for n in discussion["notes"] if n["resolvable"]]
        return bool(notes) and all(n["resolved"] for n in notes)

    # -- HTTP ----------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/v4/{rest:path}", self.handle, methods=["GET", "POST", "PUT", "DELETE"]),
                                 Route("/moved/api/v4/{rest:path}", self.moved, methods=["GET", "POST", "PUT"])])

    async def moved(self, request: Request) -> Response:
        """An old address of the instance (e.g. http:// before https://): a permanent redirect."""
        raw = request.scope["raw_path"].decode().removeprefix("/moved")
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{request.url.scheme}://{request.url.netloc}{raw}{query}", status_code=301)

    async def handle(self, request: Request) -> Response:
        raw_path = request.scope["raw_path"].decode().split("?", 1)[0]
        path = raw_path[len("/api/v4"):]
        query = request.url.query
        body_bytes = await request.body()
        headers = dict(request.headers)
        try:
            body = json.loads(body_bytes) if body_bytes else None
        except ValueError:
            body = body_bytes.decode(errors="replace")
        with self.lock:
            rec = Recorded(request.method, path, query, body)
            self.requests.append(rec)
            response = self._answer(request, rec, headers, body_bytes)
            rec.status = response.status_code
            return response

    def _answer(self, request: Request, rec: Recorded, headers: dict[str, str], body_bytes: bytes) -> Response:
        problems = self.contract.errors(rec.method, rec.path, query=rec.query, headers=headers,
                                        body=body_bytes or None)
        if problems and all(p.startswith(UNKNOWN_ROUTE) for p in problems):
            allowed = any(m == rec.method and re.fullmatch(pattern, rec.path) for m, pattern in OUTSIDE_CONTRACT)
            if not allowed:
                self.violations.append(f"{rec.method} {rec.path}: not in the contract: {problems}")
                return JSONResponse({"message": "404 Not Found (not in the API contract)"}, 404)
            self.outside_contract.append(f"{rec.method} {rec.path}")
        elif problems:
            self.violations.append(f"{rec.method} {rec.path}: {problems}")
            return JSONResponse({"message": "400 contract violation", "problems": problems}, 400)
        token = headers.get("private-token") or headers.get("authorization", "").removeprefix("Bearer ")
        tok = self.tokens.get(token)
        if tok is None:
            return JSONResponse({"message": "401 Unauthorized"}, 401)
        for inj in self.injected:
            if inj["times"] > 0 and inj["method"] == rec.method and inj["re"].search(rec.path):
                if inj["after"] > 0:
                    inj["after"] -= 1
                    continue
                inj["times"] -= 1
                return JSONResponse(inj["body"], inj["status"], headers=inj["headers"])
        needed = ("api", "read_api") if rec.method == "GET" else ("api",)
        describes_itself = rec.path == "/personal_access_tokens/self"  # any valid token may read itself
        if not describes_itself and not set(needed) & set(tok.scopes):
            return JSONResponse({"error": "insufficient_scope", "error_description": "The request requires higher "
                                 "privileges than provided by the access token.", "scope": "api"}, 403)
        params = dict(parse_qsl(rec.query))
        for pattern, handler in self._routes():
            m = re.fullmatch(pattern[1], rec.path)
            if m and pattern[0] == rec.method:
                return handler(request, tok, params, rec.body, *m.groups())
        return JSONResponse({"message": "404 Not Found"}, 404)

    def _routes(self) -> list[tuple[tuple[str, str], Any]]:
        mr = r"/projects/([^/]+)/merge_requests/(\d+)"
        return [
            (("GET", r"/personal_access_tokens/self"), self._token_self),
            (("GET", r"/projects/([^/]+)"), self._get_project),
            (("GET", r"/groups/([^/]+)"), self._get_group),
            (("GET", mr), self._get_mr),
            (("GET", mr + r"/versions"), self._versions),
            (("GET", mr + r"/diffs"), self._diffs),
            (("GET", mr + r"/discussions"), self._list_discussions),
            (("POST", mr + r"/discussions"), self._create_discussion),
            (("PUT", mr + r"/discussions/([0-9a-f]+)"), self._resolve_discussion),
            (("POST", mr + r"/discussions/([0-9a-f]+)/notes"), self._add_note),
            (("PUT", mr + r"/discussions/([0-9a-f]+)/notes/(\d+)"), self._edit_note),
            (("POST", mr + r"/notes"), self._create_note),
            (("POST", r"/projects/([^/]+)/statuses/([0-9a-f]+)"), self._set_status),
        ]

    # -- handlers ------------------------------------------------------------------------------

    def _project(self, ref: str) -> Project | None:
        ref = ref.replace("%2F", "/").replace("%2f", "/")
        if ref.isdigit():
            return self.projects.get(int(ref))
        return next((p for p in self.projects.values() if p.path.lower() == ref.lower()), None)

    def _find_mr(self, ref: str, iid: str) -> MergeRequest | None:
        project = self._project(ref)
        return self.mrs.get((project.id, int(iid))) if project else None

    @staticmethod
    def _not_found(what: str) -> JSONResponse:
        return JSONResponse({"message": f"404 {what} Not Found"}, 404)

    def _paginate(self, request: Request, items: list[Any], params: dict[str, str]) -> JSONResponse:
        per_page = max(1, min(100, int(params.get("per_page", 20))))
        page = max(1, int(params.get("page", 1)))
        total_pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(items)),
                   "X-Total-Pages": str(total_pages), "X-Next-Page": str(page + 1) if page < total_pages else "",
                   "X-Prev-Page": str(page - 1) if page > 1 else ""}
        base = f"{request.url.scheme}://{request.url.netloc}{request.scope['raw_path'].decode().split('?')[0]}"
        links = []
        for rel, number in (("next", page + 1 if page < total_pages else None), ("first", 1),
                            ("last", total_pages)):
            if number is not None:
                links.append(f'<{base}?{urlencode(dict(params, page=number))}>; rel="{rel}"')
        headers["Link"] = ", ".join(links)
        return JSONResponse(chunk, headers=headers)

    def _token_self(self, request: Request, tok: Token, params: dict, body: Any) -> Response:
        return JSONResponse({"id": 9001, "name": "forge-app", "revoked": tok.revoked, "active": tok.active,
                             "scopes": tok.scopes, "user_id": BOT["id"], "created_at": TIMESTAMP,
                             "last_used_at": None, "expires_at": None})

    def _get_project(self, request: Request, tok: Token, params: dict, body: Any, ref: str) -> Response:
        project = self._project(ref)
        if project is None:
            return self._not_found("Project")
        return JSONResponse({"id": project.id, "path_with_namespace": project.path, "web_url": project.web_url,
                             "default_branch": project.default_branch,
                             "permissions": {"project_access": {"access_level": tok.access_level,
                                                                "notification_level": 3},
                                             "group_access": None}})

    def _get_group(self, request: Request, tok: Token, params: dict, body: Any, ref: str) -> Response:
        ref = ref.replace("%2F", "/")
        group = next((g for g in self.groups.values() if g["full_path"] == ref or str(g["id"]) == ref), None)
        return JSONResponse(group) if group else self._not_found("Group")

    def _get_mr(self, request: Request, tok: Token, params: dict, body: Any, ref: str, iid: str) -> Response:
        mr = self._find_mr(ref, iid)
        if mr is None:
            return self._not_found("Merge Request")
        v = mr.latest
        return JSONResponse({"iid": mr.iid, "project_id": mr.project.id, "state": "opened", "sha": v["head_commit_sha"],
                             "source_branch": mr.source_branch, "target_branch": mr.target_branch,
                             "diff_refs": {"base_sha": v["base_commit_sha"], "start_sha": v["start_commit_sha"],
                                           "head_sha": v["head_commit_sha"]}})

    def _versions(self, request: Request, tok: Token, params: dict, body: Any, ref: str, iid: str) -> Response:
        mr = self._find_mr(ref, iid)
        return JSONResponse(mr.versions) if mr else self._not_found("Merge Request")

    def _diffs(self, request: Request, tok: Token, params: dict, body: Any, ref: str, iid: str) -> Response:
        mr = self._find_mr(ref, iid)
        if mr is None:
            return self._not_found("Merge Request")
        return self._paginate(request, mr.diffs[mr.latest["id"]], params)

    def _list_discussions(self, request: Request, tok: Token, params: dict, body: Any, ref: str, iid: str) -> Response:
        mr = self._find_mr(ref, iid)
        if mr is None:
            return self._not_found("Merge Request")
        return self._paginate(request, mr.discussions, params)

    def _new_note(self, mr: MergeRequest, body: str, *, type_: str | None, resolvable: bool,
                  position: dict[str, Any] | None = None) -> dict[str, Any]:
        note = {"id": next(self._ids), "type": type_, "body": body, "author": BOT, "created_at": TIMESTAMP,
                "updated_at": TIMESTAMP, "system": False, "noteable_id": 10_000 + mr.iid,
                "noteable_type": "MergeRequest", "noteable_iid": mr.iid, "resolvable": resolvable,
                "resolved": False if resolvable else None, "resolved_by": None}
        if position is not None:
            note["position"] = position
        return note

    def _check_position(self, mr: MergeRequest, position: dict[str, Any], body: str) -> str | None:
        """What real GitLab would refuse (an error message), and our own invariants (violations)."""
        latest = mr.latest
        refs = (position["base_sha"], position["start_sha"], position["head_sha"])
        if refs != (latest["base_commit_sha"], latest["start_commit_sha"], latest["head_commit_sha"]):
            self.violations.append(f"position on an outdated MR version: {refs}")
            return "400 Bad request - Note {:position=>[\"is not on the latest version\"]}"
        files = {f["new_path"]: f for f in mr.diffs[latest["id"]]}
        file = files.get(position.get("new_path"))
        bad_code = "400 Bad request - Note {:line_code=>[\"can't be blank\", \"must be a valid line code\"]}"
        if file is None or position.get("old_path") != file["old_path"]:
            return bad_code
        added = added_lines(file["diff"])
        new_line = position.get("new_line")
        if "old_line" not in position and new_line not in added:
            return bad_code
        line_range = position.get("line_range")
        if line_range:
            for end in ("start", "end"):
                item = line_range[end]
                line = item.get("new_line")
                expected = f"{hashlib.sha1(file['new_path'].encode()).hexdigest()}_{added.get(line, (0, 0))[1]}_{line}"
                if line not in added or item["line_code"] != expected or item["type"] != "new":
                    return bad_code
            if line_range["end"]["new_line"] != new_line:
                return bad_code
        m = SUGGESTION_RE.search(body)
        if m:
            above, below = int(m.group(2)), int(m.group(3))
            lines = range(new_line - above, new_line + below + 1)
            hunks = {added.get(n, (None,))[0] for n in lines}
            if len(hunks) != 1 or None in hunks or above + below >= 100:
                self.violations.append(f"suggestion on {file['new_path']}:{new_line} -{above}+{below} covers lines "
                                       "that are not added lines of one hunk")
        return None

    def _create_discussion(self, request: Request, tok: Token, params: dict, body: Any, ref: str,
                           iid: str) -> Response:
        mr = self._find_mr(ref, iid)
        if mr is None:
            return self._not_found("Merge Request")
        position = body.get("position")
        if position is not None:
            error = self._check_position(mr, position, body["body"])
            if error:
                return JSONResponse({"message": error}, 400)
        note = self._new_note(mr, body["body"], type_="DiffNote" if position else "DiscussionNote", resolvable=True,
                              position=position)
        discussion = {"id": sha_of("discussion", str(next(self._discussions))), "individual_note": False,
                      "notes": [note]}
        mr.discussions.append(discussion)
        return JSONResponse(discussion, 201)

    def _discussion(self, mr: MergeRequest | None, did: str) -> dict[str, Any] | None:
        return next((d for d in mr.discussions if d["id"] == did), None) if mr else None

    def _resolve_discussion(self, request: Request, tok: Token, params: dict, body: Any, ref: str, iid: str,
                            did: str) -> Response:
        d = self._discussion(self._find_mr(ref, iid), did)
        if d is None:
            return self._not_found("Discussion")
        if d["individual_note"]:
            return JSONResponse({"message": "400 Bad request - discussion is not resolvable"}, 400)
        for n in d["notes"]:
            if n["resolvable"]:
                n["resolved"] = bool(body["resolved"])
                n["resolved_by"] = BOT if body["resolved"] else None
        return JSONResponse(d)

    def _add_note(self, request: Request, tok: Token, params: dict, body: Any, ref: str, iid: str,
                  did: str) -> Response:
        mr = self._find_mr(ref, iid)
        d = self._discussion(mr, did)
        if d is None or mr is None:
            return self._not_found("Discussion")
        resolvable = not d["individual_note"]
        note = self._new_note(mr, body["body"], type_="DiscussionNote", resolvable=resolvable)
        d["notes"].append(note)  # unresolved: adding it to a resolved discussion reopens the discussion
        return JSONResponse(note, 201)

    def _edit_note(self, request: Request, tok: Token, params: dict, body: Any, ref: str, iid: str, did: str,
                   nid: str) -> Response:
        d = self._discussion(self._find_mr(ref, iid), did)
        note = next((n for n in d["notes"] if n["id"] == int(nid)), None) if d else None
        if note is None:
            return self._not_found("Note")
        if "body" in body:
            note["body"] = body["body"]
            note["updated_at"] = "2024-05-01T12:30:00.000Z"
        if "resolved" in body and note["resolvable"]:
            note["resolved"] = bool(body["resolved"])
        return JSONResponse(note)

    def _create_note(self, request: Request, tok: Token, params: dict, body: Any, ref: str, iid: str) -> Response:
        mr = self._find_mr(ref, iid)
        if mr is None:
            return self._not_found("Merge Request")
        note = self._new_note(mr, body["body"], type_=None, resolvable=False)
        mr.discussions.append({"id": sha_of("discussion", str(next(self._discussions))), "individual_note": True,
                               "notes": [note]})
        return JSONResponse(note, 201)

    def _set_status(self, request: Request, tok: Token, params: dict, body: Any, ref: str, sha: str) -> Response:
        project = self._project(ref)
        if project is None:
            return self._not_found("Project")
        if tok.access_level < 30:  # authorize! :create_commit_status
            return JSONResponse({"message": "403 Forbidden"}, 403)
        if sha not in project.commits:  # not_found! 'Commit'
            return self._not_found("Commit")
        name = body.get("name") or body.get("context") or "default"
        history = self.statuses.setdefault((project.id, sha), [])
        current = next((s for s in reversed(history) if s["name"] == name), None)
        state = body["state"]
        if current is not None and current["status"] in ("pending", "running") and current["status"] == state:
            verb = {"running": "run", "pending": "enqueue"}[state]
            return JSONResponse({"message": f"Cannot transition status via :{verb} from :{state} (Reason(s): Status "
                                 f"cannot transition via \"{verb}\")"}, 400)
        if current is not None and current["status"] in ("pending", "running"):
            current.update(status=state, description=body.get("description"), target_url=body.get("target_url"))
            status = current
        else:
            status = {"id": next(self._ids), "sha": sha, "ref": body.get("ref"), "status": state, "name": name,
                      "target_url": body.get("target_url"), "description": body.get("description"),
                      "created_at": TIMESTAMP, "author": BOT, "allow_failure": False}
            history.append(status)
        status.setdefault("history", []).append(state)
        return JSONResponse({k: v for k, v in status.items() if k != "history"}, 201)


class FakeServer:
    """Serves a FakeGitLab with uvicorn on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self, fake: FakeGitLab) -> None:
        self.fake = fake
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        fake.url = self.url
        config = uvicorn.Config(fake.app(), log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> FakeServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake GitLab did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.server.force_exit = True  # do not wait for clients' idle keep-alive connections
        self.thread.join(timeout=10)
        self.sock.close()


def free_port_url() -> str:
    """A loopback URL nothing listens on (for 'unreachable' checks)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"
