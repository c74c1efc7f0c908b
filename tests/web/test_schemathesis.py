"""Schemathesis against /openapi.json: for generated requests to every documented operation, valid
and invalid ones, the answer is never a 5xx (and an error is always JSON). Bounded: a fixed,
derandomized number of examples per operation and mode (about 10 s).

No network: connection checks and DNS are replaced, so nothing leaves the process."""

from __future__ import annotations

import dataclasses
import socket

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from forge_app.forges.connections import ConnectionCheckError
from forge_app.web.app import create_app
from tests.conftest import ADMIN_TOKEN

EXAMPLES = 25


@pytest.fixture
def app(settings, storage):
    """The app with a GitHub webhook secret: unconfigured, /webhooks/github is a documented 503."""
    return create_app(dataclasses.replace(settings, github_webhook_secret="schemathesis-secret-0123456789"), storage,
                      run_worker=False)


@pytest.fixture
def api_schema(app, storage, upload_token, monkeypatch):
    async def unreachable(*_args, **_kwargs):
        raise ConnectionCheckError("forge_unreachable", "no network in tests")

    def no_dns(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "no DNS in tests")

    monkeypatch.setattr("forge_app.web.routes.connections.verify_connection", unreachable)
    monkeypatch.setattr("forge_app.notify.ssrf.resolve_host", no_dns)
    app.state.upload_token_for_tests = upload_token
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _check(case, app) -> None:
    token = app.state.upload_token_for_tests if case.path.startswith("/api/v1/scans") else ADMIN_TOKEN
    headers = {"Authorization": f"Bearer {token}"} if hash(repr(case.body)) % 5 else {}
    response = case.call(headers=headers)
    if response.status_code == 503 and response.json().get("error", "").endswith("_not_configured"):
        return  # a feature this server has no settings for: the documented answer whatever the input
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "detail"}, body


def test_no_input_gets_a_5xx(api_schema, app) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    for operation, mode in [(op, mode) for op in operations for mode in GenerationMode]:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            _check(case, app)

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing invalid to send (no parameters, no body)
