"""Hypothesis properties of invoice generation over months of renewals: invoice arithmetic, the
credit ledger, coupon durations."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobrador.catalog.services import coupon_discount
from cobrador.core import clock
from cobrador.customers.credits import credit_balance, grant_credit
from cobrador.customers.models import CreditGrant, CreditUsage
from cobrador.invoicing.models import Invoice
from cobrador.organizations.services import create_organization
from tests.subscriptions.conftest import invoice, make_account, make_coupon, make_plan, renew, subscribe, utc

MONTH_STARTS = [utc(2026, m, 1, 12) for m in range(3, 13)]

coupons = st.one_of(
    st.none(),
    st.fixed_dictionaries({
        "percent_off": st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100), places=2),
        "duration": st.sampled_from(["once", "repeating", "forever"]),
        "duration_in_periods": st.integers(1, 6)}),
    st.fixed_dictionaries({
        "amount_off": st.integers(1, 2_000_000),
        "duration": st.sampled_from(["once", "repeating", "forever"]),
        "duration_in_periods": st.integers(1, 6)}),
)
grants = st.lists(st.fixed_dictionaries({
    "month": st.integers(0, 5),  # granted before that month's invoice run
    "amount": st.integers(1, 300_000),
    "expires_after_days": st.one_of(st.none(), st.integers(1, 90)),
}), max_size=4)


def expected_discounted(coupon: dict | None, months: int, subtotal: int) -> int:
    if coupon is None or subtotal == 0:
        return 0
    return {"once": min(1, months), "repeating": min(coupon["duration_in_periods"], months),
            "forever": months}[coupon["duration"]]


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(amount=st.integers(0, 500_000), quantity=st.integers(1, 20), coupon=coupons, credit_grants=grants,
       months=st.integers(1, 6), second_subscription=st.booleans())
def test_invoices_add_up_credits_never_go_negative_and_coupons_last_their_duration(
        amount, quantity, coupon, credit_grants, months, second_subscription):
    clock.set(MONTH_STARTS[0])
    try:
        with transaction.atomic():
            _run_scenario(amount, quantity, coupon, credit_grants, months, second_subscription)
            transaction.set_rollback(True)
    finally:
        clock.set(None)


def _run_scenario(amount, quantity, coupon, credit_grants, months, second_subscription):
    org = create_organization(name="Prop")
    account = make_account(org)
    plan = make_plan(org, amount=amount)
    code, the_coupon = None, None
    if coupon is not None:
        the_coupon = make_coupon(org, code="C", **{k: v for k, v in coupon.items() if k != "duration_in_periods"},
                                 duration_in_periods=coupon["duration_in_periods"]
                                 if coupon["duration"] == "repeating" else None)
        code = "C"
    sub = subscribe(org, account, plan, quantity=quantity, coupon=code)
    other = subscribe(org, account, plan) if second_subscription else None  # shares the account's credit

    for month in range(months):
        at = MONTH_STARTS[month]
        clock.set(at)
        for grant in credit_grants:
            if grant["month"] == month:
                expires = grant["expires_after_days"]
                grant_credit(account=account, amount=grant["amount"],
                             expires_at=at + timedelta(days=expires) if expires else None)
        balance_before = credit_balance(account=account, as_of=at)
        renew(at)
        invoice(at)
        made = list(Invoice.objects.filter(period_start=at))
        assert len(made) == (2 if other else 1)
        used_now = sum(i.credit_applied for i in made)
        assert 0 <= used_now <= balance_before
        assert credit_balance(account=account, as_of=at) == balance_before - used_now >= 0

    invoices = list(Invoice.objects.filter(subscription=sub).order_by("period_start"))
    assert len(invoices) == months
    subtotal = amount * quantity
    for inv in invoices + list(Invoice.objects.filter(subscription=other)):
        assert inv.total == inv.subtotal - inv.discount - inv.credit_applied >= 0
        assert inv.amount_due == inv.total and inv.discount <= inv.subtotal and inv.credit_applied >= 0
        assert inv.status == ("paid" if inv.total == 0 else "open")
        assert inv.lines.get().amount == inv.subtotal
        assert inv.credit_applied == sum(CreditUsage.objects.filter(invoice=inv).values_list("amount", flat=True))
    assert [i.subtotal for i in invoices] == [subtotal] * months
    discounted = [i for i in invoices if i.coupon_id is not None]
    assert len(discounted) == expected_discounted(coupon, months, subtotal)
    assert all(i.discount == coupon_discount(the_coupon, subtotal) for i in discounted)
    assert [i.coupon_id is not None for i in invoices] == sorted((i.coupon_id is not None for i in invoices),
                                                                 reverse=True)  # discounts come first
    assert all(i.discount == 0 for i in invoices if i.coupon_id is None)
    for grant in CreditGrant.objects.all():
        used = sum(grant.usages.values_list("amount", flat=True))
        assert 0 <= grant.remaining == grant.amount - used
