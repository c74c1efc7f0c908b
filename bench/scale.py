"""Benchmark: acknowledged deliveries/s and drained jobs/s with 1, 2 and 4 `serve` / `worker`
processes on PostgreSQL, against one process on SQLite, in the same run (issue #16).

For each setup, on a fresh database: N `forge-app serve --no-worker` processes take a burst of
signed GitHub `pull_request` deliveries (28 KB fixture bodies spread over 64 installations, so
their jobs are not all in one group; unique `X-GitHub-Delivery`) from wrk, one wrk per server,
64 connections in all, for `--seconds` after a 1 s warm-up: deliveries acknowledged per second
and p99. Then the servers stop and N `forge-app worker` processes drain the backlog: jobs done
per second, measured between 10 % and 90 % of the backlog (process start-up left out). The
SQLite line is `serve` on its default SQLite file (1 process) and 1 worker.

    .venv/bin/python bench/scale.py [--seconds 8] [--processes 1,2,4] [--postgres URL]

PostgreSQL: `--postgres` or `FORGE_APP_BENCH_POSTGRES_URL` (default
postgresql://postgres@127.0.0.1:5432/postgres); a database is created per setup and dropped
after. Without an answering server only the SQLite line is measured, and it says so.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage import open_storage  # noqa: E402
from tests.support.cluster import Cluster, base_env  # noqa: E402

FIXTURE = ROOT / "tests/fixtures/github/webhooks/pull_request/opened.json"
SECRET = "bench-webhook-secret-0123456789abcdef"
KEY = "bench-secret-key-0123456789abcdef-0123456789"
INSTALLATIONS = 64
CONNECTIONS = 64
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Burst:
    accepted: int
    requests: int
    errors: int
    p99_ms: float
    seconds: float

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds


@dataclass
class Drain:
    jobs: int
    rate: float
    total_s: float
    done: bool


def bodies(tmp: Path) -> Path:
    """One body per installation (and repository), each with its signature, for bench/scale.lua."""
    base = json.loads(FIXTURE.read_text())
    lines = []
    for i in range(INSTALLATIONS):
        body = json.loads(json.dumps(base))
        body["installation"] = {"id": 1000 + i, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
        body["repository"]["full_name"] = f"bench/r{i}"
        body["repository"]["name"] = f"r{i}"
        raw = json.dumps(body).encode()
        path = tmp / f"body-{i}.json"
        path.write_bytes(raw)
        lines.append(f"{path} sha256={hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()}")
    manifest = tmp / "bodies.txt"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def wrk_burst(urls: list[str], manifest: Path, seconds: float) -> Burst:
    """One wrk per server at once, the connections split between them; the 1 s warm-up not counted."""
    per = max(2, CONNECTIONS // len(urls))
    totals = Burst(0, 0, 0, 0.0, seconds)
    for phase, duration in (("warmup", 1.0), ("measure", seconds)):
        procs = []
        for url in urls:
            env = {**os.environ, "BENCH_BODIES": str(manifest), "BENCH_RUN": f"{phase}-{uuid.uuid4()}"}
            procs.append(subprocess.Popen(
                ["wrk", "-t1", f"-c{per}", f"-d{duration:g}s", "--timeout", "30s", "-s",
                 str(ROOT / "bench/scale.lua"), url], env=env, stdout=subprocess.PIPE, text=True))
        for proc in procs:
            out, _ = proc.communicate(timeout=duration + 60)
            if phase != "measure":
                continue
            line = next(x for x in out.splitlines() if x.startswith("RESULT "))
            fields = dict(kv.split("=") for kv in line.split()[1:])
            totals.accepted += int(fields["accepted"])
            totals.requests += int(fields["requests"])
            totals.errors += int(fields["errors"]) + int(fields["other"])
            totals.p99_ms = max(totals.p99_ms, float(fields["p99"]))
    return totals


def drain(cluster: Cluster, database: str, workers: int, timeout: float) -> Drain:
    storage = open_storage(database)
    try:
        backlog = storage.job_state_counts()["queued"]
        started = time.monotonic()
        cluster.add_workers(workers)
        marks: dict[str, float] = {}
        while True:
            done = storage.count_jobs("done")
            now = time.monotonic()
            for name, share in (("low", 0.1), ("high", 0.9)):
                if name not in marks and done >= share * backlog:
                    marks[name] = now
            if done >= backlog or now - started > timeout:
                break
            time.sleep(0.1)
        finished = done >= backlog
        span = marks.get("high", now) - marks.get("low", started)
        moved = (0.8 * backlog) if "high" in marks else max(0, done - 0.1 * backlog)
        return Drain(backlog, moved / span if span > 0 else 0.0, time.monotonic() - started, finished)
    finally:
        storage.close()


@contextlib.contextmanager
def postgres_database(server: str) -> Iterator[str]:
    import psycopg

    name = f"forge_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            parts = urlsplit(server)
            yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_answers(server: str) -> str | None:
    """None when a server answers, else why not."""
    import importlib.util

    if importlib.util.find_spec("storage.postgres") is None:
        return "this storage has no PostgreSQL backend"
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        psycopg.connect(server, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


def run_setup(label: str, database: str, processes: int, manifest: Path, args: argparse.Namespace,
              tmp: Path) -> tuple[Burst, Drain]:
    logs = tmp / f"logs-{label.replace(' ', '-')}"
    logs.mkdir()
    env = base_env({"FORGE_APP_DATABASE": database, "FORGE_APP_SECRET_KEY": KEY,
                    "GITHUB_WEBHOOK_SECRET": SECRET, "FORGE_APP_LOG_LEVEL": "WARNING"})
    with Cluster(env, logs) as cluster:
        cluster.start(serves=processes, workers=0)
        burst = wrk_burst(cluster.live_urls(), manifest, args.seconds)
        for p in cluster.serves:
            p.stop()
        result = drain(cluster, database, processes, args.drain_timeout)
    return burst, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--postgres", default=os.environ.get("FORGE_APP_BENCH_POSTGRES_URL") or DEFAULT_POSTGRES)
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/scale.py needs wrk (apt-get install wrk); skipped")
        return 0
    counts = [int(n) for n in args.processes.split(",") if n.strip()]
    rows: list[tuple[str, Burst, Drain]] = []
    with tempfile.TemporaryDirectory(prefix="forge-scale-") as tmp_name:
        tmp = Path(tmp_name)
        manifest = bodies(tmp)
        burst, result = run_setup("sqlite 1", str(tmp / "sqlite" / "forge-app.db"), 1, manifest, args, tmp)
        rows.append(("SQLite, 1 serve / 1 worker", burst, result))
        why_not = postgres_answers(args.postgres)
        if why_not is not None:
            print(f"PostgreSQL at {urlsplit(args.postgres).hostname}:{urlsplit(args.postgres).port} does not "
                  f"answer ({why_not}): only SQLite measured")
        else:
            for n in counts:
                with postgres_database(args.postgres) as url:
                    burst, result = run_setup(f"postgres {n}", url, n, manifest, args, tmp)
                rows.append((f"PostgreSQL, {n} serve / {n} worker{'s' if n > 1 else ''}", burst, result))
    print(f"\nbench/scale.py: {args.seconds:g} s bursts, {CONNECTIONS} connections (wrk), "
          f"{INSTALLATIONS} installations; same run, same machine")
    print(f"{'setup':<36} {'acked/s':>9} {'p99 ms':>8} {'errors':>7} {'backlog':>8} {'drained jobs/s':>15}")
    base = rows[0]
    for label, burst, result in rows:
        note = "" if result.done else f" (not drained in {result.total_s:.0f} s)"
        print(f"{label:<36} {burst.rate:9.0f} {burst.p99_ms:8.1f} {burst.errors:7d} {result.jobs:8d} "
              f"{result.rate:15.0f}{note}")
    if len(rows) > 1:
        print("ratios to SQLite: " + ", ".join(
            f"{label.split(',')[1].strip()}: {b.rate / base[1].rate:.2f}x acked, {d.rate / base[2].rate:.2f}x drained"
            for label, b, d in rows[1:] if base[1].rate and base[2].rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
