"""One HTTP POST of a notification, with the safety rails an outbound webhook needs.

- the target is vetted (forge_app.notify.ssrf) and the connection pinned to the
  checked address, Host header and TLS name unchanged;
- no redirects (a 3xx is a failure that says so), no proxies from the environment;
- 10 s for the whole attempt; at most 64 KB of the answer is read, raw, so a huge or
  compressed answer costs nothing;
- the outcome says whether retrying can help (5xx, 408, 429, timeouts, network errors)
  or not (other 4xx, refused targets). Errors name the host, never the full URL, since
  URLs such as Slack's carry a secret in their path.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from dataclasses import dataclass

import httpx

import forge_app
from forge_app.notify.retry import parse_retry_after
from forge_app.notify.ssrf import Target, TargetRefused, TargetUnresolvable, vet_url

TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
SNIPPET_CHARS = 200
USER_AGENT = f"forge-app/{forge_app.__version__} (notifications)"
RETRYABLE_4XX = (408, 429)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    latency_ms: int
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle costs more than a whole local delivery."""
    return httpx.create_ssl_context()


def _pinned(target: Target) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """Request URL, extra headers and extensions that connect to the vetted address."""
    url = httpx.URL(target.url)
    if target.address is None:
        return url, {}, {}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return url.copy_with(host=target.address), {"Host": url.netloc.decode("ascii")}, extensions


def _snippet(response: httpx.Response, raw: bytes) -> str:
    if response.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
        return ""
    text = " ".join(raw[:2048].decode("utf-8", "replace").split())
    return "".join(c for c in text if c.isprintable())[:SNIPPET_CHARS]


async def _read_capped(response: httpx.Response, deadline: float) -> bytes:
    """Up to MAX_RESPONSE_BYTES of the raw answer, within what is left of the deadline."""
    buf = bytearray()
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in response.aiter_raw():
                buf += chunk[: MAX_RESPONSE_BYTES - len(buf)]
                if len(buf) >= MAX_RESPONSE_BYTES:
                    break
    except (TimeoutError, httpx.HTTPError):
        pass  # the status is what counts; a slow or broken body does not change it
    return bytes(buf)


def judge(status: int, reason: str, snippet: str, headers: httpx.Headers, host: str, now: float,
          latency_ms: int) -> Outcome:
    """What an HTTP answer means for this delivery."""
    if 200 <= status < 300:
        return Outcome(True, status, latency_ms)
    detail = f"HTTP {status} {reason}".strip() + (f": {snippet}" if snippet else "")
    if 300 <= status < 400:
        location = headers.get("location", "")
        try:
            to = httpx.URL(location).host if location else ""
        except httpx.InvalidURL:
            to = ""
        where = f" to {to}" if to and to != host else (" on the same host" if to else "")
        return Outcome(False, status, latency_ms,
                       f"HTTP {status}: the target redirects{where}; redirects are not followed, "
                       "so update the integration's URL")
    retry_after = parse_retry_after(headers.get("retry-after"), now)
    if status in RETRYABLE_4XX or status >= 500:
        return Outcome(False, status, latency_ms, detail, True, retry_after)
    return Outcome(False, status, latency_ms, detail, False)


async def post_json(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool,
                    timeout: float | None = None) -> Outcome:
    """POST `body` (JSON bytes) to `url` once and say how it went; never raises for the target's faults."""
    timeout = TIMEOUT if timeout is None else timeout
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = await vet_url(url, allow_private=allow_private)
    except TargetRefused as exc:
        return Outcome(False, None, elapsed(), f"target refused: {exc}")
    except TargetUnresolvable as exc:
        return Outcome(False, None, elapsed(), str(exc), True)
    request_url, pin_headers, extensions = _pinned(target)
    send_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Accept-Encoding": "identity",
                    **headers, **pin_headers}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        async with httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False,
                                     verify=_tls_context()) as client:
            request = client.build_request("POST", request_url, content=body, headers=send_headers,
                                           extensions=extensions)
            async with asyncio.timeout_at(deadline):
                response = await client.send(request, stream=True)
            try:
                raw = await _read_capped(response, deadline)
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        return Outcome(False, None, elapsed(), f"{target.host} did not answer within {timeout:g} s", True)
    except httpx.HTTPError as exc:
        return Outcome(False, None, elapsed(),
                       f"cannot reach {target.host}:{target.port}: {type(exc).__name__} {_os_reason(exc)}".rstrip(),
                       True)
    return judge(response.status_code, response.reason_phrase, _snippet(response, raw), response.headers,
                 target.host, time.time(), elapsed())


def _os_reason(exc: BaseException) -> str:
    """The operating system's words for a network error (never the request URL)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:  # includes TLS errors (ssl.SSLError)
            return f"({cause.strerror})"
        cause = cause.__cause__ or cause.__context__
    return ""
