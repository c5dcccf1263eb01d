"""Objects tests build through the real services: an organization with an API key, and a JSON client for
/v1 authenticated as it. A plain module: test modules import from here, fixtures in conftest.py use it."""

import json

from django.db import transaction
from django.test import Client

from cobrador.core import clock
from cobrador.customers.models import BillingAccount, PaymentMethod
from cobrador.dunning.models import DunningInvoice
from cobrador.invoicing.models import Invoice, InvoiceNumberSequence
from cobrador.organizations.services import create_api_key, create_organization
from cobrador.payments import charging


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


def failed_invoices(organization, n: int) -> list:
    """n accounts of `organization`, each with a declining card and an open invoice whose first charge
    (through the real batch charging, at the clock's now) failed, which opened their dunning."""
    now = clock.now()
    accounts = BillingAccount.objects.bulk_create([
        BillingAccount(organization=organization, name=f"Customer {i}", email=f"c{i}@example.test",
                       document="52998224725", document_type="cpf", created_at=now, updated_at=now)
        for i in range(n)])
    PaymentMethod.objects.bulk_create([
        PaymentMethod(organization=organization, account=a, type="card", card_brand="visa", card_last4="4242",
                      exp_month=12, exp_year=2040, gateway_token="tok_sandbox_decline", is_default=True,
                      created_at=now) for a in accounts])
    invoices = Invoice.objects.bulk_create([
        Invoice(organization=organization, account=a, number=i + 1, subtotal=5000, total=5000, amount_due=5000,
                due_date=now.date(), created_at=now) for i, a in enumerate(accounts)])
    InvoiceNumberSequence.objects.create(organization=organization, last_number=n)
    assert charging.charge_open_invoices(organization_id=organization.pk) == {"failed": n}
    assert DunningInvoice.objects.filter(organization=organization, status="scheduled").count() == n
    return invoices
