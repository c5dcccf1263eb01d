"""Inbound callbacks through the sandbox provider: stored raw, verified, deduplicated, processed once."""

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django_ox.testing import run_tasks

from cobrador.callbacks.models import GatewayCallback
from cobrador.gateways.models import SandboxCharge
from cobrador.gateways.sandbox import build_callback, build_sandbox_payment_callback, sign
from cobrador.jobs.runner import run_job
from cobrador.payments import charging
from cobrador.payments.models import Payment
from tests.factories import make_org
from tests.payments.billing import add_method, event_types, make_account, make_invoice


@pytest.fixture
def org(db):
    return make_org("Payco", "test")


def post(url, headers, body, client=None):
    client = client or Client(enforce_csrf_checks=True)
    return client.generic("POST", urlsplit(url).path, data=body, content_type="application/json",
                          headers={k: v for k, v in headers.items() if k.lower() != "content-type"})


def issued(org, method="bank_slip", amount=10000):
    account = make_account(org.organization)
    add_method(account, method)
    invoice = make_invoice(account, amount=amount)
    charging.charge_open_invoices()
    return Payment.objects.get(invoice=invoice)


def test_a_boleto_paid_by_signed_callback_pays_the_invoice(org, clock):
    payment = issued(org, "bank_slip")
    assert payment.status == "pending"

    response = post(*build_sandbox_payment_callback(payment))

    assert response.status_code == 200
    callback = GatewayCallback.objects.get()
    assert response.json() == {"id": callback.public_id, "status": "received", "duplicate": False}
    assert (callback.status, callback.provider, callback.event_type) == ("received", "sandbox", "charge.paid")
    assert callback.headers["x-sandbox-signature"].startswith("sha256=")
    assert json.loads(bytes(callback.body))["type"] == "charge.paid"

    results = run_tasks(raise_failures=True)

    assert [r.return_value for r in results] == [{"processed": 1}]
    callback.refresh_from_db()
    payment.refresh_from_db()
    assert (callback.status, callback.attempts, callback.error) == ("processed", 1, "")
    assert {"payment": payment.public_id, "via": "callback charge.paid", "status": ["pending", "succeeded"]} in \
        callback.changes
    assert (payment.status, payment.invoice.status, payment.invoice.amount_due) == ("succeeded", "paid", 0)
    assert event_types(org.organization, "payment.") + event_types(org.organization, "invoice.") == [
        "payment.pending", "payment.succeeded", "invoice.paid"]


def test_a_pix_paid_by_signed_callback_pays_the_invoice(org, clock):
    payment = issued(org, "pix")

    post(*build_sandbox_payment_callback(payment))
    run_tasks(raise_failures=True)

    payment.refresh_from_db()
    assert (payment.status, payment.invoice.status) == ("succeeded", "paid")


def test_a_duplicate_answers_200_and_changes_nothing(org, clock):
    payment = issued(org)
    url, headers, body = build_sandbox_payment_callback(payment)
    post(url, headers, body)
    run_tasks(raise_failures=True)
    events_before = event_types(org.organization)

    again = post(url, headers, body)

    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert GatewayCallback.objects.count() == 1
    assert run_tasks() == []
    assert event_types(org.organization) == events_before


def test_a_bad_signature_is_401_stored_rejected_and_changes_nothing(org, clock):
    payment = issued(org)
    url, headers, body = build_sandbox_payment_callback(payment)
    headers["X-Sandbox-Signature"] = "sha256=" + "0" * 64

    response = post(url, headers, body)

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_signature"
    callback = GatewayCallback.objects.get()
    assert (callback.status, callback.event_id, callback.error) == ("rejected", "", "invalid or missing signature")
    assert bytes(callback.body) == body
    assert run_tasks() == []
    payment.refresh_from_db()
    assert payment.status == "pending"
    # No signature at all is the same.
    del headers["X-Sandbox-Signature"]
    assert post(url, headers, body).status_code == 401


def test_a_body_that_is_not_json_is_400_and_stored(org, clock):
    payment = issued(org)
    url, headers, _ = build_sandbox_payment_callback(payment)
    body = b"{not json"
    headers["X-Sandbox-Signature"] = "sha256=" + sign(payment.gateway.credentials["webhook_secret"], body)

    response = post(url, headers, body)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_json"
    callback = GatewayCallback.objects.get()
    assert (callback.status, bytes(callback.body)) == ("rejected", body)


def test_an_unknown_event_type_is_stored_ignored(org, clock):
    payment = issued(org)
    charge = SandboxCharge.objects.get(reference=payment.public_id)
    url, headers, body = build_callback(charge, "customer.updated")

    response = post(url, headers, body)

    assert response.status_code == 200 and response.json()["status"] == "ignored"
    callback = GatewayCallback.objects.get()
    assert (callback.status, callback.event_type) == ("ignored", "customer.updated")
    assert run_tasks() == []


def test_an_unknown_token_or_provider_is_404_and_stores_nothing(org, clock):
    payment = issued(org)
    url, headers, body = build_sandbox_payment_callback(payment)

    assert post(url.replace(payment.gateway.callback_token, "nope"), headers, body).status_code == 404
    assert post(url.replace("/sandbox/", "/kobana/"), headers, body).status_code == 404
    assert post(url.replace("/sandbox/", "/paypal/"), headers, body).status_code == 404
    assert not GatewayCallback.objects.exists()


def test_events_out_of_order_end_in_the_right_state(org, clock):
    """The provider's "paid" arrives, then a stale "canceled": the payment stays paid."""
    payment = issued(org)
    charge = SandboxCharge.objects.get(reference=payment.public_id)
    paid = build_sandbox_payment_callback(payment)
    stale = build_callback(charge, "charge.canceled")
    post(*paid)
    post(*stale)

    run_tasks(raise_failures=True)

    payment.refresh_from_db()
    assert (payment.status, payment.invoice.status) == ("succeeded", "paid")
    late = GatewayCallback.objects.get(event_type="charge.canceled")
    assert late.status == "processed"
    assert late.changes == [{"payment": payment.public_id, "via": "callback charge.canceled",
                             "ignored": "canceled after succeeded"}]


def test_a_callback_for_a_charge_we_do_not_know_fails_and_is_retried_with_backoff(org, clock):
    payment = issued(org)
    charge = SandboxCharge.objects.get(reference=payment.public_id)
    charge.reference, charge.provider_charge_id = "pay_elsewhere", "sbx_ch_elsewhere"
    charge.save()
    post(*build_callback(charge, "charge.paid"))

    run_tasks()

    callback = GatewayCallback.objects.get()
    assert (callback.status, callback.attempts) == ("failed", 1)
    assert "no payment for charge sbx_ch_elsewhere" in callback.error
    assert callback.next_attempt_at == clock.now() + timedelta(minutes=1)

    # The sweep reruns it once the backoff has passed, and not before.
    assert run_job("callback-retry").counts == {}
    clock.advance(timedelta(minutes=1))
    run = run_job("callback-retry")
    assert (run.items_failed, run.counts) == (1, {"failed": 1})
    callback.refresh_from_db()
    assert (callback.attempts, callback.next_attempt_at) == (2, clock.now() + timedelta(minutes=5))

    # The charge becomes known (e.g. the answer is recorded): the next retry processes it.
    payment.provider_charge_id = "sbx_ch_elsewhere"
    payment.save()
    clock.advance(timedelta(minutes=5))
    assert run_job("callback-retry").counts == {"processed": 1}
    payment.refresh_from_db()
    assert payment.status == "succeeded"


def test_a_failing_callback_gives_up_after_7_attempts(org, clock):
    payment = issued(org)
    charge = SandboxCharge.objects.get(reference=payment.public_id)
    charge.reference, charge.provider_charge_id = "pay_elsewhere", "sbx_ch_elsewhere"
    charge.save()
    post(*build_callback(charge, "charge.paid"))
    run_tasks()
    for _ in range(6):
        clock.set(GatewayCallback.objects.get().next_attempt_at)
        run_job("callback-retry")

    callback = GatewayCallback.objects.get()
    assert (callback.status, callback.attempts, callback.next_attempt_at) == ("failed", 7, None)
    clock.advance(timedelta(days=30))
    assert run_job("callback-retry").counts == {}


def test_rows_stuck_in_received_or_processing_are_taken_by_the_sweep(org, clock):
    payment = issued(org)
    post(*build_sandbox_payment_callback(payment))
    # The wake-up task is lost, and the row waits.
    from django_ox.models import OxTask

    OxTask.objects.all().delete()
    assert run_job("callback-retry").counts == {}
    clock.advance(timedelta(minutes=2))

    assert run_job("callback-retry").counts == {"processed": 1}
    payment.refresh_from_db()
    assert payment.status == "succeeded"


def test_a_worker_that_died_mid_batch_leaves_rows_the_sweep_takes_after_the_lease(org, clock):
    from cobrador.callbacks import processing

    payment = issued(org)
    post(*build_sandbox_payment_callback(payment))
    claimed = processing._claim(processing.Q(status="received"), now=clock.now())
    assert claimed and GatewayCallback.objects.get().status == "processing"
    # ...the worker dies here.
    clock.advance(timedelta(minutes=4))
    assert run_job("callback-retry").counts == {}
    clock.advance(timedelta(minutes=1))

    assert run_job("callback-retry").counts == {"processed": 1}
    callback = GatewayCallback.objects.get()
    assert (callback.status, callback.attempts) == ("processed", 2)


def test_a_deactivated_configuration_stops_taking_callbacks_within_the_cache_time(org, clock, monkeypatch):
    from cobrador.callbacks import receiving

    payment = issued(org)
    url, headers, body = build_sandbox_payment_callback(payment)
    seconds = [1000.0]
    monkeypatch.setattr(receiving.time, "monotonic", lambda: seconds[0])
    assert post(url, headers, body).status_code == 200  # the configuration is now kept for CONFIG_SECONDS
    payment.gateway.__class__.objects.filter(pk=payment.gateway_id).update(active=False)
    assert post(url, headers, body).status_code == 200  # a duplicate, answered from the kept configuration
    seconds[0] += receiving.CONFIG_SECONDS
    assert post(url, headers, body).status_code == 404
    assert GatewayCallback.objects.count() == 1
