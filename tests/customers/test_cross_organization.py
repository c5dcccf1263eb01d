"""Every customers route answers another organization's ids with 404 and changes nothing."""

import pytest

from cobrador.customers.models import BillingAccount, CreditGrant, PaymentMethod
from cobrador.events.models import Event
from tests.customers.conftest import CARD, attach, create_account

ROUTES = [
    ("get", "/v1/billing_accounts/{ba}", None),
    ("patch", "/v1/billing_accounts/{ba}", {"name": "Hijacked"}),
    ("post", "/v1/billing_accounts/{ba}/payment_methods", {"type": "pix"}),
    ("get", "/v1/billing_accounts/{ba}/payment_methods", None),
    ("get", "/v1/billing_accounts/{ba}/payment_methods/{pm}", None),
    ("patch", "/v1/billing_accounts/{ba}/payment_methods/{pm}", {"is_default": True}),
    ("delete", "/v1/billing_accounts/{ba}/payment_methods/{pm}", None),
    ("post", "/v1/billing_accounts/{ba}/credits", {"amount": 100}),
    ("get", "/v1/billing_accounts/{ba}/credits", None),
    # The other organization's own account with our payment method id.
    ("get", "/v1/billing_accounts/{their_ba}/payment_methods/{pm}", None),
    ("patch", "/v1/billing_accounts/{their_ba}/payment_methods/{pm}", {"is_default": True}),
    ("delete", "/v1/billing_accounts/{their_ba}/payment_methods/{pm}", None),
]


def _snapshot():
    return (list(BillingAccount.objects.order_by("pk").values()), list(PaymentMethod.objects.order_by("pk").values()),
            list(CreditGrant.objects.order_by("pk").values()), Event.objects.count())


@pytest.mark.parametrize("method,template,body", ROUTES)
def test_another_organizations_ids_are_404(api, other_api, clock, method, template, body):
    account = create_account(api)
    attach(api, account["id"], CARD)
    second = attach(api, account["id"], {"type": "pix"})  # not the default, so a PATCH would change it
    theirs = create_account(other_api, email="someone@globex.test")
    path = template.format(ba=account["id"], pm=second["id"], their_ba=theirs["id"])
    before = _snapshot()
    call = getattr(other_api, method)
    response = call(path, body) if body is not None else call(path)
    assert response.status_code == 404, response.content
    assert response.json()["error"]["type"] == "not_found"
    assert _snapshot() == before


def test_lists_show_only_the_callers_accounts(api, other_api, clock):
    mine = create_account(api, email="maria@acme.test")
    theirs = create_account(other_api, email="joao@globex.test")
    assert [a["id"] for a in api.get("/v1/billing_accounts").json()["data"]] == [mine["id"]]
    assert [a["id"] for a in other_api.get("/v1/billing_accounts").json()["data"]] == [theirs["id"]]
    assert other_api.get("/v1/billing_accounts", params={"email": "maria@acme.test"}).json()["data"] == []
