"""CI variable detection for GitHub Actions, GitLab CI and Bitbucket Pipelines."""

import json

from forge_app.cli.ci_env import detect_ci


def test_github_push():
    ctx = detect_ci({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_SHA": "a" * 40,
                     "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main"})
    got = (ctx.forge, ctx.repository, ctx.commit, ctx.branch, ctx.pull_request)
    assert got == ("github", "o/r", "a" * 40, "main", None)


def test_github_pull_request_uses_the_head_sha_from_the_event():
    event = json.dumps({"pull_request": {"number": 3, "head": {"sha": "b" * 40}}})
    ctx = detect_ci({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_SHA": "m" * 40,
                     "GITHUB_EVENT_PATH": "/e", "GITHUB_HEAD_REF": "feat", "GITHUB_BASE_REF": "main"},
                    lambda p: event)
    assert (ctx.commit, ctx.pull_request, ctx.branch, ctx.base_branch) == ("b" * 40, 3, "feat", "main")


def test_gitlab_author_is_split():
    ctx = detect_ci({"GITLAB_CI": "true", "CI_PROJECT_PATH": "g/p", "CI_COMMIT_SHA": "a" * 40,
                     "CI_COMMIT_BRANCH": "main", "CI_COMMIT_AUTHOR": "Ada Lovelace <ada@example.com>"})
    assert ctx.meta["commit_author_name"] == "Ada Lovelace" and ctx.meta["commit_author_email"] == "ada@example.com"


def test_outside_ci_nothing_is_guessed():
    ctx = detect_ci({})
    assert ctx.provider is None and ctx.repository is None and ctx.meta == {}


def test_gitlab_merged_results_pipeline_reports_the_mr_head():
    ctx = detect_ci({"GITLAB_CI": "true", "CI_PROJECT_PATH": "g/p", "CI_COMMIT_SHA": "m" * 40,
                     "CI_MERGE_REQUEST_IID": "4", "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": "h" * 40})
    assert (ctx.commit, ctx.pull_request) == ("h" * 40, 4)


def test_base_commits_come_from_the_pr_event_and_gitlab_diff_base():
    event = json.dumps({"pull_request": {"number": 3, "head": {"sha": "b" * 40}, "base": {"sha": "c" * 40}}})
    ctx = detect_ci({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_EVENT_PATH": "/e"}, lambda p: event)
    assert ctx.base_commit == "c" * 40
    ctx = detect_ci({"GITLAB_CI": "true", "CI_PROJECT_PATH": "g/p", "CI_MERGE_REQUEST_DIFF_BASE_SHA": "d" * 40})
    assert ctx.base_commit == "d" * 40
