"""How a forge shows review text, as data the pure core plans and renders through.

Each forge adapter passes one `Rendering` (forges/<forge>/forge.py); the core never asks
which forge it is writing for, only what that forge's syntax can do: which markdown
escaper is safe there, whether an HTML comment stays hidden, on which diff lines an
inline comment may sit, and how (if at all) a one-click suggestion is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


class Escaper(Protocol):
    """A module of `forge_app.core.escape` for a markdown dialect (`gfm`, `python_markdown`)."""

    def text(self, value: str) -> str: ...

    def block(self, value: str) -> str: ...

    def code(self, value: str, *, in_table: bool = False) -> str: ...

    def link(self, label: str, url: object) -> str | None: ...


SuggestionSyntax = Literal["range", "offset"]
"""`range`: a ```` ```suggestion ```` block replacing the commented lines, the comment sitting on the
fix's last line (with a start line when it spans several). `offset`: ```` ```suggestion:-0+N ````,
the comment sitting on the fix's first line and N more lines replaced."""


@dataclass(frozen=True, slots=True)
class Rendering:
    markdown: Escaper
    hidden_html_comments: bool  # False: markers are link reference definitions (raw HTML is shown as text)
    comments_on_context_lines: bool  # False: an inline comment may only sit on an added line
    suggestion: SuggestionSyntax | None  # None: fixes are shown, never applied in one click
    fix_as_diff: bool = False  # without a suggestion, show the fix as a -/+ diff of the old lines
