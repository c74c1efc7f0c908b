"""The GitHub App manifest: `app.yml`, shipped as package data (forge_app/forges/github/app.yml).

The repository root's `app.yml` is a symbolic link to it, so people who read it there and
the installed package (wheel, editable install, the Docker image) read the same file. It is
parsed with PyYAML's safe loader; a file that is not a mapping is a ManifestError.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from forge_app.config import Settings

APP_YML = resources.files("forge_app.forges.github") / "app.yml"


class ManifestError(ValueError):
    """app.yml is not a YAML mapping; the message says where."""


def load_manifest_template(path: Path | None = None) -> dict[str, Any]:
    """app.yml as a dict (`path`: another manifest file, e.g. in tests)."""
    source = path if path is not None else APP_YML
    try:
        doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ManifestError(f"app.yml is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestError("app.yml must be a YAML mapping (name, url, hook_attributes, ...)")
    return doc


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
