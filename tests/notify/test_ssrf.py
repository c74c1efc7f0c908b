"""SSRF protection: refused when saved and again at delivery; connections pinned to the
checked address. DNS is a monkeypatched function here, never the network."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from forge_app.notify import ssrf
from forge_app.notify.ssrf import TargetRefused, TargetUnresolvable, address_problem, vet_url
from tests.notify.helpers import SHA_MAIN, Receiver, make_finding, resolver, run_jobs, scan_body, upload

API = "/api/v1/integrations"


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.251", "240.0.0.1", "255.255.255.255", "192.0.2.10",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "2002:7f00:0001::1", "2002:c0a8:0101::1",  # 6to4 around loopback / private
    "64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1",  # NAT64
])
def test_non_public_addresses_are_refused(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34",
                                     "64:ff9b::5db8:d822", "2002:5db8:d822::1"])
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


def test_vetting_resolves_and_checks_every_address(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {"public.example": ["93.184.216.34"], "internal.example": ["10.1.2.3"],
             "mixed.example": ["93.184.216.34", "127.0.0.1"], "v6.example": ["::1"]}
    with resolver(monkeypatch, table):
        target = asyncio.run(vet_url("https://public.example/hook", allow_private=False))
        assert target.address == "93.184.216.34" and target.host == "public.example" and target.port == 443
        for host, says in [("internal.example", "10.1.2.3, which is a private address"),
                           ("mixed.example", "127.0.0.1, which is a loopback address"),
                           ("v6.example", "a loopback address")]:
            with pytest.raises(TargetRefused, match=says):
                asyncio.run(vet_url(f"https://{host}/", allow_private=False))
        with pytest.raises(TargetRefused, match="loopback"):
            asyncio.run(vet_url("http://127.0.0.1:8080/", allow_private=False))
        with pytest.raises(TargetRefused, match="loopback"):
            asyncio.run(vet_url("http://[::ffff:127.0.0.1]/", allow_private=False))
        with pytest.raises(TargetUnresolvable):
            asyncio.run(vet_url("https://nowhere.example/", allow_private=False))
        with pytest.raises(TargetRefused, match="only http and https"):
            asyncio.run(vet_url("file:///etc/passwd", allow_private=False))


def test_allow_private_skips_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(host: str, port: int) -> list[str]:
        raise AssertionError("no DNS lookup expected")

    with resolver(monkeypatch, boom):
        target = asyncio.run(vet_url("http://localhost:9/x", allow_private=True))
    assert target.address is None


def test_refused_when_saved(client_with: Any, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_with(allow_private_targets=False)
    table = {"metadata.example": ["169.254.169.254"], "intranet.example": ["192.168.10.20"]}
    with resolver(monkeypatch, table):
        for url, says in [("http://metadata.example/latest", "169.254.169.254, which is a link-local address"),
                          ("https://intranet.example/hook", "192.168.10.20, which is a private address"),
                          ("http://127.0.0.1:8080/", "127.0.0.1 is a loopback address"),
                          ("http://[::1]/", "::1 is a loopback address")]:
            r = client.post(API, json={"type": "webhook", "url": url}, headers=admin_headers)
            assert r.status_code == 400, url
            assert r.json()["error"] == "unsafe_target" and says in r.json()["detail"]
            assert "FORGE_APP_ALLOW_PRIVATE_TARGETS" in r.json()["detail"]
        r = client.post(API, json={"type": "webhook", "url": "http://intranet.example/", "enabled": False},
                        headers=admin_headers)
        assert r.status_code == 400 and r.json()["error"] == "unsafe_target", "disabled or not"
        assert client.get(API, headers=admin_headers).json() == []


def test_private_targets_are_saved_when_allowed(client_with: Any, admin_headers: dict[str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_with(allow_private_targets=True)
    with resolver(monkeypatch, {"intranet.example": ["192.168.10.20"]}):
        r = client.post(API, json={"type": "webhook", "url": "https://intranet.example/hook"}, headers=admin_headers)
    assert r.status_code == 201 and "warnings" not in r.json()


def test_unresolvable_host_is_saved_with_a_warning(client_with: Any, admin_headers: dict[str, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No DNS (offline CI, a receiver not deployed yet) is not a reason to refuse: only
    addresses inside the network are. The delivery checks again."""
    client = client_with(allow_private_targets=False)
    with resolver(monkeypatch, {"public.example": ["93.184.216.34"]}):
        r = client.post(API, json={"type": "slack", "url": "https://gone.example/x"}, headers=admin_headers)
        assert r.status_code == 201, r.text
        [warning] = r.json()["warnings"]
        assert "gone.example" in warning and "does not resolve" in warning
        assert "/x" not in warning, "the host, never the full URL (Slack URLs are secrets)"
        made = r.json()
        assert "warnings" not in client.get(f"{API}/{made['id']}", headers=admin_headers).json()
        r = client.patch(f"{API}/{made['id']}", json={"url": "https://public.example/x"}, headers=admin_headers)
        assert r.status_code == 200 and "warnings" not in r.json()
        r = client.patch(f"{API}/{made['id']}", json={"url": "https://gone-too.example/x"}, headers=admin_headers)
        assert r.status_code == 200 and "gone-too.example" in r.json()["warnings"][0]
        r = client.patch(f"{API}/{made['id']}", json={"name": "renamed"}, headers=admin_headers)
        assert r.status_code == 200 and "warnings" not in r.json(), "the URL did not change: not checked again"
    assert len(client.get(API, headers=admin_headers).json()) == 1


def test_unresolvable_host_is_retried_at_delivery(client_with: Any, admin_headers: dict[str, str],
                                                  upload_token: str, storage: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_with(allow_private_targets=False)
    with resolver(monkeypatch, {}):
        made = client.post(API, json={"type": "webhook", "url": "https://later.example/hook", "events": ["scan"]},
                           headers=admin_headers)
        assert made.status_code == 201
        upload(client, upload_token, scan_body([make_finding("a")], commit=SHA_MAIN, branch="main"))
        run_jobs(client.app)
    [d] = client.get(f"{API}/{made.json()['id']}/deliveries", headers=admin_headers).json()
    assert d["status"] == "retrying" and "does not resolve" in d["error"] and d["next_attempt_at"]
    assert storage.jobs(kind="deliver_notification", status="queued")


def test_refused_when_patched(client_with: Any, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_with(allow_private_targets=False)
    with resolver(monkeypatch, {"public.example": ["93.184.216.34"], "intranet.example": ["10.0.0.8"]}):
        made = client.post(API, json={"type": "slack", "url": "https://public.example/x"}, headers=admin_headers)
        assert made.status_code == 201
        r = client.patch(f"{API}/{made.json()['id']}", json={"url": "https://intranet.example/x"},
                         headers=admin_headers)
        assert r.status_code == 400 and r.json()["error"] == "unsafe_target"


def test_patched_url_is_checked_even_when_disabled(client_with: Any, admin_headers: dict[str, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing `url` always runs the check: with `enabled: false` in the same PATCH, or on a
    disabled integration (one PATCH away from sending)."""
    client = client_with(allow_private_targets=False)
    table = {"public.example": ["93.184.216.34"], "intranet.example": ["10.0.0.8"]}
    with resolver(monkeypatch, table):
        made = client.post(API, json={"type": "webhook", "url": "https://public.example/x"}, headers=admin_headers)
        hook = f"{API}/{made.json()['id']}"
        r = client.patch(hook, json={"url": "https://intranet.example/x", "enabled": False}, headers=admin_headers)
        assert r.status_code == 400 and r.json()["error"] == "unsafe_target"
        assert client.patch(hook, json={"enabled": False}, headers=admin_headers).status_code == 200
        for body in ({"url": "https://intranet.example/x"}, {"url": "http://127.0.0.1:9/"},
                     {"url": "https://intranet.example/x", "enabled": True}):
            r = client.patch(hook, json=body, headers=admin_headers)
            assert r.status_code == 400 and r.json()["error"] == "unsafe_target", body
        stored = client.get(hook, headers=admin_headers).json()
        assert stored["url"] == "https://public.example/x" and stored["enabled"] is False

        # re-enabling checks the stored URL again: DNS may have changed while it was off
        table["public.example"] = ["10.9.9.9"]
        r = client.patch(hook, json={"enabled": True}, headers=admin_headers)
        assert r.status_code == 400 and r.json()["error"] == "unsafe_target"


def test_refused_at_delivery_when_dns_changes(client_with: Any, admin_headers: dict[str, str],
                                              upload_token: str, storage: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_with(allow_private_targets=False)
    worker_app = client.app
    table = {"hooks.example": ["93.184.216.34"]}
    with Receiver() as receiver, resolver(monkeypatch, table):
        made = client.post(API, json={"type": "webhook", "url": f"http://hooks.example:{receiver.port}/hook"},
                           headers=admin_headers)
        assert made.status_code == 201
        table["hooks.example"] = ["127.0.0.1"]  # rebinding: now it points at us
        upload(client, upload_token, scan_body([make_finding("a")], commit=SHA_MAIN, branch="main"))
        run_jobs(worker_app)
        assert receiver.requests == []
    found = client.get(f"{API}/{made.json()['id']}/deliveries", headers=admin_headers).json()
    assert {d["status"] for d in found} == {"failed"}, "refused at once, not retried forever"
    assert all("loopback" in d["error"] for d in found)
    assert storage.jobs(kind="deliver_notification", status="queued") == []


def test_connection_goes_to_the_checked_address(client_with: Any, admin_headers: dict[str, str],
                                                upload_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The name is resolved once, by us, and the request sent to that address with the
    original Host header: a second, different DNS answer cannot be used against us."""
    client = client_with(allow_private_targets=False)
    original = ssrf.address_problem
    monkeypatch.setattr(ssrf, "address_problem",
                        lambda ip: None if str(ip) == "127.0.0.1" else original(ip))
    with Receiver() as receiver, resolver(monkeypatch, {"only-we-know.example": ["127.0.0.1"]}):
        url = f"http://only-we-know.example:{receiver.port}/hook"
        made = client.post(API, json={"type": "webhook", "url": url}, headers=admin_headers).json()
        result = client.post(f"{API}/{made['id']}/test", headers=admin_headers).json()
        assert result["ok"] is True, result
        assert receiver.requests[0].headers["host"] == f"only-we-know.example:{receiver.port}"


def _tls_pair(hostname: str) -> tuple[bytes, bytes]:
    """A self-signed certificate (PEM) for `hostname` and its key."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@pytest.mark.parametrize("cert_for, ok", [("hooks.test", True), ("someone-else.test", False)])
def test_https_pinning_keeps_the_tls_name(client_with: Any, admin_headers: dict[str, str], tmp_path: Any,
                                          monkeypatch: pytest.MonkeyPatch, cert_for: str, ok: bool) -> None:
    """Pinned to the checked address, TLS still sends and verifies the URL's host name."""
    import ssl

    from forge_app.notify import sender

    cert, key = _tls_pair(cert_for)
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    monkeypatch.setattr(sender, "_tls_context", lambda: client_ctx)
    original = ssrf.address_problem
    monkeypatch.setattr(ssrf, "address_problem", lambda ip: None if str(ip) == "127.0.0.1" else original(ip))
    client = client_with(allow_private_targets=False)
    receiver = Receiver()
    receiver._server.socket = server_ctx.wrap_socket(receiver._server.socket, server_side=True)
    with receiver, resolver(monkeypatch, {"hooks.test": ["127.0.0.1"]}):
        made = client.post(API, json={"type": "webhook", "url": f"https://hooks.test:{receiver.port}/hook"},
                           headers=admin_headers).json()
        result = client.post(f"{API}/{made['id']}/test", headers=admin_headers).json()
    assert result["ok"] is ok, result
    if ok:
        assert receiver.requests[0].headers["host"] == f"hooks.test:{receiver.port}"
    else:
        assert "CERTIFICATE_VERIFY_FAILED" in result["error"] or "certificate" in result["error"].lower()
