"""POST /v1/invoices: one-off invoices, charged now or sent, idempotent, validated field by field."""

from datetime import timedelta

import pytest

from cobrador.customers.models import BillingAccount
from cobrador.dunning.models import DunningInvoice
from cobrador.invoicing.models import Invoice
from cobrador.jobs.runner import run_job
from cobrador.notifications.models import Notice
from cobrador.payments.charging import charge_queued
from cobrador.payments.models import Payment
from tests.billing.signup import create_account
from tests.payments.billing import event_types

SETUP_FEE = {"description": "Implantação", "unit_amount": 15000, "quantity": 2, "service_code": "01.07"}


def test_charge_now_is_charged_right_after_the_request(test_api, clock):
    account, card = create_account(test_api)
    response = test_api.post("/v1/invoices", {"account": account["id"], "lines": [
        SETUP_FEE, {"description": "Treinamento", "unit_amount": 9990}]})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["collection_method"], body["status"]) == ("one_off", "charge", "open")
    assert (body["subtotal"], body["total"], body["subscription"]) == (39990, 39990, None)
    assert [(line["amount"], line["service_code"]) for line in body["lines"]] == [(30000, "01.07"), (9990, None)]
    assert body["due_date"] == clock.now().date().isoformat()

    charge_queued()
    payment = Payment.objects.get(invoice__public_id=body["id"])
    assert (payment.status, payment.amount, payment.payment_method.public_id) == ("succeeded", 39990, card["id"])
    assert test_api.get(f"/v1/invoices/{body['id']}").json()["status"] == "paid"
    assert event_types(test_api.organization, "invoice.") == ["invoice.created", "invoice.paid"]
    # The customer is told as for any invoice.
    assert {"invoice_created", "payment_succeeded"} <= set(Notice.objects.values_list("type", flat=True))


def test_a_declined_one_off_charge_enters_dunning(test_api, clock):
    account, _ = create_account(test_api, token="tok_sandbox_decline")
    body = test_api.post("/v1/invoices", {"account": account["id"], "lines": [SETUP_FEE]}).json()
    charge_queued()
    assert DunningInvoice.objects.filter(invoice__public_id=body["id"]).exists()


def test_send_is_never_charged_by_the_payment_jobs(test_api, clock):
    account, _ = create_account(test_api)
    due = (clock.now() + timedelta(days=10)).date().isoformat()
    response = test_api.post("/v1/invoices", {"account": account["id"], "lines": [SETUP_FEE], "collect": "send",
                                              "due_date": due})
    body = response.json()
    assert (response.status_code, body["collection_method"], body["due_date"]) == (201, "send", due)
    assert charge_queued() == 0
    run_job("invoice-charging", as_of=clock.now() + timedelta(days=1))
    assert not Payment.objects.exists()
    # The customer (or the organization, for them) pays it when they choose.
    response = test_api.post(f"/v1/invoices/{body['id']}/pay", {})
    assert response.status_code == 200 and response.json()["status"] == "succeeded"


def test_credit_applies_as_on_period_invoices(test_api, clock):
    account, _ = create_account(test_api)
    response = test_api.post(f"/v1/billing_accounts/{account['id']}/credits", {"amount": 10000, "reason": "goodwill"})
    assert response.status_code == 201, response.content
    body = test_api.post("/v1/invoices", {"account": account["id"], "lines": [SETUP_FEE]}).json()
    assert (body["credit_applied"], body["total"], body["amount_due"]) == (10000, 20000, 20000)


def test_a_repeated_idempotency_key_makes_one_invoice(test_api, clock):
    account, _ = create_account(test_api)
    request = {"account": account["id"], "lines": [SETUP_FEE]}
    first = test_api.post("/v1/invoices", request, headers={"Idempotency-Key": "setup-fee-1"})
    again = test_api.post("/v1/invoices", request, headers={"Idempotency-Key": "setup-fee-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert Invoice.objects.count() == 1
    assert charge_queued() == 1


def test_another_organizations_account_is_404(test_api, other_api, clock):
    theirs, _ = create_account(other_api)
    response = test_api.post("/v1/invoices", {"account": theirs["id"], "lines": [SETUP_FEE]})
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "account"
    assert not Invoice.objects.exists()


@pytest.mark.parametrize(("change", "field"), [
    ({"lines": []}, "lines"),
    ({"lines": [{"description": " ", "unit_amount": 100}]}, "lines.0.description"),
    ({"lines": [{"description": "x", "unit_amount": -1}]}, "lines.0.unit_amount"),
    ({"lines": [{"description": "x", "unit_amount": 100, "quantity": 0}]}, "lines.0.quantity"),
    ({"lines": [{"description": "x", "unit_amount": 100, "service_code": "01 07"}]}, "lines.0.service_code"),
    ({"lines": [{"description": "x", "unit_amount": 100, "tax": 1}]}, "lines.0.tax"),
    ({"lines": [{"description": "x", "unit_amount": 0}]}, "lines"),
    ({"currency": "XYZ"}, "currency"),
    ({"due_date": "2026-02-28"}, "due_date"),
    ({"due_date": "soon"}, "due_date"),
    ({"payment_method": "pm_nope"}, "payment_method"),
    ({"collect": "later"}, "collect"),
    ({"account": None}, "account"),
    ({"memo": "x"}, "memo"),
])
def test_every_validation_rule_answers_422_naming_the_field(test_api, clock, change, field):
    account, _ = create_account(test_api)
    request = {"account": account["id"], "lines": [{"description": "x", "unit_amount": 100}], **change}
    response = test_api.post("/v1/invoices", request)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert not Invoice.objects.exists()


def test_charge_now_without_a_method_to_charge_is_422(test_api, clock):
    account, _ = create_account(test_api, token=None)
    response = test_api.post("/v1/invoices", {"account": account["id"], "lines": [SETUP_FEE]})
    assert response.status_code == 422 and response.json()["error"]["field"] == "payment_method"
    assert test_api.post("/v1/invoices", {"account": account["id"], "lines": [SETUP_FEE],
                                          "collect": "send"}).status_code == 201
    assert BillingAccount.objects.count() == 1
