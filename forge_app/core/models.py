"""The one finding model every input becomes, and the plain data the core passes around.

Everything here is plain data: no I/O, no clock. `to_dict`/`from_dict` give the
stable JSON form used by the upload envelope, the database and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, dataclass_transform

Severity = Literal["error", "warning", "info"]
Mode = Literal["monitor", "comment", "block"]
MODES: tuple[str, ...] = ("monitor", "comment", "block")
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def _record(cls: type[_T]) -> type[_T]:
    """A slotted dataclass that type-checkers treat as frozen, built without frozen's runtime guard.

    Why: a frozen dataclass sets every field through `object.__setattr__` (~0.1 us each), so a
    16-field `Finding` costs ~1.8 us to build against ~0.3 us here; fingerprinting a dense file
    (a finding on each of 50,000 lines) builds 50,000 of them and 50,000 `Fingerprint`s. Nothing
    assigns to these objects (mypy refuses it: `frozen_default`); `dataclasses.replace` copies.
    Equal fields mean equal objects, and hashing hashes the fields, as with `frozen=True`.
    """
    return dataclass(slots=True, unsafe_hash=True)(cls)


@dataclass(frozen=True, slots=True)
class Fix:
    """An autofix as whole replacement lines for lines start_line..end_line (inclusive).

    Whole lines, because every forge's suggestion syntax replaces whole lines.
    """

    start_line: int
    end_line: int
    lines: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"start_line": self.start_line, "end_line": self.end_line, "lines": list(self.lines)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fix:
        return cls(int(d["start_line"]), int(d["end_line"]), tuple(str(x) for x in d["lines"]))

    @classmethod
    def splice(cls, lines: list[str], replacement: str, start_line: int, start_col: int | None, end_line: int,
               end_col: int | None) -> Fix | None:
        """A tool's replacement for columns start_col..end_col (1-based, end exclusive) spliced into
        the whole lines start_line..end_line it touches; None when the lines or columns do not fit."""
        if start_col is None or end_col is None or len(lines) != end_line - start_line + 1:
            return None
        if start_col - 1 > len(lines[0]) or end_col - 1 > len(lines[-1]):
            return None  # columns do not fit the lines: do not guess
        new = lines[0][: start_col - 1] + replacement + lines[-1][end_col - 1:]
        return cls(start_line, end_line, tuple(new.split("\n")))


@_record
class Fingerprint:
    """A finding's line-move-tolerant identity (see docs/fingerprints.md).

    `code` hashes the flagged code with all whitespace removed; `context` holds short
    hashes of the nearest non-blank lines before and after; `value` is the string
    shown to users and used as the hidden marker in comments.
    """

    value: str
    code: str
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    fallback: bool = False  # made without the code (no source, no snippet): matched by place only
    scope: str = ""  # hash of the enclosing scope's header line (nearest less-indented line above); "" unknown

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"value": self.value, "code": self.code, "before": list(self.before),
                             "after": list(self.after)}
        if self.fallback:
            d["fallback"] = True
        if self.scope:
            d["scope"] = self.scope
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fingerprint:
        return cls(
            value=str(d["value"]),
            code=str(d["code"]),
            before=tuple(str(x) for x in d.get("before") or ()),
            after=tuple(str(x) for x in d.get("after") or ()),
            fallback=d.get("fallback") is True,
            scope=d["scope"] if isinstance(d.get("scope"), str) else "",
        )


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """What a report says about a rule, independent of any one result."""

    cwe: tuple[str, ...] = ()
    owasp: tuple[str, ...] = ()
    category: str | None = None
    references: tuple[str, ...] = ()
    technology: tuple[str, ...] = ()
    confidence: str | None = None
    help_uri: str | None = None


@_record
class Finding:
    rule_id: str
    path: str
    start_line: int
    end_line: int
    message: str
    severity: Severity = "warning"
    start_col: int | None = None
    end_col: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    rule: RuleInfo = field(default_factory=RuleInfo)
    snippet: str | None = None
    fix: Fix | None = None
    tool: str = "unknown"
    tool_ids: dict[str, str] = field(default_factory=dict)
    fingerprint: Fingerprint | None = None
    # A tool's autofix as the replacement for the matched columns (Semgrep's `extra.fix`), kept
    # while no code was at hand to splice it into (a report without code: "requires login");
    # `fingerprint_findings` turns it into `fix` once it reads the file.
    fix_text: str | None = None

    def with_fingerprint(self, fp: Fingerprint, fix: Fix | None = None) -> Finding:
        # A direct constructor call: dataclasses.replace costs twice as much, and uploads make 20,000 of these.
        if fix is not None:
            return Finding(self.rule_id, self.path, self.start_line, self.end_line, self.message, self.severity,
                           self.start_col, self.end_col, self.metadata, self.rule, self.snippet, fix, self.tool,
                           self.tool_ids, fp, None)
        return Finding(self.rule_id, self.path, self.start_line, self.end_line, self.message, self.severity,
                       self.start_col, self.end_col, self.metadata, self.rule, self.snippet, self.fix, self.tool,
                       self.tool_ids, fp, self.fix_text)

    @property
    def key(self) -> str:
        """The fingerprint value, or a location key when none could be computed."""
        if self.fingerprint is not None:
            return self.fingerprint.value
        return f"{self.rule_id}:{self.path}:{self.start_line}"

    def to_dict(self) -> dict[str, Any]:
        r = self.rule
        return {
            "rule_id": self.rule_id,
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "start_col": self.start_col,
            "end_col": self.end_col,
            "message": self.message,
            "severity": self.severity,
            "metadata": self.metadata,
            "cwe": list(r.cwe),
            "owasp": list(r.owasp),
            "category": r.category,
            "references": list(r.references),
            "technology": list(r.technology),
            "confidence": r.confidence,
            "help_uri": r.help_uri,
            "snippet": self.snippet,
            "fix": self.fix.to_dict() if self.fix else None,
            "tool": self.tool,
            "tool_ids": dict(self.tool_ids),
            "fingerprint": self.fingerprint.to_dict() if self.fingerprint else None,
            **({"fix_text": self.fix_text} if self.fix_text is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        """Trusting constructor for data this app wrote; validate untrusted input first
        (see `forge_app.core.envelope`)."""
        return cls(
            rule_id=d["rule_id"],
            path=d["path"],
            start_line=int(d["start_line"]),
            end_line=int(d.get("end_line") or d["start_line"]),
            start_col=d.get("start_col"),
            end_col=d.get("end_col"),
            message=d.get("message") or "",
            severity=d.get("severity") or "warning",
            metadata=d.get("metadata") or {},
            rule=RuleInfo(
                cwe=tuple(d.get("cwe") or ()),
                owasp=tuple(d.get("owasp") or ()),
                category=d.get("category"),
                references=tuple(d.get("references") or ()),
                technology=tuple(d.get("technology") or ()),
                confidence=d.get("confidence"),
                help_uri=d.get("help_uri"),
            ),
            snippet=d.get("snippet"),
            fix=Fix.from_dict(d["fix"]) if d.get("fix") else None,
            tool=d.get("tool") or "unknown",
            tool_ids=dict(d.get("tool_ids") or {}),
            fingerprint=Fingerprint.from_dict(d["fingerprint"]) if d.get("fingerprint") else None,
            fix_text=d.get("fix_text") if isinstance(d.get("fix_text"), str) else None,
        )


@dataclass(frozen=True, slots=True)
class Report:
    """One parsed report file: its findings plus what the tool said went wrong."""

    tool: str
    findings: tuple[Finding, ...]
    errors: tuple[str, ...] = ()
    format: Literal["semgrep", "sarif", "findings"] = "semgrep"


class ReportError(ValueError):
    """The input is not a report we can trust; `pointer` says where (JSON pointer), when known."""

    def __init__(self, message: str, pointer: str | None = None) -> None:
        self.message = message
        self.pointer = pointer
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} (at {self.pointer})" if self.pointer else self.message
