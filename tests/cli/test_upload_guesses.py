"""`forge-app upload` says what was guessed, one line each; the server keeps the notes on the scan."""

from __future__ import annotations

import json

import pytest

from forge_app.web.app import create_app

# `checkout` is a pytest fixture: imported so the tests below can request it by name (hence F401/F811).
from tests.cli.test_upload_cli_live import HEAD, checkout, run_upload, semgrep_report  # noqa: F401
from tests.support.live_server import serve


@pytest.fixture
def server(settings, storage):
    with serve(create_app(settings, storage, run_worker=False)) as url:
        yield url


def notes_of(stdout: str) -> list[str]:
    return [ln for ln in stdout.splitlines() if ln.startswith("note: ")]


def test_a_wrong_root_and_missing_branches_are_each_one_line(server, settings, storage, checkout, tmp_path):  # noqa: F811
    token = storage.create_upload_token("github", "octo/demo")
    env = {"FORGE_APP_URL": server, "FORGE_APP_TOKEN": token}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_upload([str(checkout / "semgrep.json"), "--commit", HEAD, "--repo", "octo/demo"], env, elsewhere)
    assert done.returncode == 0, done.stderr
    notes = notes_of(done.stdout)
    assert any("1 of 1 files the reports name are not under --root ." in n for n in notes), notes
    assert any("no branch was given: the scan is filed under 'main'" in n for n in notes), notes
    assert done.stdout.splitlines()[-1].startswith(settings.public_url)  # the URL (the server's answer) stays last
    scan = storage.scan(int(done.stdout.strip().rsplit("/", 1)[1]))
    assert len(scan.notes) == len(notes)

    done = run_upload(["semgrep.json", "--commit", HEAD, "--repo", "octo/demo", "--pr", "4", "--branch", "f"],
                      env, checkout)
    notes = notes_of(done.stdout)
    assert notes == ["note: no base branch was given: PR/MR 4 is compared with 'main' "
                     "(the branch of the latest branch scan); pass --base-branch"], done.stdout


def test_the_server_answers_with_its_notes(client, upload_token):
    from tests.web.scan_helpers import finding, upload

    doc = upload([finding()], branch="")
    doc["notes"] = ["uploader says hi"]
    body = client.post("/api/v1/scans", json=doc, headers={"Authorization": f"Bearer {upload_token}"}).json()
    assert body["notes"][0] == "uploader says hi" and "no branch was given" in body["notes"][1]
    raw = json.loads(json.dumps(semgrep_report()))
    raw["results"][0]["extra"]["lines"] = "requires login"
    r = client.post(f"/api/v1/scans?commit={'e' * 40}&branch=main", json=raw,
                    headers={"Authorization": f"Bearer {upload_token}"})
    assert any("1 of 1 findings have neither their code nor a snippet" in n for n in r.json()["notes"])
