"""Reading request bodies with hard limits, so an oversized body or a gzip bomb gets 413, not an OOM."""

from __future__ import annotations

import json
import logging
import zlib
from itertools import compress
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from forge_app.web.errors import ApiError

log = logging.getLogger(__name__)


def require_json(request: Request) -> None:
    """415 for a body declared as anything but JSON (`application/json`, or `application/<x>+json`
    such as SARIF's). A request with no Content-Type at all is read as JSON, as it always was."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    kind = declared.split(";", 1)[0].strip().lower()
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return
    raise ApiError(415, "unsupported_media_type",
                   f"the body must be JSON (Content-Type: application/json), not {kind[:100] or 'empty'!r}")


def _too_large(limit: int, what: str) -> ApiError:
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    return ApiError(413, "payload_too_large", f"the {what} is larger than the limit of {size}")


async def read_raw(request: Request, limit: int) -> bytes:
    """The body as sent, refusing early on Content-Length and again while streaming."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, "request body")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, "request body")
            chunks.append(chunk)
    except ClientDisconnect:
        # A cancelled CI job or a closed laptop: not an error of ours, so no traceback.
        log.debug("client disconnected while sending %s %s", request.method, request.url.path)
        raise ApiError(400, "client_disconnected", "the client closed the connection before the body was read") \
            from None
    return b"".join(chunks)


def inflate(data: bytes, limit: int) -> bytes:
    """Gunzip with a cap on the output: decompression stops at `limit` bytes."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    try:
        buf = data
        while buf:
            out += d.decompress(buf, limit + 1 - len(out))
            if len(out) > limit:
                raise _too_large(limit, "decompressed body")
            buf = d.unconsumed_tail
        out += d.flush()
    except zlib.error:
        raise ApiError(400, "invalid_encoding", "Content-Encoding is gzip but the body is not valid gzip") from None
    if len(out) > limit:
        raise _too_large(limit, "decompressed body")
    if not d.eof:
        raise ApiError(400, "invalid_encoding", "the gzip body is truncated")
    return out  # type: ignore[return-value]  # a bytearray: copying 200 MB into bytes would double the peak


async def read_body(request: Request, limit: int, inflated_limit: int) -> bytes:
    raw = await read_raw(request, limit)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return inflate(raw, inflated_limit)
    if encoding not in ("", "identity"):
        raise ApiError(415, "unsupported_media_type", f"Content-Encoding {encoding!r} is not supported; use gzip")
    return raw


MAX_DEPTH = 64  # arrays and objects inside each other; real payloads stay under 20
MAX_STRING = 1024 * 1024  # one string in an admin or webhook body (a PR description is at most 64k characters)
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # what SQLite can store


def parse_json(body: bytes, *, check: bool = True) -> Any:
    """orjson only (it refuses lone surrogates, NaN and more than 1,024 levels); the stdlib parser
    only words the error, its result is never used. With `check` (every route but the upload,
    whose findings are validated field by field), nesting deeper than MAX_DEPTH and integers
    SQLite cannot store are refused too."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", _describe(body, exc)) from None
    if check:
        check_shape(doc, body=body)
    return doc


def check_shape(doc: Any, max_depth: int = MAX_DEPTH, *, body: bytes | None = None) -> None:
    """Iteratively, so a deep document cannot exhaust the stack here either.

    Given the `body` it was parsed from and no longer than MAX_STRING, no string can be too
    long (a decoded string is never longer than its JSON text); when its bytes also rule out
    deep nesting and long numbers (a typical 28 KB `pull_request` delivery does), nothing is
    walked; otherwise only containers and integers are, with C-level iteration."""
    if body is not None and len(body) <= MAX_STRING:
        if _few_containers(body, max_depth) and _LONG_DIGIT_RUN not in body.translate(_DIGITS):
            return  # nesting bounded by the number of brackets; no number long enough to overflow
        _check_containers_and_ints(doc, max_depth)
        return
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            if isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
                raise ApiError(400, "invalid_json", "the body holds an integer outside the signed 64-bit range")
            if isinstance(value, str) and len(value) > MAX_STRING:
                raise ApiError(400, "invalid_json", f"the body holds a string longer than {MAX_STRING // 1024} KB")
            continue
        if depth > max_depth:
            raise ApiError(400, "invalid_json", f"the body is nested more than {max_depth} levels deep")
        if isinstance(value, dict) and any(len(k) > MAX_STRING for k in value):
            raise ApiError(400, "invalid_json", f"the body holds a key longer than {MAX_STRING // 1024} KB")
        stack.extend((child, depth + 1) for child in children)


_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2E for b in range(256))  # digits to "0", the rest to "."
_LONG_DIGIT_RUN = b"0" * 19  # an integer outside the signed 64-bit range has at least 19 digits


_NOT_OPENERS = bytes(b for b in range(256) if b not in b"{[")


def _few_containers(body: bytes, max_depth: int) -> bool:
    """At most `max_depth` opening brackets that can be structural, so nothing nests deeper.
    `{/` is never structural: webhook payloads can be full of URL templates such as `{/sha}`.
    (One pass of `translate` keeps the brackets: cheaper than two `count`s.)"""
    brackets = len(body.translate(None, _NOT_OPENERS))
    return brackets <= max_depth or brackets - body.count(b"{/") <= max_depth


_IS_CONTAINER = {dict, list}.__contains__
_IS_INT = {int}.__contains__  # bool is not int here, as in check_shape


def _check_containers_and_ints(doc: Any, max_depth: int) -> None:
    """Level by level: each container's values are sorted by type in C (map/compress), and
    only arrays, objects and integers are looked at from Python."""
    level = [doc] if type(doc) is dict or type(doc) is list else []
    if type(doc) is int and not INT_MIN <= doc <= INT_MAX:
        raise ApiError(400, "invalid_json", "the body holds an integer outside the signed 64-bit range")
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise ApiError(400, "invalid_json", f"the body is nested more than {max_depth} levels deep")
        below: list[Any] = []
        for container in level:
            values = list(container.values()) if type(container) is dict else container
            types = list(map(type, values))
            below.extend(compress(values, map(_IS_CONTAINER, types)))
            if int in types:
                ints = list(compress(values, map(_IS_INT, types)))
                if min(ints) < INT_MIN or max(ints) > INT_MAX:
                    raise ApiError(400, "invalid_json", "the body holds an integer outside the signed 64-bit range")
        level = below


def _describe(body: bytes, exc: orjson.JSONDecodeError) -> str:
    if "depth" in str(exc) or "recursion" in str(exc).lower():
        return f"the body is nested more than {MAX_DEPTH} levels deep"
    try:
        json.loads(body)
    except UnicodeDecodeError:
        return "the body is not UTF-8 text"
    except RecursionError:
        return f"the body is nested more than {MAX_DEPTH} levels deep"
    except json.JSONDecodeError as e:
        return f"the body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
    except ValueError:
        pass
    return f"the body is not valid JSON: {str(exc).split(':')[0]}"
