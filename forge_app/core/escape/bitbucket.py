"""Bitbucket Cloud markdown (Python-Markdown: raw HTML escaped, tables, fenced code).

Python-Markdown honours backslash escapes only for ``\\`*_{}[]()>#+-.!`` (any other escape would
show its backslash), so those are escaped, `<` and `&` become entities, and a zero-width space
follows every `@` and `#` (mentions such as `@{account-id}`, issue references) and the `:` of
`scheme://` (autolinks of other schemes). Code spans are fenced as in `gfm`. Checked against
Python-Markdown by tests/review/test_escape_properties.py.
"""

from __future__ import annotations

import re

from forge_app.core.escape.urls import safe_url

ZWSP = "\u200b"
_ESCAPABLE = re.compile(r"([\\`*_{}\[\]()>#+\-.!|])")
_SIGILS = re.compile(r"([@#~]|(?<=:)(?=//))")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\ud800-\udfff]")


def _escape(value: str) -> str:
    value = _SIGILS.sub(lambda m: m.group(1) + ZWSP, value)
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _ESCAPABLE.sub(r"\\\1", value)


def text(value: str) -> str:
    return _escape(" ".join(_CONTROL.sub("\ufffd", value).split()))


def block(value: str) -> str:
    """Lines kept as lines (two trailing spaces: a line break), blank lines as paragraphs."""
    lines = [text(line) for line in value.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if not line:
            if out and out[-1] != "":
                out.append("")
            continue
        if out and out[-1] != "":
            out[-1] += "  "
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out)


def code(value: str, *, in_table: bool = False) -> str:
    inner = " ".join(_CONTROL.sub("\ufffd", value).split()) or " "
    if in_table:
        inner = inner.replace("|", "\u2223")  # Python-Markdown splits cells on any pipe outside backticks
    longest = max((len(m) for m in re.findall(r"`+", inner)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if inner[0] in "` " or inner[-1] in "` " else ""
    return f"{fence}{pad}{inner}{pad}{fence}"


def link(label: str, url: object) -> str | None:
    target = safe_url(url)
    if target is None:
        return None
    return f"[{text(label)}]({target})"
