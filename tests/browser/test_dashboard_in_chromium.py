"""The dashboard in Chromium, at a desktop and a phone size: a member signs in, the charts are drawn with
no console error, the range changes, and the CSV downloads."""

import csv
import io
import time

import pytest
from django.db import transaction
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from cobrador.core import clock
from cobrador.organizations.services import add_member
from tests.browser.conftest import ARTIFACTS, console_errors, needs_browser, screenshot
from tests.conftest import make_org
from tests.subscriptions.conftest import make_account, make_plan, subscribe, sweep, utc

pytestmark = [pytest.mark.browser, needs_browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-member-password-7"


@pytest.fixture
def organization(live_server):
    org = make_org("Acme", "live").organization
    org.created_at = utc(2025, 11, 1, 12)
    org.save(update_fields=["created_at"])
    plans = [make_plan(org, amount=a, name=f"P{a}") for a in (9900, 19900, 49900)]
    for month in range(4):
        clock.set(utc(2025, 11 + month, 3, 12) if month < 2 else utc(2026, month - 1, 3, 12))
        for i in range(3 + month):
            subscribe(org, make_account(org, name=f"C{month}-{i}"), plans[(i + month) % 3])
    sweep("usage-daily-snapshot", utc(2026, 3, 1, 3, 20))
    sweep("usage-monthly-snapshot", utc(2026, 3, 1, 3, 50))
    clock.set(utc(2026, 3, 1, 15))
    with transaction.atomic():
        add_member(organization=org, email="ana@example.com", password=PASSWORD)
    yield org
    clock.set(None)


def sign_in(browser, url):
    browser.get(f"{url}/dashboard/")
    browser.find_element(By.ID, "id_username").send_keys("ana@example.com")
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.ID, "mrr-chart")))


def test_a_member_signs_in_sees_the_charts_changes_the_range_and_downloads_the_csv(live_server, organization,
                                                                                   browser):
    sign_in(browser, live_server.url)
    assert browser.find_element(By.ID, "organization-name").text == "Acme"
    assert browser.execute_script("return document.documentElement.getAttribute('data-dashboard-ready')") == "2"
    bars = browser.find_elements(By.CSS_SELECTOR, "#mrr-chart rect.bar")
    assert bars and all(bar.size["width"] > 0 for bar in bars[:5])
    assert browser.find_element(By.ID, "mrr-chart").size["height"] > 100
    screenshot(browser, "dashboard")

    # The range: the last 12 months by month.
    browser.find_element(By.LINK_TEXT, "12 months").click()
    WebDriverWait(browser, 20).until(lambda d: "by month" in d.find_element(By.ID, "range-label").text)
    assert browser.find_element(By.ID, "mrr-chart").get_attribute("data-points") == "5"  # Nov .. Mar
    assert browser.find_elements(By.CSS_SELECTOR, "#cohorts td.cell")
    screenshot(browser, "dashboard-12-months")

    # The CSV of what is on screen, fetched by the page's own link with the session's cookie.
    href = browser.find_element(By.ID, "export-mrr").get_attribute("href")
    body = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text()).then(done);", href)
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["period"] for r in rows] == ["2025-11-01", "2025-12-01", "2026-01-01", "2026-02-01", "2026-03-01"]
    assert int(rows[-1]["mrr"]) > int(rows[0]["mrr"]) > 0
    (ARTIFACTS / "browser").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "browser" / f"dashboard-mrr-{browser.size_name}.csv").write_text(body)
    # And the link itself downloads it (a download, not a navigation away from the page).
    browser.find_element(By.ID, "export-mrr").click()
    time.sleep(0.5)
    assert browser.find_elements(By.ID, "mrr-chart")
    assert console_errors(browser) == []


def test_a_wrong_password_stays_on_the_sign_in_page(live_server, organization, browser):
    browser.get(f"{live_server.url}/dashboard/login/")
    browser.find_element(By.ID, "id_username").send_keys("ana@example.com")
    browser.find_element(By.ID, "id_password").send_keys("not-the-password")
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.ID, "login-error")))
    screenshot(browser, "dashboard-login-error")
    assert [e for e in console_errors(browser) if "favicon" not in e] == []


def test_the_dashboard_fits_the_window_without_scrolling_sideways(live_server, organization, browser):
    sign_in(browser, live_server.url)
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
