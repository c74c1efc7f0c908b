"""Logging that never prints a secret: tokens and keys are masked before any handler sees them."""

from __future__ import annotations

import logging
import re

_SECRET_PATTERNS = [
    re.compile(r"(?i)(authorization:?\s*(?:bearer|token|basic)\s+)[^\s'\"]+"),
    re.compile(r"(fa_upload_)[A-Za-z0-9_\-]+"),
    re.compile(r"\b(gh[pousr]_)[A-Za-z0-9]{10,}"),
    re.compile(r"\b(glpat-)[A-Za-z0-9_\-]{10,}"),
    re.compile(r"\b(xox[abpr]-)[A-Za-z0-9\-]+"),
    re.compile(r"(whsec_)[A-Za-z0-9+/=]+"),
    re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----)"),
    re.compile(r"(?i)((?:token|secret|password|private_key)[\"']?\s*[:=]\s*[\"']?)[^\s,'\"&]+"),
    re.compile(r"(://[^/\s:@]+:)[^@\s]+(@)"),
]


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***" + (m.group(2) if m.lastindex and m.lastindex >= 2 else ""), text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        import sys

        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx"):
        for h in logging.getLogger(name).handlers:
            h.addFilter(RedactingFilter())
