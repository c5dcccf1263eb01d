"""A proposal line's price override: validated, shown on the page, and the accepted subscription's
agreed price (invoices, prorations and MRR bill it until the plan changes)."""

import pytest
from django.db import transaction
from django.test import Client

from cobrador.invoicing.models import Invoice
from cobrador.invoicing.services import change_subscription_now, invoice_current_period
from cobrador.notifications.models import Notice
from cobrador.subscriptions.models import Subscription
from cobrador.usage.mrr import subscription_mrr
from tests.subscriptions.conftest import make_coupon, make_plan

pytestmark = pytest.mark.django_db


def _body(plan, **line):
    return {"prospect": {"name": "Joana Lima", "email": "joana@example.com"}, "expires_on": "2026-03-10",
            "lines": [{"plan": plan.public_id, "quantity": 2, **line}]}


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_an_overridden_price_makes_the_totals_and_is_shown_on_the_page(api, clock):
    plan = make_plan(api.organization, amount=10000)
    make_coupon(api.organization, code="TEN", percent_off=10)

    created = api.post("/v1/proposals", _body(plan, unit_amount=7500, coupon="TEN"))

    assert created.status_code == 201, created.content
    line = created.json()["lines"][0]
    assert (line["plan_amount"], line["unit_amount"], line["price_override"], line["amount"]) == (10000, 7500, 7500,
                                                                                                 15000)
    assert (created.json()["subtotal"], created.json()["discount"], created.json()["total"]) == (15000, 1500, 13500)
    api.post(f"/v1/proposals/{created.json()['id']}/send")
    html = Client().get(_path(Notice.objects.get(type="proposal_sent").link)).content.decode()
    assert "Preço especial: R$ 75,00 por unidade (em vez de R$ 100,00)" in html
    plain = api.post("/v1/proposals", _body(plan)).json()["lines"][0]
    assert (plain["unit_amount"], plain["price_override"]) == (10000, None)


def test_a_bad_override_is_a_422_naming_the_line(api, clock):
    plan = make_plan(api.organization, amount=10000)

    negative = api.post("/v1/proposals", _body(plan, unit_amount=-1))
    too_much = api.post("/v1/proposals", {**_body(plan), "lines": [
        {"plan": plan.public_id, "quantity": 1_000_000, "unit_amount": 10**12}] * 20})

    assert negative.status_code == 422 and "lines" in negative.json()["error"]["field"]
    assert too_much.status_code == 422 and too_much.json()["error"]["field"] == "lines"


def test_the_accepted_subscription_bills_the_agreed_price_until_its_plan_changes(api, clock):
    plan, other = make_plan(api.organization, amount=10000), make_plan(api.organization, amount=30000, name="Max")
    proposal = api.post("/v1/proposals", _body(plan, unit_amount=7500)).json()
    api.post(f"/v1/proposals/{proposal['id']}/send")

    accepted = api.post(f"/v1/proposals/{proposal['id']}/accept")

    assert accepted.status_code == 200, accepted.content
    subscription = Subscription.objects.select_related("plan", "coupon", "organization", "account").get()
    assert subscription.unit_amount == 7500
    assert api.get(f"/v1/subscriptions/{subscription.public_id}").json()["unit_amount"] == 7500
    assert subscription_mrr(subscription) == 15000
    with transaction.atomic():
        invoice = invoice_current_period(subscription=subscription)
    assert (invoice.subtotal, invoice.total) == (15000, 15000)
    assert list(invoice.lines.values_list("unit_amount", "quantity")) == [(7500, 2)]

    with transaction.atomic():  # a quantity change keeps the agreed price: the proration bills it
        change_subscription_now(subscription=subscription, changes={"quantity": 3})
    subscription.refresh_from_db()
    assert subscription.unit_amount == 7500
    proration = Invoice.objects.filter(subscription=subscription, kind="proration").get()
    assert {line.unit_amount for line in proration.lines.all()} == {7500}

    with transaction.atomic():  # a new plan has its own price
        change_subscription_now(subscription=subscription, changes={"plan": other.public_id})
    subscription.refresh_from_db()
    assert subscription.unit_amount is None and subscription.plan_id == other.pk
