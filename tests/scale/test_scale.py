"""Scale: 3 `serve` and 3 `worker` processes on one fresh database, 2,000 signed GitHub deliveries
(10 % of them redelivered) and 50 PR scans sent round robin across the servers, one worker and one
server killed with SIGKILL half-way. Afterwards every delivery is stored once and acted on, and
every inline comment, check run and webhook notification exists exactly once.

Runs on PostgreSQL when one answers (`FORGE_APP_TEST_POSTGRES_URL`, else 127.0.0.1:5432); a
fresh database is created for it and dropped afterwards. Bounded to 3 minutes.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from forge_app.core.review.render import SIGNED_MARKER_RE
from storage import Storage, open_storage
from tests.conftest import ADMIN_TOKEN, SECRET_KEY
from tests.github.fake_github import FakeGitHub, ServerThread
from tests.github.gh_helpers import (
    INSTALLATION,
    REPO,
    WEBHOOK_SECRET,
    github_files,
    pull_request_event,
    scan_tree,
    sha,
    signature,
    write_tree,
)
from tests.notify.helpers import Receiver
from tests.scale.databases import scale_database
from tests.support.cluster import Cluster, base_env

DELIVERIES = 2000
REDELIVERED = 200  # 10 %
SCANS = 50
QUIET_REPOS = 20  # deliveries spread over 20 installations, so their jobs can run in parallel
DEADLINE = 170.0  # seconds, for the whole test (the bound is 3 minutes)
EVAL = ["python.lang.security.eval"]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    with scale_database(tmp_path) as url:
        yield url


def _delivery_body(i: int) -> bytes:
    body = pull_request_event("opened", sha(f"quiet:{i}"), number=1000 + i, repo=f"quiet/r{i % QUIET_REPOS}",
                              installation_id=100 + i % QUIET_REPOS)
    return json.dumps(body).encode()


class Sender:
    """Sends like a forge does: a delivery that got no 2xx answer is sent again (to the next server)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.acknowledged: dict[str, int] = {}
        self.retries = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(timeout=30)
        return client

    def post(self, path: str, body: bytes, headers: dict[str, str], *, deadline: float) -> httpx.Response:
        while True:
            url = self.cluster.next_url()
            try:
                answer = self._client().post(url + path, content=body, headers=headers)
            except httpx.TransportError:
                answer = None  # that server just died (or the connection broke): try the next one
            if answer is not None and answer.status_code < 500:
                return answer
            with self._lock:
                self.retries += 1
            assert time.monotonic() < deadline, f"{path}: no server took it ({answer and answer.status_code})"
            time.sleep(0.05)

    def deliver(self, i: int, delivery: str, *, deadline: float) -> None:
        body = _delivery_body(i)
        headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": delivery,
                   "X-Hub-Signature-256": signature(body), "Content-Type": "application/json",
                   "User-Agent": "GitHub-Hookshot/scale"}
        answer = self.post("/webhooks/github", body, headers, deadline=deadline)
        assert answer.status_code in (200, 202), answer.text
        with self._lock:
            self.acknowledged[delivery] = self.acknowledged.get(delivery, 0) + 1


def _pull_requests(fake: FakeGitHub, tmp_path: Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The base tree (no findings) and 50 PRs, each adding two `eval` calls in a file of its own."""
    base = {"app/core.py": "".join(f"v{i} = {i}\n" for i in range(20))}
    uploads = []
    for n in range(1, SCANS + 1):
        head = {**base, f"app/feature_{n}.py": f"import ast\nx = eval(a{n})\ny = 1\nz = eval(b{n})\n"}
        head_sha = sha(f"scale:pr:{n}")
        fake.set_pull(REPO, n, head_sha, github_files(base, head))
        tree = write_tree(tmp_path / "trees" / str(n), head)
        uploads.append({"repository": REPO, "commit": head_sha, "branch": f"feature-{n}", "base_branch": "main",
                        "pull_request": n, "findings": scan_tree(tree, EVAL), "tools": ["semgrep"]})
    return base, uploads


def _settled(storage: Storage) -> bool:
    counts = storage.job_state_counts()
    return counts["queued"] == 0 and counts["running"] == 0


@pytest.mark.slow
def test_three_servers_three_workers_two_kills_everything_exactly_once(database: str, tmp_path: Path) -> None:
    started = time.monotonic()
    deadline = started + DEADLINE
    fake = FakeGitHub()
    github = ServerThread(fake.app()).start()
    fake.url = github.url
    fake.add_installation(INSTALLATION, "octo", [REPO])
    storage = open_storage(database)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = base_env({
        "FORGE_APP_DATABASE": database, "FORGE_APP_SECRET_KEY": SECRET_KEY, "FORGE_APP_ADMIN_TOKEN": ADMIN_TOKEN,
        "FORGE_APP_ALLOW_PRIVATE_TARGETS": "1", "GITHUB_APP_ID": str(fake.app_id),
        "GITHUB_PRIVATE_KEY": fake.private_key, "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "FORGE_APP_GITHUB_API_URL": fake.url, "FORGE_APP_LOG_LEVEL": "WARNING"})
    try:
        with Receiver() as receiver, Cluster(env, logs) as cluster:
            cluster.start(serves=3, workers=3)
            storage.upsert_github_installation(INSTALLATION)
            storage.link_github_repositories(INSTALLATION, [REPO])
            token = storage.create_upload_token("github", REPO)
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            hook = httpx.post(cluster.next_url() + "/api/v1/integrations", headers=admin, timeout=30,
                              json={"type": "webhook", "name": "recorder", "url": receiver.url, "secret": True})
            assert hook.status_code == 201, hook.text
            _, uploads = _pull_requests(fake, tmp_path)
            sender = Sender(cluster)
            auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            base_scan = sender.post("/api/v1/scans", json.dumps(
                {"repository": REPO, "commit": sha("scale:base"), "branch": "main", "findings": [],
                 "tools": ["semgrep"]}).encode(), auth, deadline=deadline)
            assert base_scan.status_code == 201, base_scan.text

            ids = [f"scale-{uuid.uuid4()}" for _ in range(DELIVERIES)]
            rng = random.Random(16)
            work: list[tuple[str, Any]] = [("delivery", (i, d)) for i, d in enumerate(ids)]
            work += [("delivery", (i, ids[i])) for i in rng.sample(range(DELIVERIES), REDELIVERED)]
            rng.shuffle(work)
            every = len(work) // SCANS
            for n, body in enumerate(uploads):  # the scans, spread through the deliveries
                work.insert(n * every + n, ("scan", body))
            killed = threading.Event()
            done_count = 0
            count_lock = threading.Lock()

            def one(item: tuple[str, Any]) -> None:
                nonlocal done_count
                kind, value = item
                if kind == "delivery":
                    sender.deliver(*value, deadline=deadline)
                else:
                    answer = sender.post("/api/v1/scans", json.dumps(value).encode(), auth, deadline=deadline)
                    assert answer.status_code == 201, answer.text
                with count_lock:
                    done_count += 1
                    halfway = done_count == len(work) // 2
                if halfway:
                    cluster.workers[0].kill9()
                    cluster.serves[1].kill9()
                    killed.set()

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                for future in [pool.submit(one, item) for item in work]:
                    future.result()
            assert killed.is_set()
            sent_in = time.monotonic() - started

            while not _settled(storage):
                assert time.monotonic() < deadline, "jobs still pending:\n" + "\n".join(
                    p.tail(1500) for p in cluster.processes)
                time.sleep(0.5)
            settled_in = time.monotonic() - started

        # Every delivery stored once, its job run once to the end, its effect there.
        assert set(sender.acknowledged) == set(ids)
        counts = storage.delivery_counts("github", [f"github:{d}" for d in ids])
        assert counts == {"deliveries": DELIVERIES, "jobs": DELIVERIES, "matched_jobs": DELIVERIES}
        assert storage.count_jobs("failed") == 0
        recorded = sum(1 for i in range(DELIVERIES)
                       if storage.github_pull_request(storage.ensure_repository(
                           "github", f"quiet/r{i % QUIET_REPOS}").id, 1000 + i) is not None)
        assert recorded == DELIVERIES

        # Every PR: its two inline comments once, one check run, one notification per finding.
        for n in range(1, SCANS + 1):
            comments = fake.comments_of(REPO, n)
            markers = [key for c in comments for key, _sig in SIGNED_MARKER_RE.findall(c["body"])]
            assert len(comments) == 2 and len(set(markers)) == 2, (n, [c["body"][:80] for c in comments])
            runs = fake.runs_of(REPO, sha(f"scale:pr:{n}"))
            assert len(runs) == 1 and runs[0]["conclusion"] == "success", (n, runs)
        by_finding: dict[str, set[str]] = {}
        for r in receiver.findings_posts():
            for item in r.json():
                by_finding.setdefault(item["semgrep_finding"]["id"], set()).add(r.headers["webhook-id"])
        assert len(by_finding) == 2 * SCANS and all(len(w) == 1 for w in by_finding.values())
        assert fake.violations == []
        print(f"\nscale: {len(work)} requests sent in {sent_in:.1f} s ({sender.retries} retried after the kills), "
              f"all jobs done {settled_in:.1f} s after the start")
    finally:
        storage.close()
        github.stop()
