"""NFS-e test support: the NFe.io fake on loopback, an organization with fiscal settings, invoices made
by the real services, and NFe.io's webhooks posted to the callbacks URL as NFe.io signs them."""

import pytest
from django.db import transaction

from cobrador.callbacks import processing as callback_processing
from cobrador.customers.services import create_billing_account
from cobrador.nfe import issuing, services
from cobrador.nfe.models import ServiceInvoice
from tests.factories import make_org
from tests.fakes.nfeio import FakeNfeio

WEBHOOK_SECRET = "nfeio-webhook-secret-0123456789abcdef"
ADDRESS = {"street": "Rua das Laranjeiras", "number": "1287", "complement": "", "neighborhood": "Vila Mariana",
           "city": "São Paulo",
           "state": "SP", "zipcode": "04015020", "country": "BR", "city_code": "3550308"}


@pytest.fixture
def nfeio(settings):
    with FakeNfeio(fault_delay=1.5) as fake:
        settings.NFEIO_BASE_URL = fake.url
        settings.NFEIO_TIMEOUT = 1.0
        yield fake


def configure(organization, fake: FakeNfeio, **changes):
    values = {"policy": "on_payment", "nfeio_company_id": fake.company_id, "nfeio_api_key": fake.api_key,
              "nfeio_webhook_secret": WEBHOOK_SECRET, "city_service_code": "2690", "federal_service_code": "1.05"}
    values.update(changes)
    with transaction.atomic():
        return services.update_fiscal_settings(organization=organization, changes=values)


@pytest.fixture
def fiscal(nfeio, clock, db):
    """A test-mode organization (NFe.io's Development environment) issuing on payment."""
    client = make_org("Fiscal", "test")
    configure(client.organization, nfeio)
    return client


def make_account(organization, *, document="529.982.247-25", address=ADDRESS, **extra):
    with transaction.atomic():
        return create_billing_account(organization=organization, name="Maria Souza", email="maria@example.test",
                                      document=document, address=dict(address) if address else None, **extra)


def note_of(invoice) -> ServiceInvoice:
    return ServiceInvoice.objects.select_related("invoice", "account").get(invoice=invoice)


def sync():
    return issuing.sync()


def callback_path(organization) -> str:
    return f"/v1/callbacks/nfeio/{services.fiscal_settings(organization).callback_token}"


def post_hook(client, organization, fake: FakeNfeio, event_type: str, document: dict, *, hook_id=None,
              secret=WEBHOOK_SECRET, envelope="payload"):
    """POST one webhook to the organization's callbacks URL as NFe.io signs it."""
    body, headers = fake.hook_request(event_type, document, secret, hook_id=hook_id, envelope=envelope)
    return client.post(callback_path(organization), data=body, content_type="application/json",
                       headers={k: v for k, v in headers.items() if k.lower() != "content-type"})


def deliver_events(client, organization, fake: FakeNfeio) -> list[int]:
    """Post every event the fake produced, then process the callbacks inbox."""
    statuses = [post_hook(client, organization, fake, event_type, document).status_code
                for event_type, document in fake.take_events()]
    callback_processing.process_received()
    return statuses
