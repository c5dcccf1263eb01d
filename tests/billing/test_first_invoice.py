"""The first invoice at sign-up, charged right after the request, with no scheduled job running."""

from datetime import timedelta

from cobrador.dunning.models import DunningInvoice
from cobrador.invoicing.models import Invoice
from cobrador.jobs.models import JobRun
from cobrador.jobs.runner import run_job
from cobrador.payments.charging import charge_queued
from cobrador.payments.models import Payment
from cobrador.subscriptions.models import Subscription
from cobrador.webhooks.delivery import deliver_due
from tests.billing.signup import create_plan, sign_up
from tests.payments.billing import event_types
from tests.webhooks.conftest import register


def test_a_sign_up_with_a_working_card_is_invoiced_in_the_request_and_paid_right_after(test_api, receiver, clock):
    endpoint = register(test_api, receiver.url)
    receiver.secrets.append(endpoint["secret"])
    plan = create_plan(test_api, amount=4990)

    subscription = sign_up(test_api, plan)

    # The 201 carries the first period's invoice, open: its charge starts once the request commits.
    latest = subscription["latest_invoice"]
    assert subscription["status"] == "active"
    assert (latest["status"], latest["total"], latest["amount_due"]) == ("open", 4990, 4990)
    invoice = Invoice.objects.get(public_id=latest["id"])
    assert (invoice.kind, invoice.period_start, invoice.period_end) == (
        "period", clock.now(), clock.now().replace(month=4))

    # The charge drainer takes the queued invoice: no scheduled job is involved.
    charge_queued()
    deliver_due()
    assert not JobRun.objects.exists()
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    payment = Payment.objects.get(invoice=invoice)
    assert (payment.status, payment.amount, payment.source) == ("succeeded", 4990, "invoice")
    received = [r.json["type"] for r in receiver.wait_for(6)]
    assert {"subscription.created", "invoice.created", "payment.succeeded", "invoice.paid"} <= set(received)
    assert all(r.verified_with == [endpoint["secret"]] for r in receiver.received)
    body = test_api.get(f"/v1/subscriptions/{subscription['id']}").json()
    assert body["latest_invoice"] == {**latest, "status": "paid", "amount_due": 0}


def test_a_declined_first_charge_leaves_the_invoice_open_in_dunning_and_the_subscription_active(test_api, clock):
    plan = create_plan(test_api)
    subscription = sign_up(test_api, plan, token="tok_sandbox_decline")

    charge_queued()

    invoice = Invoice.objects.get(public_id=subscription["latest_invoice"]["id"])
    assert (invoice.status, invoice.amount_due) == ("open", 10000)
    assert Payment.objects.get(invoice=invoice).status == "failed"
    assert DunningInvoice.objects.filter(invoice=invoice, status="scheduled").exists()
    assert "invoice.payment_failed" in event_types(test_api.organization, "invoice.")
    assert Subscription.objects.get(public_id=subscription["id"]).status == "active"
    # Overdue the next day: past_due like any invoice in dunning (documented on the subscription).
    run_job("payment-retry", as_of=clock.now() + timedelta(days=1, hours=1))
    assert Subscription.objects.get(public_id=subscription["id"]).status == "past_due"


def test_the_charge_uses_the_subscriptions_payment_method_rather_than_the_accounts_default(test_api, clock):
    plan = create_plan(test_api)
    account = test_api.post("/v1/billing_accounts", {"name": "Ana", "email": "ana@example.test"}).json()
    cards = [test_api.post(f"/v1/billing_accounts/{account['id']}/payment_methods", {
        "type": "card", "brand": "visa", "last4": last4, "exp_month": 12, "exp_year": 2040,
        "gateway_token": token}).json() for last4, token in (("0002", "tok_sandbox_decline"),
                                                             ("4242", "tok_sandbox_success"))]
    assert cards[0]["is_default"] and not cards[1]["is_default"]
    response = test_api.post("/v1/subscriptions", {"account": account["id"], "plan": plan["id"],
                                                   "payment_method": cards[1]["id"]})
    charge_queued()
    payment = Payment.objects.get(invoice__public_id=response.json()["latest_invoice"]["id"])
    assert (payment.payment_method.public_id, payment.status) == (cards[1]["id"], "succeeded")


def test_next_run_a_trial_and_a_future_start_wait_for_the_nightly_run(test_api, clock):
    plan = create_plan(test_api)
    later = sign_up(test_api, plan, first_invoice="next_run")
    trial = sign_up(test_api, plan, trial_days=14)
    future = sign_up(test_api, plan, start=(clock.now() + timedelta(days=3)).isoformat())
    assert [s["latest_invoice"] for s in (later, trial, future)] == [None, None, None]
    assert not Invoice.objects.exists()
    assert charge_queued() == 0

    run = run_job("invoice-generation", as_of=clock.now() + timedelta(hours=13))
    assert run.counts["invoices_created"] == 2  # next_run's first period, the trial's zero invoice
    response = test_api.post("/v1/subscriptions", {"account": later["account"], "plan": plan["id"],
                                                   "first_invoice": "tomorrow"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "first_invoice"
