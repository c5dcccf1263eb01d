"""usage-daily-snapshot and usage-monthly-snapshot: values, reruns, two workers, catch-up, cohorts."""

from datetime import date, timedelta

import pytest
from django.db import transaction
from django.forms.models import model_to_dict

from cobrador.dunning.models import DelinquentAccount
from cobrador.jobs.catalog import JOBS
from cobrador.proposals.models import Proposal
from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.services import cancel_subscription, update_subscription
from cobrador.usage.models import DEFINITION_VERSION, UsageCohortRow, UsageDailySnapshot, UsageMonthlySnapshot
from tests.concurrency import run_job_in_two_threads
from tests.conftest import make_org
from tests.subscriptions.conftest import invoice, make_account, make_plan, renew, subscribe, sweep, utc


def daily(at):
    return sweep("usage-daily-snapshot", at)


def rows(organization):
    return [{k: v for k, v in model_to_dict(row).items() if k not in ("id", "computed_at")}
            for row in UsageDailySnapshot.objects.filter(organization=organization).order_by("day")]


@pytest.fixture
def org(api):
    return api.organization


def test_both_jobs_are_in_the_catalogue_with_their_schedules():
    assert JOBS["usage-daily-snapshot"].cron == "15 0 * * *"
    assert JOBS["usage-monthly-snapshot"].cron == "45 0 1 * *"


def test_a_day_reconciles_and_counts_its_invoices(org, clock):
    clock.set(utc(2026, 3, 1, 12))
    org.created_at = utc(2026, 3, 1, 12)
    org.save(update_fields=["created_at"])
    account = make_account(org)
    subscribe(org, account, make_plan(org, amount=10000))
    invoice(utc(2026, 3, 1, 13))
    subscribe(org, account, make_plan(org, amount=200000, interval="year", name="Anual"))
    run = daily(utc(2026, 3, 2, 3, 15))  # 00:15 in São Paulo: March 1 has ended there
    assert run.status == "succeeded"
    [day] = UsageDailySnapshot.objects.filter(organization=org)
    assert (day.day, day.mrr_at_start, day.mrr, day.arr, day.active_customers) == (
        date(2026, 3, 1), 0, 26667, 12 * 26667, 1)
    assert (day.movements["new"], day.movements["expansion"], day.movements["new_count"]) == (10000, 16667, 1)
    assert day.invoices_issued == 1 and day.invoices_issued_amount == 10000
    assert day.definition_version == DEFINITION_VERSION
    m = day.movements
    assert day.mrr_at_start + m["new"] + m["expansion"] + m["reactivation"] - m["contraction"] - m["churn"] == day.mrr


def test_a_rerun_replaces_the_row_with_the_same_values(org, clock):
    org.created_at = utc(2026, 3, 1, 12)
    org.save(update_fields=["created_at"])
    subscribe(org, make_account(org), make_plan(org, amount=10000))
    daily(utc(2026, 3, 2, 4))
    first = rows(org)
    daily(utc(2026, 3, 2, 5))
    assert rows(org) == first and len(first) == 1


def test_ten_missed_days_are_caught_up_each_as_of_its_own_day(org, clock):
    org.created_at = utc(2026, 3, 1, 12)
    org.save(update_fields=["created_at"])
    plan, large = make_plan(org, amount=10000), make_plan(org, amount=30000, name="L")
    sub = subscribe(org, make_account(org), plan)
    daily(utc(2026, 3, 2, 4))
    # The worker is down from March 2 to March 12; meanwhile a second customer arrives on March 6 and
    # leaves on March 9, when the first asks for a second seat (from their next period: no movement yet).
    clock.set(utc(2026, 3, 6, 15))
    other = subscribe(org, make_account(org, name="Other"), large)
    clock.set(utc(2026, 3, 9, 15))
    with transaction.atomic():
        cancel_subscription(subscription=Subscription.objects.get(pk=other.pk), immediately=True)
        update_subscription(subscription=Subscription.objects.get(pk=sub.pk), changes={"quantity": 2})
    run = daily(utc(2026, 3, 12, 4))
    assert run.status == "succeeded"
    days = {row["day"]: row for row in rows(org)}
    assert sorted(days) == [date(2026, 3, d) for d in range(1, 12)]
    assert [days[date(2026, 3, d)]["mrr"] for d in range(1, 12)] == [10000] * 5 + [40000] * 3 + [10000] * 3
    assert days[date(2026, 3, 9)]["movements"]["churn"] == 30000
    assert days[date(2026, 3, 9)]["movements"]["churn_voluntary"] == 30000


def test_the_monthly_snapshot_and_cohorts(org, clock):
    org.created_at = utc(2026, 1, 10, 12)
    org.save(update_fields=["created_at"])
    plan = make_plan(org, amount=10000)
    clock.set(utc(2026, 1, 10, 12))
    a = subscribe(org, make_account(org, name="A"), plan)
    subscribe(org, make_account(org, name="B"), plan, quantity=2)
    clock.set(utc(2026, 2, 10, 15))
    subscribe(org, make_account(org, name="C"), plan)
    with transaction.atomic():
        cancel_subscription(subscription=Subscription.objects.get(pk=a.pk), immediately=True)
    run = sweep("usage-monthly-snapshot", utc(2026, 3, 1, 3, 45))
    assert run.status == "succeeded"
    jan, feb = UsageMonthlySnapshot.objects.filter(organization=org).order_by("month")
    assert (jan.month, jan.mrr_at_start, jan.mrr, jan.movements["new"]) == (date(2026, 1, 1), 0, 30000, 30000)
    assert (feb.mrr_at_start, feb.mrr, feb.movements["new"], feb.movements["churn"]) == (30000, 30000, 10000, 10000)
    cohorts = {(r.month, r.cohort_month): r for r in UsageCohortRow.objects.filter(organization=org)}
    january_at_two = cohorts[(date(2026, 2, 1), date(2026, 1, 1))]
    assert (january_at_two.age_months, january_at_two.customers, january_at_two.active_customers,
            january_at_two.starting_mrr, january_at_two.mrr) == (1, 2, 1, 30000, 20000)
    february = cohorts[(date(2026, 2, 1), date(2026, 2, 1))]
    assert (february.age_months, february.customers, february.active_customers, february.mrr) == (0, 1, 1, 10000)
    # A rerun gives the same rows.
    before = sorted((r.month, r.cohort_month, r.active_customers, r.mrr) for r in UsageCohortRow.objects.all())
    sweep("usage-monthly-snapshot", utc(2026, 3, 1, 5))
    assert sorted((r.month, r.cohort_month, r.active_customers, r.mrr) for r in UsageCohortRow.objects.all()) == before


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_write_each_day_once_with_the_same_values(clock):
    organization = make_org("Concorrente").organization
    organization.created_at = utc(2026, 2, 20, 12)
    organization.save(update_fields=["created_at"])
    subscribe(organization, make_account(organization), make_plan(organization, amount=10000))
    renew(utc(2026, 3, 1, 12))
    run_job_in_two_threads("usage-daily-snapshot", as_of=utc(2026, 3, 3, 4), timeout=60)
    days = rows(organization)
    assert [row["day"] for row in days] == [date(2026, 2, 20) + timedelta(days=i) for i in range(11)]
    assert UsageDailySnapshot.objects.count() == len(days)


def test_a_day_counts_its_delinquent_and_suspended_accounts_proposals_and_current_subscriptions(org, clock):
    org.created_at = utc(2026, 3, 1, 12)
    org.save(update_fields=["created_at"])
    plan = make_plan(org, amount=10000)
    late, gone = make_account(org, name="Late"), make_account(org, name="Gone")
    subscribe(org, late, plan)
    now = utc(2026, 3, 1, 12)
    # Late: delinquent from March 1, suspended on March 3 (local), recovered on March 5.
    DelinquentAccount.objects.create(organization=org, account=late, status="recovered", opened_at=now,
                                     suspended_at=utc(2026, 3, 3, 12), closed_at=utc(2026, 3, 5, 12), updated_at=now)
    # Gone: delinquent from March 2 and still open.
    DelinquentAccount.objects.create(organization=org, account=gone, opened_at=utc(2026, 3, 2, 12), updated_at=now)
    Proposal.objects.create(organization=org, number=1, prospect_name="P", prospect_email="p@example.com",
                            currency="BRL", status="accepted", sent_at=utc(2026, 3, 2, 14),
                            accepted_at=utc(2026, 3, 4, 14), expires_on=date(2026, 3, 30), created_at=now,
                            updated_at=now)
    daily(utc(2026, 3, 6, 4))  # catches up March 1-5, of which March 5 just ended
    days = {row["day"]: row for row in rows(org)}
    assert [(days[date(2026, 3, d)]["delinquent_accounts"], days[date(2026, 3, d)]["suspended_accounts"])
            for d in range(1, 6)] == [(1, 0), (2, 0), (1, 1), (1, 1), (1, 0)]
    assert days[date(2026, 3, 2)]["proposals_sent"] == 1 and days[date(2026, 3, 4)]["proposals_accepted"] == 1
    assert days[date(2026, 3, 5)]["subscriptions"] == {"active": {plan.public_id: 1}}
    assert days[date(2026, 3, 4)]["subscriptions"] == {}  # a caught-up day cannot know its own
