"""The dunning timeline end to end on the frozen clock: the scheduled jobs run tick by tick."""

from cobrador.callbacks.models import GatewayCallback
from cobrador.customers.models import BillingAccount
from cobrador.dunning.models import DunningInvoice
from cobrador.invoicing.models import Invoice
from cobrador.payments.models import Payment
from cobrador.subscriptions.models import Subscription
from tests.dunning.conftest import (
    attempts_by_day,
    case_of,
    day,
    events,
    failed_first_charge,
    pay_by_callback,
    records,
    run_jobs_until,
)

CARD_THEN_BOLETO = [("card", "failed"), ("bank_slip", "issued")]


def test_retries_suspension_and_reactivation_by_a_boleto_callback(org, clock):
    organization = org.organization
    account, subscription, invoice = failed_first_charge(organization)
    assert records(invoice) == [(0, "card", "failed")]
    assert case_of(account).status == "open"
    assert [e.type for e in events(organization, "billing_account.delinquent")] == ["billing_account.delinquent"]

    runs = run_jobs_until(day(30, 1))

    assert attempts_by_day(invoice) == {1: CARD_THEN_BOLETO, 3: CARD_THEN_BOLETO, 6: CARD_THEN_BOLETO,
                                        11: CARD_THEN_BOLETO, 18: CARD_THEN_BOLETO}
    retried = [e.data for e in events(organization, "dunning.retry_attempted")]
    assert [(d["attempt_number"], d["method"], d["outcome"]) for d in retried] == [
        (k, "bank_slip", "issued") for k in range(1, 6)]
    assert [d["next_retry_at"] for d in retried] == [
        day(3, 6).isoformat().replace("+00:00", "Z"), day(6, 6).isoformat().replace("+00:00", "Z"),
        day(11, 6).isoformat().replace("+00:00", "Z"), day(18, 6).isoformat().replace("+00:00", "Z"), None]
    assert len(events(organization, "dunning.exhausted")) == 1
    # Each attempt's event carries the boleto the customer is asked to pay.
    first_boleto = Payment.objects.get(invoice=invoice, method="bank_slip", attempt_number=1)
    assert retried[0]["document"]["payment"] == first_boleto.public_id
    assert retried[0]["document"]["boleto_line"] == first_boleto.boleto_line and first_boleto.boleto_line
    # Each newer boleto canceled the one before it.
    boletos = list(Payment.objects.filter(invoice=invoice, method="bank_slip").order_by("pk")
                   .values_list("attempt_number", "status"))
    assert boletos == [(1, "canceled"), (2, "canceled"), (3, "canceled"), (4, "canceled"), (5, "pending")]
    # Overdue the day after its due date: once.
    assert len(events(organization, "invoice.overdue")) == 1
    assert Subscription.objects.get(pk=subscription.pk).status == "past_due"
    # Not suspended yet: the grace period ends on day 30 at 01:05.
    assert BillingAccount.objects.get(pk=account.pk).status == "active"
    assert not [r for r in runs if r.job_name == "suspension-check" and r.counts.get("suspended")]

    run_jobs_until(day(30, 3))

    account.refresh_from_db()
    assert (account.status, account.suspended_at) == ("suspended", day(30, 2))
    assert invoice.public_id in account.suspension_reason
    case = case_of(account)
    assert (case.status, case.suspended_at, case.overdue_invoice_count, case.overdue_amount) == (
        "suspended", day(30, 2), 1, 10000)
    suspended = events(organization, "billing_account.suspended")
    assert len(suspended) == 1 and suspended[0].data["overdue_invoices"][0]["id"] == invoice.public_id

    # The new period starts on day 31: invoice generation skips the suspended account.
    runs = run_jobs_until(day(35, 12))
    generation = [r for r in runs if r.job_name == "invoice-generation"]
    assert generation[0].counts == {"skipped_suspended": 1}
    assert Invoice.objects.filter(subscription=subscription).count() == 1

    last_boleto = Payment.objects.get(invoice=invoice, method="bank_slip", status="pending")
    pay_by_callback(last_boleto)

    # Reactivated within the callback's processing, without any sweep.
    callback = GatewayCallback.objects.get()
    account.refresh_from_db()
    assert (account.status, account.suspended_at, account.suspension_reason) == ("active", None, "")
    case.refresh_from_db()
    assert (case.status, case.closed_at, case.overdue_invoice_count) == ("recovered", clock.now(), 0)
    reactivated = events(organization, "billing_account.reactivated")
    assert len(reactivated) == 1 and reactivated[0].created_at == callback.processed_at
    assert DunningInvoice.objects.get(invoice=invoice).status == "recovered"
    assert Subscription.objects.get(pk=subscription.pk).status == "active"
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"

    # Billing resumes from the current period (started on day 31 while suspended): one invoice for it.
    run_jobs_until(day(36, 1, 1), jobs=("invoice-generation",))
    periods = list(Invoice.objects.filter(subscription=subscription).order_by("period_start")
                   .values_list("period_start", flat=True))
    assert periods == [day(0), day(31)]
