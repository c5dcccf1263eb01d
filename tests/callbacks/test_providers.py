"""Boleto and PIX issued through the Pagar.me and Kobana fakes over HTTP, then paid by the providers'
signed callbacks POSTed to a live cobrador server; duplicates, bad signatures and concurrency."""

import threading
from datetime import timedelta

import httpx
import pytest
from django_ox.testing import run_tasks

from cobrador.callbacks.models import GatewayCallback
from cobrador.customers.models import CreditGrant
from cobrador.payments import charging
from cobrador.payments.models import Payment
from tests.factories import make_org
from tests.gateways.conftest import make_config
from tests.payments.billing import add_method, event_types, make_account, make_invoice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def org(transactional_db):
    return make_org("Payco", "test").organization


@pytest.fixture
def pagarme_config(org, pagarme):
    return make_config(org, "pagarme", ["card", "bank_slip", "pix"], {"secret_key": pagarme.secret_key},
                       {"timeout_seconds": 0.5})


@pytest.fixture
def kobana_config(org, kobana):
    return make_config(org, "kobana", ["bank_slip", "pix"],
                       {"api_token": kobana.api_token, "webhook_secret": kobana.webhook_secret,
                        "pix_account_uid": kobana.pix_account_uid},
                       {"timeout_seconds": 0.5})


def callback_url(live_server, config) -> str:
    return f"{live_server.url}/v1/callbacks/{config.provider}/{config.callback_token}"


def issue(org, method, amount=10000):
    account = make_account(org)
    add_method(account, method)
    invoice = make_invoice(account, amount=amount)
    charging.charge_open_invoices()
    return Payment.objects.get(invoice=invoice)


@pytest.mark.parametrize("method", ["bank_slip", "pix"])
def test_pagarme_boleto_and_pix_are_issued_then_paid_by_signed_callback(org, pagarme, pagarme_config, live_server,
                                                                        method, clock):
    payment = issue(org, method)
    assert (payment.status, payment.provider) == ("pending", "pagarme")
    if method == "pix":
        assert payment.pix_copy_paste.startswith("000201") and payment.pix_qr_code_url
    else:
        assert payment.boleto_url and len(payment.boleto_line) == 47
    pagarme.pay(payment.provider_charge_id)

    assert pagarme.send_callback(callback_url(live_server, pagarme_config), "charge.paid",
                                 payment.provider_charge_id) == [200]
    run_tasks(raise_failures=True)

    payment.refresh_from_db()
    assert (payment.status, payment.amount_paid, payment.invoice.status) == ("succeeded", 10000, "paid")
    assert GatewayCallback.objects.get().status == "processed"
    assert event_types(org, "invoice.") == ["invoice.paid"]
    assert pagarme.charges_for(payment.public_id) == 1


@pytest.mark.parametrize("method", ["bank_slip", "pix"])
def test_kobana_boleto_and_pix_are_issued_then_paid_by_signed_callback(org, kobana, kobana_config, live_server,
                                                                       method, clock):
    payment = issue(org, method)
    assert (payment.status, payment.provider) == ("pending", "kobana")
    url = callback_url(live_server, kobana_config)
    if method == "pix":
        # Registered at the bank later: the EMV code comes with the registration callback.
        assert payment.pix_copy_paste == ""
        kobana.register(payment.provider_charge_id)
        assert kobana.send_callback(url, "pix.register.confirmed", payment.provider_charge_id) == [200]
        run_tasks(raise_failures=True)
        payment.refresh_from_db()
        assert payment.status == "pending" and payment.pix_copy_paste.startswith("000201")
    kobana.pay(payment.provider_charge_id)

    event = "pix.paid" if method == "pix" else "bank_billet.paid"
    assert kobana.send_callback(url, event, payment.provider_charge_id) == [200]
    run_tasks(raise_failures=True)

    payment.refresh_from_db()
    assert (payment.status, payment.amount_paid, payment.invoice.status) == ("succeeded", 10000, "paid")
    assert kobana.charges_for(payment.public_id) == 1


def test_pagarme_bad_signature_is_401_stored_rejected_and_changes_nothing(org, pagarme, pagarme_config,
                                                                         live_server, clock):
    payment = issue(org, "pix")
    pagarme.pay(payment.provider_charge_id)
    pagarme.webhook_max_attempts = 1
    url = callback_url(live_server, pagarme_config)

    other_body = pagarme.signature_header(b'{"type": "charge.paid"}')  # a real key, over another body
    assert pagarme.send_callback(url, "charge.paid", payment.provider_charge_id, signature=other_body) == [401]
    unknown_kid = other_body.replace(pagarme.current_kid, "kid_unknown")
    assert pagarme.send_callback(url, "charge.paid", payment.provider_charge_id, signature=unknown_kid) == [401]
    assert pagarme.send_callback(url, "charge.paid", payment.provider_charge_id, sign=False) == [401]

    assert list(GatewayCallback.objects.values_list("status", flat=True)) == ["rejected"] * 3
    assert run_tasks() == []
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_a_key_rotated_at_the_provider_is_fetched_again(org, pagarme, pagarme_config, live_server, clock):
    payment = issue(org, "pix")
    pagarme.pay(payment.provider_charge_id)
    url = callback_url(live_server, pagarme_config)
    pagarme.send_callback(url, "order.created", payment.provider_charge_id)  # caches the JWKS
    pagarme.rotate_key()

    assert pagarme.send_callback(url, "charge.paid", payment.provider_charge_id) == [200]


def test_kobana_bad_signature_and_malformed_json(org, kobana, kobana_config, live_server, clock):
    payment = issue(org, "bank_slip")
    url = callback_url(live_server, kobana_config)
    kobana.webhook_max_retries = 0

    assert kobana.send_callback(url, "bank_billet.paid", payment.provider_charge_id, secret="wrong") == [401]
    import hashlib
    import hmac

    body = b'{"event_code": "bank_billet.paid", "object": '
    signature = hmac.new(kobana.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    response = httpx.post(url, content=body, headers={"X-Kobana-Signature": f"sha256={signature}",
                                                      "Content-Type": "application/json"})
    assert response.status_code == 400

    rows = list(GatewayCallback.objects.order_by("pk").values_list("status", "error"))
    assert rows == [("rejected", "invalid or missing signature"), ("rejected", "the body is not valid JSON")]
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_unknown_kobana_event_is_ignored(org, kobana, kobana_config, live_server, clock):
    payment = issue(org, "bank_slip")
    url = callback_url(live_server, kobana_config)

    assert kobana.send_callback(url, "charge.payment.notified", payment.provider_charge_id) == [200]

    callback = GatewayCallback.objects.get()
    assert (callback.status, callback.event_type) == ("ignored", "charge.payment.notified")


def test_the_same_callback_delivered_three_times_at_once_changes_state_once(org, kobana, kobana_config, live_server,
                                                                             clock):
    payment = issue(org, "bank_slip")
    kobana.pay(payment.provider_charge_id)
    url = callback_url(live_server, kobana_config)
    barrier = threading.Barrier(3)
    statuses = []

    def deliver():
        barrier.wait()
        statuses.extend(kobana.send_callback(url, "bank_billet.paid", payment.provider_charge_id,
                                             delivery_id="4f7c1c3e-5d0b-4d59-9a57-000000000001"))

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run_tasks(raise_failures=True)

    assert statuses == [200, 200, 200]
    assert GatewayCallback.objects.count() == 1
    payment.refresh_from_db()
    assert (payment.status, payment.invoice.status) == ("succeeded", "paid")
    assert event_types(org, "payment.succeeded") == ["payment.succeeded"]
    assert event_types(org, "invoice.paid") == ["invoice.paid"]


def test_paid_before_pending_ends_paid(org, pagarme, pagarme_config, live_server, clock):
    payment = issue(org, "pix")
    url = callback_url(live_server, pagarme_config)
    pagarme.pay(payment.provider_charge_id)
    pagarme.send_callback(url, "charge.paid", payment.provider_charge_id)
    run_tasks(raise_failures=True)
    # The older "pending" notice arrives late.
    with pagarme.lock:
        pagarme.charges[payment.provider_charge_id]["status"] = "pending"
    pagarme.send_callback(url, "charge.pending", payment.provider_charge_id)
    run_tasks(raise_failures=True)

    payment.refresh_from_db()
    assert (payment.status, payment.invoice.status) == ("succeeded", "paid")


def test_paying_one_document_cancels_the_others(org, pagarme, pagarme_config, live_server, clock):
    account = make_account(org)
    boleto = add_method(account, "bank_slip")
    pix = add_method(account, "pix", default=False)
    invoice = make_invoice(account)
    charging.charge_open_invoices()
    by_boleto = Payment.objects.get(invoice=invoice)
    by_pix = charging.charge_invoice(organization=org, invoice=invoice, payment_method=pix)
    assert (by_boleto.status, by_pix.status, by_boleto.payment_method) == ("pending", "pending", boleto)

    pagarme.pay(by_pix.provider_charge_id)
    pagarme.send_callback(callback_url(live_server, pagarme_config), "charge.paid", by_pix.provider_charge_id)
    run_tasks(raise_failures=True)

    by_boleto.refresh_from_db()
    assert by_boleto.status == "canceled"
    assert pagarme.charges[by_boleto.provider_charge_id]["status"] == "canceled"
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", 10000)
    assert not CreditGrant.objects.exists()


def test_two_documents_paid_anyway_make_the_excess_account_credit(org, kobana, kobana_config, live_server, clock):
    account = make_account(org)
    add_method(account, "bank_slip")
    pix = add_method(account, "pix", default=False)
    invoice = make_invoice(account, amount=7000)
    charging.charge_open_invoices()
    by_boleto = Payment.objects.get(invoice=invoice)
    by_pix = charging.charge_invoice(organization=org, invoice=invoice, payment_method=pix)
    kobana.pay(by_boleto.provider_charge_id)
    kobana.pay(by_pix.provider_charge_id)
    url = callback_url(live_server, kobana_config)
    # Both notices arrive before either is processed.
    kobana.send_callback(url, "bank_billet.paid", by_boleto.provider_charge_id)
    kobana.send_callback(url, "pix.paid", by_pix.provider_charge_id)

    run_tasks(raise_failures=True)

    by_boleto.refresh_from_db()
    by_pix.refresh_from_db()
    invoice.refresh_from_db()
    assert (by_boleto.status, by_pix.status, invoice.status, invoice.amount_paid) == (
        "succeeded", "succeeded", "paid", 7000)
    grant = CreditGrant.objects.get(account=account)
    assert (grant.amount, grant.remaining) == (7000, 7000)
    assert event_types(org, "payment.overpaid") == ["payment.overpaid"]
    overpaid = [c for c in GatewayCallback.objects.order_by("pk") if any("overpaid" in ch for ch in c.changes)]
    assert len(overpaid) == 1


def test_a_provider_that_retries_on_a_failure_gets_one_row(org, kobana, kobana_config, live_server, clock):
    """Kobana resends on a 500 with a new delivery id; the fallback key (event, object, changes) would
    dedupe a resend without an id, and a delivery id that stays the same is deduplicated by it."""
    payment = issue(org, "bank_slip")
    kobana.pay(payment.provider_charge_id)
    url = callback_url(live_server, kobana_config)
    for _ in range(2):
        kobana.send_callback(url, "bank_billet.paid", payment.provider_charge_id,
                             delivery_id="4f7c1c3e-5d0b-4d59-9a57-000000000002")

    assert GatewayCallback.objects.count() == 1
    run_tasks(raise_failures=True)
    clock.advance(timedelta(minutes=1))
    payment.refresh_from_db()
    assert payment.status == "succeeded"
