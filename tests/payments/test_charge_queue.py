"""The charge queue: every invoice.created of an invoice to charge is queued in its own transaction,
and the workers' charge drainers (charging.charge_queued) charge it once, whoever takes it."""

from datetime import timedelta

import pytest
from django.db import transaction

from cobrador.invoicing.models import Invoice
from cobrador.jobs.runner import run_job
from cobrador.payments import charging
from cobrador.payments.models import ChargeQueueEntry, Payment
from tests.billing.signup import create_plan, sign_up
from tests.concurrency import at_once
from tests.conftest import make_org


@pytest.fixture
def test_api(db):
    return make_org("Queue", "test")


@pytest.mark.django_db
def test_a_rolled_back_sign_up_queues_nothing(test_api, clock):
    plan = create_plan(test_api)
    with pytest.raises(RuntimeError), transaction.atomic():
        sign_up(test_api, plan)
        assert ChargeQueueEntry.objects.count() == 1
        raise RuntimeError("the caller's transaction fails")
    assert not ChargeQueueEntry.objects.exists() and not Invoice.objects.exists()
    assert charging.charge_queued() == 0


@pytest.mark.django_db
def test_a_queued_invoice_paid_meanwhile_is_not_charged_and_its_entry_goes(test_api, clock):
    plan = create_plan(test_api)
    subscription = sign_up(test_api, plan)
    assert charging.charge_open_invoices() == {"succeeded": 1}  # the safety net came first

    assert charging.charge_queued() == 1
    assert Payment.objects.count() == 1 and not ChargeQueueEntry.objects.exists()
    assert Invoice.objects.get(public_id=subscription["latest_invoice"]["id"]).status == "paid"


@pytest.mark.django_db
def test_a_failed_claim_leaves_the_entry_queued(test_api, clock, monkeypatch):
    plan = create_plan(test_api)
    sign_up(test_api, plan)

    def crash(invoice_ids, counts):
        raise RuntimeError("the worker dies before its claim commits")

    with monkeypatch.context() as patched:
        patched.setattr(charging, "_create_first_payments", crash)
        with pytest.raises(RuntimeError):
            charging.charge_queued()
    assert ChargeQueueEntry.objects.count() == 1 and not Payment.objects.exists()
    assert charging.charge_queued() == 1
    assert Payment.objects.get().status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_two_drainers_at_once_charge_each_queued_invoice_once(monkeypatch):
    api = make_org("Queue", "test")
    plan = create_plan(api, amount=2500)
    subscriptions = [sign_up(api, plan) for _ in range(12)]
    assert ChargeQueueEntry.objects.count() == 12
    monkeypatch.setattr(charging, "BATCH_SIZE", 3)  # several claims each, interleaved

    def drain() -> list[int]:
        taken = []
        while n := charging.charge_queued(max_batches=1):
            taken.append(n)
        return taken

    taken = [n for claims in at_once(drain, drain) for n in claims]
    assert sum(taken) == 12 and not ChargeQueueEntry.objects.exists()
    for subscription in subscriptions:
        invoice = Invoice.objects.get(public_id=subscription["latest_invoice"]["id"])
        assert invoice.status == "paid"
        assert Payment.objects.filter(invoice=invoice).count() == 1


@pytest.mark.django_db
def test_the_nightly_run_queues_its_invoices_in_entries_of_at_most_one_charge_batch(test_api, clock, monkeypatch):
    plan = create_plan(test_api)
    subscriptions = [sign_up(test_api, plan, first_invoice="next_run") for _ in range(5)]
    assert not ChargeQueueEntry.objects.exists()
    monkeypatch.setattr(charging, "BATCH_SIZE", 2)

    run_job("invoice-generation", as_of=clock.now() + timedelta(hours=13))
    assert sorted(len(ids) for ids in ChargeQueueEntry.objects.values_list("invoice_ids", flat=True)) == [1, 2, 2]
    assert charging.charge_queued() == 5
    assert Invoice.objects.filter(status="paid").count() == len(subscriptions)
