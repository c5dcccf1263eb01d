"""The reconciliation identity as a property: over random sequences of subscription changes, coupons,
trials, cancellations, suspensions and reactivations, for every day and every month,
MRR at start + new + expansion + reactivation - contraction - churn = MRR at end, where the MRR at
each end is recomputed from the subscriptions (not read from the ledger), and the ledger's running
balance per customer equals the recomputed MRR after every step."""

from datetime import timedelta

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobrador.core import clock as clock_module
from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.services import cancel_subscription, resume_subscription, update_subscription
from cobrador.usage.ledger import local_day_bounds, movements_between
from cobrador.usage.models import CustomerMrr, MrrMovement
from cobrador.usage.services import customers_mrr
from tests.subscriptions.conftest import invoice, make_account, make_coupon, make_plan, renew, subscribe, utc
from tests.usage.ledger_support import reactivate, suspend

actions = st.lists(st.tuples(
    st.sampled_from(["subscribe", "subscribe_trial", "subscribe_coupon", "change_plan", "change_quantity",
                     "cancel_now", "cancel_at_end", "resume", "suspend", "reactivate", "wait"]),
    st.integers(0, 2),  # which account
    st.integers(0, 3),  # which plan / subscription / quantity
    st.integers(0, 35),  # days to wait after the action
), min_size=1, max_size=14)


def org_mrr(organization) -> int:
    totals = customers_mrr(organization.billing_accounts.values_list("pk", flat=True))
    return sum(by_currency.get("BRL", 0) for by_currency in totals.values())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(steps=actions)
def test_movements_reconcile_every_day_and_month(api, steps):
    clock_module.set(utc(2026, 1, 15, 12))
    try:
        with transaction.atomic():
            _run_scenario(api.organization, steps)
            transaction.set_rollback(True)
    finally:
        clock_module.set(None)


def _live(account):
    return list(Subscription.objects.filter(account=account, status__in=("trialing", "active", "past_due",
                                                                         "paused")).order_by("pk"))


def _run_scenario(org, steps):
    plans = [make_plan(org, amount=a, name=f"P{a}", interval=i) for a, i in
             ((10000, "month"), (25000, "month"), (200000, "year"), (9990, "month"))]
    trial_plan = make_plan(org, amount=12000, trial_days=7, name="Trial")
    coupons = [make_coupon(org, code="F10", percent_off=10, duration="forever"),
               make_coupon(org, code="R2", amount_off=3000, duration="repeating", duration_in_periods=2)]
    accounts = [make_account(org, name=f"C{i}") for i in range(3)]
    checkpoints = [(clock_module.now(), org_mrr(org))]
    for action, who, which, wait in steps:
        clock_module.advance(timedelta(seconds=1))  # each action after the last checkpoint
        account = accounts[who]
        account.refresh_from_db()
        live = _live(account)
        target = live[which % len(live)] if live else None
        with transaction.atomic():
            if action == "subscribe" and account.status == "active":
                subscribe(org, account, plans[which])
            elif action == "subscribe_trial" and account.status == "active":
                subscribe(org, account, trial_plan)
            elif action == "subscribe_coupon" and account.status == "active":
                subscribe(org, account, plans[which], coupon=coupons[which % 2].code)
            elif action == "change_plan" and target is not None and target.status != "paused":
                update_subscription(subscription=target, changes={"plan": plans[which].public_id})
            elif action == "change_quantity" and target is not None and target.status != "paused":
                update_subscription(subscription=target, changes={"quantity": which + 1})
            elif action == "cancel_now" and target is not None and not target.commitment_months:
                cancel_subscription(subscription=target, immediately=True)
            elif action == "cancel_at_end" and target is not None and target.status != "paused":
                cancel_subscription(subscription=target)
            elif action == "resume" and target is not None and target.cancel_at is not None \
                    and target.status != "paused":
                resume_subscription(subscription=target)
        if action == "suspend" and account.status == "active":
            suspend(account)
        elif action == "reactivate" and account.status == "suspended":
            reactivate(account)
        _check_balances(org)
        if wait:
            # The sweeps run at every checkpoint, so nothing due is left pending at one.
            for _day in range(1, wait + 1):
                at = clock_module.now() + timedelta(days=1)
                renew(at)
                invoice(at)
                checkpoints.append((at, org_mrr(org)))
        else:
            checkpoints.append((clock_module.now(), org_mrr(org)))
        _check_balances(org)
    _check_identity(org, checkpoints)


def _check_balances(org):
    recomputed = customers_mrr(org.billing_accounts.values_list("pk", flat=True))
    for balance in CustomerMrr.objects.filter(organization=org):
        assert balance.mrr == recomputed[balance.account_id].get(balance.currency, 0)
    assert not MrrMovement.objects.filter(organization=org, mrr_after__lt=0).exists()


def _check_identity(org, checkpoints):
    # Between consecutive checkpoints (one every simulated day) ...
    for (start, mrr_start), (end, mrr_end) in zip(checkpoints, checkpoints[1:], strict=False):
        # A checkpoint's MRR includes the movements at its own instant: the spans are (start, end].
        tick = timedelta(microseconds=1)
        m = movements_between(organization=org, start=start + tick, end=end + tick)
        assert mrr_start + m["new"] + m["expansion"] + m["reactivation"] - m["contraction"] - m["churn"] == mrr_end
    # ... and over every local day and every calendar month the scenario covers, from the ledger alone.
    first, last = checkpoints[0][0], checkpoints[-1][0]
    day = first.date() - timedelta(days=1)
    while day <= last.date():
        start, end = local_day_bounds("America/Sao_Paulo", day)
        _assert_reconciles(org, start, end)
        day += timedelta(days=1)
    for year, month in {(d.year, d.month) for d, _ in checkpoints}:
        start = utc(year, month, 1)
        _assert_reconciles(org, start, utc(year + month // 12, month % 12 + 1, 1))


def _assert_reconciles(org, start, end):
    opening = sum(MrrMovement.objects.filter(organization=org, occurred_at__lt=start).values_list("delta", flat=True))
    closing = sum(MrrMovement.objects.filter(organization=org, occurred_at__lt=end).values_list("delta", flat=True))
    m = movements_between(organization=org, start=start, end=end)
    assert opening + m["new"] + m["expansion"] + m["reactivation"] - m["contraction"] - m["churn"] == closing
    assert opening >= 0 and closing >= 0
