"""Plain-text fields (check-run annotations, Code Insights reports, commit statuses):
nothing there is parsed as markup, so text only loses what breaks a field:
control characters, lone surrogates, and length beyond the field's limit."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def text(value: str, limit: int | None = None, *, one_line: bool = False) -> str:
    cleaned = _CONTROL.sub("\ufffd", value)
    if one_line:
        cleaned = " ".join(cleaned.split())
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[: max(0, limit - 1)] + "…"
    return cleaned
