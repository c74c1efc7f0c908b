"""Refusing notification targets inside the server's own network (SSRF protection).

An admin-supplied URL must not become a way to reach loopback services, the cloud
metadata endpoint or the private network. The host is resolved and every address
checked, when the integration is saved and again at each delivery (DNS can change);
the delivery then connects to the very address that was checked, so a DNS answer
that changes between the check and the connection cannot slip through.
`FORGE_APP_ALLOW_PRIVATE_TARGETS=1` lifts all of this (for trusted, internal setups).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL_PREFIX = ipaddress.ip_network("64:ff9b:1::/48")
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")


class TargetRefused(ValueError):
    """The URL or the addresses it resolves to are not allowed; the message says why."""


class TargetUnresolvable(ValueError):
    """The host does not resolve (now): worth retrying later at delivery time."""


@dataclass(frozen=True)
class Target:
    """A vetted URL: `address` is where to connect (None: let the client resolve)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str | None


def resolve_host(host: str, port: int) -> list[str]:
    """All addresses `host` resolves to. Tests replace this function (no real DNS there)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _translated_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped or NAT64 address really connects to."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _tunnelled_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4 or Teredo address tunnels to."""
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_problem(ip: IPAddress) -> str | None:
    """Why this address must not be a notification target, or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in NAT64_LOCAL_PREFIX:
            return "a local-use NAT64 address"
        translated = _translated_ipv4(ip)
        if translated is not None:  # judged by where it really goes (DNS64 networks use these for public hosts)
            inner = address_problem(translated)
            return f"{inner} (inside the IPv6 address {ip})" if inner else None
        tunnelled = _tunnelled_ipv4(ip)
        inner = address_problem(tunnelled) if tunnelled is not None else None
        if inner:
            return f"{inner} (inside the IPv6 address {ip})"
        if ip.scope_id:
            return "a scoped (link-local) IPv6 address"
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in SHARED_ADDRESS_SPACE, "a carrier-grade NAT address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "a non-public address"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


def parse_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or TargetRefused saying what is wrong.

    Parsed by httpx, the client that will send the request, so the host checked here
    is the host it would connect to."""
    if not isinstance(url, str) or not url:
        raise TargetRefused("the URL is empty")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise TargetRefused("the URL contains whitespace or control characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise TargetRefused("the URL cannot be parsed (check the host and port)") from None
    scheme = parsed.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise TargetRefused("only http and https URLs are allowed")
    host = parsed.host.rstrip(".")
    if not host:
        raise TargetRefused("the URL has no host")
    port = parsed.port if parsed.port is not None else (443 if scheme == "https" else 80)  # ":0" is refused
    if not 0 < port < 65536:
        raise TargetRefused("the URL's port must be between 1 and 65535")
    return scheme, host, port


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def vet_addresses(host: str, addresses: list[str]) -> str:
    """The first address to connect to, after refusing the lot if any one is not public.

    All must pass: a name with one public and one private address could be made to
    connect to either."""
    if not addresses:
        raise TargetUnresolvable(f"the host {host} does not resolve to any address")
    for raw in addresses:
        try:
            ip = ipaddress.ip_address(raw)
        except ValueError:
            raise TargetRefused(f"{host} resolves to an address that cannot be checked") from None
        problem = address_problem(ip)
        if problem:
            subject = host if _literal(host) is not None else f"{host} resolves to {ip}, which"
            raise TargetRefused(f"{subject} is {problem}; notification targets must be public "
                                "(FORGE_APP_ALLOW_PRIVATE_TARGETS=1 lifts this)")
    return addresses[0]


async def vet_url(url: str, *, allow_private: bool) -> Target:
    """Check a target URL now: scheme, host, and (unless allowed) every address it resolves to."""
    scheme, host, port = parse_target(url)
    if allow_private:
        return Target(url, scheme, host, port, None)
    literal = _literal(host)
    if literal is not None:
        return Target(url, scheme, host, port, vet_addresses(host, [str(literal)]))
    try:
        addresses = await asyncio.to_thread(resolve_host, host, port)
    except (socket.gaierror, UnicodeError, OSError):
        raise TargetUnresolvable(f"the host {host} does not resolve") from None
    return Target(url, scheme, host, port, vet_addresses(host, addresses))
