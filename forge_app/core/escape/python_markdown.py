"""Python-Markdown as forges render it: raw HTML escaped, tables, fenced code.

Python-Markdown honours backslash escapes only for ``\\`*_{}[]()>#+-.!`` (any other escape would
show its backslash), so those are escaped, `<` and `&` become entities, and a zero-width space
follows every `@` and `#` (mentions such as `@{account-id}`, issue references) and the `:` of
`scheme://` (autolinks of other schemes). Code spans are fenced as in `gfm`. Checked against
Python-Markdown by tests/review/test_escape_properties.py.
"""

from __future__ import annotations

import re

from forge_app.core.escape.markdown_common import clean, fenced, paragraphs
from forge_app.core.escape.urls import safe_url

ZWSP = "\u200b"
_ESCAPABLE = re.compile(r"([\\`*_{}\[\]()>#+\-.!|])")
_SIGILS = re.compile(r"([@#~]|(?<=:)(?=//))")


def _escape(value: str) -> str:
    value = _SIGILS.sub(lambda m: m.group(1) + ZWSP, value)
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _ESCAPABLE.sub(r"\\\1", value)


def text(value: str) -> str:
    return _escape(" ".join(clean(value).split()))


def block(value: str) -> str:
    """Lines kept as lines (two trailing spaces: a line break), blank lines as paragraphs."""
    lines = [text(line) for line in value.replace("\r\n", "\n").split("\n")]
    return paragraphs(lines, "  ")


def code(value: str, *, in_table: bool = False) -> str:
    inner = " ".join(clean(value).split()) or " "
    if in_table:
        inner = inner.replace("|", "\u2223")  # Python-Markdown splits cells on any pipe outside backticks
    return fenced(inner)


def link(label: str, url: object) -> str | None:
    target = safe_url(url)
    if target is None:
        return None
    return f"[{text(label)}]({target})"
