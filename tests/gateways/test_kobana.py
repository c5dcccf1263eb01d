"""The Kobana adapter against the fake Kobana, over real HTTP."""

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cobrador.gateways.base import GatewayError
from cobrador.gateways.registry import gateway_for
from tests.gateways.conftest import charge_request


def test_boleto_goes_to_v1_in_decimal_reais_with_a_masked_cpf_and_bearer_auth(kobana, kobana_config):
    result = gateway_for(kobana_config).issue_boleto(charge_request("pay_b1", method="bank_slip", amount=4990))

    assert result.status == "pending" and result.provider_charge_id
    request = next(r for r in kobana.requests if r.method == "POST")
    assert request.path == "/v1/bank_billets"
    assert request.headers["authorization"] == f"Bearer {kobana.api_token}"
    assert request.headers["x-idempotency-key"] == "pay_b1-key"
    body = request.json()
    assert body["amount"] == 49.9 and body["expire_at"] == "2026-09-30"
    assert body["customer_cnpj_cpf"] == "311.422.058-90" and body["customer_zipcode"] == "04015020"
    assert body["external_id"] == "pay_b1"


def test_amounts_convert_exactly(kobana, kobana_config):
    gateway = gateway_for(kobana_config)
    for i, cents in enumerate([1, 10, 99, 100, 123456789]):
        gateway.issue_boleto(charge_request(f"pay_m{i}", method="bank_slip", amount=cents))
    amounts = [r.json()["amount"] for r in kobana.requests if r.method == "POST"]
    assert amounts == [0.01, 0.1, 0.99, 1.0, 1234567.89]


def test_boleto_registration_payment_and_fetch(kobana, kobana_config):
    gateway = gateway_for(kobana_config)
    issued = gateway.issue_boleto(charge_request("pay_b2", method="bank_slip"))
    kobana.register(issued.provider_charge_id)
    opened = gateway.fetch_charge(method="bank_slip", provider_charge_id=issued.provider_charge_id)
    assert opened.status == "pending" and len(opened.boleto_line) == 47 and len(opened.boleto_barcode) == 44

    kobana.pay(issued.provider_charge_id)
    paid = gateway.fetch_charge(method="bank_slip", provider_charge_id=issued.provider_charge_id)
    assert paid.status == "succeeded" and paid.amount_paid == 4990 and paid.paid_at is not None


@pytest.mark.parametrize("fault", ["timeout_after_charge", "500_after_charge"])
def test_lost_answer_after_issuing_is_unknown_and_found_by_reference(kobana, kobana_config, fault):
    gateway = gateway_for(kobana_config)
    request = charge_request("pay_b3", method="bank_slip")
    kobana.fail_next(fault)

    assert gateway.issue_boleto(request).status == "unknown"
    assert kobana.charges_for("pay_b3") == 1
    found = gateway.find_charge(method="bank_slip", reference="pay_b3", idempotency_key=request.idempotency_key)
    assert found.status == "pending" and found.provider_charge_id
    # Retrying with the same key never issues a second boleto (Kobana replays even a stored 500).
    gateway.issue_boleto(request)
    assert kobana.charges_for("pay_b3") == 1


def test_pix_goes_to_v2_wrapped_and_gets_its_code_on_registration(kobana, kobana_config):
    gateway = gateway_for(kobana_config)
    issued = gateway.issue_pix(charge_request("pay_p1", method="pix", amount=1500))

    assert issued.status == "pending" and issued.pix_copy_paste == ""  # emv is null at creation
    body = next(r for r in kobana.requests if r.method == "POST").json()
    assert body["amount"] == 15.0 and body["pix_account_uid"] == kobana.pix_account_uid
    assert body["payer"]["document_number"] == "311.422.058-90"
    assert body["expire_at"].endswith("-03:00")

    kobana.register(issued.provider_charge_id)
    fetched = gateway.fetch_charge(method="pix", provider_charge_id=issued.provider_charge_id)
    assert fetched.pix_copy_paste.startswith("000201") and fetched.status == "pending"


def test_cancel_pix_and_boleto(kobana, kobana_config):
    gateway = gateway_for(kobana_config)
    pix = gateway.issue_pix(charge_request("pay_p2", method="pix"))
    assert gateway.cancel_charge(method="pix", provider_charge_id=pix.provider_charge_id,
                                 idempotency_key="cancel-p2").status == "canceled"
    assert kobana.pixes[pix.provider_charge_id]["status"] == "canceled"

    boleto = gateway.issue_boleto(charge_request("pay_b4", method="bank_slip"))
    with pytest.raises(GatewayError, match="generating"):  # not registered yet: Kobana refuses
        gateway.cancel_charge(method="bank_slip", provider_charge_id=boleto.provider_charge_id,
                              idempotency_key="cancel-b4")
    kobana.register(boleto.provider_charge_id)
    assert gateway.cancel_charge(method="bank_slip", provider_charge_id=boleto.provider_charge_id,
                                 idempotency_key="cancel-b4b").status == "canceled"


def test_no_cards_and_no_refunds(kobana_config):
    gateway = gateway_for(kobana_config)
    with pytest.raises(GatewayError, match="cards"):
        gateway.charge_card(charge_request(card_token="tok"))
    with pytest.raises(GatewayError):
        gateway.refund(method="pix", provider_charge_id="x", amount=1, idempotency_key="r")


def test_bad_token_and_validation_errors_are_gateway_errors(kobana, kobana_config):
    kobana.fail_next("validation")
    with pytest.raises(GatewayError, match="customer_cnpj_cpf"):
        gateway_for(kobana_config).issue_boleto(charge_request("pay_b5", method="bank_slip"))
    kobana_config.credentials = {**kobana_config.credentials, "api_token": "wrong"}
    with pytest.raises(GatewayError, match="401"):
        gateway_for(kobana_config).issue_boleto(charge_request("pay_b6", method="bank_slip"))
    assert kobana.billets == {}


def test_callbacks_are_verified_in_constant_time_and_parsed(kobana, kobana_config, receiver):
    gateway = gateway_for(kobana_config)
    issued = gateway.issue_boleto(charge_request("pay_b7", method="bank_slip"))
    kobana.register(issued.provider_charge_id)
    kobana.pay(issued.provider_charge_id)
    kobana.send_callback(receiver.url, "bank_billet.paid", issued.provider_charge_id)
    received = receiver.wait_for(1)[0]

    assert gateway.verify_callback(headers=received.headers, body=received.body)
    assert not gateway.verify_callback(headers=received.headers, body=received.body + b" ")
    wrong = hmac.new(b"other", received.body, hashlib.sha256).hexdigest()
    assert not gateway.verify_callback(headers={**received.headers, "x-kobana-signature": f"sha256={wrong}"},
                                       body=received.body)

    event = gateway.parse_callback(headers=received.headers, body=received.body)
    assert event.event_id == received.headers["x-kobana-delivery-id"]
    assert (event.event_type, event.status, event.reference) == ("bank_billet.paid", "succeeded", "pay_b7")
    assert event.provider_charge_id == issued.provider_charge_id and event.amount_paid == 4990
    assert event.paid_at is not None


def test_without_a_delivery_id_the_event_id_is_a_stable_hash(kobana_config):
    body = json.dumps({"event_code": "pix.paid", "object": {"uid": "u1", "status": "paid", "paid_amount": 12.34,
                                                            "external_id": "pay_x"},
                       "changes": {"status": ["opened", "paid"]}}).encode()
    gateway = gateway_for(kobana_config)
    first = gateway.parse_callback(headers={}, body=body)
    assert first.event_id == gateway.parse_callback(headers={}, body=body).event_id
    assert (first.status, first.amount_paid, first.provider_charge_id) == ("succeeded", 1234, "u1")


def test_command_events_carry_the_resource_inside(kobana, kobana_config, receiver):
    gateway = gateway_for(kobana_config)
    pix = gateway.issue_pix(charge_request("pay_p3", method="pix"))
    kobana.register(pix.provider_charge_id)
    body = json.dumps({"event_code": "pix.register.confirmed",
                       "object": {"id": 5, "status": "confirmed", "operation": "register",
                                  "pix": kobana.find(pix.provider_charge_id)}}).encode()
    event = gateway.parse_callback(headers={"x-kobana-event": "pix.register.confirmed"}, body=body)
    assert event.provider_charge_id == pix.provider_charge_id and event.reference == "pay_p3"
    assert event.status == "pending" and event.raw["object"]["pix"]["qrcode"]["emv"].startswith("000201")
    ping = json.dumps({"ping": "pong", "event_code": "ping"}).encode()
    assert gateway.parse_callback(headers={"x-kobana-event": "ping"}, body=ping) is None


def test_callbacks_are_retried_only_on_500(kobana, receiver):
    from tests.fakes.receiver import Answer

    kobana.billets["1"] = {"id": 1, "status": "paid", "external_id": "x"}
    receiver.script(Answer(500), Answer(500), Answer(200))
    assert kobana.send_callback(receiver.url, "bank_billet.paid", "1") == [500, 500, 200]
    receiver.script(Answer(404))
    assert kobana.send_callback(receiver.url, "bank_billet.paid", "1") == [404]


def test_an_overdue_boleto_is_still_pending(kobana, kobana_config):
    gateway = gateway_for(kobana_config)
    boleto = gateway.issue_boleto(charge_request("pay_b8", method="bank_slip"))
    kobana.register(boleto.provider_charge_id)
    kobana.expire(boleto.provider_charge_id)
    assert gateway.fetch_charge(method="bank_slip", provider_charge_id=boleto.provider_charge_id).status == "pending"


@given(cents=st.integers(min_value=1, max_value=10**11))
def test_cents_to_reais_and_back_is_exact(cents):
    from cobrador.core.money import from_decimal
    from cobrador.gateways.kobana import _reais

    reais = _reais(cents, "BRL")
    assert from_decimal(json.loads(json.dumps(reais))) == cents
