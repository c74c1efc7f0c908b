"""The GitHub App manifest: `app.yml` at the repository root is the source of truth.

PyYAML is not a dependency, and app.yml uses a tiny YAML subset (nested mappings,
lists of scalars, comments), so a small reader is enough. When the package runs
without its source tree (no app.yml next to it), the embedded copy below is used;
a test keeps the two identical.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from forge_app.config import Settings

APP_YML = Path(__file__).resolve().parents[3] / "app.yml"

# Kept equal to app.yml by tests/github/test_github_setup.py.
EMBEDDED_MANIFEST: dict[str, Any] = {
    "name": "forge-app",
    "url": "https://github.com/forge-app/forge-app",
    "description": "Code-scanning review app - comments only on findings a pull request introduces, "
                   "with one-click fixes.",
    "public": False,
    "hook_attributes": {"url": "https://forge-app.example.com/webhooks/github", "active": True},
    "redirect_url": "https://forge-app.example.com/github/callback",
    "setup_url": "https://forge-app.example.com/github/installed",
    "setup_on_update": False,
    "callback_urls": ["https://forge-app.example.com/github/callback"],
    "default_permissions": {"pull_requests": "write", "checks": "write", "statuses": "write",
                            "contents": "read", "metadata": "read"},
    "default_events": ["pull_request", "push", "check_suite", "check_run"],
}


class ManifestError(ValueError):
    """app.yml uses YAML this reader does not understand; the message names the line."""


def _scalar(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("null", "~", ""):
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if ch in "'\"":
            quote = None if quote == ch else (quote or ch)
        elif ch == "#" and quote is None and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def parse_yaml_subset(text: str) -> dict[str, Any]:
    """Mappings nested by indentation, `- scalar` lists, scalars, `#` comments."""
    lines: list[tuple[int, str, int]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ManifestError(f"app.yml line {number}: indent with spaces, not tabs")
        content = _strip_comment(raw).rstrip()
        if content.strip():
            lines.append((len(content) - len(content.lstrip(" ")), content.strip(), number))

    def block(i: int, indent: int) -> tuple[Any, int]:
        if lines[i][1].startswith("- ") or lines[i][1] == "-":
            items: list[Any] = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("-"):
                items.append(_scalar(lines[i][1][1:]))
                i += 1
            return items, i
        mapping: dict[str, Any] = {}
        while i < len(lines) and lines[i][0] == indent:
            _, content, number = lines[i]
            key, sep, rest = content.partition(":")
            if not sep or not key.strip():
                raise ManifestError(f"app.yml line {number}: expected `key: value`")
            i += 1
            if rest.strip():
                mapping[key.strip()] = _scalar(rest)
            elif i < len(lines) and (lines[i][0] > indent or (lines[i][0] == indent and lines[i][1].startswith("-"))):
                mapping[key.strip()], i = block(i, lines[i][0])
            else:
                mapping[key.strip()] = None
        if i < len(lines) and lines[i][0] > indent:
            raise ManifestError(f"app.yml line {lines[i][2]}: unexpected indentation")
        return mapping, i

    if not lines:
        return {}
    result, end = block(0, lines[0][0])
    if end != len(lines) or not isinstance(result, dict):
        raise ManifestError(f"app.yml line {lines[min(end, len(lines) - 1)][2]}: cannot read this structure")
    return result


def load_manifest_template(path: Path | None = None) -> dict[str, Any]:
    path = path or APP_YML
    if path.is_file():
        return parse_yaml_subset(path.read_text(encoding="utf-8"))
    return copy.deepcopy(EMBEDDED_MANIFEST)


def build_manifest(settings: Settings, template: dict[str, Any] | None = None, *,
                   public: bool = False) -> dict[str, Any]:
    """The manifest to post to GitHub, with this server's public URLs filled in (`public`: an App
    anyone can install, which GitHub Marketplace requires)."""
    manifest = copy.deepcopy(template if template is not None else load_manifest_template())
    base = settings.public_url.rstrip("/")
    if settings.github_app_name:
        manifest["name"] = settings.github_app_name
    hook = dict(manifest.get("hook_attributes") or {})
    hook["url"] = f"{base}/webhooks/github"
    hook.setdefault("active", True)
    manifest["hook_attributes"] = hook
    manifest["redirect_url"] = f"{base}/github/callback"
    manifest["setup_url"] = f"{base}/github/installed"
    manifest["callback_urls"] = [f"{base}/github/callback"]
    if public or settings.marketplace_plans is not None:
        manifest["public"] = True if public else manifest.get("public", False)
        manifest["callback_urls"].append(f"{base}/github/marketplace/callback")  # the Setup URL's authorization
    return manifest
