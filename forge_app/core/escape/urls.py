"""The one gate for links built from untrusted URLs: http and https only."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

MAX_URL = 2048
_SAFE = "/:?#@!$&*+,;=%-._~"  # kept as they are; everything else (quotes, brackets, spaces) percent-encoded


def safe_url(url: object) -> str | None:
    """`url` as a link target when it is an absolute http(s) URL with a host, percent-encoded so that
    it cannot end the markdown, mrkdwn or HTML construct it sits in; None otherwise."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        return None
    if re.search(r"[\x00-\x20\x7f\ud800-\udfff]", url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or not parts.hostname:
        return None
    return quote(url, safe=_SAFE)
