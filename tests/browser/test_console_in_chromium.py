"""The operator's console in Chromium at 1280 px against a live cobrador server: the home page, a billing
account's timeline, one action done through its confirmation, and every list page without a horizontal
scrollbar. Screenshots in test-artifacts/browser/console-*.png."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django_ox.testing import run_tasks
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from cobrador.core import clock
from cobrador.customers.models import BillingAccount
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.models import FailedItem, JobRun
from cobrador.payments.models import Payment
from cobrador.webhooks.delivery import deliver_due
from tests.browser.conftest import console_errors, needs_browser, screenshot, start_browser
from tests.dunning.conftest import day, failed_first_charge, pay_by_callback, run_jobs_until
from tests.factories import make_org
from tests.webhooks.conftest import register

pytestmark = [pytest.mark.browser, needs_browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long enough console password"


@pytest.fixture
def desktop():
    driver = start_browser("desktop")
    yield driver
    driver.quit()


@pytest.fixture
def console(live_server, desktop, settings):
    """The browser logged in to the console through its login form."""
    settings.PUBLIC_URL = live_server.url
    User.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    desktop.get(f"{live_server.url}/admin/login/")
    desktop.find_element(By.ID, "id_username").send_keys("ops")
    desktop.find_element(By.ID, "id_password").send_keys(PASSWORD)
    desktop.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(desktop, 15).until(expected_conditions.presence_of_element_located((By.ID, "jobs")))
    desktop.base = live_server.url
    yield desktop
    clock.set(None)


@pytest.fixture
def history(receiver):
    """An account whose first charge failed, whose first retry issued a boleto that was paid by callback,
    and a second account still in dunning, with a webhook endpoint on a loopback receiver."""
    org = make_org("Cobra", "test")
    hook = register(org, receiver.url)
    receiver.secrets.append(hook["secret"])
    paid, _, invoice = failed_first_charge(org.organization)
    in_dunning, _, _ = failed_first_charge(org.organization, document="111.444.777-35")
    run_jobs_until(day(1, 7))
    pay_by_callback(Payment.objects.get(invoice=invoice, method="bank_slip"))
    run_tasks()
    deliver_due()
    return paid, in_dunning


def no_horizontal_scrollbar(driver) -> bool:
    return driver.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_the_home_page_shows_jobs_backlogs_parked_items_and_failures(console, history):
    now = clock.now()
    JobRun.objects.create(job_name="nfe-sync", as_of=now, started_at=now - timedelta(minutes=1), finished_at=now,
                          status="failed", error="Traceback (most recent call last):\nConnectError: NFe.io unreachable")
    FailedItem.objects.create(job_name="payment-reconciliation", item_key="pay_123", attempts=3, parked=True,
                              last_error="gateway answered 500", first_failed_at=now, last_failed_at=now)

    console.get(f"{console.base}/admin/")

    jobs = console.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
    assert {row.get_attribute("data-job") for row in jobs} == set(JOBS)
    assert "payment-reconciliation" in console.find_element(By.ID, "parked").text
    failures = console.find_element(By.ID, "last-failures").text
    assert "ConnectError: NFe.io unreachable" in failures and "nfe-sync run failed" in failures
    backlogs = console.find_element(By.ID, "backlogs").text
    assert "Webhook deliveries" in backlogs and "Task queue" in backlogs
    assert no_horizontal_scrollbar(console)
    screenshot(console, "console-home")
    assert console_errors(console) == []

    console.find_element(By.LINK_TEXT, "nfe-sync run failed").click()
    assert "ConnectError" in console.find_element(By.ID, "content").text


def test_the_timeline_and_suspending_an_account_through_its_confirmation(console, history):
    paid, in_dunning = history

    console.get(f"{console.base}/admin/accounts/{paid.public_id}/")

    kinds = {row.get_attribute("data-kind") for row in console.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")}
    assert kinds == {"account", "subscription", "invoice", "payment", "dunning", "notice", "webhook", "callback"}
    assert no_horizontal_scrollbar(console)
    screenshot(console, "console-timeline")
    assert console_errors(console) == []

    console.get(f"{console.base}/admin/accounts/{in_dunning.public_id}/")
    assert console.find_element(By.CSS_SELECTOR, '[data-action="retry_now"]')
    console.find_element(By.ID, "action-suspend").click()
    WebDriverWait(console, 15).until(expected_conditions.presence_of_element_located((By.ID, "confirm")))
    assert in_dunning.public_id in console.find_element(By.ID, "question").text
    assert BillingAccount.objects.get(pk=in_dunning.pk).status == "active"  # nothing until confirmed
    console.find_element(By.ID, "reason").send_keys("asked by the customer's bank")
    screenshot(console, "console-confirm")
    console.find_element(By.ID, "confirm-button").click()

    WebDriverWait(console, 15).until(expected_conditions.text_to_be_present_in_element(
        (By.ID, "account-status"), "suspended"))
    assert f"Account {in_dunning.public_id} is suspended." in console.find_element(By.CSS_SELECTOR,
                                                                                  ".messagelist").text
    assert console.find_element(By.ID, "action-reactivate")
    screenshot(console, "console-suspended")
    account = BillingAccount.objects.get(pk=in_dunning.pk)
    assert account.suspension_reason == "Suspended by an operator: asked by the customer's bank"
    assert console_errors(console) == []


def test_every_list_page_fits_1280_px(console, history):
    too_wide = []
    for model in admin.site._registry:
        url = f"{console.base}/admin/{model._meta.app_label}/{model._meta.model_name}/"
        console.get(url)
        assert console.find_element(By.ID, "changelist"), url
        if not no_horizontal_scrollbar(console):
            too_wide.append(model._meta.label)
            screenshot(console, f"console-too-wide-{model._meta.label}")
    screenshot(console, "console-list")
    assert too_wide == []
