"""The MRR movement ledger: hand-computed fixtures, written by the usage sink in the changing transaction."""

from datetime import date, timedelta

import pytest
from django.db import transaction

from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.services import cancel_subscription, update_subscription
from cobrador.usage.ledger import local_day_bounds, movements_between, mrr_at
from cobrador.usage.models import CustomerMrr, MrrMovement
from cobrador.usage.mrr import normalized
from tests.subscriptions.conftest import invoice, make_account, make_coupon, make_plan, renew, subscribe, utc
from tests.usage.ledger_support import movements, reactivate, suspend


@pytest.fixture
def org(api):
    return api.organization


def cancel(subscription, **kwargs):
    with transaction.atomic():
        cancel_subscription(subscription=Subscription.objects.get(pk=subscription.pk), **kwargs)


def change(subscription, **changes):
    with transaction.atomic():
        update_subscription(subscription=Subscription.objects.get(pk=subscription.pk), changes=changes)


def renew_and_invoice(at):
    renew(at)
    invoice(at)


def test_normalization_rounds_half_up_once():
    assert normalized(200000, 12) == 16667  # R$ 2.000,00 a year -> R$ 166,67
    assert normalized(120000, 12) == 10000
    assert normalized(29970, 3) == 9990
    assert normalized(5, 2) == 3 and normalized(1, 3) == 0


def test_a_yearly_plan_of_2000_reais_is_166_67_of_new_mrr(org, clock):
    yearly = make_plan(org, amount=200000, interval="year")
    subscribe(org, make_account(org), yearly)
    assert movements(org) == [("new", 16667, 16667)]
    assert mrr_at(organization=org, at=clock.now() + timedelta(seconds=1)) == 16667


def test_a_trial_is_not_mrr_until_it_converts(org, clock):
    plan = make_plan(org, amount=10000, trial_days=14)
    subscribe(org, make_account(org), plan)
    assert movements(org) == []
    renew(clock.now() + timedelta(days=14))
    assert movements(org) == [("new", 10000, 10000)]


def test_a_forever_coupon_lowers_mrr_for_good_and_a_3_period_coupon_only_while_it_lasts(org, clock):
    plan = make_plan(org, amount=10000)
    forever = make_coupon(org, code="SEMPRE", percent_off=20, duration="forever")
    three = make_coupon(org, code="TRES", percent_off=20, duration="repeating", duration_in_periods=3)
    a, b = make_account(org, name="A"), make_account(org, name="B")
    subscribe(org, a, plan, coupon=forever.code)
    subscribe(org, b, plan, coupon=three.code)
    invoice(clock.now())
    for month in (4, 5, 6, 7):
        renew_and_invoice(utc(2026, month, 1, 12))
    rows = list(MrrMovement.objects.filter(account=b).order_by("pk").values_list("kind", "delta", "occurred_at"))
    # Periods of March, April and May are discounted; June's starts at full price.
    assert rows == [("new", 8000, utc(2026, 3, 1, 12)), ("expansion", 2000, utc(2026, 6, 1, 12))]
    assert list(MrrMovement.objects.filter(account=a).values_list("kind", "delta")) == [("new", 8000)]
    assert mrr_at(organization=org, at=utc(2026, 7, 2)) == 18000


def test_a_once_coupon_is_a_one_off_and_never_lowers_mrr(org, clock):
    once = make_coupon(org, code="UMA", amount_off=5000, duration="once")
    subscribe(org, make_account(org), make_plan(org, amount=10000), coupon=once.code)
    assert movements(org) == [("new", 10000, 10000)]


def test_an_upgrade_and_a_downgrade_on_the_same_day_are_one_expansion_and_one_contraction(org, clock):
    small, large = make_plan(org, amount=10000, name="S"), make_plan(org, amount=30000, name="L")
    up = subscribe(org, make_account(org, name="Up"), small)
    down = subscribe(org, make_account(org, name="Down"), large)
    change(up, plan=large.public_id)
    change(down, plan=small.public_id, quantity=2)
    renew(utc(2026, 4, 1, 12))
    day = movements_between(organization=org, start=utc(2026, 4, 1), end=utc(2026, 4, 2))
    assert (day["expansion"], day["contraction"], day["churn"], day["new"]) == (20000, 10000, 0, 0)
    assert mrr_at(organization=org, at=utc(2026, 4, 2)) == 30000 + 20000


def test_an_upgrade_taken_back_the_same_day_and_a_plan_change_at_the_same_price_are_no_movement(org, clock):
    pro, other_pro, large = (make_plan(org, amount=10000, name="Pro"), make_plan(org, amount=10000, name="Pro 2"),
                             make_plan(org, amount=30000, name="L"))
    sub = subscribe(org, make_account(org), pro)
    change(sub, plan=large.public_id)
    change(sub, plan=pro.public_id)
    renew(utc(2026, 4, 1, 12))
    change(sub, plan=other_pro.public_id)
    renew(utc(2026, 5, 1, 12))
    assert Subscription.objects.get(pk=sub.pk).plan == other_pro
    assert movements(org) == [("new", 10000, 10000)]


def test_a_second_subscription_is_expansion_and_canceling_one_of_two_is_contraction(org, clock):
    plan = make_plan(org, amount=10000)
    account = make_account(org)
    first = subscribe(org, account, plan)
    subscribe(org, account, plan, quantity=2)
    cancel(first, immediately=True)
    assert movements(org) == [("new", 10000, 10000), ("expansion", 20000, 30000), ("contraction", -10000, 20000)]


def test_a_cancel_scheduled_in_march_for_an_april_period_end_is_churn_in_april(org, clock):
    clock.set(utc(2026, 3, 10, 12))
    sub = subscribe(org, make_account(org), make_plan(org, amount=10000))
    clock.set(utc(2026, 3, 20, 15))
    cancel(sub)  # at the period's end, 2026-04-10 12:00
    assert movements(org) == [("new", 10000, 10000)]
    renew(utc(2026, 4, 12, 0))  # the sweep ran two days late: the churn is still dated at the period's end
    [churn] = MrrMovement.objects.filter(kind="churn")
    assert (churn.delta, churn.churn_type, churn.occurred_at) == (-10000, "voluntary", utc(2026, 4, 10, 12))
    march = movements_between(organization=org, start=utc(2026, 3, 1), end=utc(2026, 4, 1))
    april = movements_between(organization=org, start=utc(2026, 4, 1), end=utc(2026, 5, 1))
    assert (march["churn"], april["churn"], april["churn_voluntary"]) == (0, 10000, 10000)


def test_churn_then_reactivation(org, clock):
    plan = make_plan(org, amount=10000)
    account = make_account(org)
    sub = subscribe(org, account, plan)
    clock.set(utc(2026, 3, 5, 12))
    cancel(sub, immediately=True)
    clock.set(utc(2026, 5, 5, 12))
    subscribe(org, account, make_plan(org, amount=15000, name="Plus"))
    assert movements(org) == [("new", 10000, 10000), ("churn", -10000, 0), ("reactivation", 15000, 15000)]
    assert CustomerMrr.objects.get(account=account).first_paid_at == utc(2026, 3, 1, 12)


def test_suspension_is_involuntary_churn_and_its_reactivation_a_reactivation(org, clock):
    account = make_account(org)
    subscribe(org, account, make_plan(org, amount=10000))
    suspend(account)
    reactivate(account)
    assert movements(org) == [("new", 10000, 10000), ("churn", -10000, 0), ("reactivation", 10000, 10000)]
    assert MrrMovement.objects.get(kind="churn").churn_type == "involuntary"


def test_sao_paulo_day_boundaries(org, clock):
    start, end = local_day_bounds("America/Sao_Paulo", date(2026, 3, 31))
    assert (start, end) == (utc(2026, 3, 31, 3), utc(2026, 4, 1, 3))
    clock.set(utc(2026, 4, 1, 2, 30))  # 23:30 on March 31 in São Paulo
    subscribe(org, make_account(org), make_plan(org, amount=10000))
    assert movements_between(organization=org, start=start, end=end)["new"] == 10000
    april_1 = local_day_bounds("America/Sao_Paulo", date(2026, 4, 1))
    assert movements_between(organization=org, start=april_1[0], end=april_1[1])["new"] == 0


def test_each_organization_has_its_own_ledger(org, other_api, clock):
    subscribe(org, make_account(org), make_plan(org, amount=10000))
    other = other_api.organization
    subscribe(other, make_account(other), make_plan(other, amount=7000))
    assert movements(org) == [("new", 10000, 10000)] and movements(other) == [("new", 7000, 7000)]
    assert mrr_at(organization=other, at=clock.now() + timedelta(1)) == 7000
