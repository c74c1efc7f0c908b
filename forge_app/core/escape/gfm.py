"""GFM-style markdown (CommonMark plus GFM tables, autolinks and references).

Rules, each checked by tests/review/test_escape_properties.py against cmark-gfm:
- the ASCII punctuation that can open something is backslash-escaped (CommonMark allows a
  backslash before any of it), so input cannot open HTML, a link, an image, emphasis, a
  heading, a list, a quote, a table cell, a code span, math or a `{+ +}` highlight;
- forges find mentions and references in the rendered *text* (after escapes are
  gone), so a zero-width space follows every reference sigil (`@`, `#`, `!`, `~`, `%`, `$`,
  `&`, `^`) and the `-` of `GH-`: `@org/team`, `#12`, `!3`, `GH-1` render as they read but
  notify no one; it also breaks email autolinks (`a@b.c`) and other schemes' (`ftp:`);
- untrusted text in a code span gets a backtick fence longer than any run inside it, on one
  line, with `|` escaped inside tables;
- links only to `urls.safe_url` targets.
"""

from __future__ import annotations

import re

from forge_app.core.escape.markdown_common import clean as _clean
from forge_app.core.escape.markdown_common import fenced, paragraphs
from forge_app.core.escape.urls import safe_url

ZWSP = "\u200b"
# Escaped wherever they are: what opens HTML, links, images, emphasis, code, tables, strikethrough,
# math ($), {+ +} highlights, entities and references. Punctuation that only matters at the
# start of a line (list markers, setext underlines) is escaped there; the rest (. , : ; / ? ' " = ( ))
# stays as it is, so raw bodies stay readable.
_PUNCT = re.compile(r"([\\`*_{}\[\]<>#!|~&$%^@])")
_LINE_START = re.compile(r"^([-+=])|^(\d{1,9})([.)])")
_SIGILS = re.compile(r"([@#!~%$&^]|(?<=[Gg][Hh])-|(?<=:)(?=//))")
def text(value: str) -> str:
    """Inline text on one line: whitespace runs (newlines too) become one space."""
    return _escape(" ".join(_clean(value).split()))


def _escape(value: str) -> str:
    value = _SIGILS.sub(lambda m: m.group(1) + ZWSP, value)
    value = _PUNCT.sub(r"\\\1", value)
    return _LINE_START.sub(lambda m: "\\" + m.group(1) if m.group(1) else m.group(2) + "\\" + m.group(3), value)


def block(value: str) -> str:
    """Multi-line text as paragraphs: each line escaped and stripped of the indentation that would
    make it a code block; line breaks kept (`\\` at the end of a line is CommonMark's hard break)."""
    lines = [_escape(" ".join(line.split())) for line in _clean(value).replace("\r\n", "\n").split("\n")]
    return paragraphs(lines, "\\")  # `\` at the end of a line: a hard line break, not a new paragraph


def code(value: str, *, in_table: bool = False) -> str:
    """A code span that nothing inside can end: the fence is longer than any backtick run."""
    inner = " ".join(_clean(value).split()) or " "
    if in_table:
        inner = inner.replace("|", "\\|")
    return fenced(inner)


def link(label: str, url: object) -> str | None:
    """A link with an escaped label when `url` is http(s); None otherwise (show the label alone)."""
    target = safe_url(url)
    if target is None:
        return None
    return f"[{text(label)}]({target})"


def table_cell(value: str) -> str:
    """Escaped text for a table cell (`\\|` is an escaped pipe to GFM's table parser too)."""
    return text(value)
