"""invoice-generation under concurrency and crashes, against a committed database."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connections

from cobrador.core import clock
from cobrador.invoicing.models import Invoice, InvoiceNumberSequence
from cobrador.jobs.models import JobRun
from cobrador.jobs.runner import run_job
from cobrador.subscriptions.models import Subscription
from tests import processes
from tests.concurrency import run_job_in_two_threads
from tests.factories import make_org
from tests.subscriptions.conftest import make_account, make_plan, utc

START = utc(2026, 3, 1, 12)
AS_OF = utc(2026, 3, 1, 13)


def bulk_subscriptions(organization, n: int) -> list[Subscription]:
    """n active monthly subscriptions starting at START, inserted in bulk (volume, not API behaviour)."""
    plan = make_plan(organization, amount=990)
    accounts = [make_account(organization, name=f"Customer {i}") for i in range(min(n, 50))]
    rows = [Subscription(organization=organization, account=accounts[i % len(accounts)], plan=plan, quantity=1 + i % 3,
                         status="active", started_at=START, current_period_start=START,
                         current_period_end=utc(2026, 4, 1, 12), billing_anchor_day=1, created_at=START,
                         updated_at=START) for i in range(n)]
    return Subscription.objects.bulk_create(rows, batch_size=1000)


def assert_one_invoice_per_period_and_gapless(organization, n: int) -> None:
    per_period = Counter(Invoice.objects.filter(organization=organization).values_list("subscription_id",
                                                                                      "period_start"))
    assert len(per_period) == n and set(per_period.values()) == {1}
    numbers = sorted(Invoice.objects.filter(organization=organization).values_list("number", flat=True))
    assert numbers == list(range(1, n + 1))
    assert InvoiceNumberSequence.objects.get(organization=organization).last_number == n


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_invoice_generation_at_once_make_one_invoice_per_period():
    clock.set(START)
    try:
        organization = make_org("Twin", "live").organization
        other = make_org("Other", "live").organization
        bulk_subscriptions(organization, 1200)
        bulk_subscriptions(other, 300)
        runs = run_job_in_two_threads("invoice-generation", as_of=AS_OF, timeout=120)
        assert sum(run.counts.get("invoices_created", 0) for run in runs) == 1500
        assert_one_invoice_per_period_and_gapless(organization, 1200)
        assert_one_invoice_per_period_and_gapless(other, 300)
    finally:
        clock.set(None)
        connections.close_all()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_killed_halfway_and_rerun_completes_without_duplicates_or_gaps(settings):
    settings.JOB_ABANDONED_AFTER = 2
    clock.set(START)
    try:
        organization = make_org("Crashy", "live").organization
        n = 8000
        bulk_subscriptions(organization, n)
        env = processes.worker_env(COBRADOR_TIME_TRAVEL="1", COBRADOR_JOB_HEARTBEAT_SECONDS="0.2")
        proc = processes.start("jobs", "run", "invoice-generation", "--at", AS_OF.isoformat(), env=env)
        try:
            processes.wait_until(lambda: Invoice.objects.exists() or proc.poll() is not None, timeout=60,
                                 interval=0.005, message="the first committed batch")
        finally:
            processes.kill(proc)
        made = Invoice.objects.count()
        assert 0 < made < n, f"the run was not killed halfway ({made} of {n}): {processes.output(proc)}"
        # What the killed run committed is whole batches, numbered without gaps.
        assert sorted(Invoice.objects.values_list("number", flat=True)) == list(range(1, made + 1))

        # kill -9 left its run `running`: while its heartbeat is fresh the next tick skips...
        killed = JobRun.objects.get(job_name="invoice-generation")
        assert killed.status == "running" and killed.heartbeat_at > killed.started_at
        assert run_job("invoice-generation", as_of=AS_OF).status == "skipped"
        # ...and once it is stale the run is marked abandoned and the next one takes over.
        processes.wait_until(lambda: killed.heartbeat_at < clock.wall_now() - timedelta(seconds=2.1), timeout=10)
        run = run_job("invoice-generation", as_of=AS_OF)
        assert JobRun.objects.get(pk=killed.pk).status == "abandoned"
        assert run.status == "succeeded" and run.counts["invoices_created"] == n - made
        assert_one_invoice_per_period_and_gapless(organization, n)
    finally:
        clock.set(None)
