"""Where the rules served to `semgrep ci` come from: the files named by `FORGE_APP_RULES` (read at
start and again on SIGHUP) and the rule files stored through the admin API (`/api/v1/rules/{name}`).

A file Semgrep would refuse is never served: at start and on SIGHUP it is skipped with an error in
the log (the other files stay served); through the API it is refused with the reason.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

from forge_app.core.policy import Policy
from forge_app.core.rules import RuleFile, RuleFileError, parse_rule_file, served_rules
from storage import Storage

log = logging.getLogger(__name__)
ENV = "FORGE_APP_RULES"
SEMGREP_ENV = "FORGE_APP_SEMGREP"  # optional: a semgrep executable that checks uploaded files' patterns too
SEMGREP_TIMEOUT = 60
SUFFIXES = (".yml", ".yaml")

_CATALOGS: weakref.WeakSet[RuleCatalog] = weakref.WeakSet()


class RuleCatalog:
    """The rule files of `FORGE_APP_RULES`, kept in memory and swapped whole on reload."""

    def __init__(self, path: str | None) -> None:
        self.path = path or None
        self._lock = threading.Lock()
        self._files: tuple[RuleFile, ...] = ()
        self.problems: list[str] = []
        self.reload()
        _CATALOGS.add(self)

    @classmethod
    def from_env(cls) -> RuleCatalog:
        return cls(os.environ.get(ENV))

    @property
    def files(self) -> tuple[RuleFile, ...]:
        return self._files

    def reload(self) -> None:
        """Read the files again. A path that cannot be read keeps the rules served so far."""
        if self.path is None:
            return
        root = Path(self.path)
        try:
            if root.is_dir():
                paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
                named = [(p.relative_to(root).as_posix(), p) for p in paths]
            else:
                named = [(root.name, root)]
                root.stat()
        except OSError as exc:
            log.error("%s=%s cannot be read (%s); the rules served so far stay served", ENV, self.path,
                      exc.strerror or exc)
            return
        previous = {f.name: f for f in self._files}
        files: list[RuleFile] = []
        problems: list[str] = []
        for name, path in named:
            try:
                text = path.read_text(encoding="utf-8")
                files.append(RuleFile(name, "file", tuple(parse_rule_file(text, name=name)), text))
                continue
            except (OSError, UnicodeDecodeError) as exc:
                problem = f"{name}: cannot be read ({exc})"
            except RuleFileError as exc:
                problem = str(exc)
            if name in previous:  # a broken edit must not stop every CI run: the last good version stays
                files.append(previous[name])
                problem += " (its previous version stays served)"
            problems.append(problem)
        for problem in problems:
            log.error("rule file not served: %s", problem)
        with self._lock:
            self._files = tuple(files)
            self.problems = problems
        log.info("rules for semgrep ci: %d rule(s) in %d file(s) from %s", sum(len(f.rules) for f in files),
                 len(files), self.path)


def reload_all() -> None:
    for catalog in list(_CATALOGS):
        catalog.reload()


def install_sighup_reload(state: Any) -> None:
    """Read FORGE_APP_RULES for the app now; `kill -HUP <pid>` reads it again (`forge-app serve`)."""
    catalog_for(state)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: reload_all())


def stored_files(storage: Storage) -> list[RuleFile]:
    """Rule files from the admin API. They were validated when stored; one that no longer parses
    (a stricter check since) is skipped with an error in the log."""
    out = []
    for record in storage.rule_file_records():
        try:
            out.append(RuleFile(record.name, "api", tuple(parse_rule_file(record.content, name=record.name)),
                                record.content))
        except RuleFileError as exc:
            log.error("stored rule file not served: %s", exc)
    return out


def all_files(catalog: RuleCatalog, storage: Storage) -> list[RuleFile]:
    """FORGE_APP_RULES files first (they win on a repeated rule id), then the API's."""
    return [*catalog.files, *stored_files(storage)]


def rules_for_ci(catalog: RuleCatalog, storage: Storage, policy: Policy, *,
                 block_allowed: bool = True) -> list[dict[str, Any]]:
    return served_rules(all_files(catalog, storage), policy, block_allowed=block_allowed)


def catalog_for(state: Any) -> RuleCatalog:
    """The app's catalog (a Starlette `app.state`), made from FORGE_APP_RULES on first use."""
    catalog = getattr(state, "rule_catalog", None)
    if catalog is None:
        with _STATE_LOCK:
            catalog = getattr(state, "rule_catalog", None)
            if catalog is None:
                catalog = state.rule_catalog = RuleCatalog.from_env()
    return catalog


_STATE_LOCK = threading.Lock()


def semgrep_check(text: str, name: str) -> None:
    """With FORGE_APP_SEMGREP naming a semgrep executable, Semgrep itself loads the file (patterns
    included) against an empty directory, offline; a rule it refuses raises RuleFileError with its
    message. Without it, or when it cannot run, the structural checks stand alone (logged)."""
    exe = os.environ.get(SEMGREP_ENV)
    if not exe:
        return
    with tempfile.TemporaryDirectory(prefix="forge-app-rules-") as tmp:
        rules = Path(tmp) / "rules.yml"
        rules.write_text(text, encoding="utf-8")
        (Path(tmp) / "empty").mkdir()
        env = {**os.environ, "HOME": tmp, "SEMGREP_ENABLE_VERSION_CHECK": "0", "SEMGREP_SEND_METRICS": "off"}
        env.pop("SEMGREP_APP_TOKEN", None)
        try:
            done = subprocess.run([exe, "scan", "--config", str(rules), "--metrics=off", "--json", "--quiet",
                                   str(Path(tmp) / "empty")], capture_output=True, text=True, env=env, cwd=tmp,
                                  timeout=SEMGREP_TIMEOUT)
            errors = json.loads(done.stdout or "{}").get("errors") or []
        except (OSError, subprocess.TimeoutExpired, ValueError, AttributeError) as exc:
            log.warning("%s could not check rule file %s (%s); only the structural checks applied", SEMGREP_ENV,
                        name, exc)
            return
    refused = [e for e in errors if isinstance(e, dict) and e.get("level", "error") == "error"]
    if refused:
        message = str(refused[0].get("message") or refused[0].get("type") or "refused").strip()
        raise RuleFileError(f"{name}: Semgrep refuses it: {message}")
