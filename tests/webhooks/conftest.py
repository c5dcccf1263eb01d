import pytest
from django.db import transaction

from cobrador.events.services import record_event
from cobrador.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.fakes.receiver import WebhookReceiver


def register(api, url: str, events=("*",), description: str = "") -> dict:
    """Register an endpoint through the API; returns the answer (which carries the secret)."""
    response = api.post("/v1/webhook_endpoints", {"url": url, "enabled_events": list(events),
                                                  "description": description})
    assert response.status_code == 201, response.content
    return response.json()


def emit(organization, type: str = "invoice.paid", data: dict | None = None):  # noqa: A002
    """Record one domain event the way business code does: inside its transaction."""
    with transaction.atomic():
        return record_event(organization=organization, type=type, data=data or {"id": "in_test", "amount": 1000})


def endpoint_row(body: dict) -> WebhookEndpoint:
    return WebhookEndpoint.objects.get(public_id=body["id"])


def delivery_for(event, endpoint_body: dict) -> WebhookDelivery:
    return WebhookDelivery.objects.get(event=event, endpoint__public_id=endpoint_body["id"])


@pytest.fixture
def second_receiver():
    server = WebhookReceiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hook(api, receiver) -> dict:
    """An endpoint of `api`'s organization on the loopback `receiver`, which knows its secret."""
    body = register(api, receiver.url)
    receiver.secrets.append(body["secret"])
    return body
