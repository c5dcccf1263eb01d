"""The invoice page keeps what it rendered per web process, keyed by a fingerprint of everything it
shows: a repeat view costs one query, and any change on the page is seen at the next view."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cobrador.invoicing.models import Invoice
from cobrador.pages.links import token_hash
from cobrador.pages.models import PageBranding, PageLink
from cobrador.pages.views import invoice as invoice_view
from cobrador.payments.models import Payment
from tests.factories import make_org
from tests.fakes.pagarme import FakePagarme
from tests.notifications.conftest import make_account
from tests.pages.factories import PIX_CODE, invoice_with_documents, page_link

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_page_cache():
    invoice_view._rendered.clear()  # noqa: SLF001 - each test starts as a fresh web process
    yield
    invoice_view._rendered.clear()  # noqa: SLF001


def test_a_repeat_view_is_one_query_and_the_same_page(api, clock):
    invoice = invoice_with_documents(make_account(api.organization), number=5)
    path = page_link(api.organization, "invoice", invoice.public_id)
    client = Client()
    first = client.get(path)

    with CaptureQueriesContext(connection) as queries:
        again = client.get(path)

    assert again.status_code == 200 and again.content == first.content
    assert len(queries.captured_queries) == 1
    assert PIX_CODE in again.content.decode()
    assert again["Cache-Control"] == "no-store" and again["Referrer-Policy"] == "same-origin"


def test_a_payment_is_seen_at_the_next_view(api, clock):
    invoice = invoice_with_documents(make_account(api.organization), number=6)
    path = page_link(api.organization, "invoice", invoice.public_id)
    client = Client()
    assert PIX_CODE in client.get(path).content.decode()

    clock.advance(timedelta(minutes=1))
    now = clock.now()
    Payment.objects.filter(invoice=invoice, method="pix").update(status="succeeded", paid_at=now, updated_at=now)
    Invoice.objects.filter(pk=invoice.pk).update(status="paid", amount_paid=invoice.total, amount_due=0, paid_at=now)
    html = client.get(path).content.decode()

    assert PIX_CODE not in html and 'id="receipt"' in html


def test_branding_language_and_the_passing_day_are_seen_at_the_next_view(api, clock):
    account = make_account(api.organization)
    invoice = invoice_with_documents(account, number=7)
    Invoice.objects.filter(pk=invoice.pk).update(due_date=clock.now().date())
    path = page_link(api.organization, "invoice", invoice.public_id)
    client = Client()
    assert "Vencida" not in client.get(path).content.decode() and "Em aberto" in client.get(path).content.decode()

    PageBranding.objects.create(organization=api.organization, color="#aa3300", updated_at=clock.now())
    assert "--brand: #aa3300;" in client.get(path).content.decode()
    account.locale = "en"
    account.save(update_fields=["locale"])
    assert "Invoice 7" in client.get(path).content.decode()
    clock.advance(timedelta(days=1))
    assert "Overdue" in client.get(path).content.decode()


def test_a_revoked_link_is_a_404_even_after_its_page_was_kept(api, clock):
    invoice = invoice_with_documents(make_account(api.organization), number=8)
    path = page_link(api.organization, "invoice", invoice.public_id)
    client = Client()
    assert client.get(path).status_code == 200
    token = path.rstrip("/").rsplit("/", 1)[1]
    PageLink.objects.filter(token_hash=token_hash(token)).update(revoked_at=clock.now())

    assert client.get(path).status_code == 404


def test_a_kept_page_with_the_card_form_is_one_query_and_carries_each_visitors_csrf_token(clock):
    api = make_org("Cobra", "test")  # served by the built-in sandbox, made at the first view
    invoice = invoice_with_documents(make_account(api.organization), number=8)
    path = page_link(api.organization, "invoice", invoice.public_id)
    first = Client().get(path).content.decode()

    with CaptureQueriesContext(connection) as queries:
        again = Client().get(path).content.decode()

    assert len(queries.captured_queries) == 1
    tokens = [re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1) for html in (first, again)]
    assert 'id="card-form"' in again and tokens[0] != tokens[1] and invoice_view.CSRF_SLOT not in tokens
    assert again.replace(tokens[1], "") == first.replace(tokens[0], "")


def test_a_new_card_gateway_is_seen_at_the_next_view(clock, settings):
    api = make_org("Cobra", "test")
    invoice = invoice_with_documents(make_account(api.organization), number=9)
    path = page_link(api.organization, "invoice", invoice.public_id)
    assert 'data-tokenize-url="/sandbox/core/v5/tokens"' in Client().get(path).content.decode()

    with FakePagarme() as pagarme:
        settings.PAGARME_BASE_URL, settings.PROVIDER_ALLOW_PRIVATE = pagarme.url, True
        assert api.post("/v1/gateways", {"provider": "pagarme", "methods": ["card"], "credentials": {
            "secret_key": pagarme.secret_key}, "options": {"public_key": pagarme.public_key}}).status_code == 201
        html = Client().get(path).content.decode()

    assert f'data-tokenize-url="{pagarme.url}/tokens"' in html and f'data-public-key="{pagarme.public_key}"' in html
