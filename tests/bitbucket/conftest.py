"""Fixtures for the Bitbucket tests: a running fake Bitbucket Cloud on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bitbucket.fake_bitbucket import FakeBitbucket


@pytest.fixture
def fake() -> Iterator[FakeBitbucket]:
    bitbucket = FakeBitbucket()
    with bitbucket.running():
        yield bitbucket
    assert bitbucket.problems == [], "requests Bitbucket's API description refuses:\n" + "\n".join(bitbucket.problems)
