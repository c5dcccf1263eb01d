"""The card update page in Chromium: the card typed in the page goes to the gateway's tokens endpoint (the
Pagar.me fake, another origin), and cobrador receives only the token. Every request cobrador's server
receives is logged here (method, path, query, headers, body), with every log record and every database
row (the fixtures in conftest.py): the card number is in none of them, and it did reach the gateway."""

import pytest
from django.db import transaction
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from cobrador.customers.models import PaymentMethod
from cobrador.pages import links
from tests.browser.conftest import console_errors, database_text, needs_browser, screenshot
from tests.factories import make_org
from tests.notifications.conftest import make_account

pytestmark = [pytest.mark.browser, needs_browser, pytest.mark.django_db(transaction=True)]
NUMBER = "5555555555554444"


def test_a_card_is_updated_through_the_gateways_tokenization_and_cobrador_never_sees_its_number(
        server, pagarme, browser, request_log, log_records):
    api = make_org("Acme", "test")
    assert api.post("/v1/gateways", {"provider": "pagarme", "methods": ["card"], "credentials": {
        "secret_key": pagarme.secret_key}, "options": {"public_key": pagarme.public_key}}).status_code == 201
    account = make_account(api.organization, name="Maria Souza")
    with transaction.atomic():
        _, url = links.create_link(organization=api.organization, kind="card", object_id=account.public_id)

    browser.get(url)
    assert "Atualize seu cartão" in browser.title
    browser.find_element(By.ID, "card-holder").send_keys("MARIA SOUZA")
    browser.find_element(By.ID, "card-number").send_keys("5555 5555 5555 4444")
    browser.find_element(By.ID, "card-exp-month").send_keys("12")
    browser.find_element(By.ID, "card-exp-year").send_keys("2030")
    browser.find_element(By.ID, "card-cvv").send_keys("123")
    screenshot(browser, "card")
    save = browser.find_element(By.ID, "save-card")
    browser.execute_script("arguments[0].scrollIntoView()", save)
    save.click()
    WebDriverWait(browser, 15).until(expected_conditions.text_to_be_present_in_element((By.ID, "state"),
                                                                                      "Cartão atualizado"))
    assert "•••• 4444" in browser.find_element(By.ID, "current-card").text
    screenshot(browser, "card-updated")

    card = PaymentMethod.objects.get(account=account, is_default=True, status="active")
    assert card.gateway_token.startswith("cus_") and ":card_" in card.gateway_token
    assert (card.card_brand, card.card_last4, card.exp_month, card.exp_year) == ("mastercard", "4444", 12, 2030)
    # The number went to the gateway, and only there.
    assert pagarme.tokenized_numbers == [NUMBER]
    posted = [line for line in request_log if line.startswith("POST /pages/c/")]
    assert len(posted) == 1 and "card_token=token_" in posted[0]
    assert any("httpcore" in record for record in log_records)  # the server's records are here (its gateway calls)
    for where, text in (("request log", "\n".join(request_log)), ("logs", "\n".join(log_records)),
                        ("database", database_text())):
        assert NUMBER not in text, where
        assert "5555 5555 5555 4444" not in text, where
    assert console_errors(browser) == []
