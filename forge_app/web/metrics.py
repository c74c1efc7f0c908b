"""Prometheus metrics on /metrics: the contract's names through prometheus_client.

Counters and histograms live in this process's default registry. When several processes
serve one database (`serve` plus `forge-app worker`s), set PROMETHEUS_MULTIPROC_DIR to a
directory they share: prometheus_client then keeps each process's numbers in files
there and /metrics adds them up. Job counts per state are read from the database at
scrape time, so they are right whichever process ran the jobs.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

WEBHOOK_DELIVERIES = Counter("forge_app_webhook_deliveries", "Webhook deliveries received, by outcome",
                             ["forge", "outcome"])
JOB_RUNS = Counter("forge_app_job_runs", "Job handler runs, by outcome (done, retry, dead, released)",
                   ["kind", "outcome"])
FORGE_REQUESTS = Counter("forge_app_forge_requests", "HTTP requests made to a forge's API, by answer status",
                         ["forge", "status"])
NOTIFICATION_DELIVERIES = Counter("forge_app_notification_deliveries",
                                  "Notification delivery attempts (webhook, slack, email), by outcome",
                                  ["type", "outcome"])
HTTP_LATENCY = Histogram("forge_app_http_request_duration_seconds", "Time to answer an HTTP request",
                         ["method", "route", "status"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
SCAN_FORGE_REQUESTS = Histogram("forge_app_scan_forge_requests", "Forge API requests spent publishing one PR scan",
                                ["forge"], buckets=(2, 4, 6, 8, 10, 15, 20, 30, 50, 100, 250, 1000))


_children: dict[tuple[Any, ...], Any] = {}  # labelled metrics looked up once: labels() costs more than inc()


def _child(metric: Any, *values: str) -> Any:
    key = (metric, *values)
    child = _children.get(key)
    if child is None:
        child = _children.setdefault(key, metric.labels(*values))
    return child


def webhook_delivery(forge: str, outcome: str) -> None:
    """outcome: accepted, duplicate or rejected."""
    _child(WEBHOOK_DELIVERIES, forge, outcome).inc()


_scan_requests: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar("scan_requests", default=None)


def forge_request(forge: str, status: int | str) -> None:
    """Every forge adapter calls this per HTTP answer; it also counts toward the scan being published."""
    FORGE_REQUESTS.labels(forge=forge, status=str(status)).inc()
    tally = _scan_requests.get()
    if tally is not None:
        tally["n"] = tally.get("n", 0) + 1


@contextlib.contextmanager
def counting_scan_requests(forge: str) -> Any:
    """Count the forge requests made inside the block (threads started from it included);
    the total goes to the `forge_app_scan_forge_requests` histogram and to the caller."""
    outer = _scan_requests.get()
    if outer is not None:  # an adapter already counts this publication (e.g. a version lookup first)
        yield outer
        return
    tally: dict[str, int] = {"n": 0}
    token = _scan_requests.set(tally)
    try:
        yield tally
    finally:
        _scan_requests.reset(token)
        SCAN_FORGE_REQUESTS.labels(forge=forge).observe(tally["n"])


def notification_delivery(kind: str, outcome: str) -> None:
    NOTIFICATION_DELIVERIES.labels(type=kind, outcome=outcome).inc()


class _JobStates:
    """forge_app_jobs{state}: read from the database at scrape time."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Any:
        gauge = GaugeMetricFamily("forge_app_jobs", "Jobs by state (queued, running, dead)", labels=["state"])
        for state, n in sorted(self._counts().items()):
            gauge.add_metric([state], float(n))
        yield gauge


def prometheus_text(job_counts: Callable[[], dict[str, int]] | None = None) -> str:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry).decode()
    else:
        from prometheus_client import REGISTRY

        text = generate_latest(REGISTRY).decode()
    if job_counts is not None:
        states = CollectorRegistry()
        states.register(_JobStates(job_counts))
        text += generate_latest(states).decode()
    return text


class LatencyMiddleware:
    """Observes every HTTP answer's latency, labelled by route template (never the raw path)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            _child(HTTP_LATENCY, scope.get("method", ""), getattr(route, "path", "other"),
                   str(status["code"])).observe(time.perf_counter() - started)


class Metrics:
    """Ad-hoc counters (e.g. scans uploaded) beside the prometheus_client ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._help: dict[str, str] = {}

    def inc(self, name: str, help_text: str, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._help[name] = help_text
            self._counters[(name, tuple(sorted(labels.items())))] += amount

    def render(self, gauges: dict[str, tuple[str, float]] | None = None,
               job_counts: Callable[[], dict[str, int]] | None = None) -> str:
        lines: list[str] = []
        with self._lock:
            names = sorted({n for n, _ in self._counters})
            for name in names:
                lines.append(f"# HELP {name} {self._help[name]}")
                lines.append(f"# TYPE {name} counter")
                for (n, labels), value in sorted(self._counters.items()):
                    if n != name:
                        continue
                    label_text = ",".join(f'{k}="{v}"' for k, v in labels)
                    lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
        for name, (help_text, value) in sorted((gauges or {}).items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n" + prometheus_text(job_counts)
