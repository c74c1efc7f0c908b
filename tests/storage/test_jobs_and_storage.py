"""The durable job table and storage guarantees the app relies on."""

from __future__ import annotations

import asyncio
import multiprocessing
import time

from forge_app.jobs.errors import GiveUp, RetryLater
from forge_app.jobs.worker import JobContext, Worker, backoff
from storage import open_storage


def test_migrations_are_recorded_and_idempotent(tmp_path):
    s = open_storage(str(tmp_path / "a.db"))
    names = [r["name"] for r in s.database.query("SELECT name FROM schema_migrations ORDER BY name")]
    assert names and names[0] == "0001_foundation"
    assert s.database.migrate() == []
    assert s.database.one("PRAGMA journal_mode")["journal_mode"] == "wal"


def test_upload_tokens_are_stored_hashed(storage):
    token = storage.create_upload_token("github", "o/r")
    rows = storage.database.query("SELECT * FROM upload_tokens")
    assert token not in repr(rows)
    assert storage.repository_for_token(token).full_name == "o/r"
    assert storage.repository_for_token(token + "x") is None


def test_idempotency_key_makes_enqueueing_twice_a_no_op(storage):
    assert storage.enqueue_job("k", {"a": 1}, key="same") is not None
    assert storage.enqueue_job("k", {"a": 2}, key="same") is None
    assert len(storage.jobs(kind="k")) == 1


def test_redelivery_is_recognised(storage):
    assert storage.accept_delivery("github", "d1", "ping", kind="github_event", payload={}) is True
    assert storage.accept_delivery("github", "d1", "ping", kind="github_event", payload={}) is False
    assert len(storage.jobs(kind="github_event")) == 1


def test_a_claimed_job_whose_worker_died_is_claimed_again_after_its_lease(storage):
    storage.enqueue_job("k", {}, key="x")
    first = storage.claim_job("w1", now=1e12, lease=10)
    assert first is not None and storage.claim_job("w2", now=1e12 + 5) is None
    again = storage.claim_job("w2", now=1e12 + 11)
    assert again is not None and again.id == first.id and again.attempts == 2


def _claim_many(path: str, worker: str, out) -> None:
    s = open_storage(path)
    got = []
    while (job := s.claim_job(worker)) is not None:
        got.append(job.id)
        s.complete_job(job.id)
    out.put(got)


def test_two_processes_never_claim_the_same_job(tmp_path):
    path = str(tmp_path / "shared.db")
    s = open_storage(path)
    for i in range(200):
        s.enqueue_job("k", {}, key=f"j{i}")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_many, args=(path, f"w{i}", out)) for i in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    claimed = results[0] + results[1]
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 200


def test_worker_retries_with_backoff_then_fails_for_good(storage, settings):
    calls = []

    async def flaky(ctx, job):
        calls.append(job.attempts)
        raise RuntimeError("boom")

    storage.enqueue_job("flaky", {}, key="f", max_attempts=3)
    worker = Worker(JobContext(storage, settings), {"flaky": flaky})
    far = time.time() + 10 * 86400
    for _ in range(5):
        asyncio.run(worker.run_once(now=far))
    job = storage.jobs(kind="flaky")[0]
    assert calls == [1, 2, 3] and job["status"] == "failed" and "boom" in job["last_error"]


def test_retry_later_uses_the_delay_it_was_given(storage, settings):
    async def limited(ctx, job):
        raise RetryLater("rate limited", delay=120)

    storage.enqueue_job("limited", {}, key="l")
    before = time.time()
    asyncio.run(Worker(JobContext(storage, settings), {"limited": limited}).run_once())
    job = storage.jobs(kind="limited")[0]
    assert job["status"] == "queued" and 119 <= job["run_at"] - before <= 125


def test_give_up_fails_at_once(storage, settings):
    async def hopeless(ctx, job):
        raise GiveUp("404 target")

    storage.enqueue_job("hopeless", {}, key="h")
    asyncio.run(Worker(JobContext(storage, settings), {"hopeless": hopeless}).run_once())
    assert storage.jobs(kind="hopeless")[0]["status"] == "failed"


def test_backoff_grows_and_is_capped():
    import random

    rng = random.Random(1)
    delays = [backoff(n, rng) for n in range(1, 20)]
    assert delays[0] <= 5 and delays[5] > delays[1]
    assert max(delays) <= 3600


def test_jobs_of_one_group_run_one_at_a_time(storage):
    storage.enqueue_job("publish_scan", {}, key="a", group="repo:1", run_at=1.0)
    storage.enqueue_job("publish_scan", {}, key="b", group="repo:1", run_at=2.0)
    storage.enqueue_job("notify_scan", {}, key="c", run_at=3.0)
    first = storage.claim_job("w1", now=1e12, lease=60)
    second = storage.claim_job("w2", now=1e12, lease=60)
    assert first.key == "a" and second.key == "c"  # b waits for a
    assert storage.claim_job("w3", now=1e12) is None
    storage.complete_job(first.id)
    assert storage.claim_job("w3", now=1e12).key == "b"
