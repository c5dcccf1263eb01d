import json
from datetime import UTC, datetime

import pytest
from django.db import transaction
from django.test import Client

from cobrador.core import clock as clock_module
from cobrador.organizations.services import create_api_key, create_organization
from tests.fakes.receiver import WebhookReceiver


@pytest.fixture(autouse=True)
def _allow_loopback_webhooks(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.PROVIDER_ALLOW_PRIVATE = True  # the provider fakes listen on loopback


@pytest.fixture
def clock():
    """The clock, frozen at 2026-03-01 12:00 UTC; tests move it with clock.set / clock.advance."""
    clock_module.set(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    yield clock_module
    clock_module.set(None)


class ApiClient:
    """A JSON client for /v1 authenticated as one organization."""

    def __init__(self, organization, key: str):
        self.organization = organization
        self.key = key
        self.client = Client()

    def _headers(self, extra):
        headers = {"Authorization": f"Bearer {self.key}"}
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, body=None, *, raw: bytes | None = None, headers=None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.generic(method, path, data=data, content_type="application/json",
                                   headers=self._headers(headers))

    def get(self, path, **kw):
        return self.client.get(path, headers=self._headers(kw.get("headers")), data=kw.get("params"))

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def make_org(name="Acme", mode="live") -> ApiClient:
    with transaction.atomic():
        organization = create_organization(name=name, mode=mode, billing_email=f"billing@{name.lower()}.test")
        _, key = create_api_key(organization=organization)
    return ApiClient(organization, key)


@pytest.fixture
def admin_client(db) -> Client:
    """A logged-in superuser of the operations console."""
    from django.contrib.auth.models import User

    client = Client()
    client.force_login(User.objects.create(username="ops", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def api(db) -> ApiClient:
    return make_org("Acme", "live")


@pytest.fixture
def other_api(db) -> ApiClient:
    return make_org("Globex", "test")


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    server.start()
    yield server
    server.stop()
