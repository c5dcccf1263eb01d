"""Listing, inspecting and reprocessing callbacks through the API and the admin; tenancy."""

from urllib.parse import urlsplit

import pytest
from django.test import Client
from django_ox.testing import run_tasks

from cobrador.callbacks.models import GatewayCallback
from cobrador.gateways.models import SandboxCharge
from cobrador.gateways.sandbox import build_callback, build_sandbox_payment_callback
from cobrador.payments import charging
from cobrador.payments.models import Payment
from tests.factories import make_org
from tests.payments.billing import add_method, make_account, make_invoice


@pytest.fixture
def org(db):
    return make_org("Payco", "test")


@pytest.fixture
def other(db):
    return make_org("Globex", "test")


def post(url, headers, body):
    return Client().generic("POST", urlsplit(url).path, data=body, content_type="application/json",
                            headers={k: v for k, v in headers.items() if k.lower() != "content-type"})


def paid_boleto_callback(org):
    account = make_account(org.organization)
    add_method(account, "bank_slip")
    invoice = make_invoice(account)
    charging.charge_open_invoices()
    payment = Payment.objects.get(invoice=invoice)
    response = post(*build_sandbox_payment_callback(payment))
    assert response.status_code == 200
    run_tasks(raise_failures=True)
    return payment, GatewayCallback.objects.get(public_id=response.json()["id"])


def test_list_filter_and_inspect(org, other, clock):
    payment, callback = paid_boleto_callback(org)
    url, headers, body = build_callback(SandboxCharge.objects.get(reference=payment.public_id), "charge.paid")
    headers["X-Sandbox-Signature"] = "sha256=" + "0" * 64
    post(url, headers, body.replace(b"charge.paid", b"charge.refunded"))
    rejected = GatewayCallback.objects.get(status="rejected")

    listing = org.get("/v1/callbacks").json()
    assert [c["id"] for c in listing["data"]] == [rejected.public_id, callback.public_id]
    assert [c["id"] for c in org.get("/v1/callbacks", params={"status": "processed"}).json()["data"]] == [
        callback.public_id]
    assert [c["id"] for c in org.get("/v1/callbacks", params={"event_type": "charge.paid"}).json()["data"]] == [
        callback.public_id]
    assert org.get("/v1/callbacks", params={"provider": "kobana"}).json()["data"] == []
    assert org.get("/v1/callbacks", params={"status": "lost"}).status_code == 422

    detail = org.get(f"/v1/callbacks/{callback.public_id}").json()
    assert (detail["status"], detail["provider"], detail["event_type"], detail["attempts"]) == (
        "processed", "sandbox", "charge.paid", 1)
    assert detail["gateway"] == payment.gateway.public_id
    assert detail["headers"]["x-sandbox-signature"] == "[redacted]"
    assert '"type":"charge.paid"' in detail["body"]
    assert {"payment": payment.public_id, "via": "callback charge.paid", "status": ["pending", "succeeded"]} in \
        detail["changes"]
    bad = org.get(f"/v1/callbacks/{rejected.public_id}").json()
    assert (bad["status"], bad["error"], bad["event_id"]) == ("rejected", "invalid or missing signature", None)

    # Another organization sees none of it.
    assert other.get("/v1/callbacks").json()["data"] == []
    assert other.get(f"/v1/callbacks/{callback.public_id}").status_code == 404
    assert other.post(f"/v1/callbacks/{callback.public_id}/reprocess").status_code == 404
    # And the API needs a key.
    assert Client().get("/v1/callbacks").status_code == 401


def test_reprocess_runs_the_callback_again_and_changes_nothing_twice(org, clock):
    payment, callback = paid_boleto_callback(org)

    response = org.post(f"/v1/callbacks/{callback.public_id}/reprocess")

    assert response.status_code == 202 and response.json()["status"] == "received"
    run_tasks(raise_failures=True)
    callback.refresh_from_db()
    assert (callback.status, callback.attempts) == ("processed", 1)
    assert callback.changes == [{"payment": payment.public_id, "via": "callback charge.paid",
                                 "ignored": "succeeded after succeeded"}]
    payment.refresh_from_db()
    assert payment.status == "succeeded"


def test_a_rejected_callback_cannot_be_reprocessed(org, clock):
    payment, _ = paid_boleto_callback(org)
    url, headers, body = build_callback(SandboxCharge.objects.get(reference=payment.public_id), "charge.refunded")
    headers["X-Sandbox-Signature"] = "sha256=" + "0" * 64
    post(url, headers, body)
    rejected = GatewayCallback.objects.get(status="rejected")

    response = org.post(f"/v1/callbacks/{rejected.public_id}/reprocess")

    assert response.status_code == 409
    assert response.json()["error"]["type"] == "callback_not_reprocessable"
    rejected.refresh_from_db()
    assert rejected.status == "rejected"


def test_admin_lists_inspects_and_reprocesses_callbacks_and_payments(org, admin_client, clock):
    payment, callback = paid_boleto_callback(org)

    assert admin_client.get("/admin/callbacks/gatewaycallback/").status_code == 200
    assert admin_client.get("/admin/callbacks/gatewaycallback/", {"q": callback.event_id}).status_code == 200
    page = admin_client.get(f"/admin/callbacks/gatewaycallback/{callback.pk}/change/").content.decode()
    assert callback.public_id in page and "[redacted]" in page
    assert payment.gateway.credentials["webhook_secret"] not in page
    response = admin_client.post("/admin/callbacks/gatewaycallback/", {
        "action": "reprocess", "_selected_action": [callback.pk]})
    assert response.status_code == 302
    callback.refresh_from_db()
    assert callback.status == "received"
    run_tasks(raise_failures=True)
    callback.refresh_from_db()
    assert callback.status == "processed"

    assert admin_client.get("/admin/payments/payment/").status_code == 200
    assert admin_client.get("/admin/payments/payment/", {"q": payment.public_id}).status_code == 200
    assert admin_client.get(f"/admin/payments/payment/{payment.pk}/change/").status_code == 200
