"""Charging with real `cobrador worker` processes against the Pagar.me fake over HTTP: two workers
charging the same invoices at once, and a worker killed in the middle of a charge."""

from datetime import timedelta

import pytest
from django.db import transaction

from cobrador.core import clock
from cobrador.invoicing.models import Invoice
from cobrador.payments import reconciliation, tasks
from cobrador.payments.models import Payment
from tests.factories import make_org
from tests.fakes.pagarme import FakePagarme
from tests.gateways.conftest import make_config, use_fakes
from tests.payments.billing import add_card, make_account, make_invoice
from tests.processes import kill, output, start_worker, stop, wait_ready, wait_until, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def setup_org(fake, settings, *, timeout_seconds):
    organization = make_org("Workers", "test").organization
    use_fakes(settings, pagarme=fake)  # worker_env passes them on to the workers
    make_config(organization, "pagarme", ["card"], {"secret_key": fake.secret_key},
                {"timeout_seconds": timeout_seconds})
    return organization


def open_invoices(organization, n):
    invoices = []
    for i in range(n):
        account = make_account(organization, name=f"Customer {i}")
        add_card(account, "card_fake0001")
        invoices.append(make_invoice(account, amount=1000 + i))
    return invoices


def test_two_workers_charging_the_same_invoices_make_one_charge_each(settings):
    with FakePagarme(fault_delay=1.0) as fake:
        organization = setup_org(fake, settings, timeout_seconds=0.5)
        invoices = open_invoices(organization, 60)
        fake.fail_next("timeout_after_charge", 2)
        fake.fail_next("500_after_charge", 2)
        fake.fail_next("decline", 2)
        # Two charging tasks for the same invoices, taken by two workers at once.
        env = worker_env(COBRADOR_CHARGING_BATCH_SIZE="10", COBRADOR_CHARGING_CONCURRENCY="4")
        workers = [start_worker("--concurrency", "2", "--interval", "0.05", env=env) for _ in range(2)]
        try:
            for worker in workers:
                wait_ready(worker)
            with transaction.atomic():
                tasks.enqueue_charging()
                tasks.enqueue_charging()
            wait_until(lambda: Payment.objects.count() == 60 and not Payment.objects.filter(
                status="processing").exists(), timeout=60, interval=0.2, message="every invoice charged once")
        finally:
            for worker in workers:
                stop(worker)
        assert all(w.returncode == 0 for w in workers), [output(w)[-2000:] for w in workers]

        # The unknown outcomes are settled by asking, never by charging again.
        assert Payment.objects.filter(status="unknown").count() == 4
        counts = reconciliation.reconcile_due_payments(as_of=clock.now() + timedelta(minutes=5))
        assert counts == {"succeeded": 4}
        for invoice in invoices:
            payments = list(Payment.objects.filter(invoice=invoice))
            assert len(payments) == 1
            assert fake.charges_for(payments[0].public_id) == 1
        assert len(fake.charges) == 60
        assert Invoice.objects.filter(status="paid").count() == 58
        assert Payment.objects.filter(status="failed").count() == 2


def test_a_worker_killed_mid_charge_leaves_a_payment_reconciliation_settles_without_charging_again(settings):
    # The fake holds the answer for 60 s and the adapter waits 30 s: the worker is inside the call
    # when it is killed. The charge went through at the provider.
    with FakePagarme(fault_delay=60) as fake:
        organization = setup_org(fake, settings, timeout_seconds=30)
        invoice, = open_invoices(organization, 1)
        fake.fail_next("timeout_after_charge")
        env = worker_env(COBRADOR_TASK_LOCK_TIMEOUT="2")
        doomed = start_worker("--interval", "0.05", env=env)
        try:
            wait_ready(doomed)
            with transaction.atomic():
                tasks.enqueue_charging()
            wait_until(lambda: any(r.method == "POST" for r in fake.requests), timeout=30,
                       message="the worker to send the charge")
        finally:
            kill(doomed)
        payment = Payment.objects.get(invoice=invoice)
        assert payment.status == "processing"
        assert fake.charges_for(payment.public_id) == 1

        # The killed task is recovered by another worker and runs again: it must not charge again.
        survivor = start_worker("--interval", "0.05", env=env)
        try:
            from django_ox.models import OxTask

            wait_until(lambda: not OxTask.objects.exclude(status__in=["SUCCESSFUL", "FAILED"]).exists(),
                       timeout=60, interval=0.2, message="the killed task to be recovered and finish")
        finally:
            stop(survivor)
        assert Payment.objects.filter(invoice=invoice).count() == 1
        assert fake.charges_for(payment.public_id) == 1
        assert len([r for r in fake.requests if r.method == "POST"]) == 1

        # Reconciliation asks the provider (by our reference) and settles it.
        counts = reconciliation.reconcile_due_payments(as_of=clock.now() + timedelta(minutes=5))
        assert counts == {"succeeded": 1}
        payment.refresh_from_db()
        invoice.refresh_from_db()
        assert (payment.status, invoice.status) == ("succeeded", "paid")
        assert len(fake.charges) == 1
