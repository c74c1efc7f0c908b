"""What GFM and Python-Markdown share: control characters, code-span fences, paragraphs.

The two dialects escape different characters (`gfm`, `python_markdown`), but a code span that
nothing inside can end, and lines joined into paragraphs with hard breaks, work the same.
"""

from __future__ import annotations

import re

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\ud800-\udfff]")


def clean(text: str) -> str:
    """Control characters, line separators and lone surrogates become U+FFFD."""
    return CONTROL.sub("\ufffd", text)


def fenced(inner: str) -> str:
    """`inner` (already one line, not empty) in a code span whose fence is longer than any
    backtick run inside, padded where it starts or ends with a backtick or a space."""
    longest = max((len(m) for m in re.findall(r"`+", inner)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if inner[0] in "` " or inner[-1] in "` " else ""
    return f"{fence}{pad}{inner}{pad}{fence}"


def paragraphs(lines: list[str], hard_break: str) -> str:
    """Escaped lines: runs of blank lines become one paragraph break, other line ends get
    `hard_break` (the dialect's explicit line break), trailing blank lines are dropped."""
    out: list[str] = []
    for line in lines:
        if not line:
            if out and out[-1] != "":
                out.append("")
            continue
        if out and out[-1] != "":
            out[-1] += hard_break
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out)
