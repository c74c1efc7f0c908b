"""Several `forge-app serve` and `forge-app worker` processes on loopback, on one database.

For the scale test and `bench/scale.py`: each process is started in its own session (so a
`kill -9` takes its whole process group), logs to its own file, and is stopped with SIGTERM
(then SIGKILL) at the end. Nothing here knows which database backend the URL names.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without any forge-app or forge setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "FORGE_APP_", "SLACK_", "PROMETHEUS_MULTIPROC"))}
    env.update(extra)
    return env


@dataclass
class Process:
    role: str  # "serve" | "worker"
    proc: subprocess.Popen
    log: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs, as after an OOM kill or a power cut."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        if self.alive:
            self.kill9()

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


@dataclass
class Cluster:
    env: dict[str, str]
    logs: Path
    processes: list[Process] = field(default_factory=list)
    _rr: itertools.count = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _spawn(self, role: str, args: list[str], port: int | None) -> Process:
        n = sum(1 for p in self.processes if p.role == role)
        log = self.logs / f"{role}-{n}.log"
        env = dict(self.env)
        if port is not None:
            env.setdefault("FORGE_APP_PUBLIC_URL", f"http://127.0.0.1:{port}")
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "forge_app.cli.main", *args], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        process = Process(role, proc, log, port)
        self.processes.append(process)
        return process

    def start(self, serves: int, workers: int, *, serve_worker: bool = False, timeout: float = 60.0) -> None:
        """Start them all at once (migrations run once, under the backend's lock), then wait for `serve`s."""
        for _ in range(serves):
            port = free_port()
            args = ["serve", "--port", str(port)] + ([] if serve_worker else ["--no-worker"])
            self._spawn("serve", args, port)
        for _ in range(workers):
            self._spawn("worker", ["worker"], None)
        deadline = time.monotonic() + timeout
        for p in self.serves:
            while True:
                assert p.alive, f"{p.log.name} exited:\n{p.tail()}"
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{p.url}/readyz", timeout=2).status_code == 200:
                        break
                assert time.monotonic() < deadline, f"{p.log.name} not ready:\n{p.tail()}"
                time.sleep(0.05)
        for p in self.workers:
            assert p.alive, f"{p.log.name} exited:\n{p.tail()}"

    @property
    def serves(self) -> list[Process]:
        return [p for p in self.processes if p.role == "serve"]

    @property
    def workers(self) -> list[Process]:
        return [p for p in self.processes if p.role == "worker"]

    def live_urls(self) -> list[str]:
        return [p.url for p in self.serves if p.alive]

    def next_url(self) -> str:
        """Round robin over the live `serve`s, as a load balancer would."""
        urls = self.live_urls()
        assert urls, "no serve process is alive"
        with self._lock:
            return urls[next(self._rr) % len(urls)]

    def stop(self) -> None:
        for p in self.processes:
            p.stop()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
