"""`kill -9` of `forge-app serve` in the middle of publishing a 50-finding PR, then a restart.

The fake GitHub creates the review (50 inline comments) and then holds its answer while the
test kills the server's whole process group with SIGKILL: the comments exist on GitHub, the
server never learned their ids. After a restart on the same database, the job's 20 s lease runs
out, the new worker runs it again, finds the comments by their hidden markers and posts nothing
twice; the summary note (a finding outside the diff plus the one past the 50-comment cap) and
the check run are published once. All within 30 s of the restart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from forge_app.core.review.render import SIGNED_MARKER_RE, SUMMARY_MARKER
from tests.conftest import ADMIN_TOKEN, SECRET_KEY
from tests.github.gh_helpers import PR, REPO, WEBHOOK_SECRET, open_pull_request, sha

EVAL = ["python.lang.security.eval"]
RECOVERY_DEADLINE = 30.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _serve(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen]:
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "forge_app.cli.main", "serve", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.mark.slow
def test_kill_9_mid_publish_then_restart_posts_everything_exactly_once(fake_github, settings, storage,
                                                                      tmp_path: Path, monkeypatch) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "FORGE_APP_"))}
    env.update({"GITHUB_APP_ID": str(fake_github.app_id), "GITHUB_PRIVATE_KEY": fake_github.private_key,
                "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET, "FORGE_APP_GITHUB_API_URL": fake_github.url,
                "FORGE_APP_DATABASE": settings.database, "FORGE_APP_SECRET_KEY": SECRET_KEY,
                "FORGE_APP_ADMIN_TOKEN": ADMIN_TOKEN, "FORGE_APP_PUBLIC_URL": f"http://127.0.0.1:{port}"})
    log = tmp_path / "serve.log"

    review_posted = threading.Event()
    original = fake_github._create_review

    def create_review_then_hang(*args, **kwargs):
        response = original(*args, **kwargs)
        if not review_posted.is_set():
            review_posted.set()
            time.sleep(3)  # the server is killed while it waits for this answer
        return response

    monkeypatch.setattr(fake_github, "_create_review", create_review_then_hang)
    legacy = "".join(f"v{i} = {i}\n" for i in range(40)) + "y = eval(z)\n"  # on the base, unflagged there
    base = {"legacy.py": legacy}
    head = {"legacy.py": legacy, "pkg/new.py": "import ast\n" + "".join(f"x{i} = eval(s{i})\n" for i in range(50))}

    with _serve(env, port, log) as first:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            open_pull_request(client, storage, fake_github, tmp_path, base, head, head_sha=sha("kill9"),
                              rules=EVAL, base_rules=[])
        assert review_posted.wait(20), log.read_text()
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    assert len(fake_github.comments_of(REPO, PR)) == 50  # posted on GitHub, never recorded by the server
    [job] = storage.jobs(kind="publish_scan")
    assert job["status"] == "running"  # held by the dead process

    restarted = time.monotonic()
    with _serve(env, port, log):
        while storage.jobs(kind="publish_scan")[0]["status"] != "done":
            assert time.monotonic() - restarted < RECOVERY_DEADLINE, log.read_text()[-3000:]
            time.sleep(0.2)
        recovered_in = time.monotonic() - restarted

    comments = fake_github.comments_of(REPO, PR)
    # The server signs its markers with its own key: read the fingerprints, not the signatures.
    markers = [key for c in comments for key, _sig in SIGNED_MARKER_RE.findall(c["body"])]
    assert len(comments) == 50 and len(set(markers)) == 50, "an inline comment was posted twice"
    assert len(fake_github.reviews_of(REPO, PR)) == 1
    summaries = [c for c in fake_github.issue_comments.values() if c["body"].lstrip().startswith(SUMMARY_MARKER)]
    assert len(summaries) == 1 and "`legacy.py:41`" in summaries[0]["body"]
    runs = fake_github.runs_of(REPO, sha("kill9"))
    assert runs and runs[-1]["status"] == "completed" and runs[-1]["conclusion"] == "success"
    assert len(runs) == 1, [r.get("status") for r in runs]
    print(f"\nrecovered {recovered_in:.1f} s after the restart")
