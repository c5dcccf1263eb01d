from datetime import date

import pytest
from django.db import transaction

from cobrador.core import clock as clock_module
from cobrador.gateways.base import ChargeRequest, Customer
from cobrador.gateways.models import GatewayConfig
from cobrador.gateways.pagarme import JWKS_CACHE
from cobrador.organizations.services import create_organization
from tests.fakes.kobana import FakeKobana
from tests.fakes.pagarme import FakePagarme

# The fakes hold a "timeout" for 1.5 s; the adapters give up after 0.4 s.
CLIENT_TIMEOUT = 0.4


def use_fakes(settings, *, pagarme=None, kobana=None) -> None:
    """Point the adapters at the fakes. Provider hosts are installation settings, never a tenant's options."""
    if pagarme is not None:
        settings.PAGARME_BASE_URL, settings.PAGARME_JWKS_URL = pagarme.url, pagarme.jwks_url
    if kobana is not None:
        settings.KOBANA_BASE_URL = kobana.url


@pytest.fixture
def pagarme(settings):
    with FakePagarme(fault_delay=1.5) as fake:
        use_fakes(settings, pagarme=fake)
        yield fake
    JWKS_CACHE.clear()


@pytest.fixture
def kobana(settings):
    with FakeKobana(fault_delay=1.5) as fake:
        use_fakes(settings, kobana=fake)
        yield fake


@pytest.fixture
def test_org(db):
    with transaction.atomic():
        return create_organization(name="Testco", mode="test")


def make_config(organization, provider, methods, credentials, options=None) -> GatewayConfig:
    now = clock_module.now()
    return GatewayConfig.objects.create(organization=organization, provider=provider, methods=methods,
                                        credentials=credentials, options=options or {}, created_at=now,
                                        updated_at=now)


@pytest.fixture
def pagarme_config(test_org, pagarme):
    return make_config(test_org, "pagarme", ["card", "bank_slip", "pix"], {"secret_key": pagarme.secret_key},
                       {"timeout_seconds": CLIENT_TIMEOUT})


@pytest.fixture
def kobana_config(test_org, kobana):
    return make_config(test_org, "kobana", ["bank_slip", "pix"],
                       {"api_token": kobana.api_token, "webhook_secret": kobana.webhook_secret,
                        "pix_account_uid": kobana.pix_account_uid},
                       {"timeout_seconds": CLIENT_TIMEOUT})


CUSTOMER = Customer(
    name="Maria Souza", email="maria@example.com", document="31142205890", document_type="cpf",
    address={"street": "Rua das Laranjeiras", "number": "1287", "complement": "", "neighborhood": "Vila Mariana",
             "city": "São Paulo", "state": "SP", "zipcode": "04015-020", "country": "BR"},
    reference="ba_test")


def charge_request(reference="pay_0001", *, method="card", amount=4990, card_token="", key=None,
                   due_date=None) -> ChargeRequest:
    return ChargeRequest(idempotency_key=key or f"{reference}-key", reference=reference, amount=amount,
                         currency="BRL", method=method, description="Plano Pro 09/2026", customer=CUSTOMER,
                         card_token=card_token, due_date=due_date or (date(2026, 9, 30) if method == "bank_slip"
                                                                      else None))
