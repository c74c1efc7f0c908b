"""Email HTML: every untrusted string through `html.escape` (quotes too); links only to
`urls.safe_url` targets, which are percent-encoded and then attribute-escaped."""

from __future__ import annotations

import html as _html
import re

from forge_app.core.escape.urls import safe_url

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def text(value: str) -> str:
    return _html.escape(_CONTROL.sub("\ufffd", value), quote=True)


def link(label: str, url: object) -> str:
    """An anchor when `url` is http(s), else the escaped label alone."""
    target = safe_url(url)
    if target is None:
        return text(label)
    return f'<a href="{_html.escape(target, quote=True)}">{text(label)}</a>'
