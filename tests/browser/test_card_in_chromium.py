"""The card update page in Chromium: the card typed in the page goes to the gateway's tokens endpoint (the
Pagar.me fake, another origin), and cobrador receives only the token. Every request cobrador's server
receives is logged here (method, path, query, headers, body), with every log record and every database
row: the card number is in none of them, and it did reach the gateway."""

import logging
import threading

import pytest
from django.apps import apps
from django.core.handlers.wsgi import WSGIHandler
from django.db import transaction
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from cobrador.core import clock
from cobrador.customers.models import PaymentMethod
from cobrador.gateways.pagarme import JWKS_CACHE
from cobrador.pages import links
from tests.browser.conftest import console_errors, needs_browser, screenshot
from tests.factories import make_org
from tests.fakes.pagarme import FakePagarme
from tests.notifications.conftest import make_account
from tests.subscriptions.conftest import utc

pytestmark = [pytest.mark.browser, needs_browser, pytest.mark.django_db(transaction=True)]
NUMBER = "5555555555554444"


@pytest.fixture
def server(live_server, settings):
    settings.PUBLIC_URL = live_server.url
    clock.set(utc(2026, 3, 1, 12))
    yield live_server
    clock.set(None)


@pytest.fixture
def pagarme(settings):
    with FakePagarme() as fake:
        settings.PAGARME_BASE_URL, settings.PAGARME_JWKS_URL = fake.url, fake.jwks_url
        settings.PROVIDER_ALLOW_PRIVATE = True
        yield fake
    JWKS_CACHE.clear()


@pytest.fixture
def request_log(monkeypatch):
    """cobrador's request log: everything its WSGI handler receives while the test runs."""
    received = []
    original = WSGIHandler.__call__

    def recording(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        import io  # noqa: PLC0415 - the request body is read once here and handed on unchanged
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {k: v for k, v in environ.items() if k.startswith("HTTP_") or k.startswith("CONTENT_")}
        received.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}?{environ.get('QUERY_STRING', '')} "
                        f"{headers} {body.decode('utf-8', 'replace')}")
        return original(self, environ, start_response)

    monkeypatch.setattr(WSGIHandler, "__call__", recording)
    return received


@pytest.fixture
def log_records():
    """Every log record cobrador's server threads emit (the test's own thread logs what selenium types)."""
    records = []
    test_thread = threading.get_ident()

    class Keep(logging.Handler):
        def emit(self, record):
            if record.thread != test_thread:
                records.append(self.format(record) + " " + repr(record.__dict__))

    handler = Keep(level=logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield records
    root.removeHandler(handler)
    root.setLevel(old_level)


def database_text() -> str:
    """Every value of every row of every table cobrador has, as text."""
    parts = []
    for model in apps.get_models():
        fields = [f.attname for f in model._meta.concrete_fields]  # noqa: SLF001
        parts.extend(repr(row) for row in model.objects.values_list(*fields))
    return "\n".join(parts)


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
