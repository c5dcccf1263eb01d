"""Upgrades and downgrades mid-period with proration: fixtures computed by hand, and a property."""

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobrador.core import clock as clock_module
from cobrador.customers.credits import credit_balance
from cobrador.invoicing.models import Invoice
from cobrador.invoicing.services import change_subscription_now, invoice_current_period
from cobrador.organizations.services import create_organization
from cobrador.payments.charging import charge_queued
from cobrador.payments.models import Payment
from cobrador.subscriptions.models import Subscription
from tests.billing.signup import create_plan, sign_up
from tests.payments.billing import event_types
from tests.subscriptions.conftest import invoice as invoice_run
from tests.subscriptions.conftest import make_account, make_coupon, make_plan, renew, subscribe, utc

APRIL = utc(2026, 4, 1, 12)  # April: a 30-day period, 2,592,000 seconds


def change(api, subscription, at, **changes):
    clock_module.set(at)
    response = api.patch(f"/v1/subscriptions/{subscription['id']}", {**changes, "proration": "now"})
    assert response.status_code == 200, response.content
    body = response.json()
    return body, Invoice.objects.get(public_id=body["latest_invoice"]["id"])


def amounts(invoice) -> list[int]:
    return list(invoice.lines.order_by("pk").values_list("amount", flat=True))


@pytest.fixture
def april(test_api, clock):
    clock.set(APRIL)
    return test_api


def test_an_upgrade_on_day_10_credits_the_unused_old_price_and_charges_the_new(april):
    basic, premium = create_plan(april, amount=10000, name="Basic"), create_plan(april, amount=30000, name="Premium")
    subscription = sign_up(april, basic)
    charge_queued()

    # 10 days used, 20 of 30 left: credit 10000 × 20/30 = 6666.67 -> 6667; charge 30000 × 20/30 = 20000.
    body, proration = change(april, subscription, APRIL + timedelta(days=10), plan=premium["id"])

    assert (body["plan"], body["pending_plan"]) == (premium["id"], None)
    assert proration.kind == "proration" and proration.subscription.public_id == subscription["id"]
    assert amounts(proration) == [-6667, 20000]
    assert (proration.subtotal, proration.total, proration.status) == (13333, 13333, "open")
    line = proration.lines.order_by("pk").last()
    assert (line.period_start, line.period_end) == (APRIL + timedelta(days=10), utc(2026, 5, 1, 12))
    charge_queued()
    proration.refresh_from_db()
    assert proration.status == "paid"
    assert Payment.objects.get(invoice=proration).amount == 13333
    assert "subscription.updated" in event_types(april.organization, "subscription.")
    assert event_types(april.organization, "invoice.") == ["invoice.created", "invoice.paid"] * 2

    # The next period bills the new plan in full.
    renew(utc(2026, 5, 1, 12))
    invoice_run(utc(2026, 5, 1, 13))
    assert Invoice.objects.filter(kind="period").order_by("pk").last().total == 30000


def test_a_quantity_change_from_3_to_5_on_the_last_day(april):
    seats = create_plan(april, amount=4990, name="Seat")
    subscription = sign_up(april, seats, quantity=3)
    # 18 hours left of 720: credit 14970 × 0.025 = 374.25 -> 374; charge 24950 × 0.025 = 623.75 -> 624.
    body, proration = change(april, subscription, utc(2026, 4, 30, 18), quantity=5)
    assert (body["quantity"], body["pending_quantity"]) == (5, None)
    assert amounts(proration) == [-374, 624]
    assert proration.total == 250


def test_a_downgrade_now_leaves_a_credit_on_the_account_that_the_next_invoice_uses(april):
    basic, premium = create_plan(april, amount=10000, name="Basic"), create_plan(april, amount=30000, name="Premium")
    subscription = sign_up(april, premium)
    charge_queued()

    # 20 of 30 days left: credit 30000 × 2/3 = 20000; charge 10000 × 2/3 = 6666.67 -> 6667.
    _, proration = change(april, subscription, APRIL + timedelta(days=10), plan=basic["id"])
    assert amounts(proration) == [-20000, 6667]
    assert (proration.subtotal, proration.total, proration.amount_due, proration.status) == (-13333, 0, 0, "paid")
    account = proration.account
    assert credit_balance(account=account) == 13333
    assert charge_queued() == 0  # nothing to charge, nothing refunded
    assert Payment.objects.filter(invoice=proration).count() == 0

    renew(utc(2026, 5, 1, 12))
    invoice_run(utc(2026, 5, 1, 13))
    may = Invoice.objects.filter(kind="period").order_by("pk").last()
    assert (may.subtotal, may.credit_applied, may.total, may.status) == (10000, 10000, 0, "paid")
    assert credit_balance(account=account) == 3333


def test_a_10_percent_coupon_prorates_with_the_price_it_discounts(april):
    basic, premium = create_plan(april, amount=9990, name="Basic"), create_plan(april, amount=29990, name="Premium")
    coupon = april.post("/v1/coupons", {"code": "DEZ", "percent_off": 10, "duration": "forever"})
    assert coupon.status_code == 201, coupon.content
    subscription = sign_up(april, basic, coupon="DEZ")
    first = Invoice.objects.get(public_id=subscription["latest_invoice"]["id"])
    assert (first.subtotal, first.discount, first.total) == (9990, 999, 8991)

    # 17 of 30 days left: credit 8991 × 17/30 = 5094.9 -> 5095; charge (29990 - 2999) × 17/30 = 15294.9 -> 15295.
    _, proration = change(april, subscription, APRIL + timedelta(days=13), plan=premium["id"])
    assert amounts(proration) == [-5095, 15295]
    assert proration.total == 10200 and proration.coupon.code == "DEZ"


def test_a_2018_period_across_sao_paulos_daylight_saving_start_prorates_by_elapsed_seconds(april):
    basic, premium = create_plan(april, amount=10000, name="Basic"), create_plan(april, amount=30000, name="Premium")
    start = datetime(2018, 10, 20, 3, tzinfo=UTC)  # midnight in São Paulo (UTC-3)
    clock_module.set(start)
    subscription = sign_up(april, basic)
    assert subscription["current_period_end"] == "2018-11-20T03:00:00Z"  # 31 days: 2,678,400 s
    # Midnight of Nov 10 in São Paulo was 02:00 UTC: summer time (UTC-2) began on Nov 4, 2018. Left:
    # 10 days 1 hour = 867,600 s. Credit 10000 × 867600/2678400 = 3239.25 -> 3239; charge 30000 × the
    # same = 9717.74 -> 9718 (by local calendar days, 10/31, it would be 3226 and 9677).
    _, proration = change(april, subscription, datetime(2018, 11, 10, 2, tzinfo=UTC), plan=premium["id"])
    assert amounts(proration) == [-3239, 9718]
    assert proration.total == 6479


def test_proration_none_keeps_todays_behaviour_and_a_paused_subscription_cannot_change_now(april):
    basic, premium = create_plan(april, amount=10000, name="Basic"), create_plan(april, amount=30000, name="Premium")
    subscription = sign_up(april, basic)
    response = april.patch(f"/v1/subscriptions/{subscription['id']}", {"plan": premium["id"]})
    assert (response.json()["plan"], response.json()["pending_plan"]) == (basic["id"], premium["id"])
    assert Invoice.objects.count() == 1
    response = april.patch(f"/v1/subscriptions/{subscription['id']}", {"quantity": 2, "proration": "later"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "proration"
    Subscription.objects.filter(public_id=subscription["id"]).update(status="paused")
    response = april.patch(f"/v1/subscriptions/{subscription['id']}", {"quantity": 2, "proration": "now"})
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "subscription_not_running"


def test_a_trial_changes_at_once_with_no_invoice(april):
    basic, premium = create_plan(april, amount=10000, name="Basic"), create_plan(april, amount=30000, name="Premium")
    subscription = sign_up(april, basic, trial_days=7)
    body, = [april.patch(f"/v1/subscriptions/{subscription['id']}", {"plan": premium["id"], "proration": "now"})
             .json()]
    assert (body["plan"], body["latest_invoice"]) == (premium["id"], None)
    assert not Invoice.objects.exists()


# --- the property --------------------------------------------------------------------------------

PLAN_AMOUNTS = (990, 4990, 10000, 29990)
PERIOD = (APRIL, utc(2026, 5, 1, 12))
PERIOD_SECONDS = int((PERIOD[1] - PERIOD[0]).total_seconds())

changes = st.lists(st.tuples(st.integers(1, PERIOD_SECONDS - 1), st.integers(0, len(PLAN_AMOUNTS) - 1),
                             st.integers(1, 7)), min_size=1, max_size=6)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(changes=changes, percent_off=st.sampled_from([None, 10, 33.33]), first_plan=st.integers(0, 3),
       first_quantity=st.integers(1, 7))
def test_what_a_period_bills_is_its_time_weighted_price_within_a_centavo_per_change(
        changes, percent_off, first_plan, first_quantity):
    clock_module.set(PERIOD[0])
    try:
        with transaction.atomic():
            _check_scenario(sorted(changes), percent_off, first_plan, first_quantity)
            transaction.set_rollback(True)
    finally:
        clock_module.set(None)


def _price(amount: int, quantity: int, percent_off) -> int:
    gross = amount * quantity
    if percent_off is None:
        return gross
    discount = int((Fraction(gross) * Fraction(str(percent_off)) / 100) + Fraction(1, 2))
    return gross - min(discount, gross)


def _check_scenario(changes, percent_off, first_plan, first_quantity):
    organization = create_organization(name="Prop", mode="test", billing_email="p@example.test")
    plans = [make_plan(organization, amount=amount, name=f"P{amount}") for amount in PLAN_AMOUNTS]
    account = make_account(organization)
    kwargs = {}
    if percent_off is not None:
        make_coupon(organization, code="OFF", percent_off=percent_off, duration="forever")
        kwargs["coupon"] = "OFF"
    subscription = subscribe(organization, account, plans[first_plan], quantity=first_quantity, **kwargs)
    invoice_current_period(subscription=subscription)

    expected = Fraction(0)
    at, price = PERIOD[0], _price(PLAN_AMOUNTS[first_plan], first_quantity, percent_off)
    invoiced_changes = 0
    for offset, plan_index, quantity in changes:
        moment = PERIOD[0] + timedelta(seconds=offset)
        expected += Fraction(price * int((moment - at).total_seconds()), PERIOD_SECONDS)
        clock_module.set(moment)
        subscription = Subscription.objects.select_related("plan", "account", "organization").get(pk=subscription.pk)
        made = change_subscription_now(subscription=subscription,
                                       changes={"plan": plans[plan_index].public_id, "quantity": quantity})
        invoiced_changes += made is not None
        at, price = moment, _price(PLAN_AMOUNTS[plan_index], quantity, percent_off)
    expected += Fraction(price * int((PERIOD[1] - at).total_seconds()), PERIOD_SECONDS)

    invoices = Invoice.objects.filter(subscription=subscription)
    billed = sum(i.subtotal - i.discount for i in invoices)
    assert abs(billed - expected) <= invoiced_changes, (billed, float(expected), invoiced_changes)
    assert all(i.total >= 0 and i.amount_due >= 0 for i in invoices)
