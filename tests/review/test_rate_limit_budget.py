"""Stopping before a forge's rate limit: the budget headers of GitHub, GitLab and Bitbucket."""

from __future__ import annotations

import pytest

from forge_app.forges.ratelimit import NEAR_LIMIT_PAUSE, Budget, pause_after
from forge_app.jobs.errors import RetryLater


def test_github_and_gitlab_headers_pause_until_the_reset_when_few_requests_are_left():
    now = 1_000_000.0
    assert pause_after({"X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": "1000600"}, now=now) is None
    assert pause_after({"x-ratelimit-remaining": "5", "x-ratelimit-reset": "1000600"}, now=now) == 601.0
    assert pause_after({"ratelimit-remaining": "0", "ratelimit-reset": "1000010"}, now=now) == 11.0
    assert pause_after({"ratelimit-remaining": "3"}, now=now) == 60.0
    assert pause_after({}, now=now) is None


def test_bitbucket_near_limit_pauses():
    assert pause_after({"X-RateLimit-NearLimit": "true"}) == NEAR_LIMIT_PAUSE
    assert pause_after({"X-RateLimit-NearLimit": "false"}) is None


def test_the_next_request_is_not_sent_but_retried_after_the_reset():
    budget = Budget("GitHub")
    budget.observe({"x-ratelimit-remaining": "2", "x-ratelimit-reset": "1120"}, now=1000.0)
    with pytest.raises(RetryLater) as raised:
        budget.check(now=1001.0)
    assert 119 <= raised.value.delay <= 121
    budget.check(now=1200.0)  # after the reset: go on
