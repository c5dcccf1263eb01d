"""Pay now by card on the hosted invoice page in Chromium: the card typed in the page goes to the gateway's
tokens endpoint (the Pagar.me fake, another origin), cobrador receives only the token, charges the
invoice and shows its receipt. A first card is declined: the page says so and shows the form again. The
request log, the server's log records and the database never hold the card number (conftest.py)."""

import pytest
from django.db import transaction
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from cobrador.customers.models import PaymentMethod
from cobrador.invoicing.models import Invoice
from cobrador.pages import links
from cobrador.payments.models import Payment
from tests.browser.conftest import console_errors, database_text, needs_browser, screenshot
from tests.factories import make_org
from tests.payments.billing import make_account, make_invoice

pytestmark = [pytest.mark.browser, needs_browser, pytest.mark.django_db(transaction=True)]
DECLINED, PAID = "4000000000000010", "5555555555554444"


def _type_card(browser, number: str) -> None:
    browser.find_element(By.ID, "card-holder").send_keys("MARIA SOUZA")
    browser.find_element(By.ID, "card-number").send_keys(" ".join(number[i:i + 4] for i in range(0, 16, 4)))
    browser.find_element(By.ID, "card-exp-month").send_keys("12")
    browser.find_element(By.ID, "card-exp-year").send_keys("2030")
    browser.find_element(By.ID, "card-cvv").send_keys("123")


def _pay(browser) -> None:
    button = browser.find_element(By.ID, "pay-now")
    browser.execute_script("arguments[0].scrollIntoView()", button)
    button.click()


def test_an_invoice_is_paid_by_card_on_its_page_and_cobrador_never_sees_the_number(
        server, pagarme, browser, request_log, log_records):
    api = make_org("Acme", "test")
    assert api.post("/v1/gateways", {"provider": "pagarme", "methods": ["card"], "credentials": {
        "secret_key": pagarme.secret_key}, "options": {"public_key": pagarme.public_key}}).status_code == 201
    account = make_account(api.organization)
    invoice = make_invoice(account, amount=19900)
    with transaction.atomic():
        _, url = links.create_link(organization=api.organization, kind="invoice", object_id=invoice.public_id)

    browser.get(url)
    assert "Fatura" in browser.title
    assert browser.find_element(By.ID, "save-card-option").is_selected()
    assert browser.find_element(By.ID, "pay-now").text == "Pagar R$ 199,00"
    _type_card(browser, DECLINED)
    screenshot(browser, "invoice-pay-card")
    pagarme.fail_next("decline")  # the acquirer declines the first card's charge
    _pay(browser)
    WebDriverWait(browser, 15).until(expected_conditions.text_to_be_present_in_element((By.ID, "error"),
                                                                                      "Seu cartão foi recusado"))
    screenshot(browser, "invoice-pay-card-declined")
    _type_card(browser, PAID)  # the form again, empty
    _pay(browser)
    WebDriverWait(browser, 15).until(expected_conditions.presence_of_element_located((By.ID, "receipt")))
    assert "R$ 199,00 pagos em" in browser.find_element(By.ID, "receipt").text
    assert browser.find_elements(By.ID, "card-form") == []
    screenshot(browser, "invoice-paid-by-card")

    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    assert list(Payment.objects.filter(invoice=invoice).order_by("pk").values_list("source", "status")) == [
        ("page", "failed"), ("page", "succeeded")]
    card = PaymentMethod.objects.get(account=account, is_default=True, status="active")
    assert card.gateway_token.startswith("cus_") and (card.card_brand, card.card_last4) == ("mastercard", "4444")
    # The numbers went to the gateway, and only there.
    assert pagarme.tokenized_numbers == [DECLINED, PAID]
    posted = [line for line in request_log if line.startswith("POST /pages/i/")]
    assert len(posted) == 2 and all("card_token=token_" in line and "save_card=1" in line for line in posted)
    for where, text in (("request log", "\n".join(request_log)), ("logs", "\n".join(log_records)),
                        ("database", database_text())):
        for number in (DECLINED, PAID):
            assert number not in text, where
            assert " ".join(number[i:i + 4] for i in range(0, 16, 4)) not in text, where
    # The declined card's answer is a 402, which Chromium reports as a failed load; nothing else.
    assert [e for e in console_errors(browser) if "status of 402 (Payment Required)" not in e] == []
