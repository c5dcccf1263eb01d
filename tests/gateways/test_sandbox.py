"""The built-in sandbox: deterministic card outcomes, idempotency in its own table, signed pay callbacks."""

import json
from datetime import date

import pytest
from django.db import transaction

from cobrador.core import clock as clock_module
from cobrador.customers.services import create_billing_account
from cobrador.gateways.base import GatewayError
from cobrador.gateways.models import SandboxCharge
from cobrador.gateways.registry import config_for_method, gateway_for
from cobrador.gateways.sandbox import (
    TEST_CARD_TOKENS,
    SandboxPayFailed,
    build_sandbox_payment_callback,
    send_sandbox_payment_callback,
)
from cobrador.invoicing.models import Invoice
from cobrador.payments.models import Payment
from tests.gateways.conftest import charge_request
from tests.processes import run, worker_env


@pytest.fixture
def sandbox(test_org):
    return gateway_for(config_for_method(test_org, "card"))


@pytest.mark.parametrize("token, status, code, decline_class", [
    ("tok_sandbox_success", "succeeded", "", ""),
    ("tok_sandbox_decline", "failed", "generic_decline", "soft"),
    ("tok_sandbox_insufficient_funds", "failed", "insufficient_funds", "soft"),
    ("tok_sandbox_stolen", "failed", "stolen_card", "hard"),
    ("tok_sandbox_timeout", "unknown", "timeout", ""),
    ("tok_sandbox_error_500", "unknown", "provider_error", ""),
])
def test_card_tokens_decide_the_outcome(sandbox, token, status, code, decline_class):
    result = sandbox.charge_card(charge_request(card_token=token))
    assert (result.status, result.failure_code, result.decline_class) == (status, code, decline_class)
    assert (result.amount_paid == 4990) == (status == "succeeded")


@pytest.mark.parametrize("token", ["tok_sandbox_timeout", "tok_sandbox_error_500"])
def test_an_unknown_outcome_went_through_once_and_reconciles(sandbox, token):
    request = charge_request(card_token=token)
    assert sandbox.charge_card(request).status == "unknown"

    found = sandbox.find_charge(method="card", reference=request.reference, idempotency_key=request.idempotency_key)
    assert found.status == "succeeded" and found.amount_paid == 4990
    retried = sandbox.charge_card(request)
    assert retried.status == "succeeded" and retried.provider_charge_id == found.provider_charge_id
    assert SandboxCharge.objects.filter(reference=request.reference).count() == 1


def test_the_same_idempotency_key_never_charges_twice(sandbox):
    first = sandbox.charge_card(charge_request(card_token="tok_sandbox_success"))
    again = sandbox.charge_card(charge_request(card_token="tok_sandbox_success"))
    assert first.provider_charge_id == again.provider_charge_id
    assert SandboxCharge.objects.count() == 1
    assert sandbox.find_charge(method="card", reference="nope", idempotency_key="nope") is None


def test_unknown_tokens_are_refused_before_anything_happens(sandbox):
    with pytest.raises(GatewayError, match="tok_sandbox_success"):
        sandbox.charge_card(charge_request(card_token="tok_visa"))
    assert not SandboxCharge.objects.exists()


def test_boleto_and_pix_are_pending_with_well_formed_documents(sandbox):
    boleto = sandbox.issue_boleto(charge_request("pay_b", method="bank_slip", due_date=date(2026, 9, 30)))
    assert boleto.status == "pending" and len(boleto.boleto_barcode) == 44 and len(boleto.boleto_line) == 47
    assert boleto.expires_at.isoformat() == "2026-10-01T02:59:59+00:00"  # end of the due day in Brazil
    pix = sandbox.issue_pix(charge_request("pay_p", method="pix"))
    assert pix.status == "pending" and pix.pix_copy_paste.startswith("000201")
    assert "54" + "0549.90" in pix.pix_copy_paste  # the amount, in reais


def test_cancel_refund_and_fetch(sandbox):
    pix = sandbox.issue_pix(charge_request("pay_p", method="pix"))
    assert sandbox.cancel_charge(method="pix", provider_charge_id=pix.provider_charge_id,
                                 idempotency_key="c1").status == "canceled"
    assert sandbox.fetch_charge(method="pix", provider_charge_id=pix.provider_charge_id).status == "canceled"

    card = sandbox.charge_card(charge_request("pay_c", card_token="tok_sandbox_success"))
    assert sandbox.refund(method="card", provider_charge_id=card.provider_charge_id, amount=990,
                          idempotency_key="r1").status == "refunded"
    sandbox.refund(method="card", provider_charge_id=card.provider_charge_id, amount=990, idempotency_key="r1")
    charge = SandboxCharge.objects.get(provider_charge_id=card.provider_charge_id)
    assert (charge.amount_refunded, charge.status) == (990, "succeeded")  # refunded once
    with pytest.raises(GatewayError, match="exceeds"):
        sandbox.refund(method="card", provider_charge_id=card.provider_charge_id, amount=4001, idempotency_key="r2")
    sandbox.refund(method="card", provider_charge_id=card.provider_charge_id, amount=4000, idempotency_key="r3")
    assert sandbox.fetch_charge(method="card", provider_charge_id=card.provider_charge_id).status == "refunded"
    with pytest.raises(GatewayError):
        sandbox.fetch_charge(method="card", provider_charge_id="sbx_ch_nope")


def test_every_documented_token_is_in_the_openapi_description(api):
    description = api.client.get("/v1/openapi.json").json()["paths"]["/v1/gateways"]["post"]["description"]
    for token in TEST_CARD_TOKENS:
        assert f"`{token}`" in description


def _sandbox_payment(organization, method="bank_slip"):
    config = config_for_method(organization, method)
    with transaction.atomic():
        account = create_billing_account(organization=organization, name="Maria", email="maria@example.com")
        now = clock_module.now()
        invoice = Invoice.objects.create(organization=organization, account=account, number=1, subtotal=4990,
                                         total=4990, amount_due=4990, due_date=date(2026, 9, 30), created_at=now)
        payment = Payment.objects.create(organization=organization, invoice=invoice, account=account, method=method,
                                         provider="sandbox", gateway=config, amount=4990,
                                         idempotency_key="pay-key-1", status="pending", created_at=now,
                                         updated_at=now)
    gateway = gateway_for(config)
    issue = gateway.issue_boleto if method == "bank_slip" else gateway.issue_pix
    result = issue(charge_request(payment.public_id, method=method, key=payment.idempotency_key))
    Payment.objects.filter(pk=payment.pk).update(provider_charge_id=result.provider_charge_id)
    payment.refresh_from_db()
    return payment, gateway


def test_paying_sends_a_signed_callback_the_adapter_verifies(test_org, receiver, settings):
    settings.PUBLIC_URL = receiver.url.removesuffix("/hooks")
    payment, gateway = _sandbox_payment(test_org)

    response = send_sandbox_payment_callback(payment)
    assert response.status_code == 200
    received = receiver.wait_for(1)[0]
    assert received.path == f"/v1/callbacks/sandbox/{payment.gateway.callback_token}"
    assert received.headers["x-sandbox-signature"].startswith("sha256=")
    assert gateway.verify_callback(headers=received.headers, body=received.body)
    assert not gateway.verify_callback(headers=received.headers, body=received.body.replace(b"4990", b"4991"))

    event = gateway.parse_callback(headers=received.headers, body=received.body)
    assert (event.event_type, event.status, event.reference) == ("charge.paid", "succeeded", payment.public_id)
    assert event.provider_charge_id == payment.provider_charge_id and event.amount_paid == 4990
    assert gateway.fetch_charge(method="bank_slip", provider_charge_id=payment.provider_charge_id).status == "succeeded"

    # Paying again resends the same event (same id), so the receiver dedupes it.
    url, headers, body = build_sandbox_payment_callback(payment)
    assert json.loads(body)["id"] == event.event_id


def test_only_pending_sandbox_charges_can_be_paid(test_org):
    payment, gateway = _sandbox_payment(test_org, "pix")
    gateway.cancel_charge(method="pix", provider_charge_id=payment.provider_charge_id, idempotency_key="c")
    with pytest.raises(SandboxPayFailed, match="canceled"):
        build_sandbox_payment_callback(payment)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_cobrador_sandbox_pay_command(receiver):
    with transaction.atomic():
        from cobrador.organizations.services import create_organization
        organization = create_organization(name="Cli", mode="test")
    payment, gateway = _sandbox_payment(organization, "pix")
    env = worker_env(COBRADOR_PUBLIC_URL=receiver.url.removesuffix("/hooks"))

    result = run("sandbox", "pay", payment.public_id, env=env)
    assert result.returncode == 0, result.stderr
    assert f"paid {payment.public_id}" in result.stdout
    received = receiver.wait_for(1)[0]
    assert gateway.verify_callback(headers=received.headers, body=received.body)

    missing = run("sandbox", "pay", "pay_nope", env=env)
    assert missing.returncode == 2 and "no payment 'pay_nope'" in missing.stderr


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_make_one_charge_and_one_fallback_config():
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from cobrador.gateways.models import GatewayConfig
    from cobrador.organizations.services import create_organization

    with transaction.atomic():
        organization = create_organization(name="Race", mode="test")

    def charge(_):
        try:
            gateway = gateway_for(config_for_method(organization, "card"))
            return gateway.charge_card(charge_request("pay_race", card_token="tok_sandbox_success")).provider_charge_id
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(charge, range(6)))
    assert len(set(ids)) == 1
    assert SandboxCharge.objects.filter(reference="pay_race").count() == 1
    assert GatewayConfig.objects.filter(organization=organization, is_fallback=True).count() == 1
