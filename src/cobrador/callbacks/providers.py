"""Inbound providers other than the payment gateways: a higher app registers one here (in its
AppConfig.ready) and its callbacks go through the same inbox: stored raw first, signature checked,
deduplicated by (provider, event id), processed in batches, retried with backoff. callbacks/ never
imports the app that registers.

    register_inbound_provider(InboundProvider(name="nfeio", resolve=..., apply=...))

`resolve(token)` names the endpoint a callback URL belongs to, or None (404): an object with
`organization_id`, `verify_callback(headers=, body=) -> bool` and `parse_callback(headers=, body=)` ->
an object with `event_id` and `event_type`, or None for an event the provider sends that we do not
handle. `apply(callbacks)` runs inside processing's transaction and returns, per callback pk, either
(final status "processed" or "ignored", list of changes) or an exception: that callback fails alone
(nothing may have been written for it) and is retried with backoff.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class InboundProvider:
    name: str
    resolve: Callable[[str], object | None]
    apply: Callable[[list], dict]


INBOUND: dict[str, InboundProvider] = {}


def register_inbound_provider(provider: InboundProvider) -> None:
    INBOUND[provider.name] = provider
