"""Slack mrkdwn (https://api.slack.com/reference/surfaces/formatting).

Slack's only control characters are `&`, `<` and `>`: escaped, input can never form a link,
a user or channel mention (`<@U1>`, `<!here>`) or a date. A zero-width space follows `@` so that
clients which highlight a bare `@here` do not. mrkdwn has no escape inside a code span, so a
backtick there becomes a look-alike (ˋ). Links only to `urls.safe_url` targets.
"""

from __future__ import annotations

import re

from forge_app.core.escape.urls import safe_url

ZWSP = "\u200b"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def text(value: str) -> str:
    value = _CONTROL.sub("\ufffd", value).replace("@", "@" + ZWSP)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(value: str) -> str:
    inner = " ".join(text(value).replace("`", "\u02cb").split()) or " "
    return f"`{inner}`"


def link(label: str, url: object) -> str | None:
    target = safe_url(url)
    if target is None or "|" in target:
        return None
    return f"<{target}|{text(label).replace('|', '¦')}>"
