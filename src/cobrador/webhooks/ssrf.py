"""The SSRF guard: webhook targets are untrusted (design rule 10). The guard itself is core/ssrf.py.

At registration and again at connect time the host is resolved and every address must be public:
loopback, private, link-local (169.254.0.0/16, the cloud metadata address), CGNAT, multicast,
reserved and unspecified addresses are refused, IPv4-mapped and other IPv6 embeddings included.
The connection then goes to the address that was checked (pinned), so a DNS answer that changes
between check and connect cannot redirect it. Redirects are never followed.
COBRADOR_WEBHOOK_ALLOW_PRIVATE=1 lets tests and local development reach loopback receivers.
"""

from cobrador.core.ssrf import (  # noqa: F401 - the guard's names, as webhooks have always imported them
    BlockedTarget,
    PinnedTarget,
    is_forbidden_address,
    resolve_target,
)


def validate_webhook_url(url: str, *, allow_private: bool) -> None:
    if len(url) > 2048:
        raise BlockedTarget("the URL is longer than 2048 characters")
    resolve_target(url, allow_private=allow_private)
