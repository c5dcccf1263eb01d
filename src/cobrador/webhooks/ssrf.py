"""The SSRF guard: webhook targets are untrusted (design rule 10).

At registration and again at connect time the host is resolved and every address must be public:
loopback, private, link-local (169.254.0.0/16, the cloud metadata address), CGNAT, multicast,
reserved and unspecified addresses are refused, IPv4-mapped and other IPv6 embeddings included.
The connection then goes to the address that was checked (pinned), so a DNS answer that changes
between check and connect cannot redirect it. Redirects are never followed.
COBRADOR_WEBHOOK_ALLOW_PRIVATE=1 lets tests and local development reach loopback receivers.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

CGNAT = ipaddress.ip_network("100.64.0.0/10")


class BlockedTarget(Exception):
    pass


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


def _split(url: str):
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


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
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


def resolve_target(url: str, *, allow_private: bool) -> PinnedTarget:
    """Check `url` and pin it to one checked address. Raises BlockedTarget with the reason."""
    parts, host, port = _split(url)
    addresses = _resolve(host, port)
    if not allow_private:
        for address in addresses:
            if is_forbidden_address(address):
                raise BlockedTarget(f"the host {host!r} resolves to a non-public address ({address})")
    address = addresses[0]
    netloc_host = f"[{address}]" if address.version == 6 else str(address)
    pinned = urlunsplit((parts.scheme, f"{netloc_host}:{port}", parts.path or "/", parts.query, ""))
    default_port = 443 if parts.scheme == "https" else 80
    host_header = parts.hostname if port == default_port else f"{parts.hostname}:{port}"
    if ":" in parts.hostname and not parts.hostname.startswith("["):
        host_header = f"[{parts.hostname}]" + ("" if port == default_port else f":{port}")
    return PinnedTarget(url=pinned, host_header=host_header,
                        sni_hostname=parts.hostname if parts.scheme == "https" else None)


def validate_webhook_url(url: str, *, allow_private: bool) -> None:
    if len(url) > 2048:
        raise BlockedTarget("the URL is longer than 2048 characters")
    resolve_target(url, allow_private=allow_private)
