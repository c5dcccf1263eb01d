"""The operations console pages for customers and catalog load and search, and keep the rules."""

import pytest

from cobrador.catalog.models import Plan
from cobrador.customers.models import BillingAccount
from tests.customers.conftest import CARD, attach, create_account


@pytest.mark.parametrize("model", ["customers/billingaccount", "customers/paymentmethod", "customers/creditgrant",
                                   "customers/creditusage", "catalog/plan", "catalog/coupon"])
def test_changelists_and_add_pages_load(admin_client, api, clock, model):
    account = create_account(api)
    attach(api, account["id"], CARD)
    api.post(f"/v1/billing_accounts/{account['id']}/credits", {"amount": 100})
    api.post("/v1/plans", {"name": "Pro", "amount": 100})
    api.post("/v1/coupons", {"code": "C", "percent_off": 10})
    assert admin_client.get(f"/admin/{model}/").status_code == 200
    assert admin_client.get(f"/admin/{model}/", {"q": "Maria"}).status_code == 200


def test_account_change_page_shows_payment_methods_and_never_the_token_in_lists(admin_client, api, clock):
    account = create_account(api)
    attach(api, account["id"], CARD)
    pk = BillingAccount.objects.get(public_id=account["id"]).pk
    page = admin_client.get(f"/admin/customers/billingaccount/{pk}/change/").content.decode()
    assert "4242" in page and account["id"] in page
    assert "card_tok_1" not in admin_client.get("/admin/customers/paymentmethod/").content.decode()


def test_admin_refuses_an_invalid_document_and_normalizes_a_valid_one(admin_client, api, clock):
    account = create_account(api)
    row = BillingAccount.objects.get(public_id=account["id"])
    url = f"/admin/customers/billingaccount/{row.pk}/change/"
    form = {"organization": row.organization_id, "name": row.name, "email": row.email, "address": "{}",
            "locale": "pt-BR", "status": "active", "metadata": "{}", "suspension_reason": "",
            "payment_methods-TOTAL_FORMS": "0", "payment_methods-INITIAL_FORMS": "0",
            "credit_grants-TOTAL_FORMS": "0", "credit_grants-INITIAL_FORMS": "0"}
    response = admin_client.post(url, {**form, "document": "529.982.247-24"})
    assert response.status_code == 200  # the form again, with the error
    assert BillingAccount.objects.get(pk=row.pk).document == "52998224725"
    response = admin_client.post(url, {**form, "document": "12.abc.345/01de-35"})
    assert response.status_code == 302, response.content.decode()[:2000]
    row.refresh_from_db()
    assert (row.document, row.document_type) == ("12ABC34501DE35", "cnpj")


def test_admin_keeps_the_plan_price_read_only(admin_client, api, clock):
    plan_id = api.post("/v1/plans", {"name": "Pro", "amount": 100}).json()["id"]
    pk = Plan.objects.get(public_id=plan_id).pk
    admin_client.post(f"/admin/catalog/plan/{pk}/change/", {"name": "Pro", "amount": 1, "trial_days": 0,
                                                             "active": "on"})
    assert Plan.objects.get(pk=pk).amount == 100
