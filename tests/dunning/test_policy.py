"""The dunning policy's rules, each through the real jobs, services and API."""

from datetime import UTC, datetime, timedelta

from django_ox.testing import run_tasks

from cobrador.customers.models import BillingAccount
from cobrador.dunning.models import DunningInvoice, RecoveryRecord
from cobrador.invoicing.models import Invoice
from cobrador.jobs.runner import run_job
from cobrador.notifications.models import Notice
from cobrador.organizations.models import DunningConfig
from cobrador.payments import charging
from cobrador.payments.models import Payment
from cobrador.subscriptions.models import Subscription
from tests.dunning.conftest import (
    attempts_by_day,
    case_of,
    configure,
    day,
    events,
    failed_first_charge,
    pay_by_callback,
    records,
    run_jobs_until,
    subscribed_account,
)
from tests.payments.billing import add_card, make_invoice

CARD_THEN_BOLETO = [("card", "failed"), ("bank_slip", "issued")]
CURL_CONFIG = {"max_retries": 5, "retry_interval_days": [1, 3, 5, 7, 14], "suspend_after_retries": True,
               "grace_period_days": 45, "auto_retry_enabled": True,
               "retry_payment_methods": ["pix", "bank_slip", "card"]}


def test_a_retry_that_issues_a_boleto_is_one_notice_drafted_with_that_boleto(org, clock):
    """The card's failure and the boleto are one notice, drafted once the boleto exists: drafted from the
    card failure, it could be sent before the boleto was issued, and the customer would never get it."""
    account, _, invoice = failed_first_charge(org.organization)

    run_jobs_until(day(1, 7))

    assert attempts_by_day(invoice) == {1: CARD_THEN_BOLETO}
    boleto = Payment.objects.get(invoice=invoice, method="bank_slip")
    retry_notices = Notice.objects.filter(account=account, type="payment_failed",
                                          dedupe_key__startswith=f"payment_failed:{invoice.public_id}:{day(1).date()}")
    assert sorted(n.channel for n in retry_notices) == ["email", "in_app"]  # one notice per channel
    assert boleto.boleto_line and all(n.context["boleto"]["line"] == boleto.boleto_line for n in retry_notices)


def test_the_curl_config_issues_pix_documents_first(org, clock):
    response = org.patch("/v1/organizations/settings/dunning", CURL_CONFIG)
    assert response.status_code == 200, response.content
    account, subscription, invoice = failed_first_charge(org.organization)

    run_jobs_until(day(31))

    # Retries 1, 1+3, 4+5, 9+7, 16+14 days after the first failure; PIX ends every attempt.
    assert attempts_by_day(invoice) == {1: [("pix", "issued")], 4: [("pix", "issued")], 9: [("pix", "issued")],
                                        16: [("pix", "issued")], 30: [("pix", "issued")]}
    pix = list(Payment.objects.filter(invoice=invoice, source="dunning").order_by("pk"))
    assert [p.method for p in pix] == ["pix"] * 5
    assert all(p.pix_copy_paste.startswith("000201") and p.pix_qr_code_url for p in pix)
    assert [p.status for p in pix] == ["canceled"] * 4 + ["pending"]
    # The card is never charged again: each attempt stops at the PIX.
    assert Payment.objects.filter(invoice=invoice, method="card").count() == 1

    pay_by_callback(pix[-1])
    account.refresh_from_db()
    assert case_of(account).status == "recovered" and account.status == "active"


def test_a_config_change_during_dunning_affects_only_attempts_not_yet_scheduled(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization)
    run_jobs_until(day(2))  # attempt 1 on day 1; attempt 2 scheduled for day 3 with card, boleto, pix
    schedule = DunningInvoice.objects.get(invoice=invoice)
    assert (schedule.next_attempt_number, schedule.next_attempt_at, schedule.next_methods) == (
        2, day(3, 6), ["card", "bank_slip", "pix"])

    response = org.patch("/v1/organizations/settings/dunning", {
        "retry_interval_days": [10], "retry_payment_methods": ["pix"], "max_retries": 3})
    assert response.status_code == 200

    run_jobs_until(day(40))
    assert attempts_by_day(invoice) == {1: [("card", "failed"), ("bank_slip", "issued")],
                                        3: [("card", "failed"), ("bank_slip", "issued")],  # as scheduled before
                                        13: [("pix", "issued")]}  # 10 days later, the new methods; max 3
    schedule.refresh_from_db()
    assert (schedule.status, schedule.attempts_made) == ("exhausted", 3)
    assert len(events(org.organization, "dunning.exhausted")) == 1


def test_auto_retry_disabled_makes_no_retries_but_pay_still_works(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization)
    org.patch("/v1/organizations/settings/dunning", {"auto_retry_enabled": False})

    runs = run_jobs_until(day(10), jobs=("payment-retry",))

    assert records(invoice) == [(0, "card", "failed")]
    assert runs[-1].counts.get("skipped_auto_retry_disabled") == 1
    # A new card does not retry by itself either...
    response = org.post(f"/v1/billing_accounts/{account.public_id}/payment_methods", {
        "type": "card", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030,
        "gateway_token": "tok_sandbox_success"})
    assert response.status_code == 201
    assert run_tasks() == []
    # ...but paying through the API does, and recovers the account at once.
    response = org.post(f"/v1/invoices/{invoice.public_id}/pay", {"payment_method": response.json()["id"]})
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    assert case_of(account).status == "recovered"
    assert DunningInvoice.objects.get(invoice=invoice).status == "recovered"
    assert len(events(org.organization, "billing_account.reactivated")) == 1


def test_due_retries_wait_while_auto_retry_is_off_and_run_when_it_is_back_on(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization)
    configure(org.organization, auto_retry_enabled=False)
    run_jobs_until(day(4), jobs=("payment-retry",))
    assert records(invoice) == [(0, "card", "failed")]

    configure(org.organization, auto_retry_enabled=True)
    run_jobs_until(day(4, 6), jobs=("payment-retry",))
    assert attempts_by_day(invoice) == {4: CARD_THEN_BOLETO}


def test_with_auto_retry_off_the_account_is_suspended_after_the_grace_period(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization)
    configure(org.organization, auto_retry_enabled=False, grace_period_days=5)
    run_jobs_until(day(5, 3), jobs=("suspension-check", "payment-retry"))
    account.refresh_from_db()
    assert (account.status, account.suspended_at) == ("suspended", day(5, 2))


def test_after_a_hard_decline_the_card_is_not_charged_again_for_that_invoice(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization, token="tok_sandbox_stolen")
    assert Payment.objects.get(invoice=invoice).decline_class == "hard"

    run_jobs_until(day(4))

    assert attempts_by_day(invoice) == {1: [("card", "skipped"), ("bank_slip", "issued")],
                                        3: [("card", "skipped"), ("bank_slip", "issued")]}
    assert set(RecoveryRecord.objects.filter(outcome="skipped").values_list("decline_code", flat=True)) == {
        "card_hard_declined"}
    assert Payment.objects.filter(invoice=invoice, method="card").count() == 1


def test_a_hard_decline_during_a_retry_blocks_that_card_only(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization)
    run_jobs_until(day(1, 1))
    stolen = add_card(account, "tok_sandbox_stolen")  # the new default (no retry yet: auto retry queued)
    configure(org.organization, auto_retry_enabled=False)
    run_tasks()
    configure(org.organization, auto_retry_enabled=True, retry_payment_methods=["card"])

    run_jobs_until(day(1, 6))  # attempt 1 (scheduled before the change): the stolen default card, then a boleto
    assert records(invoice, attempt=1) == [(1, "card", "failed"), (1, "bank_slip", "issued")]
    assert RecoveryRecord.objects.get(invoice=invoice, attempt_number=1, method="card").decline_code == "stolen_card"
    assert DunningInvoice.objects.get(invoice=invoice).hard_declined_cards == [stolen.pk]

    run_jobs_until(day(3, 6))  # attempt 2 (methods fixed at scheduling: card): the other card is charged
    second = RecoveryRecord.objects.get(invoice=invoice, attempt_number=2)
    assert (second.outcome, second.payment.payment_method_id) == ("failed", Payment.objects.filter(
        invoice=invoice).order_by("pk").first().payment_method_id)


def test_a_payment_method_saved_during_dunning_triggers_an_immediate_retry(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization)
    run_jobs_until(day(2))  # attempt 1 made; attempt 2 due on day 3

    response = org.post(f"/v1/billing_accounts/{account.public_id}/payment_methods", {
        "type": "card", "brand": "mastercard", "last4": "5454", "exp_month": 1, "exp_year": 2031,
        "gateway_token": "tok_sandbox_success"})
    assert response.status_code == 201
    run_tasks(raise_failures=True)

    assert records(invoice, attempt=2) == [(2, "card", "succeeded")]
    record = RecoveryRecord.objects.get(invoice=invoice, attempt_number=2)
    assert record.payment.payment_method.public_id == response.json()["id"]
    assert record.attempted_at == day(2)
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    assert DunningInvoice.objects.get(invoice=invoice).status == "recovered"
    assert case_of(account).status == "recovered"
    assert Subscription.objects.get(pk=subscription.pk).status == "active"
    # The boleto of attempt 1 is no longer needed: canceled.
    assert Payment.objects.get(invoice=invoice, attempt_number=1, method="bank_slip").status == "canceled"
    run_jobs_until(day(20))
    assert RecoveryRecord.objects.filter(invoice=invoice).count() == 4  # nothing after the recovery


def test_a_new_method_after_the_retries_are_exhausted_still_retries(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization)
    configure(org.organization, max_retries=1)
    run_jobs_until(day(3))
    assert DunningInvoice.objects.get(invoice=invoice).status == "exhausted"

    add_card(account, "tok_sandbox_success", default=False)
    run_tasks(raise_failures=True)

    assert records(invoice, attempt=2) == [(2, "card", "succeeded")]
    assert case_of(account).status == "recovered"
    assert len(events(org.organization, "dunning.exhausted")) == 1


def test_a_canceled_subscription_stops_the_retries_of_its_invoices(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization)
    run_jobs_until(day(2))

    response = org.post(f"/v1/subscriptions/{subscription.public_id}/cancel", {"immediately": True})
    assert response.status_code == 200, response.content

    schedule = DunningInvoice.objects.get(invoice=invoice)
    assert (schedule.status, schedule.next_attempt_at) == ("canceled", None)
    run_jobs_until(day(20))
    assert sorted(attempts_by_day(invoice)) == [1]
    # The invoice is still unpaid: the account stays delinquent and is suspended after the grace period.
    assert Invoice.objects.get(pk=invoice.pk).status == "open"
    run_jobs_until(day(30, 3))
    assert BillingAccount.objects.get(pk=account.pk).status == "suspended"


def test_never_suspended_when_suspend_after_retries_is_false(org, clock):
    configure(org.organization, suspend_after_retries=False)
    account, subscription, invoice = failed_first_charge(org.organization)
    runs = run_jobs_until(day(60))
    assert BillingAccount.objects.get(pk=account.pk).status == "active"
    assert case_of(account).status == "open"
    assert not any(r.counts.get("suspended") for r in runs)


def test_an_account_without_cpf_skips_the_boleto_and_gets_a_pix(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization, document=None)
    run_jobs_until(day(1, 6))
    assert records(invoice, attempt=1) == [(1, "card", "failed"), (1, "bank_slip", "skipped"), (1, "pix", "issued")]
    skipped = RecoveryRecord.objects.get(invoice=invoice, method="bank_slip")
    assert skipped.decline_code == "no_document" and skipped.payment is None


def test_voiding_the_invoice_recovers_and_reactivates_a_suspended_account(org, clock):
    configure(org.organization, grace_period_days=1, max_retries=1)
    account, subscription, invoice = failed_first_charge(org.organization)
    run_jobs_until(day(2, 3))
    assert BillingAccount.objects.get(pk=account.pk).status == "suspended"

    response = org.post(f"/v1/invoices/{invoice.public_id}/void")
    assert response.status_code == 200, response.content

    assert BillingAccount.objects.get(pk=account.pk).status == "active"
    assert case_of(account).status == "recovered"
    assert DunningInvoice.objects.get(invoice=invoice).status == "canceled"
    # The void canceled the pending boleto's purpose: it is canceled at the provider by reconciliation.
    assert [e.type for e in events(org.organization, "billing_account.suspended", "billing_account.reactivated")] \
        == ["billing_account.suspended", "billing_account.reactivated"]


def test_a_second_overdue_invoice_keeps_the_account_delinquent_until_both_are_paid(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization)
    second = make_invoice(account, amount=2500, due_in_days=0)
    charging.charge_open_invoices()
    case = case_of(account)
    assert sorted(case.invoices.values_list("invoice__public_id", flat=True)) == sorted(
        [invoice.public_id, second.public_id])
    assert (case.overdue_invoice_count, case.overdue_amount) == (2, 12500)
    assert len(events(org.organization, "billing_account.delinquent")) == 1

    run_jobs_until(day(1, 6))
    pay_by_callback(Payment.objects.get(invoice=second, method="bank_slip", status="pending"))
    case.refresh_from_db()
    assert (case.status, case.overdue_invoice_count, case.overdue_amount) == ("open", 1, 10000)

    pay_by_callback(Payment.objects.get(invoice=invoice, method="bank_slip", status="pending"))
    case.refresh_from_db()
    assert case.status == "recovered"


def test_the_sweeps_are_idempotent_at_the_same_tick(org, clock):
    account, subscription, invoice = failed_first_charge(org.organization)
    clock.set(day(1, 6))
    first = run_job("payment-retry", as_of=day(1, 6))
    again = run_job("payment-retry", as_of=day(1, 6))
    assert first.counts["attempts"] == 1 and "attempts" not in again.counts
    assert len(records(invoice, attempt=1)) == 2


def test_a_persistently_failing_monthly_account_is_suspended_with_the_default_policy(org, clock):
    """Default config (retries after 1, 2, 3, 5, 7 days; grace 30 days): a 30-day month means the next
    invoice joins the case with fresh retries before the grace period ends. The grace still runs from
    the day the account became delinquent, and the first invoice's retries are exhausted and unpaid."""
    config = DunningConfig.objects.get(organization=org.organization)
    assert (config.grace_period_days, config.suspend_after_retries) == (30, True)
    start = datetime(2026, 4, 1, tzinfo=UTC)  # April has 30 days: May's invoice arrives on day 30
    clock.set(start)
    account, subscription = subscribed_account(org.organization)
    run_jobs_until(start + timedelta(hours=1, minutes=5))
    first = subscription.invoices.get()
    case = case_of(account)
    assert DunningInvoice.objects.get(invoice=first).status == "scheduled"

    run_jobs_until(datetime(2026, 4, 30, 23, tzinfo=UTC))
    assert DunningInvoice.objects.get(invoice=first).status == "exhausted"
    assert BillingAccount.objects.get(pk=account.pk).status == "active"  # still within the grace period

    run_jobs_until(datetime(2026, 5, 1, 1, 30, tzinfo=UTC))
    assert case.invoices.count() == 2  # May 1's invoice joined the case at 01:00 with fresh retries...
    preview = org.get(f"/v1/billing_accounts/{account.public_id}/dunning/preview").json()
    assert preview["suspension_at"] == "2026-05-01T02:00:00Z"  # ...and postpones nothing

    run_jobs_until(datetime(2026, 7, 1, 3, tzinfo=UTC))
    account.refresh_from_db()
    # The 02:00 check suspends the account.
    assert (account.status, account.suspended_at) == ("suspended", datetime(2026, 5, 1, 2, tzinfo=UTC))
    case.refresh_from_db()
    assert (case.status, case.opened_at.date()) == ("suspended", start.date())
    assert len(events(org.organization, "billing_account.suspended")) == 1
    # Suspended: June's and July's periods are not invoiced.
    assert subscription.invoices.count() == 2
