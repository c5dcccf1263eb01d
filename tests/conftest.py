"""Fixtures only; the objects they build come from tests/factories.py, which test modules import."""

from datetime import UTC, datetime

import pytest
from django.test import Client

from cobrador.core import clock as clock_module
from tests.factories import ApiClient, make_org
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
