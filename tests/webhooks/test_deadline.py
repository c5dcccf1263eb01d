"""webhooks/deadline.py reaches a private attribute of httpx's connection pool (httpx takes no network
backend); httpx is bounded in pyproject.toml. This fails first when a new httpx moves that attribute; what
the deadline does is tested with a trickling receiver in test_delivery.py."""

import httpcore

from cobrador.webhooks import deadline


def test_the_webhook_clients_connections_are_made_by_the_deadline_backend():
    with deadline.client() as client:
        pool = client._transport._pool
        assert isinstance(pool, httpcore.ConnectionPool)
        assert isinstance(pool._network_backend, deadline.DeadlineBackend)

