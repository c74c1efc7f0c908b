"""Benchmark: a burst of signed GitHub `pull_request` webhooks, forge-app vs the bare stack.

Starts, one after the other, (1) a bare Starlette endpoint that only verifies the HMAC
(`bench/bare_webhook.py`, the ceiling of this stack) and (2) `forge-app serve` as a user
runs it (default settings, worker in the same process). Against each it sends, over
64 keep-alive connections for 20 s, the 28 KB `pull_request.opened` fixture with a
valid `X-Hub-Signature-256` and a unique `X-GitHub-Delivery`. It prints deliveries
acknowledged per second, p50/p99/max latency, errors, the ratio to the bare rate, then
checks in forge-app's database that every acknowledged delivery was stored exactly once
(one delivery row and one job each) and how long the worker took to drain the backlog.

Targets (issue #10): ratio >= 0.5, p99 < 50 ms, zero errors.

    .venv/bin/python bench/webhooks.py [--seconds 20] [--connections 64] [--generator wrk|python]

`make bench` installs wrk (apt-get) when it can; without it the built-in asyncio load
generator is used, which takes a CPU of its own and so lowers both rates.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests/fixtures/github/webhooks/pull_request/opened.json"
SECRET = "bench-webhook-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    accepted_ids: list[str] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0
    cpu_seconds: float | None = None  # the server process's CPU (user + system) during the measured phase
    # wrk reports these directly (it keeps no per-request list)
    answers: int | None = None
    accepted_total: int | None = None
    percentiles: tuple[float, float, float] | None = None

    def p(self, q: float) -> float:
        if self.percentiles is not None:
            return {0.5: self.percentiles[0], 0.99: self.percentiles[1], 1.0: self.percentiles[2]}[q]
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    @property
    def count(self) -> int:
        return self.answers if self.answers is not None else len(self.latencies)

    @property
    def accepted(self) -> int:
        return self.accepted_total if self.accepted_total is not None else len(self.accepted_ids)

    @property
    def cpu_per_answer(self) -> float | None:
        """Server CPU per answer (ms): unlike the rate, hardly moved by other load on the machine."""
        return self.cpu_seconds / self.count * 1000 if self.cpu_seconds is not None and self.count else None

    def line(self, label: str) -> str:
        cpu = f"  server CPU {self.cpu_per_answer * 1000:.0f} us/answer" if self.cpu_per_answer else ""
        return (f"{label:<34} {self.rate:8.0f}/s  p50 {self.p(0.5):6.1f} ms  p99 {self.p(0.99):7.1f} ms  "
                f"max {self.p(1.0):7.1f} ms  answers {self.count}  statuses {self.statuses}  errors {self.errors}{cpu}")

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def load(port: int, body: bytes, seconds: float, connections: int, warmup: float) -> Result:
    """Closed-loop load: each connection sends the next request as soon as the last is answered."""
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    head = (f"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: GitHub-Hookshot/bench\r\n"
            f"Content-Type: application/json\r\nX-GitHub-Event: pull_request\r\n"
            f"X-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\n")
    result = Result()
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                sent = time.perf_counter()
                if sent >= stop_at:
                    return
                delivery = str(uuid.uuid4())
                writer.write(f"{head}X-GitHub-Delivery: {delivery}\r\n\r\n".encode() + body)
                try:
                    status = await asyncio.wait_for(_read_response(reader), timeout=30)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    result.errors += 1
                    return
                done = time.perf_counter()
                if status == 202:
                    result.accepted_ids.append(delivery)
                if sent >= measure_from:
                    if status >= 300:
                        result.errors += 1
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    result.latencies.append(done - sent)
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    result.elapsed = seconds
    return result


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_wrk(port: int, body_path: Path, seconds: float, connections: int, warmup: float,
             pid: int | None = None) -> Result:
    """The same load from wrk (C, two threads): the load generator then takes little of the CPU."""
    signature = "sha256=" + hmac.new(SECRET.encode(), body_path.read_bytes(), hashlib.sha256).hexdigest()
    result = Result(elapsed=seconds, answers=0, accepted_total=0)
    for phase, duration in (("warmup", warmup), ("measure", seconds)):
        if duration <= 0:
            continue
        env = {**os.environ, "BENCH_BODY": str(body_path), "BENCH_SIGNATURE": signature,
               "BENCH_RUN": f"{phase}-{uuid.uuid4()}"}
        cpu_before = process_cpu(pid) if pid is not None and phase == "measure" else None
        out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration:g}s", "--timeout", "30s",
                              "-s", str(ROOT / "bench/webhooks.lua"), f"http://127.0.0.1:{port}"],
                             env=env, capture_output=True, text=True, check=True).stdout
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        fields = dict(kv.split("=") for kv in line.split()[1:])
        result.accepted_total = (result.accepted_total or 0) + int(fields["accepted"])
        if phase == "measure":
            if cpu_before is not None and pid is not None:
                result.cpu_seconds = process_cpu(pid) - cpu_before
            result.answers = int(fields["requests"])
            result.statuses = {202: int(fields["accepted"])}
            if int(fields["other"]):
                result.statuses[0] = int(fields["other"])  # anything but 202
            result.errors = int(fields["errors"]) + int(fields["other"])
            result.percentiles = (float(fields["p50"]), float(fields["p99"]), float(fields["max"]))
    return result


def generate(port: int, args: argparse.Namespace, pid: int | None = None) -> Result:
    if args.generator == "wrk":
        return load_wrk(port, FIXTURE, args.seconds, args.connections, args.warmup, pid)
    return asyncio.run(load(port, FIXTURE.read_bytes(), args.seconds, args.connections, args.warmup))


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_bare(body: bytes, args: argparse.Namespace, log: Path) -> Result:
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "bench/bare_webhook.py"), str(port), SECRET],
                                stdout=out, stderr=out, cwd=ROOT)
    try:
        wait_ready(port, proc)
        return generate(port, args, proc.pid)
    finally:
        stop(proc)


def run_forge_app(body: bytes, args: argparse.Namespace, tmp: Path, root: Path = ROOT) -> tuple[Result, str]:
    """`forge-app serve` from the checkout at `root` (default: this one) under the burst."""
    from storage import open_storage

    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    db = tmp / "forge-app.db"
    env = {**os.environ, "FORGE_APP_DATABASE": str(db), "GITHUB_WEBHOOK_SECRET": SECRET,
           "FORGE_APP_SECRET_KEY": "bench-secret-key-" + "x" * 32, "FORGE_APP_ADMIN_TOKEN": "bench-admin"}
    for name in ("GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_PRIVATE_KEY_PATH", "FORGE_APP_LOG_LEVEL"):
        env.pop(name, None)
    with (tmp / "serve.log").open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "forge_app.cli.main", "serve", "--port", str(port),
                                 *args.serve_arg],
                                stdout=out, stderr=out, cwd=root, env=env)
    worker = None
    if args.separate_worker:
        with (tmp / "worker.log").open("w") as out:
            worker = subprocess.Popen([sys.executable, "-m", "forge_app.cli.main", "worker"],
                                      stdout=out, stderr=out, cwd=root, env=env)
    try:
        wait_ready(port, proc)
        result = generate(port, args, proc.pid)
        storage = open_storage(str(db))
        drain_started = time.perf_counter()
        while storage.count_jobs("queued") and time.perf_counter() - drain_started < 120:
            time.sleep(0.2)
        drained = time.perf_counter() - drain_started
        left = storage.count_jobs("queued")
        counts = storage.delivery_counts("github", [f"github:{d}" for d in result.accepted_ids])
        storage.close()
    finally:
        stop(proc)
        if worker is not None:
            stop(worker)
    accepted = result.accepted
    if result.accepted_total is None:  # every id known: exact
        once = (len(set(result.accepted_ids)) == accepted and counts["deliveries"] == accepted
                and counts["jobs"] == accepted and counts["matched_jobs"] == accepted)
        detail = f"{counts['matched_jobs']} of the acknowledged ids found"
    else:  # wrk: ids are unique by construction; requests cut off at the end may be stored unanswered
        once = (counts["deliveries"] == counts["jobs"]
                and accepted <= counts["deliveries"] <= accepted + 2 * args.connections)
        detail = f"up to {2 * args.connections} cut off by the end of warm-up and run may be stored unanswered"
    check = (f"stored exactly once: {'yes' if once else 'NO'} ({accepted} acknowledged 202, "
             f"{counts['deliveries']} delivery rows, {counts['jobs']} jobs; {detail}); "
             f"backlog after the burst drained in {drained:.1f} s ({left} still queued)")
    return result, check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="extra argument for forge-app serve (e.g. --serve-arg=--no-worker)")
    parser.add_argument("--generator", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python",
                        help="load generator (default: wrk when installed, else the built-in asyncio one)")
    parser.add_argument("--separate-worker", action="store_true",
                        help="also start `forge-app worker` (use with --serve-arg=--no-worker)")
    parser.add_argument("--skip-bare", action="store_true", help="only measure forge-app (no ratio)")
    parser.add_argument("--compare-root", type=Path, action="append", default=[],
                        help="also measure forge-app from another checkout (e.g. a worktree of the commit before a "
                             "change), in the same run; its code is what `python -m forge_app` finds there")
    args = parser.parse_args()
    body = FIXTURE.read_bytes()
    tmp = Path(tempfile.mkdtemp(prefix="forge-bench-webhooks-"))
    print(f"{len(body)} byte pull_request body, {args.connections} connections, {args.seconds:g} s "
          f"(after {args.warmup:g} s warm-up), {os.cpu_count()} CPUs, load generator: {args.generator}")
    bare = Result(elapsed=1.0) if args.skip_bare else run_bare(body, args, tmp / "bare.log")
    print(bare.line("bare Starlette + HMAC (ceiling)"))
    app, check = run_forge_app(body, args, tmp / "app")
    print(app.line("forge-app serve (default)"))
    for other in args.compare_root:
        before, before_check = run_forge_app(body, args, tmp / f"compare-{other.name}", other.resolve())
        print(before.line(f"forge-app serve from {other.name}"))
        print(f"  ratio to bare {before.rate / bare.rate if bare.rate else float('nan'):.2f}; {before_check}")
    ratio = app.rate / bare.rate if bare.rate else float("nan")
    p99 = app.p(0.99)
    print(f"ratio to bare: {ratio:.2f} (target >= 0.5); p99 {p99:.1f} ms (target < 50 ms); "
          f"errors {app.errors} (target 0)")
    if bare.cpu_per_answer and app.cpu_per_answer:
        print(f"server CPU per answer, bare / forge-app: {bare.cpu_per_answer / app.cpu_per_answer:.2f} "
              "(the rate ratio the CPU alone allows; other load on the machine moves it much less)")
    print(check)
    print(f"logs in {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
