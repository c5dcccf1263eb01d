"""The dunning read APIs: delinquent accounts, recovery records, the preview and recovery analytics."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_ox.testing import run_tasks

from cobrador.dunning.models import DelinquentAccount, DunningInvoice, RecoveryRecord
from tests.dunning.conftest import (
    configure,
    day,
    failed_first_charge,
    make_account,
    pay_by_callback,
    run_jobs_until,
)
from tests.payments.billing import add_card

Z = "+00:00"


def iso(moment) -> str:
    return moment.isoformat().replace(Z, "Z")


@pytest.fixture
def dunning(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization)
    run_jobs_until(day(2))
    return account, invoice


def test_delinquent_accounts_list_and_retrieve(org, dunning):
    account, invoice = dunning
    listed = org.get("/v1/delinquent_accounts").json()
    assert [c["account"] for c in listed["data"]] == [account.public_id]
    case = listed["data"][0]
    assert (case["status"], case["opened_at"], case["invoices"], case["overdue_invoice_count"],
            case["overdue_amount"], case["currency"]) == ("open", iso(day(0, 1, 5)), [invoice.public_id], 1, 10000,
                                                          "BRL")
    assert org.get(f"/v1/delinquent_accounts/{case['id']}").json() == case
    assert org.get("/v1/delinquent_accounts", params={"status": "recovered"}).json()["data"] == []
    assert len(org.get("/v1/delinquent_accounts", params={"account": account.public_id}).json()["data"]) == 1
    assert org.get("/v1/delinquent_accounts", params={"opened_at_gte": iso(day(1))}).json()["data"] == []
    response = org.get("/v1/delinquent_accounts", params={"opened_at_gte": "2026-03-01T00:00:00"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "opened_at_gte"
    response = org.get("/v1/delinquent_accounts", params={"status": "late"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "status"


def test_recovery_records_list_filters_and_retrieve(org, dunning):
    account, invoice = dunning
    data = org.get("/v1/recovery_records", params={"invoice": invoice.public_id}).json()["data"]
    assert [(r["attempt_number"], r["method"], r["outcome"]) for r in data] == [
        (1, "bank_slip", "issued"), (1, "card", "failed"), (0, "card", "failed")]  # newest first
    boleto = data[0]
    assert (boleto["provider"], boleto["amount"], boleto["attempted_at"], boleto["next_retry_at"]) == (
        "sandbox", 10000, iso(day(1, 6)), iso(day(3, 6)))
    assert boleto["payment"].startswith("pay_") and boleto["account"] == account.public_id
    assert data[1]["decline_code"] == "generic_decline"
    assert org.get(f"/v1/recovery_records/{boleto['id']}").json() == boleto
    by = {"outcome": "failed", "method": "card", "attempt_number": 1}
    assert [r["id"] for r in org.get("/v1/recovery_records", params=by).json()["data"]] == [data[1]["id"]]
    assert len(org.get("/v1/recovery_records", params={"attempted_at_lt": iso(day(1))}).json()["data"]) == 1
    assert org.get("/v1/recovery_records", params={"account": "ba_nobody"}).json()["data"] == []
    page = org.get("/v1/recovery_records", params={"limit": 2}).json()
    assert page["has_more"] and len(page["data"]) == 2
    rest = org.get("/v1/recovery_records", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [r["id"] for r in rest["data"]] == [data[2]["id"]]


def test_another_organizations_dunning_is_404(org, other_api, dunning):
    account, invoice = dunning
    case = DelinquentAccount.objects.get(account=account)
    record = RecoveryRecord.objects.filter(invoice=invoice).first()
    assert other_api.get(f"/v1/delinquent_accounts/{case.public_id}").status_code == 404
    assert other_api.get(f"/v1/recovery_records/{record.public_id}").status_code == 404
    assert other_api.get(f"/v1/billing_accounts/{account.public_id}/dunning/preview").status_code == 404
    assert other_api.get("/v1/delinquent_accounts").json()["data"] == []
    assert other_api.get("/v1/recovery_records").json()["data"] == []
    assert other_api.get("/v1/analytics/recovery").json()["failed_payments"] == 0
    assert other_api.get("/v1/delinquent_accounts").json()["data"] == []


def test_preview_of_an_account_in_dunning(org, dunning):
    account, invoice = dunning
    preview = org.get(f"/v1/billing_accounts/{account.public_id}/dunning/preview").json()
    assert preview["delinquent_since"] == iso(day(0, 1, 5)) and preview["account_status"] == "active"
    [entry] = preview["invoices"]
    assert entry["invoice"] == invoice.public_id
    timeline = [(a["attempt_number"], a["at"], a["state"], a["outcome"]) for a in entry["attempts"]]
    assert timeline == [
        (0, iso(day(0, 1, 5)), "made", "failed"),
        (1, iso(day(1, 6)), "made", "issued"),
        (2, iso(day(3, 6)), "scheduled", None),
        (3, iso(day(6, 6)), "planned", None),
        (4, iso(day(11, 6)), "planned", None),
        (5, iso(day(18, 6)), "planned", None),
    ]
    assert entry["attempts"][2]["methods"] == ["card", "bank_slip", "pix"]
    # Grace 30 days from the first failure (day 30 01:05): the 02:00 suspension-check of day 30.
    assert preview["suspension_at"] == iso(day(30, 2))
    assert preview["unusable_methods"] == {}

    # The current config shapes only what is not scheduled yet.
    org.patch("/v1/organizations/settings/dunning", {"retry_interval_days": [10], "max_retries": 3,
                                                     "grace_period_days": 5, "retry_payment_methods": ["pix"]})
    entry = org.get(f"/v1/billing_accounts/{account.public_id}/dunning/preview").json()
    attempts = entry["invoices"][0]["attempts"]
    assert [(a["attempt_number"], a["at"], a["methods"]) for a in attempts[2:]] == [
        (2, iso(day(3, 6)), ["card", "bank_slip", "pix"]), (3, iso(day(13, 6)), ["pix"])]
    # The last retry comes after the grace period: suspension waits for it.
    assert entry["suspension_at"] == iso(day(14, 2))


def test_preview_of_an_account_not_in_dunning_is_what_a_failure_now_would_start(org, clock):
    account = make_account(org.organization, document=None)
    preview = org.get(f"/v1/billing_accounts/{account.public_id}/dunning/preview").json()
    now = clock.now()
    assert preview["invoices"] == [] and preview["delinquent_account"] is None
    assert [(a["attempt_number"], a["at"]) for a in preview["if_a_charge_failed_now"]] == [
        (k, iso(now + timedelta(days=d))) for k, d in [(0, 0), (1, 1), (2, 3), (3, 6), (4, 11), (5, 18)]]
    assert preview["unusable_methods"] == {"card": "no_card", "bank_slip": "no_document"}
    assert preview["suspension_at"] == iso(day(31, 2))  # clock at day 0 12:00: 30 days later, the next 02:00

    configure(org.organization, suspend_after_retries=False, auto_retry_enabled=False)
    preview = org.get(f"/v1/billing_accounts/{account.public_id}/dunning/preview").json()
    assert preview["suspension_at"] is None and len(preview["if_a_charge_failed_now"]) == 1


def test_recovery_analytics(org, clock):
    organization = org.organization
    # Three invoices fail their first charge on day 0: one is recovered by a new card (attempt 2, day 2),
    # one by its boleto of attempt 2 (issued on day 3, paid on day 5), one not at all.
    by_card, _, first = failed_first_charge(organization)
    by_boleto, _, second = failed_first_charge(organization)
    never, _, third = failed_first_charge(organization)
    run_jobs_until(day(2))
    add_card(by_card, "tok_sandbox_success")
    run_tasks(raise_failures=True)
    run_jobs_until(day(5))
    boleto = DunningInvoice.objects.get(invoice=second).invoice.payments.get(attempt_number=2, method="bank_slip")
    pay_by_callback(boleto)

    stats = org.get("/v1/analytics/recovery", params={"from": iso(day(0)), "to": iso(day(6))}).json()
    assert {k: stats[k] for k in ("failed_payments", "failed_amount", "recovered_count", "recovered_amount",
                                  "recovery_rate", "recovered_outside_retries", "currency")} == {
        "failed_payments": 3, "failed_amount": 30000, "recovered_count": 2, "recovered_amount": 20000,
        "recovery_rate": 0.6667, "recovered_outside_retries": 0, "currency": "BRL"}
    assert stats["by_attempt"] == [
        {"attempt_number": 1, "attempts": 3, "recovered": 0, "recovery_rate": 0.0},
        {"attempt_number": 2, "attempts": 3, "recovered": 2, "recovery_rate": 0.6667},
    ]
    assert stats["by_method"] == [
        {"method": "card", "attempts": 6, "recovered": 1, "recovery_rate": 0.1667},
        {"method": "bank_slip", "attempts": 5, "recovered": 1, "recovery_rate": 0.2},
    ]
    # Recovered after 2 days less 1 h 05 min (card) and 5 days less 1 h 05 min (boleto): the median of two.
    assert stats["median_time_to_recover_seconds"] == round(((day(2) - day(0, 1, 5)) + (day(5) - day(0, 1, 5)))
                                                            .total_seconds() / 2)
    assert stats["from"] == iso(day(0)) and stats["to"] == iso(day(6))

    empty = org.get("/v1/analytics/recovery", params={"from": iso(day(1)), "to": iso(day(6))}).json()
    assert (empty["failed_payments"], empty["recovery_rate"], empty["median_time_to_recover_seconds"]) == (
        0, None, None)
    bad = org.get("/v1/analytics/recovery", params={"from": iso(day(6)), "to": iso(day(1))})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "from"
    naive = org.get("/v1/analytics/recovery", params={"from": "2026-03-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["error"]["field"] == "from"


def test_admin_pages(org, dunning, db):
    account, invoice = dunning
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.test", "pw"))
    case = DelinquentAccount.objects.get(account=account)
    record = RecoveryRecord.objects.filter(invoice=invoice).first()
    schedule = DunningInvoice.objects.get(invoice=invoice)
    for url in ("/admin/dunning/delinquentaccount/", f"/admin/dunning/delinquentaccount/{case.pk}/change/",
                "/admin/dunning/recoveryrecord/", f"/admin/dunning/recoveryrecord/{record.pk}/change/",
                "/admin/dunning/dunninginvoice/", f"/admin/dunning/dunninginvoice/{schedule.pk}/change/"):
        assert client.get(url).status_code == 200, url

    response = client.post("/admin/dunning/delinquentaccount/", {"action": "write_off", "_selected_action": [case.pk]})
    assert response.status_code == 302
    case.refresh_from_db()
    schedule.refresh_from_db()
    assert (case.status, schedule.status) == ("written_off", "canceled")


def test_openapi_documents_the_policy_and_the_dunning_routes(org):
    schema = Client().get("/v1/openapi.json").json()
    for path in ("/v1/delinquent_accounts", "/v1/recovery_records", "/v1/analytics/recovery",
                 "/v1/billing_accounts/{account_id}/dunning/preview"):
        assert path in schema["paths"], path
    policy = schema["components"]["schemas"]["DunningConfigOut"]["description"]
    for phrase in ("hard decline", "newer boleto/PIX", "skipped", "grace_period_days", "reactivated at once",
                   "immediate retry", "cancels the pending retries", "counted as skipped"):
        assert phrase in policy, phrase
