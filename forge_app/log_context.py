"""Per-request / per-job log fields (delivery id, scan id, job id), carried by a contextvar.

Set with `bind(...)` around the work; the JSON formatter (`forge_app.json_logs`) adds them
to every line logged inside, in whichever thread or task the work runs.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

# Read-only, so no code can change the fields of every context by mutating the shared default.
_fields: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "forge_app_log_fields", default=MappingProxyType({}))


def current() -> Mapping[str, Any]:
    return _fields.get()


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add fields (None values are left out) for the duration of the block."""
    token = _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _fields.reset(token)
