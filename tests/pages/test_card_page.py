"""The hosted card update page: the card goes from the browser to the gateway's tokens endpoint, cobrador
receives only the token, the new card becomes the default and the immediate dunning retry runs."""

import re
from datetime import timedelta

import httpx
import pytest
from django.test import Client
from django_ox.testing import run_tasks

from cobrador.customers.models import PaymentMethod
from cobrador.dunning.models import DunningInvoice
from cobrador.gateways.pagarme import JWKS_CACHE
from cobrador.gateways.registry import fallback_sandbox_config
from cobrador.gateways.sandbox import sandbox_public_key
from cobrador.invoicing.models import Invoice
from cobrador.jobs.runner import run_job
from cobrador.notifications.models import Notice
from tests.dunning.conftest import day, failed_first_charge, records, run_jobs_until
from tests.factories import make_org
from tests.fakes.pagarme import FakePagarme
from tests.notifications.conftest import make_account, make_card
from tests.pages.factories import GOOD_CARD, SANDBOX_TOKENS, card_form, page_link, sandbox_token

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_card_saved_on_the_page_becomes_the_default_and_retries_the_invoice_in_dunning(clock):
    org = make_org("Cobra", "test")
    account, subscription, invoice = failed_first_charge(org.organization)
    run_jobs_until(day(2))  # attempt 1 made; attempt 2 due on day 3
    path = page_link(org.organization, "card", account.public_id)
    browser = Client()

    page = browser.get(path).content.decode()
    assert "•••• 0002" not in page and "Atualize seu cartão" in page
    tokenize_url, public_key = card_form(page)
    assert tokenize_url == SANDBOX_TOKENS
    assert public_key == sandbox_public_key(fallback_sandbox_config(org.organization))
    assert 'name="card_number"' not in page and not re.search(r'<input id="card-[a-z-]+"[^>]* name=', page)

    token = sandbox_token(Client(), public_key)  # the script's call, to the sandbox, not to the page
    assert token["status"] == 200 and token["id"].startswith("token_sbx_") and "4000000000000010" not in token["id"]
    answer = browser.post(path, {"card_token": token["id"]})

    assert answer.status_code == 302 and answer["Location"].endswith("?updated=1")
    card = PaymentMethod.objects.get(account=account, is_default=True, status="active")
    assert (card.card_brand, card.card_last4, card.exp_month, card.exp_year) == ("visa", "0010", 12, 2030)
    assert card.gateway_token.startswith("tok_sandbox_success:")
    shown = browser.get(answer["Location"]).content.decode()
    assert "Cartão atualizado" in shown and "•••• 0010" in shown
    run_tasks(raise_failures=True)  # the immediate retry payment_method.attached enqueued
    assert records(invoice, attempt=2) == [(2, "card", "succeeded")]
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    assert DunningInvoice.objects.get(invoice=invoice).status == "recovered"


def test_a_refused_or_reused_token_attaches_nothing(clock):
    org = make_org("Cobra", "test")
    clock.set(day(0))
    account = make_account(org.organization)
    path = page_link(org.organization, "card", account.public_id)
    browser = Client()
    _, public_key = card_form(browser.get(path).content.decode())

    assert browser.post(path, {"card_token": "4000000000000010"}).status_code == 400
    assert browser.post(path, {"card_token": "token_sbx_forged:abc"}).status_code == 422
    token = sandbox_token(Client(), public_key)["id"]
    clock.advance(timedelta(seconds=61))
    assert browser.post(path, {"card_token": token}).status_code == 422  # expired
    token = sandbox_token(Client(), public_key)["id"]
    assert browser.post(path, {"card_token": token}).status_code == 302
    again = browser.post(path, {"card_token": token})
    assert again.status_code == 409 and "não foi aceito" in again.content.decode()
    assert PaymentMethod.objects.filter(account=account).count() == 1


def test_the_sandbox_tokens_endpoint_takes_test_cards_only_and_never_echoes_a_number(clock):
    org = make_org("Cobra", "test")
    public_key = sandbox_public_key(fallback_sandbox_config(org.organization))
    client = Client()

    refused = sandbox_token(client, public_key, number="4111111111111111")
    assert refused["status"] == 422 and "card.number" in refused["errors"]
    assert "4111111111111111" not in str(refused)
    assert sandbox_token(client, "pk_test_sandbox_gw_nope")["status"] == 401
    assert client.post(f"{SANDBOX_TOKENS}?appId={public_key}", {"type": "card", "card": GOOD_CARD},
                       content_type="application/json", headers={"Authorization": "Basic eDo="}).status_code == 401
    preflight = client.options(f"{SANDBOX_TOKENS}?appId={public_key}")
    assert preflight.status_code == 204 and preflight["Access-Control-Allow-Origin"] == "*"
    assert sandbox_token(client, public_key, exp_year=2020)["status"] == 422


@pytest.fixture
def pagarme(settings):
    with FakePagarme(fault_delay=1.0) as fake:
        settings.PAGARME_BASE_URL, settings.PAGARME_JWKS_URL = fake.url, fake.jwks_url
        settings.PROVIDER_ALLOW_PRIVATE = True
        yield fake
    JWKS_CACHE.clear()


def pagarme_org(fake, *, public_key=True):
    org = make_org("Acme", "test")
    body = {"provider": "pagarme", "methods": ["card"], "credentials": {"secret_key": fake.secret_key}}
    if public_key:
        body["options"] = {"public_key": fake.public_key}
    assert org.post("/v1/gateways", body).status_code == 201
    return org


def test_with_pagarme_the_browser_tokenizes_at_pagarme_and_the_card_is_stored_on_a_customer(pagarme, clock):
    org = pagarme_org(pagarme)
    account = make_account(org.organization)
    path = page_link(org.organization, "card", account.public_id)
    browser = Client()
    tokenize_url, public_key = card_form(browser.get(path).content.decode())
    assert (tokenize_url, public_key) == (f"{pagarme.url}/tokens", pagarme.public_key)

    token = httpx.post(tokenize_url, params={"appId": public_key},
                       json={"type": "card", "card": {**GOOD_CARD, "number": "5555555555554444"}}).json()
    assert token["id"].startswith("token_") and token["card"]["last_four_digits"] == "4444"
    assert browser.post(path, {"card_token": token["id"]}).status_code == 302

    card = PaymentMethod.objects.get(account=account, is_default=True)
    customer_id, card_id = card.gateway_token.split(":")
    assert customer_id in pagarme.customers and pagarme.cards[card_id]["last_four_digits"] == "4444"
    assert (card.card_brand, card.card_last4) == ("mastercard", "4444")
    # A replayed token (a double submit): Pagar.me replays the same card by its idempotency key, and the
    # card is already attached: one card at Pagar.me, one payment method.
    assert browser.post(path, {"card_token": token["id"]}).status_code == 409
    assert PaymentMethod.objects.filter(account=account).count() == 1 and len(pagarme.cards) == 1
    # A token never issued (or spent by another customer's request) is refused at Pagar.me.
    assert browser.post(path, {"card_token": "token_neverissued0001"}).status_code == 422


def test_without_a_public_key_the_page_takes_no_card(pagarme, clock):
    org = pagarme_org(pagarme, public_key=False)
    account = make_account(org.organization)
    path = page_link(org.organization, "card", account.public_id)

    page = Client().get(path).content.decode()
    assert 'id="unavailable"' in page and "card-form" not in page
    assert Client().post(path, {"card_token": "token_x"}).status_code == 409
    assert org.post("/v1/gateways", {"provider": "pagarme", "methods": ["pix"], "credentials": {
        "secret_key": pagarme.secret_key}, "options": {"public_key": "pk_live"}}).status_code == 422


def test_card_notices_link_to_the_card_page_unless_the_organization_has_its_own_url(clock):
    own = make_org("Globex", "test")
    assert own.patch("/v1/organizations/settings/notifications", {
        "update_card_url": "https://app.globex.test/cards/{account_id}"}).status_code == 200
    hosted = make_org("Cobra", "test")
    clock.set(day(0))
    for org in (own, hosted):
        make_card(make_account(org.organization), exp_month=3, exp_year=2026, token="tok_sandbox_success")

    run_job("card-expiring", as_of=day(2, 10))

    theirs = Notice.objects.get(organization=own.organization, type="card_expiring", channel="email")
    assert theirs.link.startswith("https://app.globex.test/cards/ba_")
    ours = Notice.objects.get(organization=hosted.organization, type="card_expiring", channel="email")
    assert "/pages/c/" in ours.link
    page = Client().get("/" + ours.link.split("://", 1)[1].split("/", 1)[1])
    assert page.status_code == 200 and "Atualize seu cartão" in page.content.decode()


def test_a_payment_failed_notice_links_to_the_card_page(clock):
    org = make_org("Cobra", "test")
    account, _, _ = failed_first_charge(org.organization)

    notice = Notice.objects.filter(organization=org.organization, type="payment_failed", channel="email").first()
    assert notice is not None and "/pages/c/" in notice.link
    page = Client().get("/" + notice.link.split("://", 1)[1].split("/", 1)[1]).content.decode()
    assert account.name in page and "card-form" in page


def test_a_card_link_of_another_organization_or_a_wrong_token_is_a_404(clock):
    org, other = make_org("Cobra", "test"), make_org("Globex", "test")
    account = make_account(other.organization)
    path = page_link(org.organization, "card", account.public_id)  # a link naming another tenant's account

    assert Client().get(path).status_code == 404
    assert Client().get("/pages/c/" + "x" * 32 + "/").status_code == 404
    assert org.post("/v1/page_links", {"object": account.public_id}).status_code == 422
    made = other.post("/v1/page_links", {"object": account.public_id}).json()
    assert made["kind"] == "card" and "/pages/c/" in made["url"]
