"""The subscription-renewal sweep: cancellations, trials, terms, periods, catch-up, reruns."""

from datetime import timedelta

import pytest

from cobrador.events.models import Event
from cobrador.invoicing.models import Invoice
from cobrador.jobs.catalog import JOBS
from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.services import cancel_subscription, confirm_renewal
from tests.subscriptions.conftest import (
    events_of,
    invoice,
    make_account,
    make_plan,
    refresh,
    renew,
    subscribe,
    utc,
)


@pytest.fixture
def org(api):
    return api.organization


@pytest.fixture
def account(org, clock):
    return make_account(org)


@pytest.fixture
def plan(org, clock):
    return make_plan(org, amount=10000)


def test_both_jobs_are_registered_with_their_schedules():
    assert JOBS["subscription-renewal"].cron == "0 0 * * *"
    assert JOBS["invoice-generation"].cron == "0 1 * * *"


def test_periods_advance_at_their_end_and_emit_renewed(org, account, plan, clock):
    sub = subscribe(org, account, plan)
    run = renew(utc(2026, 4, 1, 11, 59))
    assert run.status == "succeeded" and refresh(sub).current_period_start == utc(2026, 3, 1, 12)
    run = renew(utc(2026, 4, 1, 12))
    sub = refresh(sub)
    assert (sub.current_period_start, sub.current_period_end) == (utc(2026, 4, 1, 12), utc(2026, 5, 1, 12))
    assert run.counts["periods_advanced"] == 1
    [event] = events_of("subscription.renewed", sub)
    assert event.data["current_period_start"] == "2026-04-01T12:00:00Z"


def test_anchor_31_subscription_through_february_of_a_leap_year(org, account, plan, clock):
    clock.set(utc(2028, 1, 31, 15))
    sub = subscribe(org, account, plan)
    seen = []
    for day in [utc(2028, 2, 29), utc(2028, 3, 1), utc(2028, 3, 31), utc(2028, 4, 1), utc(2028, 5, 1)]:
        renew(day + timedelta(hours=16))
        sub = refresh(sub)
        seen.append(sub.current_period_start.date().isoformat())
    assert seen == ["2028-02-29", "2028-02-29", "2028-03-31", "2028-03-31", "2028-04-30"]
    assert sub.billing_anchor_day == 31


def test_yearly_plan_started_on_february_29(org, account, clock):
    yearly = make_plan(org, interval="year", amount=100000)
    clock.set(utc(2028, 2, 29, 10))
    sub = subscribe(org, account, yearly)
    assert sub.current_period_end == utc(2029, 2, 28, 10)
    for year in (2029, 2030, 2031, 2032):
        renew(utc(year, 3, 1))
    sub = refresh(sub)
    assert (sub.current_period_start, sub.current_period_end) == (utc(2032, 2, 29, 10), utc(2033, 2, 28, 10))
    assert len(events_of("subscription.renewed", sub)) == 4


def test_a_scheduled_cancellation_is_processed_before_renewal_and_never_invoiced(org, account, plan, clock):
    sub = subscribe(org, account, plan)
    invoice(utc(2026, 3, 2, 1))  # the first period's invoice
    cancel_subscription(subscription=refresh(sub), reason="moving out")
    run = renew(utc(2026, 4, 1, 12))
    sub = refresh(sub)
    assert sub.status == "canceled" and sub.ended_at == utc(2026, 4, 1, 12)
    assert sub.current_period_start == utc(2026, 3, 1, 12)  # not renewed
    assert run.counts["canceled"] == 1 and "periods_advanced" not in run.counts
    assert events_of("subscription.renewed") == []
    assert [e.data["cancellation_reason"] for e in events_of("subscription.canceled")] == ["moving out"]
    invoice(utc(2026, 4, 2, 1))
    assert Invoice.objects.filter(subscription=sub).count() == 1
    renew(utc(2026, 6, 1))
    assert len(events_of("subscription.canceled")) == 1


def test_trials_that_ended_start_the_first_paid_period_or_pause(org, plan, clock):
    trial_plan = make_plan(org, trial_days=14)
    with_card = subscribe(org, make_account(org), trial_plan)
    without_card = subscribe(org, make_account(org, card=False), trial_plan)
    run = renew(utc(2026, 3, 15, 12))
    with_card, without_card = refresh(with_card), refresh(without_card)
    assert with_card.status == "active"
    assert (with_card.current_period_start, with_card.current_period_end) == (utc(2026, 3, 15, 12),
                                                                             utc(2026, 4, 15, 12))
    assert with_card.payment_method is not None
    assert without_card.status == "paused"
    assert run.counts["trials_converted"] == 1 and run.counts["paused_without_payment_method"] == 1
    assert len(events_of("subscription.paused", without_card)) == 1
    renew(utc(2026, 5, 1))
    assert refresh(without_card).status == "paused"
    assert refresh(with_card).current_period_start == utc(2026, 4, 15, 12)


def test_a_trial_that_ended_long_ago_is_converted_then_caught_up(org, account, clock):
    trial_plan = make_plan(org, trial_days=5)
    sub = subscribe(org, account, trial_plan)
    renew(utc(2026, 5, 10))
    sub = refresh(sub)
    assert sub.status == "active"
    assert sub.current_period_start == utc(2026, 5, 6, 12)
    assert len(events_of("subscription.renewed", sub)) == 2  # Apr 6 and May 6


def test_auto_renewal_starts_a_new_term(org, account, plan, clock):
    sub = subscribe(org, account, plan, commitment_months=12)
    assert sub.commitment_end == utc(2027, 3, 1, 12)
    renew(utc(2026, 3, 20))
    assert events_of("subscription.renewal_prompted") == []  # auto mode is never prompted
    run = renew(utc(2027, 3, 1, 12))
    sub = refresh(sub)
    assert sub.status == "active" and sub.commitment_end == utc(2028, 3, 1, 12)
    assert sub.current_period_start == utc(2027, 3, 1, 12)
    assert run.counts["terms_renewed"] == 1


def test_prompt_mode_renews_only_if_confirmed(org, account, plan, clock, settings):
    confirmed = subscribe(org, account, plan, commitment_months=12, renewal_mode="prompt")
    silent = subscribe(org, account, plan, commitment_months=12, renewal_mode="prompt")
    for month in range(1, 12):  # monthly renewals, April 2026 to February 2027
        renew(utc(2026 + (2 + month) // 12, (2 + month) % 12 + 1, 1, 12))
    assert events_of("subscription.renewal_prompted") == []
    renew(utc(2027, 2, 14, 11, 59))  # 15 days + 1 minute before the term ends
    assert events_of("subscription.renewal_prompted") == []
    renew(utc(2027, 2, 14, 12))
    prompted = events_of("subscription.renewal_prompted")
    assert sorted(e.data["id"] for e in prompted) == sorted([confirmed.public_id, silent.public_id])
    renew(utc(2027, 2, 20))
    assert len(events_of("subscription.renewal_prompted")) == 2  # once per term

    clock.set(utc(2027, 2, 21))
    confirm_renewal(subscription=refresh(confirmed))
    run = renew(utc(2027, 3, 1, 12))
    confirmed, silent = refresh(confirmed), refresh(silent)
    assert confirmed.status == "active" and confirmed.commitment_end == utc(2028, 3, 1, 12)
    assert confirmed.renewal_confirmed_at is None and confirmed.renewal_prompted_at is None  # the new term asks again
    assert confirmed.current_period_start == utc(2027, 3, 1, 12)
    assert silent.status == "expired" and silent.ended_at == utc(2027, 3, 1, 12)
    assert silent.current_period_start == utc(2027, 2, 1, 12)  # an expired subscription does not renew
    assert run.counts["expired"] == 1 and run.counts["terms_renewed"] == 1
    assert [e.data["id"] for e in events_of("subscription.expired")] == [silent.public_id]
    invoice(utc(2027, 3, 2, 1))
    assert not Invoice.objects.filter(subscription=silent, period_start=utc(2027, 3, 1, 12)).exists()
    assert Invoice.objects.filter(subscription=confirmed, period_start=utc(2027, 3, 1, 12)).exists()


def test_prompt_days_come_from_the_setting(org, account, plan, clock, settings):
    settings.RENEWAL_PROMPT_DAYS = 3
    sub = subscribe(org, account, plan, commitment_months=1, renewal_mode="prompt")
    renew(utc(2026, 3, 20))
    assert events_of("subscription.renewal_prompted") == []
    renew(utc(2026, 3, 29, 12))
    assert len(events_of("subscription.renewal_prompted", sub)) == 1


def test_prompt_days_of_the_organization_win_over_the_default(api, org, account, plan, clock):
    response = api.patch("/v1/organizations/settings/notifications", {"renewal_prompt_days": 5})
    assert response.status_code == 200, response.content
    sub = subscribe(org, account, plan, commitment_months=1, renewal_mode="prompt")
    renew(utc(2026, 3, 20))  # 11 days before the term ends: inside the default 15, outside the org's 5
    assert events_of("subscription.renewal_prompted") == []
    renew(utc(2026, 3, 27, 12))
    assert len(events_of("subscription.renewal_prompted", sub)) == 1


def test_catch_up_after_three_days_without_sweeps(org, plan, clock):
    """Subscriptions whose periods end on three days the sweeps missed are each advanced once and
    invoiced once when the sweeps come back; running them again changes nothing."""
    subs = []
    for day in (10, 11, 12):
        clock.set(utc(2026, 3, day, 6))
        subs.append(subscribe(org, make_account(org), plan))
    invoice(utc(2026, 3, 13, 1))
    assert Invoice.objects.count() == 3
    renew(utc(2026, 4, 9))  # the last sweep before the outage
    invoice(utc(2026, 4, 9, 1))
    # No sweeps on April 10, 11 and 12.
    run = renew(utc(2026, 4, 13))
    assert run.counts["periods_advanced"] == 3
    for sub, day in zip(subs, (10, 11, 12), strict=True):
        sub = refresh(sub)
        assert sub.current_period_start == utc(2026, 4, day, 6)
        assert len(events_of("subscription.renewed", sub)) == 1
    run = invoice(utc(2026, 4, 13, 1))
    assert run.counts["invoices_created"] == 3
    for sub, day in zip(subs, (10, 11, 12), strict=True):
        assert list(Invoice.objects.filter(subscription=sub).order_by("period_start")
                    .values_list("period_start", flat=True)) == [utc(2026, 3, day, 6), utc(2026, 4, day, 6)]
    events, invoices = Event.objects.count(), Invoice.objects.count()
    renew(utc(2026, 4, 13))
    rerun = invoice(utc(2026, 4, 13, 1))
    assert (Event.objects.count(), Invoice.objects.count()) == (events, invoices)
    assert rerun.items_done == 0 and rerun.counts == {}


def test_periods_missed_entirely_are_each_advanced_and_invoiced_once(org, account, plan, clock):
    """Sweeps down for more than two months: every missed period is advanced and later invoiced once."""
    sub = subscribe(org, account, plan)
    invoice(utc(2026, 3, 2, 1))
    run = renew(utc(2026, 5, 20))
    sub = refresh(sub)
    assert run.counts["periods_advanced"] == 2
    assert sub.current_period_start == utc(2026, 5, 1, 12)
    assert sub.uninvoiced_since == utc(2026, 4, 1, 12)
    run = invoice(utc(2026, 5, 20, 1))
    assert run.counts["invoices_created"] == 2 and run.counts["missed_periods_billed"] == 1
    assert list(Invoice.objects.filter(subscription=sub).order_by("number").values_list(
        "number", "period_start", "period_end")) == [
        (1, utc(2026, 3, 1, 12), utc(2026, 4, 1, 12)),
        (2, utc(2026, 4, 1, 12), utc(2026, 5, 1, 12)),
        (3, utc(2026, 5, 1, 12), utc(2026, 6, 1, 12))]
    assert refresh(sub).uninvoiced_since is None
    assert invoice(utc(2026, 5, 21, 1)).items_done == 0


def test_rerunning_the_renewal_sweep_is_a_no_op(org, account, plan, clock):
    subscribe(org, account, plan)
    cancel_target = subscribe(org, account, plan)
    cancel_subscription(subscription=refresh(cancel_target))
    subscribe(org, account, make_plan(org, trial_days=3))
    subscribe(org, account, plan, commitment_months=1, renewal_mode="prompt")
    renew(utc(2026, 4, 2))
    state = list(Subscription.objects.order_by("pk").values())
    events = Event.objects.count()
    run = renew(utc(2026, 4, 2))
    assert run.items_done == 0 and run.counts == {}
    assert list(Subscription.objects.order_by("pk").values()) == state
    assert Event.objects.count() == events


def test_paused_canceled_and_expired_subscriptions_are_left_alone(org, account, plan, clock):
    sub = subscribe(org, account, plan)
    cancel_subscription(subscription=refresh(sub), immediately=True)
    renew(utc(2026, 6, 1))
    assert refresh(sub).current_period_start == utc(2026, 3, 1, 12)
    assert events_of("subscription.renewed") == []


def test_a_backdated_start_bills_every_period_since_then_once(org, account, plan, clock):
    sub = subscribe(org, account, plan, start=utc(2025, 12, 15, 9))
    renew(utc(2026, 3, 1, 12))
    sub = refresh(sub)
    assert sub.current_period_start == utc(2026, 2, 15, 9)
    assert sub.uninvoiced_since == utc(2025, 12, 15, 9)
    invoice(utc(2026, 3, 1, 13))
    assert list(Invoice.objects.filter(subscription=sub).order_by("number").values_list("period_start", flat=True)) \
        == [utc(2025, 12, 15, 9), utc(2026, 1, 15, 9), utc(2026, 2, 15, 9)]
    renew(utc(2026, 3, 1, 12))
    assert invoice(utc(2026, 3, 1, 13)).items_done == 0
