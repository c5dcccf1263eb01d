"""Pay now by card on the hosted invoice page: the browser tokenizes the card at the gateway (here the
sandbox's tokens endpoint, as the page's script does), the page receives only the token, attaches the card
and charges the invoice through the payments services, once."""

import re

import pytest
from django.db import transaction
from django.test import Client
from django_ox.testing import run_tasks

from cobrador.customers.models import PaymentMethod
from cobrador.customers.services import attach_payment_method
from cobrador.dunning.models import DunningInvoice
from cobrador.events.models import Event
from cobrador.invoicing.models import Invoice
from cobrador.pages.models import PageLink
from cobrador.pages.views import invoice as invoice_view
from cobrador.payments.models import Payment
from cobrador.webhooks.models import WebhookDelivery
from tests.concurrency import at_once
from tests.dunning.conftest import day, failed_first_charge
from tests.factories import make_org
from tests.pages.factories import (
    DECLINING_NUMBER,
    GOOD_CARD,
    SANDBOX_TOKENS,
    card_form,
    invoice_with_documents,
    page_link,
    sandbox_token,
)
from tests.payments.billing import make_account, make_invoice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _empty_page_cache():
    invoice_view._rendered.clear()  # noqa: SLF001 - each test starts as a fresh web process
    yield
    invoice_view._rendered.clear()  # noqa: SLF001


def _in_dunning():
    """A test organization with a webhook endpoint, and an account whose invoice's first charge (its
    default card, tok_sandbox_decline) failed: dunning is open."""
    org = make_org("Cobra", "test")
    assert org.post("/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/hooks"}).status_code == 201
    account, _, invoice = failed_first_charge(org.organization)
    return org, account, invoice


def _open_invoice(clock):
    """Day 0: a test organization and an account with an open invoice never charged, and its page."""
    clock.set(day(0))
    org = make_org("Cobra", "test")
    account = make_account(org.organization)
    invoice = make_invoice(account)
    return org, account, invoice, page_link(org.organization, "invoice", invoice.public_id)


def _token(page_html: str, **card) -> str:
    """The script's call: the card goes to the tokens endpoint the form names, never to the page."""
    tokenize_url, public_key = card_form(page_html)
    assert tokenize_url == SANDBOX_TOKENS
    answer = sandbox_token(Client(), public_key, **card)
    assert answer["status"] == 200, answer
    return answer["id"]


def _page_payments(invoice):
    return list(Payment.objects.filter(invoice=invoice, source="page").values_list("method", "status"))


def _event_types(organization, invoice_id: str) -> list[str]:
    return [e.type for e in Event.objects.filter(organization=organization).order_by("pk")
            if invoice_id in (e.data.get("id"), e.data.get("invoice"))]


def test_a_card_paid_on_the_invoice_page_pays_the_invoice_closes_dunning_and_becomes_the_default(clock):
    org, account, invoice = _in_dunning()
    old_card = PaymentMethod.objects.get(account=account, is_default=True)
    path = page_link(org.organization, "invoice", invoice.public_id)
    browser = Client()

    page = browser.get(path).content.decode()
    assert 'id="pay-card"' in page and "Pagar agora com cartão" in page and "Pagar R$ 100,00" in page
    assert re.search(r'<input type="checkbox" id="save-card-option" name="save_card" value="1" form="token-form" '
                     r'checked>', page)
    assert not re.search(r'<input id="card-[a-z-]+"[^>]* name=', page)  # the card fields are never submitted
    assert invoice_view.CSRF_SLOT not in page and 'name="csrfmiddlewaretoken" value="' in page
    token = _token(page)
    answer = browser.post(path, {"card_token": token, "save_card": "1"})

    assert answer.status_code == 303 and answer["Location"] == path
    shown = browser.get(path).content.decode()
    assert 'id="receipt"' in shown and "Paga" in shown and 'id="pay-card"' not in shown
    payment = Payment.objects.get(invoice=invoice, source="page")
    assert (payment.method, payment.status, payment.amount) == ("card", "succeeded", 10000)
    assert payment.public_id in shown
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    assert DunningInvoice.objects.get(invoice=invoice).status == "recovered"
    card = PaymentMethod.objects.get(account=account, is_default=True, status="active")
    assert card.pk == payment.payment_method_id and card.pk != old_card.pk
    assert card.gateway_token.startswith("tok_sandbox_success:") and card.card_last4 == "0010"
    types = _event_types(org.organization, invoice.public_id)
    assert types.count("payment.succeeded") == 1 and types.count("invoice.paid") == 1
    webhooks = set(WebhookDelivery.objects.filter(organization=org.organization).values_list("event__type", flat=True))
    assert {"payment_method.attached", "payment.succeeded", "invoice.paid"} <= webhooks
    # The immediate dunning retry the attached card enqueued finds the invoice paid: nothing is charged again.
    run_tasks(raise_failures=True)
    assert Payment.objects.filter(invoice=invoice, status="succeeded").count() == 1


def test_a_card_not_to_be_saved_is_never_the_default_nor_retried_with_by_dunning(clock):
    org, account, invoice = _in_dunning()
    # What the page attaches with "save this card" unticked, before its own charge: had dunning's
    # immediate retry been enqueued, it could charge the account's invoices in dunning with it first.
    with transaction.atomic():
        card = attach_payment_method(account=account, type="card", brand="visa", last4="4242", exp_month=12,
                                     exp_year=2040, gateway_token="tok_sandbox_success", single_use=True)

    assert run_tasks() == []
    assert not card.is_default and not Payment.objects.filter(payment_method=card).exists()
    assert Invoice.objects.get(pk=invoice.pk).status == "open"


def test_a_card_not_to_be_saved_pays_and_is_detached(clock):
    org, account, invoice = _in_dunning()
    old_card = PaymentMethod.objects.get(account=account, is_default=True)
    path = page_link(org.organization, "invoice", invoice.public_id)
    browser = Client()

    answer = browser.post(path, {"card_token": _token(browser.get(path).content.decode())})  # box unticked

    assert answer.status_code == 303
    assert _page_payments(invoice) == [("card", "succeeded")]
    used = Payment.objects.get(invoice=invoice, source="page").payment_method
    assert used.status == "detached" and not used.is_default
    assert PaymentMethod.objects.get(account=account, is_default=True) == old_card


def test_a_declined_card_shows_the_decline_and_the_form_again(clock):
    org, account, invoice = _in_dunning()
    path = page_link(org.organization, "invoice", invoice.public_id)
    browser = Client()

    token = _token(browser.get(path).content.decode(), number=DECLINING_NUMBER)
    answer = browser.post(path, {"card_token": token, "save_card": "1"})

    assert answer.status_code == 402
    html = answer.content.decode()
    assert "Seu cartão foi recusado: The card was declined. Tente outro cartão." in html
    assert 'id="card-form"' in html and 'id="receipt"' not in html
    assert _page_payments(invoice) == [("card", "failed")]
    assert Invoice.objects.get(pk=invoice.pk).status == "open"
    declined = Payment.objects.get(invoice=invoice, source="page").payment_method
    assert declined.status == "detached" and declined.gateway_token.startswith("tok_sandbox_decline:")
    assert "invoice.payment_failed" in _event_types(org.organization, invoice.public_id)
    # Another card then pays.
    assert browser.post(path, {"card_token": _token(html), "save_card": "1"}).status_code == 303
    assert sorted(_page_payments(invoice)) == [("card", "failed"), ("card", "succeeded")]


def test_two_posts_of_one_token_at_once_charge_once(clock):
    org, _, invoice = _in_dunning()
    path = page_link(org.organization, "invoice", invoice.public_id)
    token = _token(Client().get(path).content.decode())
    clients = [Client(), Client()]
    statuses = at_once(*[lambda c=c: c.post(path, {"card_token": token, "save_card": "1"}).status_code
                         for c in clients])

    assert sorted(statuses) in ([303, 303], [303, 409])
    assert _page_payments(invoice) == [("card", "succeeded")]
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    assert _event_types(org.organization, invoice.public_id).count("payment.succeeded") == 1
    # The page reloaded with the same post: the invoice is paid, nothing is stored or charged.
    again = Client().post(path, {"card_token": token, "save_card": "1"})
    assert again.status_code == 409 and "Esta fatura já está paga." in again.content.decode()
    assert 'id="receipt"' in again.content.decode()
    assert _page_payments(invoice) == [("card", "succeeded")]


@pytest.mark.parametrize(("status", "shown"), [
    ("paid", "Esta fatura já está paga."),
    ("void", "Esta fatura foi cancelada: não há nada a pagar."),
    ("uncollectible", "Esta fatura não pode ser paga aqui. Entre em contato conosco."),
])
def test_a_paid_void_or_uncollectible_invoice_refuses_and_charges_nothing(clock, status, shown):
    org, account, invoice, path = _open_invoice(clock)
    browser = Client()
    token = _token(browser.get(path).content.decode())
    Invoice.objects.filter(pk=invoice.pk).update(status=status, amount_due=0 if status != "uncollectible" else 10000)

    page = browser.get(path).content.decode()
    answer = browser.post(path, {"card_token": token, "save_card": "1"})

    assert 'id="card-form"' not in page
    assert answer.status_code == 409 and shown in answer.content.decode()
    assert 'id="card-form"' not in answer.content.decode()
    assert not Payment.objects.filter(invoice=invoice).exists()
    assert not PaymentMethod.objects.filter(account=account).exists()


def test_a_payment_in_flight_shows_processing_and_takes_no_card(clock):
    org, account, invoice, path = _open_invoice(clock)
    token = _token(Client().get(path).content.decode())
    Payment.objects.create(organization=org.organization, invoice=invoice, account=account, method="card",
                           provider="sandbox", amount=10000, status="unknown", idempotency_key="in-flight",
                           created_at=clock.now(), updated_at=clock.now())

    page = Client().get(path).content.decode()
    answer = Client().post(path, {"card_token": token})

    assert 'id="processing"' in page and 'id="card-form"' not in page
    assert answer.status_code == 409 and "Um pagamento desta fatura está sendo processado" in answer.content.decode()
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert not PaymentMethod.objects.filter(account=account).exists()


def test_a_wrong_or_revoked_link_is_a_404_and_charges_nothing(clock):
    org, _, invoice, path = _open_invoice(clock)
    token = _token(Client().get(path).content.decode())

    assert Client().post("/pages/i/" + "x" * 32 + "/", {"card_token": token}).status_code == 404
    link = PageLink.objects.get(object_id=invoice.public_id)
    assert org.post(f"/v1/page_links/{link.public_id}/revoke").status_code == 200
    assert Client().post(path, {"card_token": token, "save_card": "1"}).status_code == 404
    assert Client().get(path).status_code == 404
    assert not Payment.objects.filter(invoice=invoice).exists()


def test_a_post_that_is_not_a_card_token_is_a_400_and_stores_nothing(clock):
    org, account, invoice, path = _open_invoice(clock)

    number = Client().post(path, {"card_number": GOOD_CARD["number"], "card_token": GOOD_CARD["number"]})
    forged = Client().post(path, {"card_token": "token_sbx_forged:abc"})

    assert number.status_code == 400 and "Não foi possível ler o cartão" in number.content.decode()
    assert GOOD_CARD["number"] not in number.content.decode()
    assert forged.status_code == 422 and "O cartão não foi aceito" in forged.content.decode()
    assert not Payment.objects.filter(invoice=invoice).exists()
    assert not PaymentMethod.objects.filter(account=account).exists()


def test_the_form_carries_each_visitors_csrf_token(clock):
    org, _, invoice, path = _open_invoice(clock)
    browser = Client(enforce_csrf_checks=True)

    page = browser.get(path).content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    token = _token(page)

    assert Client(enforce_csrf_checks=True).post(path, {"card_token": token}).status_code == 403
    assert browser.post(path, {"card_token": token, "csrfmiddlewaretoken": csrf}).status_code == 303
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


def test_an_english_page_and_a_live_organization_without_a_card_gateway(clock):
    clock.set(day(0))
    live = make_org("Acme", "live")
    account = make_account(live.organization)
    account.locale = "en"
    account.save(update_fields=["locale"])
    invoice = invoice_with_documents(account, number=9)
    path = page_link(live.organization, "invoice", invoice.public_id)

    page = Client().get(path).content.decode()
    answer = Client().post(path, {"card_token": "token_abc"})

    assert 'id="card-form"' not in page and 'id="pix"' in page  # PIX and boleto still there
    assert answer.status_code == 409
    assert "This invoice cannot be paid by card here. Please use another way to pay." in answer.content.decode()
    test_org = make_org("Cobra", "test")
    english = make_account(test_org.organization)
    english.locale = "en"
    english.save(update_fields=["locale"])
    html = Client().get(page_link(test_org.organization, "invoice", make_invoice(english).public_id)).content.decode()
    assert "Pay now by card" in html and "Save this card for future charges" in html and "Pay R$100.00" in html
