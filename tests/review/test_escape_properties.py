"""For any input, rendered text holds no active construct the input supplied: no HTML, no link
or image, no mention or notifying reference, no way out of a code span or a table cell.

Each target syntax is rendered by a real implementation of it: cmark-gfm (GitHub's own parser,
also what GitLab's follows) for GitHub/GitLab markdown and check-run summaries, Python-Markdown
(what Bitbucket Cloud runs) for Bitbucket, the standard HTML parser for email.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import cmarkgfm
import markdown
from cmarkgfm.cmark import Options
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from forge_app.core.escape import gfm, html, mrkdwn, plain, python_markdown
from forge_app.core.escape.urls import safe_url
from forge_app.core.models import Finding, Fingerprint, RuleInfo
from forge_app.core.review.render import Counts, finding_comment, marker, markers_in, summary_comment
from forge_app.forges.bitbucket import RENDERING as BITBUCKET_STYLE
from forge_app.forges.github import RENDERING as GITHUB_STYLE
from forge_app.forges.gitlab import RENDERING as GITLAB_STYLE

ZWSP = "\u200b"
ATTACK = ("`x` <img src=x onerror=alert(1)> [click me](https://evil.example/phish) @octo/admins `y` "
          "#12 GH-3 !4 ~bug %v1 $5 &6 a@b.example ftp://evil.example/ <!-- forge-app:finding=abc#1 --> "
          "| a | b | javascript:alert(1) ![i](http://x/i.png) <https://evil.example> &lt;b&gt; {+ x +} $x$")
# Punctuation-heavy text finds escaping gaps much faster than arbitrary unicode.
TRICKY = st.text(alphabet=st.one_of(st.sampled_from(list("`<>[]()!@#~%$&^*_|\\-+=:/.'\"{} \n\tabcGHhttps0123456789x")),
                                    st.characters()), max_size=80)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIGILS = "@#!~%$&^"


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.code_text: list[str] = []
        self.comments: list[str] = []
        self._in_code = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "code":
            self._in_code += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "code":
            self._in_code -= 1

    def handle_data(self, data: str) -> None:
        (self.code_text if self._in_code else self.text).append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def _parse(rendered_html: str) -> _Html:
    parser = _Html()
    parser.feed(rendered_html)
    parser.close()
    return parser


def _gfm(md: str) -> _Html:
    return _parse(cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE))


def _bitbucket(md: str) -> _Html:
    return _parse(markdown.markdown(md, extensions=["tables", "fenced_code"]))


def _no_references(text: str) -> None:
    """Every sigil GitHub or GitLab reads a mention or reference from is followed by a zero-width space."""
    for i, ch in enumerate(text):
        if ch in SIGILS:
            assert text[i + 1 : i + 2] == ZWSP, f"unbroken {ch!r} in {text!r}"
    assert not re.search(r"(?i)gh-\d", text)
    assert not re.search(r"[a-z]://", text, re.IGNORECASE), text


def _visible(value: str) -> str:
    return " ".join(re.sub(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\ud800-\udfff]", "\ufffd", value).split())


def _same_text(rendered: str, value: str) -> None:
    assert " ".join(rendered.replace(ZWSP, "").split()) == _visible(value).replace("\x00", "\ufffd")


# --- GitHub / GitLab markdown ---------------------------------------------------------------

@SETTINGS
@given(TRICKY)
@example(ATTACK)
def test_gfm_text_is_inert_and_faithful(value: str) -> None:
    page = _gfm("Message: " + gfm.text(value))
    assert [t for t, _ in page.tags] == ["p"]
    rendered = "".join(page.text)
    _no_references(rendered)
    _same_text(rendered.strip().removeprefix("Message:"), value)


@SETTINGS
@given(TRICKY)
@example(ATTACK)
def test_gfm_block_keeps_lines_and_nothing_else(value: str) -> None:
    page = _gfm(gfm.block(value))
    assert {t for t, _ in page.tags} <= {"p", "br"}
    _no_references("".join(page.text))
    _same_text("".join(page.text), value)


@SETTINGS
@given(TRICKY)
@example("a ``` b")
@example("`")
def test_gfm_code_span_cannot_be_left(value: str) -> None:
    page = _gfm("Rule " + gfm.code(value) + " at x")
    assert [t for t, _ in page.tags] == ["p", "code"]
    assert " ".join("".join(page.code_text).split()) == _visible(value) or not _visible(value)
    assert "".join(page.text).strip() == "Rule  at x"


@SETTINGS
@given(TRICKY, TRICKY)
@example("a|b`|`c", "x | y")
def test_gfm_table_cells_stay_cells(code_value: str, text_value: str) -> None:
    md = "| A | B | C |\n|---|---|---|\n" + f"| {gfm.code(code_value, in_table=True)} | {gfm.text(text_value)} | end |"
    page = _gfm(md)
    assert [t for t, _ in page.tags].count("td") == 3
    assert {t for t, _ in page.tags} <= {"table", "thead", "tbody", "tr", "th", "td", "code"}
    assert page.text[-1] == "end" or "".join(page.text).rstrip().endswith("end")


@SETTINGS
@given(st.text(max_size=60), st.one_of(TRICKY, st.sampled_from(
    ["javascript:alert(1)", "https://ok.example/a b", "https://ok.example/)x](y", "data:text/html,x", "//evil",
     "https://ok.example/<script>", "HTTPS://ok.example/\"onmouseover=x"])))
def test_gfm_links_only_to_http(label: str, url: str) -> None:
    made = gfm.link(label, url)
    if safe_url(url) is None:
        assert made is None
        return
    page = _gfm(made)
    anchors = [a for t, a in page.tags if t == "a"]
    assert len(anchors) == 1 and anchors[0]["href"].lower().startswith(("http://", "https://"))
    assert {t for t, _ in page.tags} <= {"p", "a"}


# --- Bitbucket markdown -------------------------------------------------------------------------

@SETTINGS
@given(TRICKY)
@example(ATTACK)
def test_bitbucket_text_is_inert(value: str) -> None:
    page = _bitbucket("Message: " + python_markdown.text(value))
    assert [t for t, _ in page.tags] == ["p"]
    rendered = "".join(page.text)
    for i, ch in enumerate(rendered):
        if ch in "@#~":
            assert rendered[i + 1 : i + 2] == ZWSP
    assert not re.search(r"[a-z]://", rendered, re.IGNORECASE)
    _same_text(rendered.strip().removeprefix("Message:"), value)


@SETTINGS
@given(TRICKY)
@example(ATTACK)
def test_bitbucket_block_and_code_are_inert(value: str) -> None:
    page = _bitbucket(python_markdown.block(value))
    assert {t for t, _ in page.tags} <= {"p", "br"}
    page = _bitbucket("Rule " + python_markdown.code(value) + " at x")
    assert [t for t, _ in page.tags] == ["p", "code"]
    assert "".join(page.text).strip() == "Rule  at x"


@SETTINGS
@given(TRICKY, TRICKY)
def test_bitbucket_table_cells_stay_cells(code_value: str, text_value: str) -> None:
    md = ("| A | B | C |\n|---|---|---|\n"
          f"| {python_markdown.code(code_value, in_table=True)} | {python_markdown.text(text_value) or 'x'} | end |")
    page = _bitbucket(md)
    assert [t for t, _ in page.tags].count("td") == 3
    assert {t for t, _ in page.tags} <= {"table", "thead", "tbody", "tr", "th", "td", "code"}


# --- plain text, Slack, email ---------------------------------------------------------------------

@SETTINGS
@given(st.text(max_size=200), st.integers(1, 100))
def test_plain_text_has_no_control_characters_and_fits(value: str, limit: int) -> None:
    out = plain.text(value, limit, one_line=True)
    assert len(out) <= limit and not re.search(r"[\x00-\x1f\x7f\ud800-\udfff]", out)


@SETTINGS
@given(TRICKY)
@example("<!channel> <@U123> <https://evil.example|click> @here &lt;")
def test_slack_mrkdwn_is_inert(value: str) -> None:
    for out in (mrkdwn.text(value), mrkdwn.code(value)):
        assert "<" not in out and ">" not in out
        assert not re.search(r"&(?!amp;|lt;|gt;)", out)
        assert all(out[i + 1 : i + 2] == ZWSP for i, ch in enumerate(out) if ch == "@")
    code = mrkdwn.code(value)
    assert code.startswith("`") and code.endswith("`") and code.count("`") == 2


@SETTINGS
@given(TRICKY, TRICKY)
def test_slack_links_only_to_http(label: str, url: str) -> None:
    made = mrkdwn.link(label, "https://ok.example/" + url)
    if made is not None:
        assert made.count("<") == 1 and made.count(">") == 1 and made.count("|") == 1


@SETTINGS
@given(TRICKY, st.one_of(TRICKY, st.just("javascript:alert(1)"), st.just('https://x.example/"><script>')))
def test_email_html_is_inert(value: str, url: str) -> None:
    page = _parse(f"<p>{html.text(value)}</p>{html.link(value, url)}")
    tags = [t for t, _ in page.tags]
    assert tags in (["p"], ["p", "a"])
    for tag, attrs in page.tags:
        if tag == "a":
            assert set(attrs) == {"href"} and attrs["href"].startswith(("http://", "https://"))


# --- whole comments ----------------------------------------------------------------------------

def _finding(rule_id: str, path: str, message: str, help_uri: str, cwe: str) -> Finding:
    return Finding(rule_id=rule_id or "r", path=path or "a.py", start_line=3, end_line=3, message=message,
                   rule=RuleInfo(cwe=(cwe,), help_uri=help_uri), fingerprint=Fingerprint("f" * 32, "c" * 16))


@SETTINGS
@given(TRICKY, TRICKY, TRICKY, TRICKY, TRICKY)
@example(ATTACK, ATTACK, ATTACK, "javascript:alert(1)", ATTACK)
def test_finding_comment_holds_only_our_constructs(rule_id, path, message, help_uri, cwe) -> None:
    f = _finding(rule_id, path, message, help_uri, cwe)
    for flavour in (GITHUB_STYLE, GITLAB_STYLE):
        body = finding_comment(f, "block", flavour, as_suggestion=False, key="f" * 32 + "#7")
        page = _gfm(body)
        assert {t for t, _ in page.tags} <= {"p", "strong", "code", "a", "br"}
        hrefs = [a["href"] for t, a in page.tags if t == "a"]
        assert hrefs == ([safe_url(help_uri)] if safe_url(help_uri) else [])
        _no_references("".join(page.text).replace("#7", ""))
        assert markers_in(body) == {"f" * 32 + "#7"}
    body = finding_comment(f, "block", BITBUCKET_STYLE, as_suggestion=False, key="f" * 32 + "#7")
    page = _bitbucket(body)
    assert {t for t, _ in page.tags} <= {"p", "strong", "code", "a", "br"}
    assert markers_in(body) == {"f" * 32 + "#7"}


@SETTINGS
@given(st.lists(st.tuples(TRICKY, TRICKY, TRICKY), min_size=1, max_size=4))
def test_summary_table_rows_keep_four_cells(rows) -> None:
    outside = [(_finding(r, p, m, "", ""), "comment") for r, p, m in rows]
    for flavour, render in ((GITHUB_STYLE, _gfm), (GITLAB_STYLE, _gfm), (BITBUCKET_STYLE, _bitbucket)):
        page = render(summary_comment(outside, Counts(1, 0, 0), "https://forge-app.example/scans/1", flavour))
        assert [t for t, _ in page.tags].count("td") == 4 * len(rows)
        assert [a["href"] for t, a in page.tags if t == "a"] == ["https://forge-app.example/scans/1"]
        assert {t for t, _ in page.tags} <= {"p", "strong", "code", "a", "h3", "table", "thead", "tbody", "tr",
                                              "th", "td"}


def test_a_marker_copied_into_a_message_is_not_a_marker() -> None:
    copied = f"see {marker('e' * 32 + '#9')} and <!-- forge-app:finding={'d' * 32}#8 -->"
    f = _finding("r", "a.py", copied, "", "")
    body = finding_comment(f, "comment", GITHUB_STYLE, as_suggestion=False, key="f" * 32 + "#7")
    assert markers_in(body) == {"f" * 32 + "#7"}
    forged = "**forge-app** · hi\n\n<!-- forge-app:finding=" + "e" * 32 + "#9 sig=" + "0" * 32 + " -->"
    assert markers_in(forged) == set()
    # a comment posted before markers were signed still counts, where forge-app put its marker
    legacy = "**forge-app** · x\n\nmsg\n\n<!-- forge-app:finding=" + "a" * 32 + "#1 -->"
    assert markers_in(legacy) == {"a" * 32 + "#1"}
    assert markers_in("someone else\n<!-- forge-app:finding=" + "a" * 32 + "#1 -->") == set()
