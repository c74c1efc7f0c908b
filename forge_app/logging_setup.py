"""Logging that never prints a secret: tokens and keys are masked before any handler sees them."""

from __future__ import annotations

import logging
import re
import sys

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


# A literal every pattern above needs (on the case-folded text): a line without any of them,
# such as every access-log line, is let through after one cheap search instead of nine.
_CANDIDATE = re.compile(r"authorization|fa_upload_|gh[pousr]_|glpat-|xox[abpr]-|whsec_|-----begin|token|secret"
                        r"|password|private_key|://")


def _mask(m: re.Match[str]) -> str:
    """The secret replaced by ***, the delimiters around it (groups 1 and 2) kept."""
    return m.group(1) + "***" + (m.group(2) if m.lastindex and m.lastindex >= 2 else "")


def redact(text: str) -> str:
    # casefold() maps ſ and K to s and k as (?i) does; ı (dotless i) is the one letter (?i) matches
    # that casefold() leaves alone.
    if not _CANDIDATE.search(text.casefold().replace("ı", "i")):
        return text
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_mask, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in a record without touching the record other handlers and filters see:
    a copy with redacted arguments goes on (Python 3.12+ passes a returned record on). The
    argument tuple keeps its shape, because formatters such as uvicorn's access log unpack it;
    setting `args = None` lost those lines and logged a traceback instead."""

    def filter(self, record: logging.LogRecord) -> bool | logging.LogRecord:  # type: ignore[override]
        redacted = redacted_record(record)
        if redacted is record:
            return True
        if sys.version_info >= (3, 12):
            return redacted
        # Python 3.11 cannot hand on a copy: swap in the redacted values (new objects, never
        # the caller's tuple changed in place).
        record.msg, record.args = redacted.msg, redacted.args
        return True


def redacted_record(record: logging.LogRecord) -> logging.LogRecord:
    """`record` itself when it holds no secret, else a redacted copy."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string is the formatter's to report
        return record
    if redact(message) == message:
        return record
    copy = logging.makeLogRecord(record.__dict__)
    args = record.args
    if isinstance(args, tuple) and args and redact(str(record.msg)) == str(record.msg):
        copy.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        try:
            if redact(copy.getMessage()) == copy.getMessage():
                return copy
        except Exception:
            pass
    copy.msg, copy.args = redact(message), ()
    return copy


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self):
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
