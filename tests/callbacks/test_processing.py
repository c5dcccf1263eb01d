"""Processing in slices: one bad callback fails alone, the rest of its slice is applied."""

import hashlib
import hmac
import json

import pytest
from django_ox.models import OxTask
from django_ox.testing import run_tasks

from cobrador.callbacks import processing, receiving
from cobrador.callbacks.models import GatewayCallback
from cobrador.payments.models import Payment
from tests.factories import make_org
from tests.gateways.conftest import make_config
from tests.payments.billing import add_method, make_account, make_invoice

SECRET = "kobana-webhook-secret"


@pytest.fixture
def kobana_org(db, settings):
    settings.KOBANA_BASE_URL = "http://127.0.0.1:9"  # nothing listens: these tests only receive callbacks
    organization = make_org("Payco", "test").organization
    config = make_config(organization, "kobana", ["bank_slip"], {"api_token": "t", "webhook_secret": SECRET,
                                                                 "pix_account_uid": "u"})
    return organization, config


def pending_boleto(organization, config, n):
    """A pending Kobana boleto payment, written as the charge step would have left it."""
    from cobrador.core import clock
    from cobrador.payments import services

    account = make_account(organization, name=f"Customer {n}")
    method = add_method(account, "bank_slip")
    invoice = make_invoice(account, amount=34990)
    payment = services.new_payment(invoice=invoice, payment_method=method, config=config, source="invoice",
                                   attempt_number=0, now=clock.now())
    payment.status, payment.provider_charge_id = "pending", str(84512300 + n)
    payment.save()
    return payment


def deliver(config, payment, paid_amount=349.9, delivery_id=None):
    body = json.dumps({"event_code": "bank_billet.paid", "object": {
        "id": int(payment.provider_charge_id), "status": "paid", "amount": 349.9, "paid_amount": paid_amount,
        "paid_at": "2026-03-01", "external_id": payment.public_id},
        "changes": {"status": ["opened", "paid"]}}).encode()
    headers = {"x-kobana-event": "bank_billet.paid", "x-kobana-delivery-id": delivery_id or payment.public_id,
               "x-kobana-signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    return receiving.receive_callback(provider="kobana", token=config.callback_token, headers=headers, body=body)


def test_one_broken_callback_fails_alone_and_the_rest_of_its_slice_is_applied(kobana_org, clock):
    organization, config = kobana_org
    good_before, bad, good_after = (pending_boleto(organization, config, n) for n in range(3))
    deliver(config, good_before)
    # Signed and well-formed, but its amount does not fit any database column.
    deliver(config, bad, paid_amount=1e20)
    deliver(config, good_after)

    processed = processing.process_received()

    assert processed.counts == {"processed": 2, "failed": 1}
    statuses = {c.event_id: (c.status, c.attempts) for c in GatewayCallback.objects.all()}
    assert statuses == {good_before.public_id: ("processed", 1), bad.public_id: ("failed", 1),
                        good_after.public_id: ("processed", 1)}
    failed = GatewayCallback.objects.get(event_id=bad.public_id)
    assert failed.error and failed.next_attempt_at is not None
    assert processed.retry_at == failed.next_attempt_at  # the task enqueues the retry for then
    assert dict(Payment.objects.values_list("public_id", "status")) == {
        good_before.public_id: "succeeded", bad.public_id: "pending", good_after.public_id: "succeeded"}


def test_two_callbacks_of_one_payment_in_one_slice(kobana_org, clock):
    organization, config = kobana_org
    payment = pending_boleto(organization, config, 0)
    deliver(config, payment, delivery_id="first")
    deliver(config, payment, delivery_id="second")

    assert processing.process_received().counts == {"processed": 2}

    payment.refresh_from_db()
    assert (payment.status, payment.invoice.status, payment.invoice.amount_paid) == ("succeeded", "paid", 34990)
    first, second = GatewayCallback.objects.order_by("pk")
    assert first.changes[0]["status"] == ["pending", "succeeded"]
    assert second.changes == [{"payment": payment.public_id, "via": "callback bank_billet.paid",
                               "ignored": "succeeded after succeeded"}]


def test_a_big_backlog_is_processed_in_slices(kobana_org, clock):
    organization, config = kobana_org
    payments = [pending_boleto(organization, config, n) for n in range(processing.FIRST_SLICE * 8 + 3)]
    for payment in payments:
        deliver(config, payment)

    assert processing.process_received().counts == {"processed": len(payments)}
    assert set(Payment.objects.values_list("status", flat=True)) == {"succeeded"}


def test_the_task_enqueues_the_retry_of_a_failed_callback_for_when_it_is_due(kobana_org, clock):
    organization, config = kobana_org
    payment = pending_boleto(organization, config, 0)
    payment.provider_charge_id, payment.public_id = "999", "pay_unknown"  # not saved: a charge we do not know
    deliver(config, payment, delivery_id="nobody")

    run_tasks(raise_failures=True)

    failed = GatewayCallback.objects.get(event_id="nobody")
    assert failed.status == "failed" and failed.next_attempt_at is not None
    retry = OxTask.objects.get(task_path="cobrador.callbacks.tasks.retry_failed_callbacks")
    assert retry.run_after == failed.next_attempt_at
