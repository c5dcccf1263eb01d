"""The outbound-connection guard shared by webhooks and provider calls: resolve, pin, refuse.

A host is resolved and every address must be public: loopback, private, link-local (169.254.0.0/16,
the cloud metadata address), CGNAT, multicast, reserved and unspecified addresses are refused,
IPv4-mapped and other IPv6 embeddings included. The connection then goes to the address that was
checked (pinned), so a DNS answer that changes between check and connect cannot redirect it.

Two ways in: `resolve_target(url)` checks a URL and rewrites it to the checked address (webhooks, whose
URLs are tenant input); `guarded_transport()` is an httpx transport whose every new connection is
checked and pinned the same way at connect time (provider calls, whose hosts are ours but must never be
turned toward the inside network by a setting or a DNS answer).
"""

import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

logger = logging.getLogger(__name__)

CGNAT = ipaddress.ip_network("100.64.0.0/10")


class BlockedTarget(Exception):
    pass


class BlockedConnection(httpcore.ConnectError):
    """Raised inside httpx when the guard refuses a connection; httpx reports it as httpx.ConnectError
    (nothing was sent)."""


@dataclass(frozen=True)
class PinnedTarget:
    url: str  # the URL with the host replaced by the checked address
    host_header: str  # the original host[:port], sent as Host
    sni_hostname: str | None  # for https: the name the certificate must match


def is_forbidden_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return True if address.teredo else is_forbidden_address(embedded)
        if address in ipaddress.ip_network("64:ff9b::/96"):  # NAT64 carries an IPv4 address
            return is_forbidden_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return (
        not address.is_global
        or address.is_multicast
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in CGNAT)
    )


def split_url(url: str):
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BlockedTarget(f"malformed URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise BlockedTarget("only http and https URLs are allowed")
    if not parts.hostname:
        raise BlockedTarget("the URL has no host")
    if parts.username or parts.password:
        raise BlockedTarget("credentials in the URL are not allowed")
    return parts, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedTarget(f"the host {host!r} does not resolve") from exc
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise BlockedTarget(f"the host {host!r} does not resolve")
    return addresses


def checked_address(host: str, port: int, *, allow_private: bool):
    """The address to connect to for host:port, after every address it resolves to was checked."""
    addresses = resolve(host, port)
    if not allow_private:
        for address in addresses:
            if is_forbidden_address(address):
                raise BlockedTarget(f"the host {host!r} resolves to a non-public address ({address})")
    return addresses[0]


def resolve_target(url: str, *, allow_private: bool) -> PinnedTarget:
    """Check `url` and pin it to one checked address. Raises BlockedTarget with the reason."""
    parts, host, port = split_url(url)
    address = checked_address(host, port, allow_private=allow_private)
    netloc_host = f"[{address}]" if address.version == 6 else str(address)
    pinned = urlunsplit((parts.scheme, f"{netloc_host}:{port}", parts.path or "/", parts.query, ""))
    default_port = 443 if parts.scheme == "https" else 80
    host_header = parts.hostname if port == default_port else f"{parts.hostname}:{port}"
    if ":" in parts.hostname and not parts.hostname.startswith("["):
        host_header = f"[{parts.hostname}]" + ("" if port == default_port else f":{port}")
    return PinnedTarget(url=pinned, host_header=host_header,
                        sni_hostname=parts.hostname if parts.scheme == "https" else None)


class GuardedBackend(httpcore.SyncBackend):
    """Opens each TCP connection to a checked address of the host. TLS still verifies the certificate
    against the host name, since httpcore passes the request's host as the server name."""

    def __init__(self, allow_private: Callable[[], bool]):
        self._allow_private = allow_private

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            address = checked_address(host, port, allow_private=self._allow_private())
        except BlockedTarget as exc:
            logger.warning("refused an outbound connection to %s:%s: %s", host, port, exc)
            raise BlockedConnection(str(exc)) from None
        return super().connect_tcp(str(address), port, timeout, local_address, socket_options)


def guarded_transport(*, allow_private: Callable[[], bool], **kwargs) -> httpx.HTTPTransport:
    """An httpx transport whose connections are opened by GuardedBackend. httpx takes no network
    backend, so it is set on its connection pool (checked here, so an httpx that changes this fails
    loudly; webhooks/deadline.py does the same)."""
    transport = httpx.HTTPTransport(**kwargs)
    pool = transport._pool  # noqa: SLF001 - httpx offers no public way to pass a network backend
    if not isinstance(getattr(pool, "_network_backend", None), httpcore.SyncBackend):
        raise RuntimeError("httpx's connection pool no longer has a replaceable network backend")
    pool._network_backend = GuardedBackend(allow_private)  # noqa: SLF001
    return transport
