"""Reading request bodies with hard limits, so an oversized body or a gzip bomb gets 413, not an OOM."""

from __future__ import annotations

import json
import zlib

import orjson
from typing import Any

from starlette.requests import Request

from forge_app.web.errors import ApiError


def _too_large(limit: int, what: str) -> ApiError:
    return ApiError(413, "payload_too_large", f"the {what} is larger than the limit of {limit // (1024 * 1024)} MB")


async def read_raw(request: Request, limit: int) -> bytes:
    """The body as sent, refusing early on Content-Length and again while streaming."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, "request body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, "request body")
        chunks.append(chunk)
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
    return bytes(out)


async def read_body(request: Request, limit: int, inflated_limit: int) -> bytes:
    raw = await read_raw(request, limit)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return inflate(raw, inflated_limit)
    if encoding not in ("", "identity"):
        raise ApiError(415, "unsupported_media_type", f"Content-Encoding {encoding!r} is not supported; use gzip")
    return raw


def parse_json(body: bytes) -> Any:
    """orjson first (uploads can be 100 MB); the stdlib parser only to word the error."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
