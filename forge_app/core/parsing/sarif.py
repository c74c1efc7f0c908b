"""SARIF 2.1.0 from any tool (CodeQL, Semgrep, ...) as a Report.

The log is validated against the OASIS schema first, then read with the
checks the schema cannot express (line order, indexes in range, paths inside
the repository): a log that lies gets a ReportError naming the place, never a
crash or a silently wrong finding.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from forge_app.core.models import Finding, Fix, Report, ReportError, RuleInfo, Severity
from forge_app.core.parsing.common import (
    SchemaChecker,
    compile_schema_checker,
    is_absolute_reference,
    normalize_path,
    pointer,
    split_lines,
    try_relativize,
)

__all__ = ["is_sarif", "parse_sarif", "sarif_schema", "validate_sarif"]

SCHEMA_FILE = "sarif-schema-2.1.0.json"
_LEVELS: dict[str, Severity] = {"error": "error", "warning": "warning", "note": "info", "none": "info"}
_SKIPPED_KINDS = frozenset({"pass", "notApplicable"})


def is_sarif(data: Any) -> bool:
    """Looks like a SARIF log of any version (has `runs`); the version is checked by the caller."""
    return isinstance(data, dict) and "runs" in data


# --------------------------------------------------------------------------- validation


@cache
def sarif_schema() -> dict[str, Any]:
    """The OASIS SARIF 2.1.0 schema shipped in `forge_app/schemas/`, loaded once."""
    try:
        text = resources.files("forge_app").joinpath("schemas", SCHEMA_FILE).read_text(encoding="utf-8")
    except OSError:  # an editable install made while forge_app was a namespace package cannot serve resources
        text = (Path(__file__).resolve().parents[2] / "schemas" / SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _fast_checkers() -> tuple[SchemaChecker, SchemaChecker]:
    schema = sarif_schema()
    return compile_schema_checker(schema), compile_schema_checker(schema, "#/definitions/result")


@cache
def _explainers() -> tuple[Any, Any]:
    """`jsonschema` validators for the whole log and for one result: they say *why*."""
    from jsonschema import validators

    schema = sarif_schema()
    cls = validators.validator_for(schema)
    result_schema = {"$schema": schema["$schema"], "$ref": "#/definitions/result", "definitions": schema["definitions"]}
    return cls(schema), cls(result_schema)


def validate_sarif(data: Any, *, source: str = "report") -> None:
    """Raise ReportError (with the failing instance's JSON pointer) unless `data` is valid SARIF 2.1.0.

    A generated checker answers yes/no fast; only on "no" does `jsonschema`
    look at the failing result (or the log without its results) to explain.
    """
    check_log, check_result = _fast_checkers()
    if check_log(data):
        return
    log_validator, result_validator = _explainers()
    runs = data.get("runs") if isinstance(data, dict) else None
    for i, run in enumerate(runs if isinstance(runs, list) else ()):
        results = run.get("results") if isinstance(run, dict) else None
        for j, res in enumerate(results if isinstance(results, list) else ()):
            if not check_result(res):
                _raise_first(result_validator, res, source, ("runs", i, "results", j))
    _raise_first(log_validator, _without_results(data), source, ())
    _raise_first(log_validator, data, source, ())  # checker and jsonschema disagree: trust jsonschema


def _raise_first(validator: Any, instance: Any, source: str, prefix: tuple[str | int, ...]) -> None:
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(instance))
    if error is not None:
        where = pointer(*prefix, *error.absolute_path)
        raise ReportError(f"{source}: not valid SARIF 2.1.0: {error.message}", where)


def _without_results(data: Any) -> Any:
    """The log with every `results` array emptied, so `jsonschema` only reads the small rest."""
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        return data
    runs = [
        {**run, "results": []} if isinstance(run, dict) and isinstance(run.get("results"), list) else run
        for run in data["runs"]
    ]
    return {**data, "runs": runs}


# --------------------------------------------------------------------------- leniency

DESCRIPTIVE = frozenset({
    "description", "shortDescription", "fullDescription", "help", "markdown", "tags", "helpUri",
    "informationUri", "downloadUri", "fullName", "organization", "product", "productSuite", "version",
    "semanticVersion", "dottedQuadFileVersion", "releaseDateUtc", "invocations", "notifications",
    "conversion", "versionControlProvenance", "taxonomies", "translations", "policies", "graphs",
    "codeFlows", "stacks", "webRequest", "webResponse", "attachments", "externalPropertyFileReferences",
    "automationDetails", "runAggregates", "specialLocations", "addresses", "logicalLocations",
    "threadFlowLocations", "inlineExternalProperties", "contents", "hashes", "relationships",
    "guid", "correlationGuid", "workItemUris", "provenance", "suppressions", "defaultConfiguration",
    "configuration", "baselineState", "rank", "hostedViewerUri", "occurrenceCount", "columnKind",
    "redactionTokens", "newlineSequences", "language", "isComprehensive", "localizedData",
    "supportedTaxonomies", "associatedComponent", "deprecatedIds", "deprecatedGuids", "deprecatedNames",
    "relatedLocations", "annotations", "properties",
})
"""Fields nothing in forge-app's identity or placement depends on: a schema break inside one
of them is dropped with a warning instead of refusing the whole log (ruff 0.17.6 writes
`fixes[0].description.text: null` once in 156,876 results)."""
MAX_REPAIR_PASSES = 8
MAX_REPAIR_NOTES = 20


def _descriptive_prefix(path: Sequence[str | int]) -> int | None:
    """Length of the path up to its last descriptive key, or None when it has none."""
    for n in range(len(path), 0, -1):
        if isinstance(path[n - 1], str) and path[n - 1] in DESCRIPTIVE:
            return n
    return None


def _at(data: Any, path: Sequence[str | int]) -> Any:
    for key in path:
        data = data[key]
    return data


def _repair_one(data: Any, path: tuple[str | int, ...], error: Any) -> str | None:
    """Drops what makes one schema error; a note saying so, or None when that is not safe."""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema or {}).get("properties") or ())
        extra = sorted(k for k in error.instance if k not in known)
        if extra:
            for k in extra:
                error.instance.pop(k, None)
            return f"{pointer(*path)}: ignored unknown propert{'y' if len(extra) == 1 else 'ies'} {', '.join(extra)}"
    n = _descriptive_prefix(path)
    if n is None:
        return None
    parent = _at(data, path[: n - 1])
    if isinstance(parent, dict):
        parent.pop(path[n - 1], None)
        return f"{pointer(*path[:n])}: ignored: {error.message[:200]}"
    return None


def _repair_sarif(data: Any, source: str) -> list[str]:
    """Validates like `validate_sarif`, but drops schema breaks confined to descriptive, optional
    fields (and unknown properties), returning a warning per repair; anything identity or
    placement needs stays strict (ReportError). Mutates only the offending objects."""
    check_log, check_result = _fast_checkers()
    if check_log(data):
        return []
    log_validator, result_validator = _explainers()
    notes: list[str] = []
    for _ in range(MAX_REPAIR_PASSES):
        errors: list[tuple[tuple[str | int, ...], Any]] = []
        runs = data.get("runs") if isinstance(data, dict) else None
        for i, run in enumerate(runs if isinstance(runs, list) else ()):
            results = run.get("results") if isinstance(run, dict) else None
            for j, res in enumerate(results if isinstance(results, list) else ()):
                if not check_result(res):
                    errors += [(("runs", i, "results", j, *e.absolute_path), e)
                               for e in result_validator.iter_errors(res)]
        errors += [(tuple(e.absolute_path), e) for e in log_validator.iter_errors(_without_results(data))]
        if not errors:
            break
        unsafe = []
        for path, e in sorted(errors, key=lambda pe: -len(pe[0])):  # innermost first: parents stay addressable
            try:
                note = _repair_one(data, path, e)
            except (KeyError, IndexError, TypeError):  # already dropped with an enclosing field
                continue
            if note is None:
                unsafe.append((path, e))
            else:
                notes.append(note)
        if unsafe:
            from jsonschema.exceptions import best_match

            error = best_match(e for _, e in unsafe)
            where = next(p for p, e in unsafe if e is error)
            raise ReportError(f"{source}: not valid SARIF 2.1.0: {error.message}", pointer(*where))
        if check_log(data):
            break
    validate_sarif(data, source=source)  # whatever is left is refused, as before
    if len(notes) > MAX_REPAIR_NOTES:
        notes[MAX_REPAIR_NOTES:] = [f"... and {len(notes) - MAX_REPAIR_NOTES} more such fields ignored"]
    return [f"{source}: SARIF schema break ignored: {n}" for n in notes]


# --------------------------------------------------------------------------- parsing


def parse_sarif(data: Mapping[str, Any], *, source: str = "report", root: str | None = None) -> Report:
    """A validated SARIF 2.1.0 log as one Report over all its runs.

    `root` is the absolute path of the checkout, used to make absolute URIs
    repository-relative (besides the log's own `originalUriBaseIds`).
    """
    version = data.get("version")
    if version != "2.1.0":
        raise ReportError(f"{source}: not Semgrep JSON or SARIF 2.1.0: SARIF version {version!r} is not supported",
                          "/version")
    errors: list[str] = _repair_sarif(data, source)
    findings: list[Finding] = []
    tools: list[str] = []
    for i, raw_run in enumerate(data.get("runs") or ()):
        run = _Run(i, raw_run, source, root)
        if run.tool not in tools:
            tools.append(run.tool)
        for j, res in enumerate(raw_run.get("results") or ()):
            finding = run.finding(j, res)
            if finding is not None:
                findings.append(finding)
        errors.extend(run.errors())
    return Report(tool=", ".join(tools) or "unknown", findings=tuple(findings), errors=tuple(errors), format="sarif")


@dataclass(slots=True)
class _Rule:
    """What a finding needs from one reportingDescriptor, computed once per rule."""

    id: str
    info: RuleInfo
    metadata: dict[str, Any]
    default_level: str | None
    message_strings: Mapping[str, Any]
    short: str | None


@dataclass(slots=True)
class _Component:
    """A tool component (driver or extension) and its rules by index and by id."""

    name: str
    guid: str | None
    rules: list[_Rule]
    by_id: dict[str, _Rule] = field(default_factory=dict)
    strings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Where:
    """A result's primary location, resolved."""

    path: str
    start_line: int
    end_line: int
    start_col: int | None
    end_col: int | None
    snippet_lines: list[str] | None


class _Run:
    """One `runs[i]`: its tools, rules, artifacts and URI bases, and the results' reading."""

    def __init__(self, index: int, run: Mapping[str, Any], source: str, root: str | None) -> None:
        self.index = index
        self.source = source
        self.root = root
        self.ptr = pointer("runs", index)
        tool = run["tool"]
        self.driver = _component(tool["driver"])
        self.extensions = [_component(ext) for ext in tool.get("extensions") or ()]
        self.tool = self.driver.name
        self.semgrep = "semgrep" in self.tool.lower()
        self.utf16 = run.get("columnKind") == "utf16CodeUnits"
        self.artifacts: Sequence[Any] = run.get("artifacts") or ()
        self.bases: Mapping[str, Any] = run.get("originalUriBaseIds") or {}
        self.abs_bases = [b["uri"] for b in self.bases.values() if "uri" in b and is_absolute_reference(b["uri"])]
        self.paths: dict[tuple[str, str | None], str] = {}
        self.notes: Counter[str] = Counter()
        self.notifications = _notifications(run)

    # ----- reporting

    def fail(self, message: str, ptr: str) -> ReportError:
        return ReportError(f"{self.source}: {message}", ptr)

    def errors(self) -> list[str]:
        return self.notifications + [f"run {self.index}: {n} result(s) {what}" for what, n in self.notes.items()]

    # ----- one result

    def finding(self, j: int, res: Mapping[str, Any]) -> Finding | None:
        """The result as a Finding, or None when it is not a reportable finding here."""
        if res.get("kind", "fail") in _SKIPPED_KINDS or res.get("baselineState") == "absent":
            return None
        if any(s.get("status", "accepted") == "accepted" for s in res.get("suppressions") or ()):
            return None
        ptr = f"{self.ptr}/results/{j}"
        rule_id, rule = self.rule_of(res, ptr)
        where = self.where(res, ptr)
        if where is None:
            return None
        level = res.get("level") or (rule.default_level if rule else None) or "warning"
        if res.get("kind", "fail") != "fail":
            level = "none"
        tool_ids: dict[str, str] = {}
        for key in ("partialFingerprints", "fingerprints"):  # the stable `fingerprints` win on a clash
            ids = res.get(key)
            if ids:
                for k, v in ids.items():
                    tool_ids["sarif." + k] = v
        snippet = "\n".join(where.snippet_lines) if where.snippet_lines is not None else None
        return Finding(
            rule_id=rule_id,
            path=where.path,
            start_line=where.start_line,
            end_line=where.end_line,
            start_col=where.start_col,
            end_col=where.end_col,
            message=self.message(res["message"], rule),
            severity=_LEVELS[level],
            metadata=dict(rule.metadata) if rule else {},
            rule=rule.info if rule else RuleInfo(),
            snippet=snippet,
            fix=self.fix(res, where, ptr),
            tool=self.tool,
            tool_ids=tool_ids,
        )

    def rule_of(self, res: Mapping[str, Any], ptr: str) -> tuple[str, _Rule | None]:
        """The result's rule id and descriptor, from `ruleId`/`ruleIndex`/`rule`.

        An index out of range, an unknown tool component, or an id that
        contradicts the indexed rule is a lie: ReportError.
        """
        ref = res.get("rule") or {}
        component = self.component_of(ref.get("toolComponent"), ptr + "/rule/toolComponent")
        rule_id = res.get("ruleId") or ref.get("id")
        index, index_ptr = ref.get("index", -1), ptr + "/rule/index"
        if index < 0:
            index, index_ptr = res.get("ruleIndex", -1), ptr + "/ruleIndex"
        rule: _Rule | None = None
        if index >= 0:
            if index >= len(component.rules):
                raise self.fail(f"rule index {index} is out of range: {component.name!r} has "
                                f"{len(component.rules)} rule(s)", index_ptr)
            rule = component.rules[index]
            if rule_id is not None and rule_id != rule.id and not rule_id.startswith(rule.id + "/"):
                raise self.fail(f"ruleId {rule_id!r} contradicts rules[{index}] whose id is {rule.id!r}", index_ptr)
        elif rule_id is not None:
            rule = component.by_id.get(rule_id) or self.rule_anywhere(rule_id, ref)
        if rule_id is None:
            rule_id = rule.id if rule else "unknown"
        return rule_id, rule

    def rule_anywhere(self, rule_id: str, ref: Mapping[str, Any]) -> _Rule | None:
        """A rule named by id only may live in an extension (rule packs); hierarchical ids fall back to the parent."""
        if ref.get("toolComponent") is not None:
            return None
        for comp in (self.driver, *self.extensions):
            hit = comp.by_id.get(rule_id)
            if hit is None and "/" in rule_id:
                hit = comp.by_id.get(rule_id.split("/", 1)[0])
            if hit is not None:
                return hit
        return None

    def component_of(self, ref: Mapping[str, Any] | None, ptr: str) -> _Component:
        if not ref:
            return self.driver
        index: int = ref.get("index", -1)  # the schema check made it an integer
        if index >= 0:
            if index >= len(self.extensions):
                raise self.fail(f"toolComponent index {index} is out of range: the tool has "
                                f"{len(self.extensions)} extension(s)", ptr + "/index")
            return self.extensions[index]
        for comp in (self.driver, *self.extensions):
            if ("guid" in ref and ref["guid"] == comp.guid) or ("guid" not in ref and ref.get("name") == comp.name):
                return comp
        raise self.fail(f"toolComponent {ref.get('name') or ref.get('guid')!r} is not a component of this tool", ptr)

    def message(self, msg: Mapping[str, Any], rule: _Rule | None) -> str:
        """`message.text`, else `message.id` from the rule's (or tool's) messageStrings, else the rule's
        short description."""
        text = msg.get("text")
        templated = False
        if text is None and "id" in msg:
            entry = (rule.message_strings if rule else {}).get(msg["id"]) or self.driver.strings.get(msg["id"])
            text = entry.get("text") if entry else None
            templated = text is not None
        if text is None:
            text = (rule.short if rule else None) or ""
        args = msg.get("arguments")
        if args or templated:
            text = _fill_placeholders(text, args or [])
        return text

    # ----- location

    def where(self, res: Mapping[str, Any], ptr: str) -> _Where | None:
        """The primary physical location; None (and a note) when it has none we can use.

        A location without a region is a file-level result: it is placed on line 1.
        """
        locations = res.get("locations") or ()
        physical = locations[0].get("physicalLocation") if locations else None
        if not physical or "artifactLocation" not in physical:
            self.notes["without a physical location were skipped"] += 1
            return None
        loc_ptr = ptr + "/locations/0/physicalLocation"
        path = self.path_of(physical["artifactLocation"], loc_ptr + "/artifactLocation")
        region = physical.get("region")
        if region is None:
            return _Where(path, 1, 1, None, None, None)
        if "startLine" not in region:
            self.notes["with only a character/byte offset region were skipped"] += 1
            return None
        start, start_col = region["startLine"], region.get("startColumn")
        end, end_col = region.get("endLine", start), region.get("endColumn")
        if end < start:
            raise self.fail(f"region endLine {end} is before startLine {start}", loc_ptr + "/region")
        if end == start and start_col is not None and end_col is not None and end_col < start_col:
            raise self.fail(f"region endColumn {end_col} is before startColumn {start_col} on one line",
                            loc_ptr + "/region")
        snippet = _whole_line_snippet(region, physical.get("contextRegion"), self.semgrep)
        return _Where(path, start, end, start_col, end_col, snippet)

    def path_of(self, location: Mapping[str, Any], ptr: str) -> str:
        """The repository path an artifactLocation names (via `index` into `run.artifacts` when it has no uri).

        An index is checked against `run.artifacts` whenever the run has that
        table; a location that also has a uri while the run has no table at all
        (older CodeQL/LGTM logs do this) keeps its uri and the index is ignored.
        """
        uri, base_id = location.get("uri"), location.get("uriBaseId")
        index = location.get("index", -1)
        if index >= 0 and (uri is None or self.artifacts):
            if index >= len(self.artifacts):
                raise self.fail(f"artifact index {index} is out of range: the run lists "
                                f"{len(self.artifacts)} artifact(s)", ptr + "/index")
            listed = self.artifacts[index].get("location") or {}
            if uri is None:
                uri, base_id = listed.get("uri"), listed.get("uriBaseId")
            elif listed.get("uri") not in (None, uri):
                self.notes["whose artifactLocation.uri differs from run.artifacts[index] used the uri"] += 1
        if uri is None:
            raise self.fail("artifactLocation has neither a uri nor an artifact index with one", ptr)
        key = (uri, base_id)
        hit = self.paths.get(key)
        if hit is None:
            try:
                hit = self.resolve(uri, base_id)
            except ReportError as exc:
                raise self.fail(exc.args[0], ptr) from None
            self.paths[key] = hit
        return hit

    def resolve(self, uri: str, base_id: str | None) -> str:
        """Resolve `uriBaseId` chains through `originalUriBaseIds` to a repository path.

        An undefined base id (CodeQL's `%SRCROOT%` usually is) means the
        repository root. When the chain ends at an absolute base, the path is
        taken relative to `root` if the base lies under it, else relative to
        that base (the checkout the tool ran in). An absolute uri must lie under
        `root` or one of the log's absolute bases.
        """
        if is_absolute_reference(uri):
            rel = try_relativize(uri, [*([self.root] if self.root else []), *self.abs_bases])
            if rel is None:
                raise ReportError(f"file URI {uri!r} is absolute and not under the repository root or a known "
                                  "base URI; name the checkout the scanner ran in (`root` query parameter, or "
                                  "`forge-app upload --root`), or write originalUriBaseIds")
            return rel
        parts, top = [uri], None
        seen: set[str] = set()
        while base_id is not None:
            if base_id in seen:
                raise ReportError(f"uriBaseId {base_id!r} refers to itself through originalUriBaseIds")
            seen.add(base_id)
            base = self.bases.get(base_id)
            if base is None:
                break
            base_uri = base.get("uri")
            if base_uri and is_absolute_reference(base_uri):
                top = base_uri
                break
            if base_uri:
                parts.insert(0, base_uri)
            base_id = base.get("uriBaseId")
        relative = _join(parts)
        if top is not None and self.root:
            try:
                rel = try_relativize(_join([top, relative]), [self.root])
            except ReportError:
                rel = None  # e.g. an https: base: not a place on disk
            if rel is not None:
                return rel
        return normalize_path(relative)

    # ----- fixes

    def fix(self, res: Mapping[str, Any], where: _Where, ptr: str) -> Fix | None:
        """The first of the result's fixes that can be shown as whole replacement lines for its own file."""
        for a, fix in enumerate(res.get("fixes") or ()):
            for b, change in enumerate(fix["artifactChanges"]):
                change_ptr = f"{ptr}/fixes/{a}/artifactChanges/{b}"
                if self.path_of(change["artifactLocation"], change_ptr + "/artifactLocation") != where.path:
                    continue
                read = [_edit(rep, f"{change_ptr}/replacements/{k}", self)
                        for k, rep in enumerate(change["replacements"])]
                edits = [e for e in read if e is not None]
                if len(edits) != len(read):
                    continue  # offsets or binary content: not expressible as lines
                made = _whole_line_fix(edits, where.snippet_lines, where.start_line, self.semgrep, self.utf16)
                if made is not None:
                    return made
        return None


# --------------------------------------------------------------------------- rules, messages


def _component(raw: Mapping[str, Any]) -> _Component:
    rules = [_rule(d) for d in raw.get("rules") or ()]
    comp = _Component(name=raw["name"], guid=raw.get("guid"), rules=rules,
                      strings=raw.get("globalMessageStrings") or {})
    for r in rules:
        comp.by_id.setdefault(r.id, r)
    return comp


_CWE_TAG = re.compile(r"^CWE-\d+")
_CODEQL_CWE_TAG = re.compile(r"^external/cwe/cwe-0*(\d+)$", re.IGNORECASE)
_CONFIDENCE_TAG = re.compile(r"^(\S+) CONFIDENCE$")


def _rule(d: Mapping[str, Any]) -> _Rule:
    props: dict[str, Any] = dict(d.get("properties") or {})
    tags = [t for t in props.get("tags") or () if isinstance(t, str)]
    cwe = [t for t in tags if _CWE_TAG.match(t)]
    cwe += [f"CWE-{m.group(1)}" for t in tags if (m := _CODEQL_CWE_TAG.match(t))]
    cwe += [c for c in _strs(props.get("cwe")) if c not in cwe]
    owasp = [t[len("OWASP-"):] for t in tags if t.startswith("OWASP-")]
    owasp += [o for o in _strs(props.get("owasp")) if o not in owasp]
    confidence = next((m.group(1) for t in tags if (m := _CONFIDENCE_TAG.match(t))), None)
    if confidence is None:
        confidence = _str_or_none(props.get("confidence")) or _str_or_none(props.get("precision"))
    category = _str_or_none(props.get("category")) or ("security" if "security" in tags else None)
    info = RuleInfo(
        cwe=tuple(dict.fromkeys(cwe)),
        owasp=tuple(dict.fromkeys(owasp)),
        category=category,
        references=_strs(props.get("references")),
        technology=_strs(props.get("technology")),
        confidence=confidence,
        help_uri=d.get("helpUri"),
    )
    level = (d.get("defaultConfiguration") or {}).get("level")
    short = (d.get("shortDescription") or {}).get("text")
    return _Rule(d["id"], info, props, level, d.get("messageStrings") or {}, short)


def _strs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{(\d+)\}")


def _fill_placeholders(template: str, args: Sequence[str]) -> str:
    """SARIF message templates: `{n}` is arguments[n]; `{{`/`}}` are literal braces."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        n = int(m.group(1))
        return args[n] if n < len(args) else m.group(0)

    return _PLACEHOLDER.sub(sub, template)


def _notifications(run: Mapping[str, Any]) -> list[str]:
    """Tool errors and warnings the run reports about itself, one short line each."""
    out: list[str] = []
    for inv in run.get("invocations") or ():
        if inv.get("executionSuccessful") is False:
            out.append("the tool reported that its execution was not successful")
        for key in ("toolExecutionNotifications", "toolConfigurationNotifications"):
            for note in inv.get(key) or ():
                level = note.get("level", "warning")
                if level in ("error", "warning"):
                    text = (note.get("message") or {}).get("text") or (note.get("message") or {}).get("id") or ""
                    line = f"{level}: {text.strip().splitlines()[0] if text.strip() else 'notification'}"
                    out.append(line if len(line) <= 300 else line[:299] + "…")
    return out


def _join(parts: list[str]) -> str:
    """Join base URIs and a relative reference; a base without its trailing slash is forgiven."""
    out = parts[0]
    for part in parts[1:]:
        out = out.rstrip("/\\") + "/" + part if out else part
    return out


# --------------------------------------------------------------------------- snippets


def _whole_line_snippet(region: Mapping[str, Any], context: Mapping[str, Any] | None,
                        semgrep: bool) -> list[str] | None:
    """The region's whole source lines, when the log gives them; else None.

    Preferred: a `contextRegion` snippet that is whole lines (no columns) and
    contains the region's lines, sliced to them. Else `region.snippet`, which
    the spec says is exactly the region's text, so it is only taken as whole
    lines when that cannot be wrong or is known: the region starts at column 1
    (or has no start column); or it is one line and the text is longer than the
    region's span and reaches its end column (so it holds the line's prefix);
    or the tool is Semgrep, which always writes whole lines there.
    """
    start = region["startLine"]
    end = region.get("endLine", start)
    if context and "startLine" in context and context.get("startColumn", 1) == 1 and "endColumn" not in context:
        text = (context.get("snippet") or {}).get("text")
        c_start = context["startLine"]
        c_end = context.get("endLine", c_start)
        if isinstance(text, str) and c_start <= start and end <= c_end:
            lines = split_lines(text)
            if len(lines) == c_end - c_start + 1:
                return lines[start - c_start:end - c_start + 1]
    text = (region.get("snippet") or {}).get("text")
    if not isinstance(text, str):
        return None
    lines = split_lines(text)
    if len(lines) != end - start + 1:
        return None
    start_col, end_col = region.get("startColumn"), region.get("endColumn")
    if start_col in (None, 1) or semgrep:
        return lines
    if end == start and end_col is not None and len(lines[0]) >= end_col - 1 > end_col - start_col:
        return lines
    return None


# --------------------------------------------------------------------------- fixes


@dataclass(frozen=True, slots=True)
class _Edit:
    """One replacement: delete (start_line, start_col)..(end_line, end_col), insert text.

    end_col None means "to the end of end_line, before its newline" (SARIF's default).
    """

    start_line: int
    start_col: int
    end_line: int
    end_col: int | None
    text: str


def _edit(rep: Mapping[str, Any], ptr: str, run: _Run) -> _Edit | None:
    """A replacement in line/column terms; None when it uses offsets or binary content."""
    region = rep["deletedRegion"]
    if "startLine" not in region:
        return None
    inserted = rep.get("insertedContent")
    if inserted is not None and "text" not in inserted:
        return None
    start, end = region["startLine"], region.get("endLine", region["startLine"])
    start_col, end_col = region.get("startColumn", 1), region.get("endColumn")
    if end < start or (end == start and end_col is not None and end_col < start_col):
        raise run.fail("a fix's deletedRegion ends before it starts", ptr + "/deletedRegion")
    return _Edit(start, start_col, end, end_col, inserted["text"] if inserted else "")


def _whole_line_fix(edits: list[_Edit], lines: list[str] | None, first: int, semgrep: bool, utf16: bool) -> Fix | None:
    """Turn replacements into whole replacement lines.

    Semgrep writes the *whole fixed lines* into `insertedContent` while
    `deletedRegion` covers only the match; the spec (and CodeQL) mean a
    column-exact splice. One replacement is read as whole lines when the tool
    is Semgrep, when it deletes whole lines, or when, with the source lines
    known, its text keeps the untouched start of the first line and end of the
    last line (a splice would then repeat them). Otherwise the replacements are
    spliced into the known source lines by column; without them, no fix.
    """
    if len(edits) == 1:
        whole = _as_whole_lines(edits[0], lines, first, semgrep, utf16)
        if whole is not None:
            return whole
    if lines is None:
        return None
    return _splice(edits, lines, first, utf16)


def _as_whole_lines(e: _Edit, lines: list[str] | None, first: int, semgrep: bool, utf16: bool) -> Fix | None:
    if e.start_col == 1 and e.end_col is None:
        return Fix(e.start_line, e.end_line, tuple(split_lines(e.text)) if e.text else ("",))
    if e.start_col == 1 and e.end_col == 1 and e.end_line > e.start_line and (e.text == "" or e.text.endswith("\n")):
        return Fix(e.start_line, e.end_line - 1, tuple(split_lines(e.text)) if e.text else ())
    if semgrep:
        return Fix(e.start_line, e.end_line, tuple(split_lines(e.text)))
    if lines is None or not (first <= e.start_line and e.end_line < first + len(lines)):
        return None
    head_line, tail_line = lines[e.start_line - first], lines[e.end_line - first]
    head_end = _col_index(head_line, e.start_col, utf16)
    tail_start = len(tail_line) if e.end_col is None else _col_index(tail_line, e.end_col, utf16)
    if head_end is None or tail_start is None:
        return None
    prefix, suffix = head_line[:head_end], tail_line[tail_start:]
    text = e.text[:-1] if e.text.endswith("\n") and not suffix else e.text
    fits = len(text) >= len(prefix) + len(suffix) and text.startswith(prefix) and text.endswith(suffix)
    if (prefix or suffix) and fits:
        return Fix(e.start_line, e.end_line, tuple(text.split("\n")))
    return None


def _splice(edits: list[_Edit], lines: list[str], first: int, utf16: bool) -> Fix | None:
    """Apply column-exact replacements to the known lines; the Fix covers just the changed lines."""
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    text = "\n".join(lines) + "\n"
    spans: list[tuple[int, int, str]] = []
    for e in edits:
        a = _offset(lines, starts, first, e.start_line, e.start_col, utf16)
        b = _offset(lines, starts, first, e.end_line, e.end_col, utf16)
        if a is None or b is None or b < a:
            return None
        spans.append((a, b, e.text))
    spans.sort()
    if any(spans[k][1] > spans[k + 1][0] for k in range(len(spans) - 1)):
        return None  # overlapping replacements: no single reading
    for a, b, new in reversed(spans):
        text = text[:a] + new + text[b:]
    if not text.endswith("\n"):
        return None  # the fix joins the last line with one we do not have
    new_lines = text[:-1].split("\n")
    return _trimmed_fix(lines, new_lines, first)


def _offset(lines: list[str], starts: list[int], first: int, line: int, col: int | None, utf16: bool) -> int | None:
    k = line - first
    if k == len(lines) and col == 1:
        return starts[-1]
    if not 0 <= k < len(lines):
        return None
    idx = len(lines[k]) if col is None else _col_index(lines[k], col, utf16)
    return None if idx is None else starts[k] + idx


def _col_index(line: str, col: int, utf16: bool) -> int | None:
    """The string index of 1-based column `col` (code points, or UTF-16 units); None if past the line end."""
    if not utf16 or line.isascii():
        return col - 1 if col - 1 <= len(line) else None
    units = 0
    for i, ch in enumerate(line):
        if units == col - 1:
            return i
        if units > col - 1:
            return None  # the column splits a surrogate pair
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line) if units == col - 1 else None


def _trimmed_fix(old: list[str], new: list[str], first: int) -> Fix | None:
    """The smallest whole-line Fix turning `old` into `new` (at least one old line replaced)."""
    if old == new:
        return None
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    if head + tail >= len(old):  # a pure insertion: keep one neighbouring old line in the fix
        if head > 0:
            head -= 1
        else:
            tail -= 1
    return Fix(first + head, first + len(old) - tail - 1, tuple(new[head:len(new) - tail]))
