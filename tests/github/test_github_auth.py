"""App JWTs, installation tokens and their cache, rate-limit arithmetic, API URLs."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import jwt
import pytest

from forge_app.forges.github.credentials import load_credentials
from forge_app.forges.github.http import GitHubApi, graphql_url, open_http, rate_limit_delay
from forge_app.forges.github.tokens import app_jwt
from tests.github.fake_github import app_key


def test_app_jwt_claims() -> None:
    pem, public = app_key()
    before = time.time()
    claims = jwt.decode(app_jwt("4242", pem), public, algorithms=["RS256"])
    assert claims["iss"] == "4242"
    assert before - 61 <= claims["iat"] <= before - 59  # backdated for clock drift
    assert claims["exp"] - claims["iat"] <= 600 and claims["exp"] <= time.time() + 600
    assert claims["exp"] > time.time() + 300  # and long enough to be useful


def test_app_jwt_backdated_whatever_gidgethub_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream gidgethub's get_jwt no longer backdates iat; ours must not depend on it."""
    import gidgethub.apps

    def undated(**_: object) -> str:
        raise AssertionError("app_jwt must not delegate to gidgethub.apps.get_jwt")

    monkeypatch.setattr(gidgethub.apps, "get_jwt", undated)
    pem, public = app_key()
    claims = jwt.decode(app_jwt("7", pem, now=2_000_000_000), public, algorithms=["RS256"],
                        options={"verify_exp": False, "verify_iat": False})
    assert claims == {"iat": 2_000_000_000 - 60, "exp": 2_000_000_000 - 60 + 540, "iss": "7"}


def test_graphql_endpoints() -> None:
    assert graphql_url("https://api.github.com") == "https://api.github.com/graphql"
    assert graphql_url("https://ghe.example.com/api/v3") == "https://ghe.example.com/api/graphql"
    assert graphql_url("https://ghe.example.com/api/v3/") == "https://ghe.example.com/api/graphql"


def test_rate_limit_delays() -> None:
    assert rate_limit_delay(403, {"retry-after": "30"}) == 30
    assert rate_limit_delay(429, {"Retry-After": "7"}) == 7
    assert rate_limit_delay(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000"}, now=900) == 101
    assert rate_limit_delay(403, {}, "You have exceeded a secondary rate limit") == 60
    assert rate_limit_delay(429, {}) == 60
    assert rate_limit_delay(403, {"x-ratelimit-remaining": "12"}, "Resource not accessible by integration") is None
    assert rate_limit_delay(404, {"retry-after": "5"}) is None


async def _token(settings, storage, installation_id: int) -> tuple[str, int]:
    async with open_http() as http:
        api = GitHubApi(http, settings, storage, load_credentials(settings, storage), installation_id)
        token = await api._installation_token()
        return token, api.requests


def test_tokens_are_cached_encrypted_per_installation(settings, storage, fake_github) -> None:
    fake_github.add_installation(1, "a", ["a/x"])
    fake_github.add_installation(2, "b", ["b/y"])
    t1, n1 = asyncio.run(_token(settings, storage, 1))
    again, n2 = asyncio.run(_token(settings, storage, 1))
    t2, _ = asyncio.run(_token(settings, storage, 2))
    assert (n1, n2) == (1, 0) and again == t1  # the second job reuses the cached token
    assert t2 != t1 and fake_github.tokens[t2]["installation_id"] == 2
    raw = storage.database.query("SELECT token_enc FROM github_tokens")
    assert len(raw) == 2 and all(t1 not in r["token_enc"] and t2 not in r["token_enc"] for r in raw)


def test_token_close_to_expiry_is_replaced(settings, storage, fake_github) -> None:
    fake_github.add_installation(1, "a", ["a/x"])
    fake_github.token_ttl = 120  # less than the refresh margin
    t1, _ = asyncio.run(_token(settings, storage, 1))
    t2, n = asyncio.run(_token(settings, storage, 1))
    assert t1 != t2 and n == 1


def test_without_a_secret_key_tokens_are_not_stored(settings, storage, fake_github) -> None:
    fake_github.add_installation(1, "a", ["a/x"])
    bare = dataclasses.replace(settings, secret_key=None)
    asyncio.run(_token(bare, storage, 1))
    assert storage.github_token(1) is None


def test_bad_app_key_gives_up_with_a_clear_message(settings, storage, fake_github) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from forge_app.jobs.errors import GiveUp

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    wrong = dataclasses.replace(settings, github_private_key=other)
    fake_github.add_installation(1, "a", ["a/x"])
    with pytest.raises(GiveUp) as err:
        asyncio.run(_token(wrong, storage, 1))
    assert "JWT" in str(err.value) and "BEGIN" not in str(err.value)
    fake_github.violations.clear()  # the fake rightly complained about the bad signature
