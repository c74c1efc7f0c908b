"""The whole GitLab story, end to end, against the fake GitLab on loopback:

connection created -> MR opened webhook -> base scan and MR scan uploaded -> worker runs
-> exactly the new findings on added lines get diff discussions (with suggestions where
the fix lies in added lines of one hunk), the rest one summary note, the status fails on
a block rule -> redelivery and re-upload change nothing -> a fixing commit gets a reply
and then the thread is resolved -> a re-indent adds nothing.
"""

from __future__ import annotations

import json
from typing import Any

from forge_app.core.models import Finding
from forge_app.core.review.render import SUMMARY_MARKER, markers_in
from storage import Storage
from tests.gitlab.fake_gitlab import FakeGitLab, MergeRequest, Recorded
from tests.gitlab.gitlab_helpers import adapt, delivery_headers, drain, finding, fixture, upload_body

PROJECT, PROJECT_ID, IID = "acme/shop", 321, 12
TOKEN, SECRET = "glpat-story-0123456789", "story-webhook-secret"
TASKS = "app/tasks.py"

MAIN = """\
\"\"\"Background tasks for the shop.\"\"\"

import subprocess

import yaml


def run(cmd):
    return subprocess.call(cmd, shell=True)


def load_settings(path):
    with open(path) as fh:
        return fh.read()


def report(orders, path):
    lines = []
    for order in orders:
        lines.append(order.id)
        lines.append(order.total)
        lines.append(order.customer)
        lines.append(order.status)
        lines.append(order.created)
        lines.append(order.updated)
        lines.append(order.notes)
    return len(lines)


def ping(host):
    return run("ping -c 1 " + host)
"""

# The MR's first commit, then its head: yaml.load (block rule, one-line fix), a file opened
# at the top of report() and written at its end (two hunks), a debug print (monitor rule),
# and a new multi-line call.
FIRST = MAIN.replace("import subprocess\n", "import subprocess\n\nimport requests\n")
HEAD = """\
\"\"\"Background tasks for the shop.\"\"\"

import subprocess

import requests

import yaml


def run(cmd):
    return subprocess.call(cmd, shell=True)


def load_settings(path):
    with open(path) as fh:
        return yaml.load(fh)


def report(orders, path):
    out = open(path, "w")
    lines = []
    for order in orders:
        lines.append(order.id)
        lines.append(order.total)
        lines.append(order.customer)
        lines.append(order.status)
        lines.append(order.created)
        lines.append(order.updated)
        lines.append(order.notes)
    print("report", len(lines))
    out.write(str(lines))


def ping(host):
    return run("ping -c 1 " + host)


def fetch(url):
    return requests.get(
        url,
        verify=False,
    )
"""
FIXED = HEAD.replace("return yaml.load(fh)", "return yaml.safe_load(fh)")
REINDENTED = "# Tasks run by the worker.\n" + FIXED.replace("""\
def fetch(url):
    return requests.get(
        url,
        verify=False,
    )""", """\
def fetch(url):
  return requests.get(
      url,
      verify=False,
  )""")

POLICY = {"default": "comment", "rules": {"python.yaml-load": "block", "python.debug-print": "monitor"}}


def findings(files: dict[str, str], *, base: bool = False) -> list[Finding]:
    """What the scanner reports on these sources (line numbers come from the real text)."""
    out = [finding(files, "python.subprocess-shell-true", TASKS, "shell=True",
                   message="subprocess with shell=True", cwe=["CWE-78"])]
    if base:
        return out
    text = files[TASKS]
    if "yaml.load(" in text:
        out.append(finding(files, "python.yaml-load", TASKS, "yaml.load(fh)", severity="error",
                           message="yaml.load can run arbitrary code; use yaml.safe_load",
                           fix=["        return yaml.safe_load(fh)"]))
    out.append(finding(files, "python.command-injection", TASKS, 'run("ping -c 1 " + host)',
                       message="user input reaches a shell command"))
    out.append(finding(files, "python.file-not-closed", TASKS, 'out = open(path, "w")', end_needle="out.write(",
                       message="the file is never closed", fix_end_needle="out.write(",
                       fix=['    with open(path, "w") as out:', "        ...", "        out.write(str(lines))"]))
    out.append(finding(files, "python.debug-print", TASKS, 'print("report"', message="debug print"))
    out.append(finding(files, "python.requests-verify-false", TASKS, "return requests.get(", end_needle="  )",
                       message="TLS verification is disabled"))
    return out


def upload(client: Any, token: str, files: dict[str, str], commit: str, *, pr: int | None) -> dict[str, Any]:
    body = upload_body(files, findings(files, base=pr is None), commit=commit,
                       branch="main" if pr is None else "feature/reports", pull_request=pr)
    r = client.post("/api/v1/scans", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return r.json()


def webhook(client: Any, doc: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    r = client.post("/webhooks/gitlab", content=json.dumps(doc), headers=delivery_headers(doc, SECRET, key=key))
    assert r.status_code == 202, r.text
    return r.json()


def mr_event(name: str, head: str, oldrev: str | None = None) -> dict[str, Any]:
    return adapt(fixture(name), project=PROJECT, project_id=PROJECT_ID, iid=IID, head=head, oldrev=oldrev)


def snapshot(mr: MergeRequest) -> list[tuple[str, int, bool]]:
    return [(d["id"], len(d["notes"]), FakeGitLab.resolved(d)) for d in mr.discussions]


def since(gitlab: FakeGitLab, mark: int) -> list[Recorded]:
    return gitlab.requests[mark:]


def test_merge_request_story(client: Any, admin_headers: dict[str, str], storage: Storage, app: Any,
                             gitlab: FakeGitLab) -> None:
    # GitLab: a project with main, an MR opened with one commit, then a second push (two versions).
    gitlab.add_token(TOKEN, ["api"])
    project = gitlab.add_project(PROJECT, PROJECT_ID)
    main_sha = gitlab.commit(project, {TASKS: MAIN}, "main")
    first_sha = gitlab.commit(project, {TASKS: FIRST}, "add requests")
    head_sha = gitlab.commit(project, {TASKS: HEAD}, "reports and fetch")
    mr = gitlab.open_mr(project, IID, main_sha, first_sha, source_branch="feature/reports")

    # 1. The admin connects the project; the token is checked.
    r = client.post("/api/v1/connections", headers=admin_headers, json={
        "forge": "gitlab", "base_url": gitlab.url, "scope": "project", "target": PROJECT, "token": TOKEN,
        "webhook_secret": SECRET})
    assert r.status_code == 201, r.text
    assert [(q.method, q.path) for q in gitlab.requests] == [("GET", "/personal_access_tokens/self"),
                                                            ("GET", "/projects/acme%2Fshop")]
    assert client.put("/api/v1/policies", headers=admin_headers, json=POLICY).status_code == 200
    upload_token = storage.create_upload_token("gitlab", PROJECT)

    # 2. MR opened, then a push: the second version is the latest.
    assert webhook(client, mr_event("captured/merge_request.open", first_sha), key="open-1")["status"] == "queued"
    gitlab.push(mr, main_sha, head_sha)
    assert webhook(client, mr_event("captured/merge_request.update-new-commits-oldrev", head_sha, first_sha),
                   )["status"] == "queued"
    assert webhook(client, mr_event("captured/merge_request.update-title-description", head_sha))["status"] == "ignored"

    # 3. CI uploads the base scan and the MR scan; the worker publishes.
    base = upload(client, upload_token, {TASKS: MAIN}, main_sha, pr=None)
    assert base["pull_request"] is None and base["counts"]["new"] == 1
    scan = upload(client, upload_token, {TASKS: HEAD}, head_sha, pr=IID)
    assert scan["counts"] == {"new": 5, "fixed": 0, "unchanged": 1} and scan["blocking"] is True
    mark = len(gitlab.requests)
    drain(app)
    first_publish = since(gitlab, mark)
    assert gitlab.outside_contract == []  # from the connection check to publishing: only contract routes

    diffnotes = [d for d in mr.discussions if not d["individual_note"]]
    bodies = {d["notes"][0]["body"].split("`")[1]: d for d in diffnotes}
    assert set(bodies) == {"python.yaml-load", "python.file-not-closed", "python.requests-verify-false"}
    latest = mr.latest
    for d in diffnotes:
        position = d["notes"][0]["position"]
        assert (position["base_sha"], position["start_sha"], position["head_sha"]) == (
            latest["base_commit_sha"], latest["start_commit_sha"], head_sha)
        assert len(markers_in(d["notes"][0]["body"])) == 1
    yaml_note = bodies["python.yaml-load"]["notes"][0]
    assert "```suggestion:-0+0\n        return yaml.safe_load(fh)\n```" in yaml_note["body"]
    assert yaml_note["position"]["new_line"] == HEAD.splitlines().index("        return yaml.load(fh)") + 1
    assert "🔴 Blocking" in yaml_note["body"]
    # The fix of file-not-closed spans two hunks: shown as a plain block, never as a suggestion.
    crossing = bodies["python.file-not-closed"]["notes"][0]
    assert "```suggestion" not in crossing["body"] and "Suggested fix for lines" in crossing["body"]
    # A multi-line finding on added lines is anchored on its whole range.
    verify = bodies["python.requests-verify-false"]["notes"][0]["position"]
    assert verify["line_range"]["start"]["new_line"] == verify["new_line"] - 3
    # The finding outside the diff is in the one summary note; monitor and base findings nowhere.
    summaries = [d for d in mr.discussions if d["individual_note"]]
    assert len(summaries) == 1 and SUMMARY_MARKER in summaries[0]["notes"][0]["body"]
    assert "python.command-injection" in summaries[0]["notes"][0]["body"]
    every_body = "\n".join(n["body"] for d in mr.discussions for n in d["notes"])
    assert "python.debug-print" not in every_body and "python.subprocess-shell-true" not in every_body
    # The commit status: failed because of the block rule (no "running" first: within the request
    # budget, that request buys an inline comment).
    [status] = gitlab.statuses[(PROJECT_ID, head_sha)]
    assert status["history"] == ["failed"] and status["name"] == "forge-app"
    assert status["ref"] == "feature/reports" and status["target_url"] == scan["url"]
    assert status["description"].startswith("1 blocking finding(s) introduced · 5 new, 0 fixed, 1 unchanged")
    assert client.get(scan["url"].replace("http://testserver", ""),
                      headers={"Authorization": f"Bearer {upload_token}"}).json()["blocking"] is True

    # 4. Redelivery and re-upload change nothing on the MR.
    before = snapshot(mr)
    assert webhook(client, mr_event("captured/merge_request.open", first_sha), key="open-1")["status"] == "duplicate"
    again = upload(client, upload_token, {TASKS: HEAD}, head_sha, pr=IID)
    mark = len(gitlab.requests)
    drain(app)
    assert snapshot(mr) == before
    writes = [r for r in since(gitlab, mark) if r.method != "GET"]
    assert [(r.method, r.path.rsplit("/", 2)[-2]) for r in writes if "statuses" not in r.path] in (
        [], [("PUT", "notes")])  # at most the summary edited in place (it links the newest scan)
    assert [s["history"] for s in gitlab.statuses[(PROJECT_ID, head_sha)]] == [["failed"]] * 2
    assert again["counts"] == scan["counts"]

    # 5. A fixing commit: the thread gets a reply naming the commit, THEN is resolved.
    fixed_sha = gitlab.commit(project, {TASKS: FIXED}, "use safe_load")
    gitlab.push(mr, main_sha, fixed_sha)
    webhook(client, mr_event("captured/merge_request.update-new-commits-oldrev", fixed_sha, head_sha))
    fixed = upload(client, upload_token, {TASKS: FIXED}, fixed_sha, pr=IID)
    assert fixed["blocking"] is False
    mark = len(gitlab.requests)
    drain(app)
    thread = bodies["python.yaml-load"]
    assert [n["body"].startswith("✅ Fixed in " + fixed_sha[:12]) for n in thread["notes"]] == [False, True]
    assert FakeGitLab.resolved(thread)
    calls = [(r.method, r.path) for r in since(gitlab, mark) if thread["id"] in r.path]
    assert [m for m, _ in calls] == ["POST", "PUT"] and calls[0][1].endswith("/notes")
    others = [d for d in diffnotes if d is not thread]
    assert all(len(d["notes"]) == 1 and not FakeGitLab.resolved(d) for d in others)
    assert gitlab.statuses[(PROJECT_ID, fixed_sha)][0]["history"] == ["success"]

    # 6. A re-indent (and every line moved down by one) adds nothing.
    before = snapshot(mr)
    reindented_sha = gitlab.commit(project, {TASKS: REINDENTED}, "reindent")
    gitlab.push(mr, main_sha, reindented_sha)
    webhook(client, mr_event("captured/merge_request.update-new-commits-oldrev", reindented_sha, fixed_sha))
    reindented = upload(client, upload_token, {TASKS: REINDENTED}, reindented_sha, pr=IID)
    mark = len(gitlab.requests)
    drain(app)
    assert snapshot(mr) == before
    assert not [r for r in since(gitlab, mark) if r.method == "POST" and "statuses" not in r.path]
    assert reindented["counts"]["new"] == fixed["counts"]["new"] == 4
    assert gitlab.statuses[(PROJECT_ID, reindented_sha)][0]["history"] == ["success"]

    # What one MR scan cost: versions, diffs, 3 discussions, the summary note, the status: 7, the
    # request budget of 5 new findings (6 + 1). (The summary is looked for before posting only when
    # an earlier run may have posted it, and its discussion only when it is first edited.)
    assert len(first_publish) == 7, [(r.method, r.path) for r in first_publish]
    assert storage.jobs(status="failed") == []
