"""Branch names from webhooks, kept only when they could be real.

A webhook body is untrusted text: a delivery can carry a 10 MB `head.ref`, and whatever the
parser keeps is stored and later rendered. Git allows long ref names, but no forge creates
branch names near 1 KB (the big ones refuse far shorter ones), so anything longer, or
holding a control character, is dropped rather than stored.
"""

from __future__ import annotations

from typing import Any

MAX_REF_BYTES = 1024


def branch_name(value: Any) -> str | None:
    """`value` when it is a plausible branch name, else None (treated like a missing field)."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) > MAX_REF_BYTES or len(value.encode("utf-8", "surrogatepass")) > MAX_REF_BYTES:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return None
    return value
