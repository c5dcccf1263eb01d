"""Charging open invoices through the sandbox gateway: outcomes, events, and never two charges."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django_ox.models import OxTask
from django_ox.testing import run_tasks

from cobrador.customers.models import CreditGrant
from cobrador.gateways.models import SandboxCharge
from cobrador.invoicing.models import Invoice
from cobrador.jobs.runner import run_job
from cobrador.payments import charging, services, tasks
from cobrador.payments.errors import PaymentInFlight
from cobrador.payments.models import Payment
from tests.factories import make_org
from tests.payments.billing import add_card, add_method, event_types, make_account, make_invoice


@pytest.fixture
def org(db):
    return make_org("Payco", "test").organization


def _started_card_charge(org, amount=10000):
    """An account with a card and an open invoice whose charge is written `processing`, not yet sent."""
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account, amount=amount)
    with transaction.atomic():
        return account, invoice, services.start_charge(organization=org, invoice=invoice)


def _charges_of(invoice):
    return SandboxCharge.objects.filter(reference__in=Payment.objects.filter(invoice=invoice).values("public_id"))


def test_a_card_charge_settles_at_once(org, clock):
    account = make_account(org)
    card = add_card(account)
    invoice = make_invoice(account, amount=4990)

    counts = charging.charge_open_invoices()

    assert counts == {"succeeded": 1}
    payment = Payment.objects.get(invoice=invoice)
    assert (payment.status, payment.method, payment.provider, payment.amount, payment.amount_paid) == (
        "succeeded", "card", "sandbox", 4990, 4990)
    assert payment.payment_method == card and payment.source == "invoice"
    assert payment.idempotency_key == payment.public_id and payment.provider_charge_id
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due, invoice.paid_at) == (
        "paid", 4990, 0, clock.now())
    assert event_types(org, "payment.") + event_types(org, "invoice.") == ["payment.succeeded", "invoice.paid"]
    assert _charges_of(invoice).count() == 1


@pytest.mark.parametrize(("token", "code", "decline_class"), [
    ("tok_sandbox_decline", "generic_decline", "soft"),
    ("tok_sandbox_stolen", "stolen_card", "hard"),
])
def test_a_declined_card_fails_the_payment_and_leaves_the_invoice_open(org, clock, token, code, decline_class):
    account = make_account(org)
    add_card(account, token)
    invoice = make_invoice(account)

    assert charging.charge_open_invoices() == {"failed": 1}

    payment = Payment.objects.get(invoice=invoice)
    assert (payment.status, payment.failure_code, payment.decline_class) == ("failed", code, decline_class)
    assert payment.failure_message and payment.failed_at == clock.now()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == ("open", 10000)
    assert event_types(org, "payment.") + event_types(org, "invoice.") == ["payment.failed",
                                                                           "invoice.payment_failed"]


def test_a_refused_request_is_a_soft_failure(org, clock):
    account = make_account(org)
    add_card(account, "tok_unknown_to_the_sandbox")
    invoice = make_invoice(account)

    charging.charge_open_invoices()

    payment = Payment.objects.get(invoice=invoice)
    assert (payment.status, payment.failure_code, payment.decline_class) == ("failed", "provider_refused", "soft")


@pytest.mark.parametrize("token", ["tok_sandbox_timeout", "tok_sandbox_error_500"])
def test_an_unknown_outcome_blocks_new_charges_until_reconciliation_finds_the_charge(org, clock, token):
    account = make_account(org)
    add_card(account, token)
    invoice = make_invoice(account)

    assert charging.charge_open_invoices() == {"unknown": 1}
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == "unknown"
    assert payment.next_reconcile_at == clock.now() + timedelta(minutes=5)
    assert event_types(org, "payment.") == ["payment.unknown"]
    # payments/sink.py answered payment.unknown: a reconcile_payments task asks the provider in 5 minutes.
    asking = OxTask.objects.get(task_path="cobrador.payments.tasks.reconcile_payments")
    assert asking.run_after == payment.next_reconcile_at

    # Nothing charges the invoice again while the outcome is unknown.
    assert charging.charge_open_invoices() == {}
    with pytest.raises(PaymentInFlight):
        charging.charge_invoice(organization=org, invoice=invoice)
    # Not due yet: reconciliation leaves it alone.
    clock.advance(timedelta(minutes=4))
    assert run_job("payment-reconciliation").counts == {}

    clock.advance(timedelta(minutes=1))
    run = run_job("payment-reconciliation")

    assert run.status == "succeeded" and run.counts == {"succeeded": 1}
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert (payment.status, invoice.status) == ("succeeded", "paid")
    assert event_types(org, "payment.") == ["payment.unknown", "payment.succeeded"]
    assert _charges_of(invoice).count() == 1


def test_reconciliation_asks_5_minutes_then_1_hour_then_daily_while_the_provider_is_unreachable(org, clock,
                                                                                                 settings):
    account = make_account(org)
    add_card(account, "tok_sandbox_timeout")
    invoice = make_invoice(account)
    charging.charge_open_invoices()
    payment = Payment.objects.get(invoice=invoice)
    # The provider stops answering: point the configuration at a gateway that cannot be reached.
    config = payment.gateway
    config.provider = "pagarme"
    config.credentials = {"secret_key": "sk_test_x"}
    config.options = {"timeout_seconds": 0.5}
    config.save()
    settings.PAGARME_BASE_URL = "http://127.0.0.1:9"

    asked_at = []
    for _ in range(4):
        payment.refresh_from_db()
        clock.set(payment.next_reconcile_at)
        asked_at.append(clock.now())
        assert run_job("payment-reconciliation").counts == {"still_unknown": 1}
    gaps = [b - a for a, b in zip(asked_at, asked_at[1:], strict=False)]
    assert gaps == [timedelta(hours=1), timedelta(days=1), timedelta(days=1)]
    payment.refresh_from_db()
    assert (payment.status, payment.reconcile_attempts) == ("unknown", 4)


def test_a_worker_that_died_before_sending_leaves_a_payment_that_fails_without_a_charge(org, clock):
    _, invoice, payment = _started_card_charge(org)
    # ...the worker dies here: nothing was sent.

    assert charging.charge_open_invoices() == {}
    with pytest.raises(PaymentInFlight):
        charging.charge_invoice(organization=org, invoice=invoice)
    clock.advance(timedelta(minutes=5))
    assert run_job("payment-reconciliation").counts == {"not_found": 1}
    payment.refresh_from_db()
    assert payment.status == "unknown"
    clock.advance(timedelta(hours=1))
    assert run_job("payment-reconciliation").counts == {"not_found_failed": 1}

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.decline_class) == ("failed", "charge_not_found", "soft")
    assert _charges_of(invoice).count() == 0
    assert event_types(org, "payment.") + event_types(org, "invoice.") == [
        "payment.unknown", "payment.failed", "invoice.payment_failed"]


def test_a_worker_that_died_after_sending_leaves_a_payment_reconciliation_settles(org, clock):
    _, invoice, payment = _started_card_charge(org)
    charging.send_charge(payment)
    # ...the worker dies before recording the answer.
    assert Payment.objects.get(pk=payment.pk).status == "processing"

    clock.advance(timedelta(minutes=5))
    assert run_job("payment-reconciliation").counts == {"succeeded": 1}

    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert (payment.status, invoice.status) == ("succeeded", "paid")
    assert _charges_of(invoice).count() == 1


def test_a_boleto_is_issued_pending_with_its_documents(org, clock):
    account = make_account(org)
    add_method(account, "bank_slip")
    invoice = make_invoice(account, due_in_days=10)

    assert charging.charge_open_invoices() == {"pending": 1}

    payment = Payment.objects.get(invoice=invoice)
    assert (payment.status, payment.method) == ("pending", "bank_slip")
    assert len(payment.boleto_barcode) == 44 and len(payment.boleto_line) == 47 and payment.boleto_url
    assert payment.expires_at.date() >= invoice.due_date
    invoice.refresh_from_db()
    assert invoice.status == "open"
    assert event_types(org, "payment.") == ["payment.pending"]
    # A pending boleto is not in flight: it does not block a manual charge with another method.
    card = add_card(account, default=False)
    manual = charging.charge_invoice(organization=org, invoice=invoice, payment_method=card)
    assert manual.status == "succeeded"


def test_a_pix_is_issued_pending_with_its_copy_and_paste_code(org, clock):
    account = make_account(org)
    add_method(account, "pix")
    invoice = make_invoice(account, due_in_days=0)

    charging.charge_open_invoices()

    payment = Payment.objects.get(invoice=invoice)
    assert (payment.status, payment.method) == ("pending", "pix")
    assert payment.pix_copy_paste.startswith("000201") and payment.pix_qr_code_url
    assert payment.expires_at >= clock.now() + timedelta(days=1)


def test_only_open_never_charged_invoices_with_a_default_method_are_charged(org, clock):
    with_card = make_account(org, name="A")
    add_card(with_card)
    without_method = make_account(org, name="B")
    to_charge = make_invoice(with_card)
    make_invoice(with_card, status="void")
    make_invoice(with_card, amount=0).__class__.objects.filter(amount_due=0).update(status="paid")
    make_invoice(without_method)

    assert charging.charge_open_invoices() == {"succeeded": 1}
    assert list(Payment.objects.values_list("invoice", flat=True)) == [to_charge.pk]
    assert charging.charge_open_invoices() == {}


def test_many_invoices_in_small_batches(org, clock):
    invoices = []
    for n in range(7):
        account = make_account(org, name=f"Account {n}")
        add_card(account, "tok_sandbox_decline" if n % 3 == 0 else "tok_sandbox_success")
        invoices.append(make_invoice(account, amount=1000 + n))

    counts = charging.charge_open_invoices(batch_size=3)

    assert counts == {"succeeded": 4, "failed": 3}
    assert Payment.objects.count() == 7 and SandboxCharge.objects.count() == 7
    assert set(Invoice.objects.filter(status="paid").values_list("amount_paid", flat=True)) == {
        1001, 1002, 1004, 1005}


def test_enqueue_charging_runs_one_task_that_charges_every_open_invoice(org, clock):
    for n in range(3):
        account = make_account(org, name=f"Account {n}")
        add_card(account)
        make_invoice(account)
    with transaction.atomic():
        tasks.enqueue_charging()

    results = run_tasks(raise_failures=True)

    assert len(results) == 1 and results[0].return_value == {"succeeded": 3}
    assert not Invoice.objects.filter(status="open").exists()


def test_the_invoice_charging_job_is_a_safety_net(org, clock):
    account = make_account(org)
    add_card(account)
    make_invoice(account)

    run = run_job("invoice-charging")

    assert (run.status, run.items_done, run.counts) == ("succeeded", 1, {"succeeded": 1})


def test_a_live_organization_without_a_gateway_is_not_charged(db, clock):
    live = make_org("Live", "live").organization
    account = make_account(live)
    add_card(account, "card_live")
    make_invoice(account)

    assert charging.charge_open_invoices() == {"no_gateway": 1}
    assert not Payment.objects.exists()


def test_money_beyond_the_amount_due_becomes_credit(org, clock):
    account, invoice, payment = _started_card_charge(org, amount=5000)
    result = charging.send_charge(payment)
    result.amount_paid = 7000  # the provider took more than asked (e.g. a boleto paid with a higher value)

    charging.record_results([(payment.pk, result)])

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", 5000)
    grant = CreditGrant.objects.get(account=account)
    assert (grant.amount, grant.remaining) == (2000, 2000)
    assert event_types(org, "payment.") == ["payment.succeeded", "payment.overpaid"]


def test_an_answer_recorded_on_the_callers_instances_sees_what_changed_on_the_rows_meanwhile(org, clock):
    """record_results(known=...) reuses the batch's own instances: the state they hold may be stale (here
    the same answer was recorded meanwhile), and what is on the locked rows must win."""
    account, invoice, payment = _started_card_charge(org, amount=5000)
    result = charging.send_charge(payment)
    charging.record_results([(payment.pk, result)])
    assert (payment.status, payment.invoice.status) == ("processing", "open")  # the instance is stale

    charging.record_results([(payment.pk, result)], known={payment.pk: payment})

    assert (payment.status, payment.invoice.status, payment.invoice.amount_due) == ("succeeded", "paid", 0)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", 5000)
    assert not CreditGrant.objects.filter(account=account).exists()
    assert event_types(org, "payment.") + event_types(org, "invoice.") == ["payment.succeeded", "invoice.paid"]


def test_the_database_refuses_a_second_payment_in_flight_for_an_invoice(org, clock):
    """Whoever writes it, with or without the service's checks: the partial unique index says no."""
    _, _, first = _started_card_charge(org)
    second = Payment.objects.get(pk=first.pk)
    second.pk, second.public_id, second.idempotency_key = None, "pay_second", "pay_second"
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save(force_insert=True)
    second.status = "failed"  # one that is not in flight is fine
    second.save(force_insert=True)
