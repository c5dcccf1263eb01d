"""The hosted pages in Chromium, at a desktop and a phone size, against a live cobrador server (`server`,
conftest.py: PUBLIC_URL on it, the clock at 2026-03-01 12:00 UTC)."""

import pytest
from django.db import transaction
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from cobrador.notifications.models import Notice
from cobrador.pages import links
from cobrador.proposals.models import Proposal
from cobrador.subscriptions.models import Subscription
from tests.browser.conftest import console_errors, needs_browser, screenshot
from tests.conftest import make_org
from tests.notifications.conftest import make_account
from tests.pages.factories import BOLETO_LINE, PIX_CODE, invoice_with_documents
from tests.subscriptions.conftest import make_plan

pytestmark = [pytest.mark.browser, needs_browser, pytest.mark.django_db(transaction=True)]


def test_a_proposal_sent_through_the_api_is_opened_and_accepted(server, browser):
    api = make_org("Acme", "live")
    plan = make_plan(api.organization, amount=15000)
    proposal = api.post("/v1/proposals", {
        "prospect": {"name": "Joana Lima", "email": "joana@example.com"}, "message": "Oferta especial",
        "lines": [{"plan": plan.public_id, "quantity": 2}], "expires_on": "2026-03-10"}).json()
    assert api.post(f"/v1/proposals/{proposal['id']}/send").status_code == 200
    link = Notice.objects.get(type="proposal_sent").link
    assert link.startswith(server.url)

    browser.get(link)
    assert "Proposta 1" in browser.title
    assert browser.find_element(By.ID, "total").text == "R$ 300,00"
    screenshot(browser, "proposal")
    browser.find_element(By.ID, "accept").click()
    WebDriverWait(browser, 15).until(expected_conditions.text_to_be_present_in_element((By.ID, "state"),
                                                                                      "Proposta aceita"))
    subscription = Subscription.objects.get()
    shown = browser.find_element(By.CSS_SELECTOR, f'[data-subscription="{subscription.public_id}"]')
    assert "Pro" in shown.text
    screenshot(browser, "proposal-accepted")

    assert Proposal.objects.get(public_id=proposal["id"]).status == "accepted"
    assert subscription.quantity == 2 and subscription.account.email == "joana@example.com"
    assert console_errors(browser) == []


def test_an_invoice_page_shows_the_pix_code_to_read_and_copy(server, browser):
    organization = make_org("Acme", "live").organization
    invoice = invoice_with_documents(make_account(organization), number=42)
    with transaction.atomic():
        _, url = links.create_link(organization=organization, kind="invoice", object_id=invoice.public_id)

    browser.get(url)

    assert "Fatura 42" in browser.title
    assert browser.find_element(By.ID, "pix-code").get_attribute("value") == PIX_CODE
    assert browser.find_element(By.ID, "boleto-line").get_attribute("value") == BOLETO_LINE
    qr = browser.find_element(By.ID, "pix-qr")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", qr)
    copy = browser.find_element(By.CSS_SELECTOR, '[data-copy="pix-code"]')
    browser.execute_script("arguments[0].scrollIntoView()", copy)
    copy.click()
    WebDriverWait(browser, 5).until(lambda driver: copy.text == "Copiado!")
    screenshot(browser, "invoice")
    assert console_errors(browser) == []


def test_a_wrong_link_is_a_bare_404(server, browser):
    browser.get(f"{server.url}/pages/p/{'x' * 32}/")
    assert "Not found" in browser.title
    screenshot(browser, "not-found")
    # The 404 itself is logged by Chromium as a failed resource; nothing else may be.
    assert [m for m in console_errors(browser) if "404" not in m] == []
