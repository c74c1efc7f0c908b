"""GitHub Marketplace from the outside only: `forge-app serve` as a process with a plans file,
the listing webhook signed with its own secret, `forge-app token create` / `upload` /
`github marketplace-sync` as subprocesses, and the Setup URL followed as a browser would.

The story: an org buys Free; its public repository gets a review, its private one a neutral
"plan limit reached" and `upload` exits 0 saying why; it upgrades and the private one gets a
review; the Setup URL shows the plan; `cancelled` stops publishing and revokes the user's
token; an org whose `purchased` delivery was lost is served after `marketplace-sync`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.blackbox.test_github_blackbox import (
    ADMIN_TOKEN,
    DEADLINE,
    SECRET_KEY,
    WEBHOOK_SECRET,
    checkout,
    clean_env,
    cli,
    deliver,
    fake,
    forge_app_server,
    queued_jobs,
)
from tests.github.fake_github import FakeGitHub
from tests.github.gh_helpers import github_files, installation_event, pull_request_event, sha
from tests.marketplace.mp_helpers import FREE, PRO, purchase_event

__all__ = ["fake"]  # the fixture, imported

LISTING_SECRET = "blackbox-listing-secret-0123456789"
LISTING = "https://github.com/marketplace/forge-app-blackbox"
ORG_ID = 424242
BASE = {"app/views.py": "import os\n\n\ndef run(cmd):\n    os.system(cmd)\n"}
HEAD = {"app/views.py": BASE["app/views.py"] + "\n\ndef parse(expr):\n    return eval(expr)\n"}


def settle(server: str, fake: FakeGitHub, log: Path, until=lambda: True, quiet: float = 1.0) -> None:
    """Until `until()` holds, only tomorrow's Marketplace sync is queued and the fake is quiet for `quiet` s."""
    deadline = time.monotonic() + DEADLINE
    seen, since = -1, time.monotonic()
    while True:
        if len(fake.requests) != seen:
            seen, since = len(fake.requests), time.monotonic()
        if until() and queued_jobs(server) <= 1 and time.monotonic() - since >= quiet:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the server did not settle; requests to the fake:\n"
                                 + "\n".join(f"{r['method']} {r['path']} -> {r['status']}" for r in fake.requests)
                                 + f"\nserver log:\n{log.read_text()}")
        time.sleep(0.1)


def deliver_listing(server: str, body: dict[str, Any], secret: str = LISTING_SECRET) -> httpx.Response:
    raw = json.dumps(body).encode()
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return httpx.post(f"{server}/webhooks/github/marketplace", content=raw, timeout=10, headers={
        "X-GitHub-Event": "marketplace_purchase", "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd"})


def pr_event(repo: str, number: int, head: str, installation: int, private: bool) -> dict[str, Any]:
    event = pull_request_event("opened", head, number=number, repo=repo, installation_id=installation)
    event["repository"]["private"] = private
    event["pull_request"]["head"]["repo"]["full_name"] = repo
    return event


def ci_upload(server: str, token: str, root: Path, tmp: Path, repo: str, *, pr: int | None = None,
              head: str | None = None) -> Any:
    env = {**clean_env(), "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": repo, "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_RUN_ID": "1", "FORGE_APP_URL": server, "FORGE_APP_TOKEN": token}
    if pr is None:
        env.update(GITHUB_EVENT_NAME="push", GITHUB_SHA=sha(f"base:{repo}"), GITHUB_REF="refs/heads/main",
                   GITHUB_REF_NAME="main")
    else:
        event = tmp / f"event-{uuid.uuid4().hex}.json"
        event.write_text(json.dumps({"pull_request": {"number": pr, "head": {"sha": head, "ref": "feature"},
                                                      "base": {"ref": "main"}}}))
        env.update(GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=str(event), GITHUB_SHA=sha("merge"),
                   GITHUB_REF=f"refs/pull/{pr}/merge", GITHUB_REF_NAME=f"{pr}/merge", GITHUB_HEAD_REF="feature",
                   GITHUB_BASE_REF="main")
    return cli(["upload", "semgrep.json", "--timeout", "30"], env, root)


def test_marketplace_story_from_the_outside(fake: FakeGitHub, tmp_path: Path) -> None:
    public, private, lost = "octo/site", "octo/app", "late/tool"
    fake.add_installation(1, "octo", [public, private])
    fake.add_installation(2, "late", [lost])
    fake.mp_plan(FREE[0], "Free", "FREE")
    fake.mp_plan(PRO[0], "Pro")
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps({"plans": {"Free": {"repositories": None, "private_repositories": False,
                                                    "block": False},
                                           "Pro": {"repositories": 20, "private_repositories": True}}}))
    (tmp_path / "data").mkdir()
    env = {**clean_env(), "GITHUB_APP_ID": str(fake.app_id), "GITHUB_PRIVATE_KEY": fake.private_key,
           "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET, "FORGE_APP_GITHUB_API_URL": fake.url,
           "FORGE_APP_GITHUB_WEB_URL": fake.url, "FORGE_APP_ADMIN_TOKEN": ADMIN_TOKEN,
           "FORGE_APP_SECRET_KEY": SECRET_KEY, "FORGE_APP_DATABASE": str(tmp_path / "data" / "forge-app.db"),
           "FORGE_APP_MARKETPLACE_PLANS": str(plans), "GITHUB_MARKETPLACE_WEBHOOK_SECRET": LISTING_SECRET,
           "FORGE_APP_MARKETPLACE_URL": LISTING, "GITHUB_CLIENT_ID": fake.client_id,
           "GITHUB_CLIENT_SECRET": fake.client_secret}
    log = tmp_path / "serve.log"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    base_root, head_root = checkout(tmp_path / "base", BASE), checkout(tmp_path / "head", HEAD)

    with forge_app_server(env, log) as server:
        settle(server, fake, log)  # the start-up sync: nothing listed yet
        fake.mp_account(PRO[0], 9090, "late")  # it buys Pro; the `purchased` delivery never arrives
        installed = installation_event("created", 1, [public, private], "octo")
        installed["repositories"][0]["private"] = False
        assert deliver(server, "installation", json.dumps(installed).encode(), str(uuid.uuid4())).status_code == 202
        assert deliver(server, "installation", json.dumps(installation_event("created", 2, [lost], "late")).encode(),
                       str(uuid.uuid4())).status_code == 202
        # The App's secret is not the listing's: refused, nothing bought.
        assert deliver_listing(server, purchase_event("purchased", PRO, account_id=ORG_ID),
                               secret=WEBHOOK_SECRET).status_code == 401
        assert deliver_listing(server, purchase_event("purchased", FREE, account_id=ORG_ID)).status_code == 202

        tokens = {}
        for number, repo in enumerate((public, private, lost), start=1):
            head = sha(f"head1:{repo}")
            fake.set_pull(repo, number, head, github_files(BASE, HEAD))
            event = pr_event(repo, number, head, 2 if repo == lost else 1, repo != public)
            assert deliver(server, "pull_request", json.dumps(event).encode(), str(uuid.uuid4())).status_code == 202
            minted = cli(["token", "create", "--repo", repo], env, tmp_path)
            assert minted.returncode == 0, minted.stderr
            tokens[repo] = minted.stdout.strip().splitlines()[-1]
            assert ci_upload(server, tokens[repo], base_root, tmp_path, repo).returncode == 0
        settle(server, fake, log)

        # Free: the public repository is reviewed (block acts as comment: exit 0) ...
        run = ci_upload(server, tokens[public], head_root, tmp_path, public, pr=1, head=sha(f"head1:{public}"))
        assert run.returncode == 0, run.stdout + run.stderr
        # ... the private one is not, and CI is not broken.
        run = ci_upload(server, tokens[private], head_root, tmp_path, private, pr=2, head=sha(f"head1:{private}"))
        assert run.returncode == 0 and "public repositories only" in run.stderr, run.stdout + run.stderr
        settle(server, fake, log, until=lambda: len(fake.runs_of(private)) == 1 and len(fake.runs_of(public)) == 1)
        assert len(fake.comments_of(public, 1)) == 1 and fake.comments_of(private, 2) == []
        check = fake.runs_of(private)[0]
        assert check["conclusion"] == "neutral" and check["output"]["title"] == "plan limit reached"
        assert LISTING in check["output"]["summary"]

        # Upgrade: the private repository's next push is reviewed.
        assert deliver_listing(server, purchase_event("changed", PRO, previous=FREE, account_id=ORG_ID,
                                                      effective="2026-12-02T00:00:00Z")).status_code == 202
        settle(server, fake, log)
        head2 = sha(f"head2:{private}")
        fake.set_pull(private, 2, head2, github_files(BASE, HEAD))
        run = ci_upload(server, tokens[private], head_root, tmp_path, private, pr=2, head=head2)
        assert "nothing published" not in run.stderr, run.stdout + run.stderr
        settle(server, fake, log, until=lambda: len(fake.comments_of(private, 2)) == 1)

        # The Setup URL, as a browser follows it.
        start = httpx.get(f"{server}/github/installed?installation_id=1&setup_action=install", timeout=10)
        assert start.status_code == 302 and start.headers["location"].startswith(f"{fake.url}/login/oauth/authorize")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        code = fake.add_user("mona", 77, [{"id": 1, "account": {"login": "octo", "id": ORG_ID,
                                                               "type": "Organization"}}])
        page = httpx.get(f"{server}/github/marketplace/callback?code={code}&state={state}", timeout=10)
        assert page.status_code == 200 and "octo" in page.text and "Pro" in page.text
        again = httpx.get(f"{server}/github/marketplace/callback?code={code}&state={state}", timeout=10)
        assert again.status_code == 400

        # Cancelled: the token is revoked and nothing more is published.
        assert deliver_listing(server, purchase_event("cancelled", PRO, account_id=ORG_ID,
                                                      effective="2026-12-20T00:00:00Z")).status_code == 202
        settle(server, fake, log, until=lambda: len(fake.revoked) == 1)
        head3 = sha(f"head3:{public}")
        fake.set_pull(public, 1, head3, github_files(BASE, HEAD))
        run = ci_upload(server, tokens[public], head_root, tmp_path, public, pr=1, head=head3)
        assert run.returncode == 0 and "cancelled" in run.stderr
        settle(server, fake, log, until=lambda: len(fake.runs_of(public, head3)) == 1)
        assert fake.runs_of(public, head3)[0]["output"]["title"] == "no active plan"
        assert len(fake.comments_of(public, 1)) == 1

        # The lost purchase: not served, then served after marketplace-sync.
        run = ci_upload(server, tokens[lost], head_root, tmp_path, lost, pr=3, head=sha(f"head1:{lost}"))
        assert "no plan" in run.stderr
        synced = cli(["github", "marketplace-sync"], env, tmp_path)
        assert synced.returncode == 0 and "late: active on 'Pro'" in synced.stdout, synced.stdout + synced.stderr
        head2 = sha(f"head2:{lost}")
        fake.set_pull(lost, 3, head2, github_files(BASE, HEAD))
        run = ci_upload(server, tokens[lost], head_root, tmp_path, lost, pr=3, head=head2)
        assert "nothing published" not in run.stderr, run.stderr
        settle(server, fake, log, until=lambda: len(fake.comments_of(lost, 3)) == 1)

        listed = {a["login"]: a for a in httpx.get(f"{server}/api/v1/marketplace/accounts", headers=admin,
                                                   timeout=10).json()}
        assert listed["octo"]["state"] == "cancelled" and listed["late"]["served"] is True
    assert fake.violations == [], fake.violations
