"""The Marketplace story on the fake GitHub: an org buys Free, its public repository gets
reviews and its private one a neutral "plan limit reached"; it upgrades and the private one
gets reviews; a pending downgrade changes nothing until `changed` arrives; the Setup URL
shows the plan; `cancelled` stops all publishing and revokes the user's token."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import drain
from tests.github.gh_helpers import deliver, installation_event, push_pull_request, scan_tree, sha, upload, write_tree
from tests.marketplace.mp_helpers import FREE, LISTING_URL, ORG_ID, PRO, deliver_listing, purchase_event

PUBLIC, PRIVATE = "octo/site", "octo/app"
EVAL = "python.lang.security.eval"
BASE = {"app/main.py": "import os\n\n\ndef ok():\n    return 1\n"}
HEAD = {"app/main.py": BASE["app/main.py"] + "\n\ndef run(expr):\n    return eval(expr)\n"}


def install(client: Any, fake: Any) -> None:
    fake.add_installation(1001, "octo", [PUBLIC, PRIVATE])
    event = installation_event("created", 1001, [PUBLIC, PRIVATE], account="octo")
    event["repositories"][0]["private"] = False
    assert deliver(client, "installation", event).status_code == 202


def baseline(client: Any, storage: Any, tmp_path: Path, repo: str) -> str:
    token = storage.create_upload_token("github", repo)
    tree = write_tree(tmp_path / repo.replace("/", "_") / "base", BASE)
    upload(client, token, commit=sha(f"base:{repo}"), findings=scan_tree(tree), repo=repo)
    return token


def pr_scan(client: Any, fake: Any, tmp_path: Path, token: str, repo: str, label: str, pr: int = 7) -> dict:
    return push_pull_request(client, token, fake, tmp_path / repo.replace("/", "_"), BASE, HEAD,
                             head_sha=sha(f"{label}:{repo}"), pr=pr, repo=repo)


def last_run(fake: Any, repo: str, head: str) -> dict:
    runs = fake.runs_of(repo, head)
    assert len(runs) == 1, runs
    return runs[0]


def test_free_public_served_private_limited_then_upgrade_pending_downgrade_and_cancel(
        client, app, storage, fake_github, tmp_path, admin_headers) -> None:
    install(client, fake_github)
    assert client.put("/api/v1/policies", json={"default": "comment", "rules": {EVAL: "block"}},
                      headers=admin_headers).status_code == 200
    assert deliver_listing(client, purchase_event("purchased", FREE)).status_code == 202
    drain(app)
    pub_token, priv_token = baseline(client, storage, tmp_path, PUBLIC), baseline(client, storage, tmp_path, PRIVATE)

    # Free: the public repository is reviewed; `block: false` turns the block rule into a comment.
    mark = fake_github.mark()
    scan = pr_scan(client, fake_github, tmp_path, pub_token, PUBLIC, "free")
    assert scan["published"] is True and scan["reason"] is None
    assert scan["blocking"] is False and {f["mode"] for f in scan["new_findings"]} == {"comment"}
    drain(app)
    assert len(fake_github.comments_of(PUBLIC, 7)) == 1
    assert last_run(fake_github, PUBLIC, scan["commit"])["conclusion"] == "success"
    # The plan check is a database read: no listing call, no repository lookup.
    assert fake_github.count(path_regex=r"marketplace|^/repos/[^/]+/[^/]+$|^/user", since=mark) == 0

    # ... the private one only gets a neutral check run with the listing's link.
    scan = pr_scan(client, fake_github, tmp_path, priv_token, PRIVATE, "free")
    assert scan["published"] is False and "public repositories only" in scan["reason"]
    drain(app)
    assert fake_github.comments_of(PRIVATE, 7) == [] and fake_github.reviews_of(PRIVATE, 7) == []
    run = last_run(fake_github, PRIVATE, scan["commit"])
    assert run["conclusion"] == "neutral" and run["output"]["title"] == "plan limit reached"
    assert LISTING_URL in run["output"]["summary"] and not run["output"].get("annotations")
    got = client.get(f"/api/v1/scans/{scan['id']}", headers={"Authorization": f"Bearer {priv_token}"}).json()
    assert got["published"] is False and got["reason"] == scan["reason"]

    # Upgrade to Pro: the next scan of the private repository is reviewed, and block blocks.
    assert deliver_listing(client, purchase_event("changed", PRO, previous=FREE,
                                                  effective="2026-12-02T00:00:00+00:00")).status_code == 202
    drain(app)
    scan = pr_scan(client, fake_github, tmp_path, priv_token, PRIVATE, "pro")
    assert scan["published"] is True and scan["blocking"] is True
    drain(app)
    assert len(fake_github.comments_of(PRIVATE, 7)) == 1
    assert last_run(fake_github, PRIVATE, scan["commit"])["conclusion"] == "failure"

    # A pending downgrade is shown but changes nothing ...
    assert deliver_listing(client, purchase_event("pending_change", FREE, previous=PRO,
                                                  effective="2027-01-01T00:00:00+00:00")).status_code == 202
    drain(app)
    listed = client.get("/api/v1/marketplace/accounts", headers=admin_headers).json()
    octo = next(a for a in listed if a["login"] == "octo")
    assert octo["plan"]["name"] == "Pro" and octo["pending_change"] == {
        "plan": {"id": FREE[0], "name": "Free"}, "effective_date": "2027-01-01T00:00:00+00:00"}
    assert pr_scan(client, fake_github, tmp_path, priv_token, PRIVATE, "pending")["published"] is True
    # ... until `changed` arrives.
    deliver_listing(client, purchase_event("changed", FREE, previous=PRO, effective="2027-01-01T00:00:00+00:00"))
    drain(app)
    scan = pr_scan(client, fake_github, tmp_path, priv_token, PRIVATE, "downgraded")
    assert scan["published"] is False
    octo = next(a for a in client.get("/api/v1/marketplace/accounts", headers=admin_headers).json()
                if a["login"] == "octo")
    assert octo["plan"]["name"] == "Free" and octo["pending_change"] is None and octo["state"] == "active"

    # The Setup URL: authorize, then the page shows the account and its plan.
    code = fake_github.add_user("mona", 5001, installations=[
        {"id": 1001, "account": {"login": "octo", "id": ORG_ID, "type": "Organization"}}])
    page = setup(client, code, 1001)
    assert page.status_code == 200 and "octo" in page.text and "Free" in page.text and "upload" in page.text

    # Cancelled: nothing is published any more, and the user's token is revoked.
    deliver_listing(client, purchase_event("cancelled", FREE, effective="2027-02-01T00:00:00+00:00"))
    drain(app)
    assert len(fake_github.revoked) == 1
    scan = pr_scan(client, fake_github, tmp_path, pub_token, PUBLIC, "cancelled", pr=8)
    assert scan["published"] is False and "cancelled" in scan["reason"]
    drain(app)
    assert fake_github.comments_of(PUBLIC, 8) == []
    assert last_run(fake_github, PUBLIC, scan["commit"])["output"]["title"] == "no active plan"
    octo = next(a for a in client.get("/api/v1/marketplace/accounts", headers=admin_headers).json()
                if a["login"] == "octo")
    assert octo["state"] == "cancelled" and octo["served"] is False


def setup(client: Any, code: str, installation_id: int) -> Any:
    start = client.get(f"/github/installed?installation_id={installation_id}&setup_action=install",
                       follow_redirects=False)
    assert start.status_code == 302, start.text
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["redirect_uri"] == ["http://testserver/github/marketplace/callback"]
    return client.get(f"/github/marketplace/callback?code={code}&state={query['state'][0]}")


def test_cancelled_account_data_with_reviews_is_deleted_after_30_days(client, app, storage, fake_github,
                                                                      tmp_path) -> None:
    from forge_app.forges.github.marketplace.jobs import purge_expired

    install(client, fake_github)
    deliver_listing(client, purchase_event("purchased", PRO))
    drain(app)
    token = baseline(client, storage, tmp_path, PUBLIC)
    pr_scan(client, fake_github, tmp_path, token, PUBLIC, "x")
    drain(app)
    repo = storage.ensure_repository("github", PUBLIC)
    assert storage.review_comments(repo.id, 7) and storage.repository_has_scans(repo.id)
    deliver_listing(client, purchase_event("cancelled", PRO, effective="2026-12-10T00:00:00Z"))
    drain(app)
    assert purge_expired(storage, now="2027-01-10T00:00:00+00:00") == ["octo: 2 scan(s) deleted"]
    assert not storage.repository_has_scans(repo.id) and storage.review_comments(repo.id, 7) == []
    assert storage.repository_for_token(token) is not None  # CI keeps its token for a new purchase


def test_visibility_no_webhook_told_is_asked_of_github_once(client, app, storage, fake_github, tmp_path) -> None:
    fake_github.add_installation(1001, "octo", [PUBLIC, PRIVATE])
    storage.upsert_github_installation(1001, account="octo")
    storage.link_github_repositories(1001, [PUBLIC, PRIVATE])
    fake_github.public_repos.add(PUBLIC)
    deliver_listing(client, purchase_event("purchased", FREE))
    drain(app)
    assert baseline(client, storage, tmp_path, PUBLIC) and baseline(client, storage, tmp_path, PRIVATE)
    assert storage.repository_private("github", PUBLIC) is False and storage.repository_private("github", PRIVATE)
    mark = fake_github.mark()
    token = storage.create_upload_token("github", PUBLIC)
    assert pr_scan(client, fake_github, tmp_path, token, PUBLIC, "again")["published"] is True
    assert fake_github.count("GET", r"^/repos/[^/]+/[^/]+$", since=mark) == 0  # remembered
