"""The payments API: listing, charging an invoice now, refunds, and tenancy."""

from datetime import timedelta

import pytest
from django.db import transaction

from cobrador.gateways.models import SandboxCharge
from cobrador.jobs.runner import run_job
from cobrador.payments import charging, services
from cobrador.payments.models import Payment, PaymentRefund
from tests.factories import make_org
from tests.payments.billing import add_card, add_method, event_types, make_account, make_invoice


@pytest.fixture
def org(db):
    return make_org("Payco", "test")


@pytest.fixture
def other(db):
    return make_org("Globex", "test")


def paid_payment(org, amount=10000):
    account = make_account(org.organization)
    add_card(account)
    invoice = make_invoice(account, amount=amount)
    charging.charge_open_invoices()
    return Payment.objects.get(invoice=invoice)


def test_pay_an_invoice_now_with_the_default_method(org, clock):
    account = make_account(org.organization)
    card = add_card(account)
    invoice = make_invoice(account, amount=2500)

    response = org.post(f"/v1/invoices/{invoice.public_id}/pay")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["object"], body["status"], body["invoice"], body["account"], body["payment_method"]) == (
        "payment", "succeeded", invoice.public_id, account.public_id, card.public_id)
    assert (body["amount"], body["amount_paid"], body["source"], body["method"]) == (2500, 2500, "manual", "card")
    assert org.get(f"/v1/invoices/{invoice.public_id}").json()["status"] == "paid"
    # Paid: nothing left to charge.
    again = org.post(f"/v1/invoices/{invoice.public_id}/pay")
    assert again.status_code == 409 and again.json()["error"]["field"] == "invoice"
    assert again.json()["error"]["type"] == "invoice_not_payable"


def test_pay_with_a_given_method_issues_a_boleto(org, clock):
    account = make_account(org.organization)
    add_card(account)
    boleto = add_method(account, "bank_slip", default=False)
    invoice = make_invoice(account)

    body = org.post(f"/v1/invoices/{invoice.public_id}/pay", {"payment_method": boleto.public_id}).json()

    assert (body["status"], body["method"], body["payment_method"]) == ("pending", "bank_slip", boleto.public_id)
    assert body["boleto_url"] and len(body["boleto_line"]) == 47 and body["expires_at"]


def test_pay_is_409_while_a_payment_of_the_invoice_is_in_flight(org, clock):
    account = make_account(org.organization)
    add_card(account)
    invoice = make_invoice(account)
    with transaction.atomic():
        services.start_charge(organization=org.organization, invoice=invoice)

    response = org.post(f"/v1/invoices/{invoice.public_id}/pay")

    assert response.status_code == 409
    assert response.json()["error"]["type"] == "payment_in_flight"
    assert "in flight" in response.json()["error"]["message"]
    assert Payment.objects.count() == 1 and SandboxCharge.objects.count() == 0


def test_pay_rejects_bad_input_and_changes_nothing(org, other, clock):
    account = make_account(org.organization)
    invoice = make_invoice(account)
    other_account = make_account(other.organization)
    other_card = add_card(other_account)

    no_method = org.post(f"/v1/invoices/{invoice.public_id}/pay")
    assert no_method.status_code == 422 and no_method.json()["error"]["field"] == "payment_method"
    foreign = org.post(f"/v1/invoices/{invoice.public_id}/pay", {"payment_method": other_card.public_id})
    assert foreign.status_code == 422 and foreign.json()["error"]["field"] == "payment_method"
    unknown_field = org.post(f"/v1/invoices/{invoice.public_id}/pay", {"card": "x"})
    assert unknown_field.status_code == 422 and unknown_field.json()["error"]["field"] == "card"
    wrong_type = org.post(f"/v1/invoices/{invoice.public_id}/pay", {"payment_method": 5})
    assert wrong_type.status_code == 422 and wrong_type.json()["error"]["field"] == "payment_method"
    assert not Payment.objects.exists()


def test_another_organizations_invoices_and_payments_are_404(org, other, clock):
    payment = paid_payment(org)
    account = make_account(org.organization)
    add_card(account)
    invoice = make_invoice(account)

    assert other.get(f"/v1/payments/{payment.public_id}").status_code == 404
    assert other.post(f"/v1/payments/{payment.public_id}/refund", {}).status_code == 404
    assert other.post(f"/v1/invoices/{invoice.public_id}/pay").status_code == 404
    assert other.get("/v1/payments").json()["data"] == []
    assert other.get("/v1/payments", params={"invoice": payment.invoice.public_id}).json()["data"] == []
    assert Payment.objects.filter(invoice=invoice).count() == 0
    payment.refresh_from_db()
    assert payment.amount_refunded == 0


def test_list_and_filter_payments(org, clock):
    first = paid_payment(org)
    account = make_account(org.organization, name="Declined")
    add_card(account, "tok_sandbox_decline")
    make_invoice(account)
    charging.charge_open_invoices()
    failed = Payment.objects.get(status="failed")

    everything = org.get("/v1/payments").json()
    assert [p["id"] for p in everything["data"]] == [failed.public_id, first.public_id]
    assert [p["id"] for p in org.get("/v1/payments", params={"status": "failed"}).json()["data"]] == [
        failed.public_id]
    assert [p["id"] for p in org.get("/v1/payments", params={"invoice": first.invoice.public_id}).json()[
        "data"]] == [first.public_id]
    assert [p["id"] for p in org.get("/v1/payments", params={"account": account.public_id}).json()["data"]] == [
        failed.public_id]
    page = org.get("/v1/payments", params={"limit": 1}).json()
    assert page["has_more"] and len(page["data"]) == 1
    assert org.get("/v1/payments", params={"status": "lost"}).status_code == 422
    detail = org.get(f"/v1/payments/{failed.public_id}").json()
    assert (detail["failure_code"], detail["decline_class"]) == ("generic_decline", "soft")


def test_a_full_refund(org, clock):
    payment = paid_payment(org, amount=3000)

    response = org.post(f"/v1/payments/{payment.public_id}/refund", {"reason": "customer asked"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["amount_refunded"]) == ("refunded", 3000)
    assert [(r["amount"], r["status"], r["reason"]) for r in body["refunds"]] == [
        (3000, "succeeded", "customer asked")]
    charge = SandboxCharge.objects.get(reference=payment.public_id)
    assert (charge.status, charge.amount_refunded) == ("refunded", 3000)
    assert event_types(org.organization, "payment.refunded") == ["payment.refunded"]
    # Nothing is left to refund.
    assert org.post(f"/v1/payments/{payment.public_id}/refund", {}).status_code == 409


def test_partial_refunds_add_up(org, clock):
    payment = paid_payment(org, amount=3000)

    first = org.post(f"/v1/payments/{payment.public_id}/refund", {"amount": 1000}).json()
    assert (first["status"], first["amount_refunded"]) == ("succeeded", 1000)
    too_much = org.post(f"/v1/payments/{payment.public_id}/refund", {"amount": 2001})
    assert too_much.status_code == 422 and too_much.json()["error"]["field"] == "amount"
    rest = org.post(f"/v1/payments/{payment.public_id}/refund", {}).json()

    assert (rest["status"], rest["amount_refunded"]) == ("refunded", 3000)
    assert [r["amount"] for r in rest["refunds"]] == [1000, 2000]
    assert SandboxCharge.objects.get(reference=payment.public_id).amount_refunded == 3000
    assert event_types(org.organization, "payment.refunded") == ["payment.refunded"] * 2


def test_refund_rejects_bad_input(org, clock):
    payment = paid_payment(org)

    for body, field in [({"amount": 0}, "amount"), ({"amount": "10"}, "amount"), ({"amount": 10001}, "amount"),
                        ({"amonut": 5}, "amonut")]:
        response = org.post(f"/v1/payments/{payment.public_id}/refund", body)
        assert response.status_code == 422 and response.json()["error"]["field"] == field, body
    assert not PaymentRefund.objects.exists()


def test_only_a_succeeded_payment_can_be_refunded(org, clock):
    account = make_account(org.organization)
    add_method(account, "pix")
    invoice = make_invoice(account)
    charging.charge_open_invoices()
    pending = Payment.objects.get(invoice=invoice)

    response = org.post(f"/v1/payments/{pending.public_id}/refund", {})

    assert response.status_code == 409
    assert response.json()["error"]["type"] == "payment_not_refundable"
    assert not PaymentRefund.objects.exists()


def test_a_refund_whose_answer_is_lost_is_sent_again_with_the_same_key(org, clock):
    payment = paid_payment(org, amount=3000)
    with transaction.atomic():
        refund = services.start_refund(organization=org.organization, payment=payment, amount=1200)
    # ...the worker dies before calling the provider.
    assert org.post(f"/v1/payments/{payment.public_id}/refund", {"amount": 1801}).status_code == 422

    clock.advance(timedelta(minutes=5))
    run = run_job("payment-reconciliation")

    assert run.counts == {"refunds_succeeded": 1}
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert (refund.status, payment.amount_refunded, payment.status) == ("succeeded", 1200, "succeeded")
    assert SandboxCharge.objects.get(reference=payment.public_id).amount_refunded == 1200
    # Asking again changes nothing at the provider (same idempotency key).
    charging.send_refund(refund)
    assert SandboxCharge.objects.get(reference=payment.public_id).amount_refunded == 1200
