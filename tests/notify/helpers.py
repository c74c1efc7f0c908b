"""Test helpers for notifications: a real HTTP receiver on loopback, an independent
Standard Webhooks verifier, scan uploads, and driving the job worker through time."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from forge_app.core.models import Finding, Fingerprint, RuleInfo

SHA_MAIN = "a" * 40
SHA_PR = "b" * 40
SHA_MERGED = "c" * 40


# --- the receiver ------------------------------------------------------------------------

@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    size: int | None = None  # send this many bytes of filler instead of `body`
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Answers POSTs with scripted replies (then `default`) and keeps every request."""

    def __init__(self, *replies: Reply, default: Reply | None = None) -> None:
        self.replies = list(replies)
        self.default = default or Reply()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def script(self, *replies: Reply, default: Reply | None = None) -> None:
        with self._lock:
            self.replies = list(replies)
            if default is not None:
                self.default = default

    def _next(self) -> Reply:
        with self._lock:
            return self.replies.pop(0) if self.replies else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body))
                reply = receiver._next()
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body if reply.size is None else b""
                length_out = reply.size if reply.size is not None else len(payload)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(length_out))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if reply.size is None:
                        self.wfile.write(payload)
                    else:
                        chunk = b"x" * 65536
                        sent = 0
                        while sent < reply.size:
                            self.wfile.write(chunk)
                            sent += len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: exactly what an oversized answer should get
                self.close_connection = True

        return Handler

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def findings_posts(self) -> list[Received]:
        return [r for r in self.requests if isinstance(r.json(), list)]

    def scan_posts(self) -> list[Received]:
        return [r for r in self.requests if isinstance(r.json(), dict) and "semgrep_scan" in r.json()]

    def finding_ids(self) -> list[str]:
        return [item["semgrep_finding"]["id"] for r in self.findings_posts() for item in r.json()]


# --- Standard Webhooks, verified independently of the app's code -------------------------

def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes, tolerance: float = 300) -> bool:
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_"):])
    msg_id, timestamp, signatures = headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for item in signatures.split(" "):
        version, _, sig = item.partition(",")
        if version == "v1" and hmac.compare_digest(base64.b64decode(sig), expected):
            return True
    return False


# --- scans -------------------------------------------------------------------------------

def hexhash(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def make_finding(name: str, *, rule: str = "python.lang.security.eval", path: str = "app/main.py",
                 line: int = 10, severity: str = "error", message: str | None = None,
                 metadata: dict[str, Any] | None = None) -> Finding:
    """A finding whose identity we control: `name` decides its fingerprint."""
    return Finding(
        rule_id=rule, path=path, start_line=line, end_line=line + 1, start_col=5, end_col=20,
        message=message or f"{name}: avoid eval", severity=severity, metadata=metadata or {},
        rule=RuleInfo(cwe=("CWE-95: Eval Injection",), owasp=("A03:2021 - Injection",), category="security",
                      references=("https://owasp.org/Top10/A03_2021-Injection/",), technology=("python",),
                      help_uri=f"https://semgrep.dev/r/{rule}"),
        snippet=f"eval({name})", tool="semgrep",
        fingerprint=Fingerprint(value=fingerprint_of(name), code=hexhash(f"code:{name}", 16)),
    )


def fingerprint_of(name: str) -> str:
    return hexhash(f"value:{name}", 32)


def scan_body(findings: list[Finding], *, commit: str, branch: str, pull_request: int | None = None,
              base_branch: str | None = None, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"repository": "octo/demo", "commit": commit, "branch": branch, "base_branch": base_branch,
            "pull_request": pull_request, "findings": [f.to_dict() for f in findings], "tools": ["semgrep"],
            "meta": meta or {}}


def upload(client: Any, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/scans", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    return response.json()


# --- the worker, through time -------------------------------------------------------------

def run_jobs(app: Any, now: float | None = None, limit: int = 100) -> int:
    """Run every job due at `now` (default: really now) until none is left."""
    async def go() -> int:
        ran = 0
        while ran < limit and await app.state.worker.run_once(now=now):
            ran += 1
        return ran
    return asyncio.run(go())


def run_one(app: Any, now: float) -> bool:
    """Run the one job due at `now` (the next attempt of a delivery, in test time)."""
    return asyncio.run(app.state.worker.run_once(now=now))


def next_run_at(storage: Any, kind: str = "deliver_notification") -> float | None:
    queued = [j["run_at"] for j in storage.jobs(kind=kind, status="queued")]
    return min(queued) if queued else None


@contextlib.contextmanager
def resolver(monkeypatch: Any, table: dict[str, list[str]] | Callable[[str, int], list[str]]) -> Iterator[None]:
    """Replace DNS for forge_app.notify.ssrf (no real lookups in tests)."""
    import socket

    from forge_app.notify import ssrf

    def fake(host: str, port: int) -> list[str]:
        if callable(table):
            return table(host, port)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host])

    monkeypatch.setattr(ssrf, "resolve_host", fake)
    yield
