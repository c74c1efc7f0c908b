"""Helpers shared by the report parsers: safe repository paths, JSON pointers,
snippet lines, severity words, and a fast JSON Schema (draft-04) checker.

`normalize_path` is also used by the server on untrusted input, so it refuses
anything that could name a file outside the repository.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast
from urllib.parse import unquote

from forge_app.core.models import ReportError, Severity

__all__ = [
    "JSON_TYPE_NAMES",
    "SchemaChecker",
    "compile_schema_checker",
    "is_absolute_reference",
    "json_type_name",
    "normalize_path",
    "pointer",
    "semgrep_severity",
    "split_lines",
    "try_relativize",
]

# --------------------------------------------------------------------------- paths

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_DRIVE = re.compile(r"^/?([A-Za-z]):(?=/|$)")
_DRIVE_PREFIX = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_path(uri: str, *, base: str | None = None, plain: bool = False) -> str:
    """Turn a report's file reference into a clean repository-relative POSIX path.

    Accepts relative paths, `file:` URIs, percent-encoding, backslashes and `./`
    prefixes. An absolute path (or `file:///...` URI) is made relative to `base`
    (an absolute path or `file:` URI: the repository root) when it lies under it.

    `plain=True` says `uri` is a file-system path, not a URI (Semgrep JSON, paths
    this app already normalized): no scheme and no percent-decoding, so a file
    literally named `a%20b.py` survives. Clean relative paths round-trip.

    Raises `ReportError` when the result would be absolute, climb above the root
    with `..`, be empty, or contain NUL or another control character (a newline
    in a path would break diff parsing and comment markers downstream).
    """
    if not isinstance(uri, str):
        raise ReportError(f"a file path must be a string, not {json_type_name(uri)}")
    path = _to_posix(uri, plain=plain)
    if _is_absolute(path):
        if base is None:
            raise ReportError(f"file path {uri!r} is absolute; expected a path relative to the repository")
        rel = try_relativize(path, [base], plain=True)  # `path` is already decoded
        if rel is None:
            raise ReportError(f"file path {uri!r} is absolute and not under the repository root {base!r}")
        return rel
    return _clean_relative(path, original=uri)


def try_relativize(path: str, bases: Iterable[str], *, plain: bool = False) -> str | None:
    """The repository-relative form of absolute `path` under the first base that holds it.

    Returns None when no base holds it; raises ReportError for bad input (NUL,
    `..` climbing above `/`). Bases that are not absolute are ignored: only an
    absolute prefix can say where the repository starts.
    """
    abs_path = _clean_absolute(_to_posix(path, plain=plain), original=path)
    for base in bases:
        b = _clean_absolute_or_none(base)
        if b is None:
            continue
        rest = _strip_prefix(abs_path, b)
        if rest is not None:
            if not rest:
                raise ReportError(f"file path {path!r} names the repository root, not a file")
            return _clean_relative(rest, original=path)
    return None


def is_absolute_reference(uri: str) -> bool:
    """True for a URI with a scheme (`file:`, `https:`, ...) or an absolute path (`/x`, `C:\\x`, `//host/x`)."""
    m = _SCHEME.match(uri)
    if m and len(m.group(1)) > 1:
        return True
    return _is_absolute(uri.replace("\\", "/"))


def _to_posix(uri: str, *, plain: bool) -> str:
    """Undo URI syntax (scheme, authority, percent-encoding) and Windows separators."""
    if "\x00" in uri:
        raise ReportError(f"file path {uri!r} contains a NUL character")
    text = uri
    if not plain:
        m = _SCHEME.match(text)
        if m and len(m.group(1)) > 1:
            if m.group(1).lower() != "file":
                raise ReportError(f"{uri!r} is not a file path or file: URI")
            text = _file_uri_path(text[m.end():])
        try:
            text = unquote(text, errors="strict")
        except UnicodeDecodeError as exc:
            raise ReportError(f"file URI {uri!r} has percent-escapes that are not UTF-8") from exc
    text = text.replace("\\", "/")
    if _CONTROL.search(text):
        raise ReportError(f"file path {uri!r} contains a NUL or control character")
    return text


def _file_uri_path(rest: str) -> str:
    """The path part of a `file:` URI (after the `file:`), keeping a UNC host as `//host`.

    Query and fragment are kept as part of the name: real producers (Semgrep
    among them) do not escape `#` or `?` in file names.
    """
    if rest.startswith("//"):
        authority, _, tail = rest[2:].partition("/")
        if authority.lower() in ("", "localhost"):
            return "/" + tail
        return f"//{authority}/{tail}"
    return rest


def _is_absolute(path: str) -> bool:
    return path.startswith("/") or _DRIVE.match(path) is not None


def _clean_relative(path: str, *, original: str) -> str:
    """Resolve `.`/`..`/empty segments of a relative path; refuse climbing out or nothing."""
    out: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if not out:
                raise ReportError(f"file path {original!r} escapes the repository")
            out.pop()
        else:
            out.append(seg)
    if not out:
        raise ReportError(f"file path {original!r} is empty")
    if _DRIVE_PREFIX.match(out[0]):  # `C:x` is drive-relative on Windows: never inside the checkout
        raise ReportError(f"file path {original!r} is absolute (it starts with a drive letter)")
    return "/".join(out)


def _clean_absolute(path: str, *, original: str) -> str:
    """Resolve dot segments of an absolute path (`/x` or `C:/x` or `//host/x`)."""
    m = _DRIVE.match(path)
    if m:
        prefix, rest = m.group(1).upper() + ":", path[m.end():]
    elif path.startswith("//"):
        host, _, rest = path[2:].partition("/")
        prefix = "//" + host
    elif path.startswith("/"):
        prefix, rest = "", path
    else:
        raise ReportError(f"{original!r} is not an absolute path")
    out: list[str] = []
    for seg in rest.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if not out:
                raise ReportError(f"file path {original!r} climbs above the file-system root")
            out.pop()
        else:
            out.append(seg)
    return prefix + "/" + "/".join(out)


def _clean_absolute_or_none(base: str) -> str | None:
    if not isinstance(base, str):
        return None
    posix = _to_posix(base, plain=False) if _SCHEME.match(base) else _to_posix(base, plain=True)
    if not _is_absolute(posix):
        return None
    return _clean_absolute(posix, original=base)


def _strip_prefix(path: str, base: str) -> str | None:
    """`path` relative to `base` (both clean absolute), or None; drive letters ignore case."""
    if _DRIVE.match(base):
        p, b = path.casefold(), base.casefold()
    else:
        p, b = path, base
    b = b.rstrip("/")
    if p == b:
        return ""
    if p.startswith(b + "/"):
        return path[len(b) + 1:]
    return None


# --------------------------------------------------------------------------- small helpers


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


JSON_TYPE_NAMES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def json_type_name(value: Any) -> str:
    """How a JSON value's type reads in an error message."""
    return JSON_TYPE_NAMES.get(type(value), type(value).__name__)


_NEWLINE = re.compile(r"\r\n|\n")


def split_lines(text: str) -> list[str]:
    """Lines of a snippet as tools count them (CRLF or LF); one trailing newline ends the text."""
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return _NEWLINE.split(text)


_SEMGREP_SEVERITY: dict[str, Severity] = {
    "ERROR": "error",
    "CRITICAL": "error",
    "HIGH": "error",
    "WARNING": "warning",
    "WARN": "warning",
    "MEDIUM": "warning",
    "INFO": "info",
    "LOW": "info",
    "EXPERIMENT": "info",
    "INVENTORY": "info",
}


def semgrep_severity(word: object) -> Severity | None:
    """Semgrep's severity words (old and new scales) as ours; None if unknown."""
    return _SEMGREP_SEVERITY.get(word.upper()) if isinstance(word, str) else None


# --------------------------------------------------------------------------- fast schema check

SchemaChecker = Callable[[Any], bool]

_IGNORED_KEYWORDS = frozenset({"$schema", "id", "title", "description", "default", "format", "definitions"})
_KNOWN_KEYWORDS = frozenset(
    {"$ref", "type", "enum", "properties", "additionalProperties", "required", "items", "minItems",
     "uniqueItems", "minimum", "maximum", "pattern", "anyOf", "oneOf"}
)
_LEAF_KEYWORDS = frozenset({"type", "enum", "minimum", "maximum", "pattern"})


def compile_schema_checker(root: Mapping[str, Any], ref: str = "#") -> SchemaChecker:
    """Compile a draft-04 schema (the subset SARIF uses) into a yes/no predicate.

    Why: `jsonschema` needs ~1 ms per SARIF result, far too slow for 20,000
    results; this generates plain Python (one function per schema object, leaf
    checks inlined) and answers valid/invalid ~50x faster. It only says
    *whether* the document is valid: callers ask `jsonschema` *why* about the
    small part that failed, so messages stay the reference implementation's.
    Formats are not checked (like `jsonschema` without a format checker); a
    keyword it does not know makes compilation fail rather than silently pass.
    """
    gen = _CodeGen(root)
    entry = gen.function_for_ref(ref)
    namespace: dict[str, Any] = {"_M": _MISSING, "_distinct": _all_distinct, "_canon": _canon, **gen.constants}
    exec(compile("\n".join(gen.lines), "<schema-checker>", "exec"), namespace)
    return cast(SchemaChecker, namespace[entry])  # generated above: exec'd code has no static type


_MISSING = object()


class _CodeGen:
    """Writes the checker source: `f<n>(x) -> bool` per non-leaf schema node."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self.ref_names: dict[str, str] = {}
        self.counter = 0

    def _name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def _const(self, value: Any) -> str:
        name = self._name("c")
        self.constants[name] = value
        return name

    def function_for_ref(self, ref: str) -> str:
        if ref not in self.ref_names:
            if not ref.startswith("#"):
                raise ValueError(f"only local $ref is supported, not {ref!r}")
            self.ref_names[ref] = name = self._name("f")
            node: Any = self.root
            for part in ref[1:].split("/")[1:]:
                node = node[part.replace("~1", "/").replace("~0", "~")]
            self._function(name, node)
        return self.ref_names[ref]

    def expr(self, schema: Mapping[str, Any], var: str) -> str:
        """A boolean expression checking `var` against `schema`."""
        if "$ref" in schema:  # draft-04: siblings of $ref are ignored
            return f"{self.function_for_ref(schema['$ref'])}({var})"
        self._check_keywords(schema)
        if set(schema) - _IGNORED_KEYWORDS <= _LEAF_KEYWORDS:
            return " and ".join(self._leaf_terms(schema, var)) or "True"
        name = self._name("f")
        self._function(name, schema)
        return f"{name}({var})"

    def _check_keywords(self, schema: Mapping[str, Any]) -> None:
        unknown = set(schema) - _IGNORED_KEYWORDS - _KNOWN_KEYWORDS
        if unknown:
            raise ValueError(f"schema keywords not supported: {sorted(unknown)}")

    def _leaf_terms(self, schema: Mapping[str, Any], var: str) -> list[str]:
        terms: list[str] = []
        if "type" in schema:
            terms.append(_type_expr(schema["type"], var))
        if "enum" in schema:
            values = schema["enum"]
            if all(type(v) is str for v in values):
                terms.append(f"(type({var}) is str and {var} in {self._const(frozenset(values))})")
            else:
                terms.append(f"_canon({var}) in {self._const({_canon(v) for v in values})}")
        num = f"(type({var}) is int or type({var}) is float)"
        if schema.get("type") in ("integer", "number"):
            num = "True"  # the type term already holds
        if "minimum" in schema:
            terms.append(f"(not {num} or {var} >= {self._const(schema['minimum'])})".replace("not True or ", ""))
        if "maximum" in schema:
            terms.append(f"(not {num} or {var} <= {self._const(schema['maximum'])})".replace("not True or ", ""))
        if "pattern" in schema:
            search = self._const(re.compile(schema["pattern"]).search)
            terms.append(f"(type({var}) is not str or {search}({var}) is not None)")
        return terms

    def _function(self, name: str, schema: Mapping[str, Any]) -> None:
        if "$ref" in schema:
            target = self.function_for_ref(schema["$ref"])
            self.lines += [f"def {name}(x):", f"    return {target}(x)", ""]
            return
        self._check_keywords(schema)
        body: list[str] = [f"if not ({t}): return False" for t in self._leaf_terms(schema, "x")]
        body += self._object_body(schema)
        body += self._array_body(schema)
        body += self._combinator_body(schema)
        self.lines.append(f"def {name}(x):")
        self.lines += ["    " + line for line in body]
        self.lines += ["    return True", ""]

    def _object_body(self, schema: Mapping[str, Any]) -> list[str]:
        props: Mapping[str, Any] = schema.get("properties", {})
        addl = schema.get("additionalProperties", True)
        required = list(schema.get("required", ()))
        if not props and addl is True and not required:
            return []
        inner: list[str] = ["for k, v in x.items():"]
        word = "if"
        for key, sub in props.items():
            inner.append(f"    {word} k == {key!r}:")
            inner.append(f"        if not ({self.expr(sub, 'v')}): return False")
            word = "elif"
        if addl is False:
            inner.append("    else: return False" if props else "    return False")
        elif isinstance(addl, Mapping):
            check = f"if not ({self.expr(addl, 'v')}): return False"
            inner += ["    else:", f"        {check}"] if props else [f"    {check}"]
        elif not props:
            inner.pop()
        for key in required:
            inner.append(f"if {key!r} not in x: return False")
        if schema.get("type") == "object":  # the type term already returned for non-objects
            return inner
        return ["if type(x) is dict:"] + ["    " + line for line in inner]

    def _array_body(self, schema: Mapping[str, Any]) -> list[str]:
        items = schema.get("items")
        if isinstance(items, list):
            raise ValueError("tuple-form items is not supported")
        min_items = schema.get("minItems", 0)
        unique = bool(schema.get("uniqueItems", False))
        if items is None and not min_items and not unique:
            return []
        inner: list[str] = []
        if min_items:
            inner.append(f"if len(x) < {int(min_items)}: return False")
        if items is not None:
            inner += ["for v in x:", f"    if not ({self.expr(items, 'v')}): return False"]
        if unique:
            inner.append("if not _distinct(x): return False")
        return ["if type(x) is list:"] + ["    " + line for line in inner]

    def _combinator_body(self, schema: Mapping[str, Any]) -> list[str]:
        out: list[str] = []
        for key in ("anyOf", "oneOf"):
            if key not in schema:
                continue
            is_object = schema.get("type") == "object"
            alts = [self._alternative(a, is_object) for a in schema[key]]
            if key == "anyOf":
                out.append(f"if not ({' or '.join(alts)}): return False")
            else:
                out.append(f"if sum([{', '.join(alts)}]) != 1: return False")
        return out

    def _alternative(self, alt: Mapping[str, Any], is_object: bool) -> str:
        if set(alt) == {"required"}:  # SARIF's only use: key presence (applies to objects only)
            present = " and ".join(f"{k!r} in x" for k in alt["required"]) or "True"
            return f"({present})" if is_object else f"(type(x) is not dict or ({present}))"
        return f"bool({self.expr(alt, 'x')})"


_TYPE_EXPR: dict[str, str] = {
    "object": "type({v}) is dict",
    "array": "type({v}) is list",
    "string": "type({v}) is str",
    "integer": "type({v}) is int",  # draft-04: 1.0 is not an integer; bool is not a number
    "number": "(type({v}) is int or type({v}) is float)",
    "boolean": "type({v}) is bool",
    "null": "{v} is None",
}


def _type_expr(types: str | list[str], var: str) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return "(" + " or ".join(_TYPE_EXPR[t].format(v=var) for t in names) + ")"


def _canon(x: Any) -> Any:
    """A hashable stand-in with JSON equality (1 == 1.0, true != 1, key order ignored)."""
    t = type(x)
    if t is dict:
        return ("o", frozenset((k, _canon(v)) for k, v in x.items()))
    if t is list:
        return ("a", tuple(_canon(v) for v in x))
    if t is bool:
        return ("b", x)
    return x


def _all_distinct(items: list[Any]) -> bool:
    if len(items) < 2:
        return True
    return len({_canon(v) for v in items}) == len(items)
