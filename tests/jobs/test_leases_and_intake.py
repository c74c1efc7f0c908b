"""Short leases with heartbeats, giving a job back on shutdown, group-committed intake, retention."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import UTC

from forge_app.jobs.retention import MIN_DAYS, cutoff, prune
from forge_app.jobs.worker import JobContext, Worker, WorkerThread
from storage import open_storage


def test_a_running_job_keeps_its_lease_while_its_worker_beats(storage, settings):
    started, release = threading.Event(), threading.Event()

    async def slow(ctx, job):
        started.set()
        await asyncio.to_thread(release.wait, 10)

    storage.enqueue_job("slow", {}, key="s")
    worker = Worker(JobContext(storage, settings), {"slow": slow}, "w1", lease=0.6, heartbeat=0.1)
    runner = WorkerThread(worker)
    runner.start()
    assert started.wait(5)
    time.sleep(1.5)  # more than two leases: only the heartbeat keeps it
    assert storage.claim_job("w2") is None
    release.set()
    runner.stop(grace=5)
    [job] = storage.jobs(kind="slow")
    assert job["status"] == "done" and job["attempts"] == 1


def test_a_job_of_a_dead_worker_is_claimed_again_once_its_short_lease_ends(storage):
    storage.enqueue_job("k", {}, key="x")
    first = storage.claim_job("dead-worker")  # then the process is killed: no heartbeat any more
    assert first is not None and storage.claim_job("w2") is None
    again = storage.claim_job("w2", now=time.time() + 21)  # LEASE_SECONDS is 20
    assert again is not None and again.id == first.id


def test_stopping_gives_the_running_job_back_without_counting_the_attempt(storage, settings):
    started = threading.Event()

    async def endless(ctx, job):
        started.set()
        await asyncio.sleep(60)

    storage.enqueue_job("endless", {}, key="e")
    runner = WorkerThread(Worker(JobContext(storage, settings), {"endless": endless}, "w1"))
    runner.start()
    assert started.wait(5)
    begun = time.monotonic()
    runner.stop(grace=0.2)  # what SIGTERM does in `serve`
    assert time.monotonic() - begun < 5
    [job] = storage.jobs(kind="endless")
    assert job["status"] == "queued" and job["attempts"] == 0 and job["locked_by"] is None
    assert storage.claim_job("w2") is not None  # at once, not after a lease


def test_dead_jobs_are_listed_and_can_be_retried(storage):
    job_id = storage.enqueue_job("k", {"scan_id": 1}, key="d", group="repo:1")
    storage.claim_job("w1")
    storage.fail_job(job_id, "HTTP 500 from the forge")
    assert storage.job_state_counts() == {"queued": 0, "running": 0, "dead": 1}
    [row] = storage.list_jobs("dead")
    assert row["kind"] == "k" and row["group_key"] == "repo:1" and "500" in row["last_error"]
    assert storage.requeue_job(job_id) == "failed"
    assert storage.job_state_counts()["queued"] == 1 and storage.claim_job("w1").attempts == 1
    assert storage.requeue_job(job_id) == "running"  # left alone
    assert storage.requeue_job(999) is None


def test_claiming_skips_busy_groups_and_prefers_expired_leases(storage):
    storage.enqueue_job("k", {}, key="a", group="g", run_at=1.0)
    storage.enqueue_job("k", {}, key="b", group="g", run_at=2.0)
    storage.enqueue_job("k", {}, key="c", run_at=3.0)
    a = storage.claim_job("w1", now=10.0, lease=5)
    assert a.key == "a" and storage.claim_job("w2", now=10.0).key == "c"
    assert storage.claim_job("w3", now=11.0) is None  # b waits for a's group
    again = storage.claim_job("w3", now=16.0)  # a's lease ran out: a first, before b
    assert again.key == "a"


def test_redelivery_through_the_group_writer_is_a_no_op(tmp_path):
    s = open_storage(str(tmp_path / "g.db"))

    async def burst():
        return await asyncio.gather(*(
            s.accept_delivery_async("github", f"d{i % 50}", "pull_request", kind="github_event", payload={"i": i})
            for i in range(100)))

    results = asyncio.run(burst())
    assert results.count(True) == 50 and results.count(False) == 50
    assert s.delivery_counts("github") == {"deliveries": 50, "jobs": 50, "matched_jobs": 0}
    assert s.intake_writer().batches < 100  # many deliveries per commit
    s.close()


def test_retention_prunes_old_finished_work_in_batches_and_keeps_the_rest(storage):
    old = "2000-01-01T00:00:00+00:00"
    for i in range(7):
        job_id = storage.enqueue_job("k", {}, key=f"old{i}")
        storage.complete_job(job_id)
        storage.accept_delivery("github", f"old{i}", "push", kind="github_event", payload={})
    storage.database.db.execute("UPDATE jobs SET updated_at = ?", [old])
    storage.database.db.execute("UPDATE deliveries SET received_at = ?", [old])
    storage.database.db.conn.commit()
    fresh = storage.enqueue_job("k", {}, key="fresh")
    storage.complete_job(fresh)
    storage.accept_delivery("github", "recent", "push", kind="github_event", payload={})
    deleted = asyncio.run(prune(storage, 30, batch=3, pause=0))
    assert deleted == 7 + 7  # 7 done jobs and 7 deliveries; the 7 delivery jobs are still queued
    left = {j["idempotency_key"] for j in storage.jobs()}
    assert "fresh" in left and not any(k.startswith("old") for k in left)
    assert storage.accept_delivery("github", "recent", "push", kind="github_event", payload={}) is False


def test_the_dedupe_window_never_drops_below_three_days():
    from datetime import datetime

    now = datetime(2026, 1, 10, tzinfo=UTC)
    assert cutoff(0, now) == cutoff(MIN_DAYS, now) == "2026-01-07T00:00:00+00:00"
    assert cutoff(30, now) == "2025-12-11T00:00:00+00:00"


def test_a_starting_worker_frees_the_jobs_of_a_dead_local_process_at_once(storage):
    import subprocess
    import sys

    from forge_app.jobs.worker import local_identity, reclaim_dead_local_leases

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # that process has exited
    host = local_identity()
    a = storage.enqueue_job("k", {}, key="a")
    b = storage.enqueue_job("k", {}, key="b")
    storage.claim_job(f"{host}:{dead_pid}:abc")
    storage.claim_job(f"{host}:{os.getppid()}:def")  # alive: left alone
    assert reclaim_dead_local_leases(storage) == 1
    again = storage.claim_job("w2")
    assert again is not None and again.id == a and storage.claim_job("w3") is None
    assert b


def test_an_upload_is_answered_only_after_an_fsynced_commit_covers_it(client, storage, upload_token):
    """The 201 of an upload means what a webhook's 202 means: the intake writer (synchronous=FULL)
    committed after the scan was stored, so the WAL holding it was fsync'ed before the answer."""
    from tests.web.scan_helpers import finding, upload

    writer = storage.intake_writer()
    assert writer is not None and writer.synchronous == "FULL"
    scans_seen_by_fsynced_commits: list[int] = []
    real_run = writer.run

    async def watching_run(write):
        def watched(db):
            scans_seen_by_fsynced_commits.append(db.conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0])
            return write(db)
        return await real_run(watched)

    writer.run = watching_run
    r = client.post("/api/v1/scans", json=upload([finding()]), headers={"Authorization": f"Bearer {upload_token}"})
    assert r.status_code == 201, r.text
    assert scans_seen_by_fsynced_commits == [1]


def test_a_failing_write_in_a_batch_of_deliveries_fails_alone(tmp_path):
    s = open_storage(str(tmp_path / "b.db"))
    s.accept_delivery("github", "old", "pull_request", kind="github_event", payload={})
    writer = s.intake_writer()

    def broken(db):
        raise ValueError("this write is broken")

    futures = [s.submit_delivery("github", f"n{i}", "pull_request", kind="github_event", payload={"i": i},
                                 group="g") for i in range(20)]
    failing = writer.submit(broken)
    futures += [s.submit_delivery("github", d, "pull_request", kind="github_event", payload={})
                for d in ("old", "n3", "late")]
    assert [f.result(5) for f in futures] == [True] * 20 + [False, False, True]
    try:
        failing.result(5)
    except ValueError as exc:
        assert "broken" in str(exc)
    else:
        raise AssertionError("the broken write should have failed")
    assert s.delivery_counts("github") == {"deliveries": 22, "jobs": 22, "matched_jobs": 0}
    [job] = [j for j in s.jobs(kind="github_event") if j["idempotency_key"] == "github:n7"]
    assert job["payload"] == {"i": 7} and job["group_key"] == "g" and job["status"] == "queued"
    s.close()


def test_a_worker_makes_way_while_deliveries_arrive(storage, settings):
    """With intake busy, the in-process worker pauses ~3x as long as each job took (BUSY_SHARE),
    so answering webhooks comes first; without it, jobs run back to back."""
    spans: list[tuple[float, float]] = []

    async def job(ctx, j):
        begun = time.monotonic()
        await asyncio.sleep(0.02)
        spans.append((begun, time.monotonic()))

    def gaps(busy: bool) -> list[float]:
        spans.clear()
        for i in range(3):
            storage.enqueue_job("k", {}, key=f"{busy}-{i}")
        worker = Worker(JobContext(storage, settings), {"k": job}, "w", yield_to=lambda: busy)
        runner = WorkerThread(worker)
        runner.start()
        deadline = time.monotonic() + 10
        while len(spans) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        runner.stop(grace=1)
        return [spans[i + 1][0] - spans[i][1] for i in range(2)]

    assert all(gap >= 0.05 for gap in gaps(busy=True))  # 3 x 20 ms, less timer slack
    assert all(gap < 0.5 for gap in gaps(busy=False))  # no pause (generous: the machine may be loaded)


def test_a_failed_hand_over_never_leaves_a_loops_later_deliveries_waiting(tmp_path, monkeypatch):
    """The loop hands the writer one batch at a time: if committing one blows up unexpectedly, its
    callers get the error and the next batch still goes through (nothing waits forever)."""
    s = open_storage(str(tmp_path / "h.db"))
    writer = s.intake_writer()
    real_commit = writer._commit
    calls = {"n": 0}

    def flaky_commit(db, items):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug in the writer")
        return real_commit(db, items)

    monkeypatch.setattr(writer, "_commit", flaky_commit)

    async def two_batches():
        first = await asyncio.wait_for(asyncio.gather(
            s.accept_delivery_async("github", "a", "pull_request", kind="github_event", payload={}),
            return_exceptions=True), timeout=5)
        second = await asyncio.wait_for(
            s.accept_delivery_async("github", "b", "pull_request", kind="github_event", payload={}), timeout=5)
        return first, second

    first, second = asyncio.run(two_batches())
    assert isinstance(first[0], RuntimeError) and second is True
    assert s.delivery_counts("github")["deliveries"] == 1
    s.close()
