"""The Pagar.me adapter against the fake Pagar.me, over real HTTP."""

import base64
import json

import pytest

from cobrador.gateways.base import GatewayError
from cobrador.gateways.registry import gateway_for
from tests.gateways.conftest import charge_request

CARD = "cus_abc123:card_def456"


def test_card_success_sends_a_closed_order_in_cents_with_basic_auth_and_idempotency_key(pagarme, pagarme_config):
    result = gateway_for(pagarme_config).charge_card(charge_request(card_token=CARD))

    assert result.status == "succeeded"
    assert result.amount_paid == 4990 and result.paid_at is not None
    assert result.provider_charge_id.startswith("ch_") and result.provider_order_id.startswith("or_")
    request = next(r for r in pagarme.requests if r.method == "POST")
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{pagarme.secret_key}:".encode()).decode()
    assert request.headers["idempotency-key"] == "pay_0001-key"
    body = request.json()
    assert body["closed"] is True and body["code"] == "pay_0001"
    assert body["items"][0]["amount"] == 4990
    assert body["customer_id"] == "cus_abc123"
    assert body["payments"][0]["credit_card"]["card_id"] == "card_def456"


@pytest.mark.parametrize("fault, code, decline_class", [
    ("decline", "generic_decline", "soft"),
    ("insufficient_funds", "insufficient_funds", "soft"),
    ("hard_decline", "stolen_card", "hard"),
    ("antifraud", "fraud_suspected", "hard"),
])
def test_declines_read_the_body_status_and_classify_the_decline(pagarme, pagarme_config, fault, code, decline_class):
    pagarme.fail_next(fault)
    result = gateway_for(pagarme_config).charge_card(charge_request(card_token=CARD))

    assert result.status == "failed"  # the HTTP answer was a 200
    assert (result.failure_code, result.decline_class) == (code, decline_class)
    assert result.provider_charge_id and result.amount_paid == 0


@pytest.mark.parametrize("fault", ["timeout_after_charge", "500_after_charge"])
def test_lost_answer_after_charging_is_unknown_and_reconciles_to_the_one_charge(pagarme, pagarme_config, fault):
    gateway = gateway_for(pagarme_config)
    request = charge_request(card_token=CARD)
    pagarme.fail_next(fault)

    result = gateway.charge_card(request)

    assert result.status == "unknown" and result.provider_charge_id == ""
    assert pagarme.charges_for("pay_0001") == 1  # it did go through
    found = gateway.find_charge(method="card", reference="pay_0001", idempotency_key=request.idempotency_key)
    assert found.status == "succeeded" and found.amount_paid == 4990
    # A retry with the same idempotency key replays the charge instead of making a second one.
    retried = gateway.charge_card(request)
    assert retried.status == "succeeded" and retried.provider_charge_id == found.provider_charge_id
    assert pagarme.charges_for("pay_0001") == 1


def test_a_stored_500_is_replayed_when_the_provider_keeps_errors(pagarme, pagarme_config):
    pagarme.replay_errors = True
    gateway = gateway_for(pagarme_config)
    request = charge_request(card_token=CARD)
    pagarme.fail_next("500_after_charge")
    assert gateway.charge_card(request).status == "unknown"
    assert gateway.charge_card(request).status == "unknown"
    assert pagarme.charges_for("pay_0001") == 1


def test_failures_before_anything_happened_are_gateway_errors(pagarme, pagarme_config):
    gateway = gateway_for(pagarme_config)
    pagarme.fail_next("validation")
    with pytest.raises(GatewayError, match="422"):
        gateway.charge_card(charge_request(card_token=CARD))
    with pytest.raises(GatewayError, match="token"):
        gateway.charge_card(charge_request(card_token="4111111111111111"))
    assert pagarme.charges == {}


def test_a_timeout_before_charging_is_unknown_and_finds_nothing(pagarme, pagarme_config):
    gateway = gateway_for(pagarme_config)
    pagarme.fail_next("timeout")
    assert gateway.charge_card(charge_request(card_token=CARD)).status == "unknown"
    assert gateway.find_charge(method="card", reference="pay_0001", idempotency_key="pay_0001-key") is None


def test_wrong_secret_key_is_refused(pagarme, pagarme_config):
    pagarme_config.credentials = {"secret_key": "sk_test_wrong"}
    with pytest.raises(GatewayError, match="401"):
        gateway_for(pagarme_config).charge_card(charge_request(card_token=CARD))
    assert pagarme.charges == {}


def test_unreachable_provider_is_a_gateway_error(pagarme, pagarme_config, settings):
    settings.PAGARME_BASE_URL = "http://127.0.0.1:9/core/v5"
    with pytest.raises(GatewayError, match="connect"):
        gateway_for(pagarme_config).charge_card(charge_request(card_token=CARD))


def test_boleto_is_pending_with_its_documents_then_paid(pagarme, pagarme_config):
    gateway = gateway_for(pagarme_config)
    result = gateway.issue_boleto(charge_request("pay_b1", method="bank_slip"))

    assert result.status == "pending"
    assert result.boleto_url and len(result.boleto_line) == 47
    body = next(r for r in pagarme.requests if r.method == "POST").json()
    assert body["payments"][0]["boleto"]["due_at"].startswith("2026-09-30")
    assert body["customer"]["document"] == "31142205890"

    pagarme.pay(result.provider_charge_id)
    fetched = gateway.fetch_charge(method="bank_slip", provider_charge_id=result.provider_charge_id)
    assert fetched.status == "succeeded" and fetched.amount_paid == 4990


def test_pix_is_pending_with_its_copy_paste_code(pagarme, pagarme_config):
    result = gateway_for(pagarme_config).issue_pix(charge_request("pay_p1", method="pix"))
    assert result.status == "pending"
    assert result.pix_copy_paste.startswith("000201") and result.pix_qr_code_url
    assert result.expires_at is not None


def test_cancel_a_pending_boleto_and_refund_a_card(pagarme, pagarme_config):
    gateway = gateway_for(pagarme_config)
    boleto = gateway.issue_boleto(charge_request("pay_b2", method="bank_slip"))
    canceled = gateway.cancel_charge(method="bank_slip", provider_charge_id=boleto.provider_charge_id,
                                     idempotency_key="cancel-1")
    assert canceled.status == "canceled"

    card = gateway.charge_card(charge_request("pay_c2", card_token=CARD))
    partial = gateway.refund(method="card", provider_charge_id=card.provider_charge_id, amount=990,
                             idempotency_key="refund-1")
    assert partial.status == "refunded"
    # the same refund again is replayed, not made twice
    gateway.refund(method="card", provider_charge_id=card.provider_charge_id, amount=990, idempotency_key="refund-1")
    assert pagarme.charges[card.provider_charge_id]["canceled_amount"] == 990
    gateway.refund(method="card", provider_charge_id=card.provider_charge_id, amount=4000, idempotency_key="refund-2")
    fetched = gateway.fetch_charge(method="card", provider_charge_id=card.provider_charge_id)
    assert fetched.status == "refunded"


def test_callback_signature_is_verified_against_the_jwks(pagarme, pagarme_config, receiver):
    gateway = gateway_for(pagarme_config)
    result = gateway.issue_pix(charge_request("pay_p2", method="pix"))
    pagarme.pay(result.provider_charge_id)
    pagarme.send_callback(receiver.url, "charge.paid", result.provider_charge_id)
    received = receiver.wait_for(1)[0]

    assert gateway.verify_callback(headers=received.headers, body=received.body)
    assert not gateway.verify_callback(headers=received.headers, body=received.body.replace(b"paid", b"PAID"))
    assert not gateway.verify_callback(headers={}, body=received.body)
    forged = dict(received.headers, **{"x-webhook-asymmetric-signature":
                                       received.headers["x-webhook-asymmetric-signature"].replace("RS256", "HS256")})
    assert not gateway.verify_callback(headers=forged, body=received.body)

    event = gateway.parse_callback(headers=received.headers, body=received.body)
    assert event.event_id == json.loads(received.body)["id"] and event.event_id.startswith("hook_")
    assert (event.event_type, event.status, event.reference) == ("charge.paid", "succeeded", "pay_p2")
    assert event.provider_charge_id == result.provider_charge_id and event.amount_paid == 4990


def test_a_rotated_key_is_fetched_by_its_kid(pagarme, pagarme_config, receiver):
    gateway = gateway_for(pagarme_config)
    result = gateway.issue_pix(charge_request("pay_p3", method="pix"))
    pagarme.send_callback(receiver.url, "order.created", result.provider_charge_id)
    first = receiver.wait_for(1)[0]
    assert gateway.verify_callback(headers=first.headers, body=first.body)
    jwks_fetches = sum(1 for r in pagarme.requests if r.path == "/.well-known/jwks.json")

    pagarme.rotate_key()
    pagarme.send_callback(receiver.url, "order.created", result.provider_charge_id)
    second = receiver.wait_for(2)[1]
    assert gateway.verify_callback(headers=second.headers, body=second.body)  # unknown kid: one refresh
    assert gateway.verify_callback(headers=first.headers, body=first.body)  # cached
    assert sum(1 for r in pagarme.requests if r.path == "/.well-known/jwks.json") == jwks_fetches + 1

    event = gateway.parse_callback(headers=second.headers, body=second.body)
    assert event.event_type == "order.created" and event.status == "pending" and event.reference == "pay_p3"


def test_events_we_do_not_handle_parse_to_none(pagarme_config):
    body = json.dumps({"id": "hook_x", "type": "customer.created", "data": {"id": "cus_1"}}).encode()
    assert gateway_for(pagarme_config).parse_callback(headers={}, body=body) is None


def test_refund_callback_maps_to_refunded(pagarme, pagarme_config, receiver):
    gateway = gateway_for(pagarme_config)
    card = gateway.charge_card(charge_request("pay_c9", card_token=CARD))
    gateway.cancel_charge(method="card", provider_charge_id=card.provider_charge_id, idempotency_key="c9-cancel")
    pagarme.send_callback(receiver.url, "charge.refunded", card.provider_charge_id)
    received = receiver.wait_for(1)[0]
    event = gateway.parse_callback(headers=received.headers, body=received.body)
    assert event.status == "refunded"


def test_an_expired_pix_is_failed_and_says_why(pagarme, pagarme_config):
    gateway = gateway_for(pagarme_config)
    pix = gateway.issue_pix(charge_request("pay_p9", method="pix"))
    pagarme.expire(pix.provider_charge_id)
    fetched = gateway.fetch_charge(method="pix", provider_charge_id=pix.provider_charge_id)
    assert (fetched.status, fetched.failure_code, fetched.decline_class) == ("failed", "expired", "")


def test_the_fake_keeps_idempotency_keys_for_24_hours(pagarme, pagarme_config, clock):
    from datetime import timedelta

    gateway = gateway_for(pagarme_config)
    request = charge_request(card_token=CARD)
    first = gateway.charge_card(request)
    clock.advance(timedelta(hours=23))
    assert gateway.charge_card(request).provider_charge_id == first.provider_charge_id
    with pytest.raises(GatewayError, match="422"):  # same key, other body
        gateway.charge_card(charge_request(card_token=CARD, amount=5000, key=request.idempotency_key))
    clock.advance(timedelta(hours=2))
    assert gateway.charge_card(request).provider_charge_id != first.provider_charge_id
    assert pagarme.charges_for("pay_0001") == 2
