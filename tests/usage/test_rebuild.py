"""`cobrador usage rebuild --org ORG`: the ledger rebuilt from the subscriptions' history (their events)
is the ledger the live sink wrote; what the history lacks is reported and the ledger still ends at the
present."""

from datetime import date

import pytest
from django.db import transaction
from django.forms.models import model_to_dict

from cobrador.cli import main
from cobrador.events.models import Event
from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.services import cancel_subscription, update_subscription
from cobrador.usage.models import CustomerMrr, MrrMovement, UsageCohortRow, UsageDailySnapshot
from cobrador.usage.rebuild import rebuild_ledger
from cobrador.usage.services import customers_mrr
from tests.subscriptions.conftest import (
    invoice,
    make_account,
    make_coupon,
    make_plan,
    renew,
    subscribe,
    sweep,
    utc,
)
from tests.usage.ledger_support import reactivate, suspend


def ledger(organization) -> list[tuple]:
    return sorted(MrrMovement.objects.filter(organization=organization).values_list(
        "account_id", "occurred_at", "kind", "churn_type", "mrr_before", "mrr_after"))


def snapshot_rows(organization) -> list[dict]:
    return [{k: v for k, v in model_to_dict(row).items() if k not in ("id", "computed_at")}
            for row in UsageDailySnapshot.objects.filter(organization=organization).order_by("day")]


@pytest.fixture
def history(api, clock):
    """Three months of a small organization: sign-ups, a trial, a 2-period coupon, an upgrade and a
    downgrade, a cancellation at period end, a suspension and its reactivation."""
    org = api.organization
    org.created_at = utc(2026, 1, 5, 12)
    org.save(update_fields=["created_at"])
    clock.set(utc(2026, 1, 5, 12))
    basic, pro = make_plan(org, amount=10000, name="Basic"), make_plan(org, amount=25000, name="Pro")
    yearly = make_plan(org, amount=200000, interval="year", name="Anual")
    trial = make_plan(org, amount=12000, trial_days=7, name="Trial")
    make_coupon(org, code="R2", amount_off=3000, duration="repeating", duration_in_periods=2)
    a, b, c, d = (make_account(org, name=n) for n in "ABCD")
    sub_a = subscribe(org, a, basic)
    subscribe(org, b, yearly)
    subscribe(org, c, trial)
    sub_d = subscribe(org, d, basic, coupon="R2")
    invoice(utc(2026, 1, 5, 13))
    clock.set(utc(2026, 1, 20, 12))
    with transaction.atomic():
        update_subscription(subscription=Subscription.objects.get(pk=sub_a.pk), changes={"plan": pro.public_id})
    with transaction.atomic():
        update_subscription(subscription=Subscription.objects.get(pk=sub_a.pk), changes={"quantity": 3})
    with transaction.atomic():
        update_subscription(subscription=Subscription.objects.get(pk=sub_a.pk), changes={"quantity": 2})
    clock.set(utc(2026, 1, 25, 12))
    with transaction.atomic():
        cancel_subscription(subscription=Subscription.objects.get(pk=sub_d.pk))  # at period end (Feb 5)
    for day in range(1, 60, 3):
        at = utc(2026, 1, 6, 12) + (utc(2026, 1, 2) - utc(2026, 1, 1)) * day
        renew(at)
        invoice(at)
        if day == 31:
            suspend(c)
        if day == 40:
            reactivate(c)
            with transaction.atomic():  # from A's next period, March 5: a contraction
                update_subscription(subscription=Subscription.objects.get(pk=sub_a.pk), changes={"quantity": 1})
    sweep("usage-daily-snapshot", utc(2026, 3, 6, 4))
    sweep("usage-monthly-snapshot", utc(2026, 3, 6, 4))
    clock.set(utc(2026, 3, 6, 12))
    return org


def test_the_rebuilt_ledger_is_the_live_one_and_the_snapshots_come_out_the_same(history):
    live, days = ledger(history), snapshot_rows(history)
    cohorts = sorted(UsageCohortRow.objects.filter(organization=history).values_list(
        "month", "cohort_month", "customers", "active_customers", "mrr"))
    kinds = {kind for _, _, kind, *_ in live}
    assert {"new", "expansion", "contraction", "churn", "reactivation"} <= kinds
    assert len(days) == (date(2026, 3, 5) - date(2026, 1, 5)).days + 1

    with transaction.atomic():
        report = rebuild_ledger(organization=history)

    assert (report.history_starts_late, report.placed_at_start, report.corrected) == ([], [], [])
    assert report.differing_customers == []
    assert ledger(history) == live
    assert set(MrrMovement.objects.filter(organization=history).values_list("rebuilt", flat=True)) == {True}
    assert snapshot_rows(history) == days
    assert sorted(UsageCohortRow.objects.filter(organization=history).values_list(
        "month", "cohort_month", "customers", "active_customers", "mrr")) == cohorts
    now = customers_mrr(history.billing_accounts.values_list("pk", flat=True))
    for balance in CustomerMrr.objects.filter(organization=history):
        assert balance.mrr == now[balance.account_id].get(balance.currency, 0)
    # A cohort's starting MRR is its MRR at age 0, whichever month's row carries it.
    rows = list(UsageCohortRow.objects.filter(organization=history))
    at_age_0 = {r.cohort_month: r.mrr for r in rows if r.age_months == 0}
    assert at_age_0 and all(r.starting_mrr == at_age_0[r.cohort_month] for r in rows)


def test_a_lost_ledger_is_rebuilt_and_a_dry_run_changes_nothing(history):
    live = ledger(history)
    MrrMovement.objects.filter(organization=history).delete()
    CustomerMrr.objects.filter(organization=history).delete()
    with transaction.atomic():
        dry = rebuild_ledger(organization=history, write=False)
    assert not dry.written and MrrMovement.objects.filter(organization=history).count() == 0
    assert dry.movements_after == len(live) and dry.differing_customers != []
    with transaction.atomic():
        rebuild_ledger(organization=history)
    assert ledger(history) == live


def test_what_the_pruned_history_lacks_is_said_and_the_ledger_still_ends_at_the_present(history, clock):
    a = Subscription.objects.get(organization=history, account__name="A")
    b = Subscription.objects.get(organization=history, account__name="B")
    Event.objects.filter(organization=history, type="subscription.created", data__id=a.public_id).delete()
    Event.objects.filter(organization=history, data__id=b.public_id).delete()
    with transaction.atomic():
        report = rebuild_ledger(organization=history)
    assert [ref for ref, _ in report.history_starts_late] == [a.public_id]
    assert report.placed_at_start == [b.public_id]
    # B's yearly plan enters at its start with its state now (R$ 166,67 from Jan 5).
    [b_new] = MrrMovement.objects.filter(account=b.account)
    assert (b_new.kind, b_new.delta, b_new.occurred_at) == ("new", 16667, b.started_at)
    now = customers_mrr(history.billing_accounts.values_list("pk", flat=True))
    for balance in CustomerMrr.objects.filter(organization=history):
        assert balance.mrr == now[balance.account_id].get(balance.currency, 0)
    # Whatever the replay could not know, every day still reconciles.
    for row in snapshot_rows(history):
        m = row["movements"]
        assert row["mrr_at_start"] + m["new"] + m["expansion"] + m["reactivation"] - m["contraction"] \
            - m["churn"] == row["mrr"]


def test_the_command_prints_what_it_rebuilt_and_what_it_could_not(history, capsys):
    a = Subscription.objects.get(organization=history, account__name="A")
    Event.objects.filter(organization=history, type="subscription.created", data__id=a.public_id).delete()
    assert main(["usage", "rebuild", "--org", history.public_id, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "events replayed" in out and "dry run: nothing changed" in out
    assert f"{a.public_id}: from" in out and "history starts at the oldest surviving event" in out
    assert main(["usage", "rebuild", "--org", history.public_id]) == 0
    assert "ledger replaced; snapshots recomputed: 60 days, 2 months" in capsys.readouterr().out
    assert main(["usage", "rebuild", "--org", "org_nope"]) == 2
    assert "no organization 'org_nope'" in capsys.readouterr().err
