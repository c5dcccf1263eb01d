"""payment-retry under concurrency and crashes, against a committed database: every attempt exactly once."""

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, connections

from cobrador.core import clock
from cobrador.dunning import retries
from cobrador.dunning.models import DunningInvoice, RecoveryRecord
from cobrador.events.models import Event
from cobrador.gateways.models import SandboxCharge
from cobrador.gateways.sandbox import SandboxGateway
from cobrador.invoicing.models import Invoice
from cobrador.jobs.runner import run_job
from cobrador.payments import charging
from cobrador.payments.models import Payment
from tests import processes
from tests.concurrency import run_job_in_two_threads
from tests.dunning.conftest import day
from tests.factories import failed_invoices, make_org

RETRY_AT = day(1, 6)


def bulk_failed_invoices(organization, n: int) -> list[Invoice]:
    """n accounts whose first charge failed at day 0 01:05, which opened their dunning."""
    clock.set(day(0, 1, 5))
    return failed_invoices(organization, n)


def assert_each_attempt_once(organization, n: int, attempt: int = 1) -> None:
    per_method = Counter(RecoveryRecord.objects.filter(organization=organization, attempt_number=attempt)
                         .values_list("invoice_id", "method"))
    assert len({invoice for invoice, _ in per_method}) == n
    assert set(per_method.values()) == {1}
    # Never charged twice: one card payment and at most one document per invoice for this attempt.
    payments = Counter(Payment.objects.filter(organization=organization, source="dunning", attempt_number=attempt)
                       .values_list("invoice_id", "method"))
    assert set(payments.values()) == {1}
    # At the provider: one card charge per invoice for this attempt (none only if its worker died first).
    card_payments = Payment.objects.filter(organization=organization, source="dunning", attempt_number=attempt,
                                           method="card").values("public_id")
    charged = SandboxCharge.objects.filter(reference__in=card_payments).values_list("reference", flat=True)
    assert len(charged) == len(set(charged)) <= n


@pytest.fixture
def committed():
    yield
    clock.set(None)
    connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_payment_retry_at_once_make_each_attempt_exactly_once(committed, monkeypatch):
    monkeypatch.setattr(retries, "BATCH_SIZE", 25)
    organization = make_org("Twin", "test").organization
    n = 300
    bulk_failed_invoices(organization, n)
    # The sandbox answers a batch in milliseconds, so one worker could finish before the other starts:
    # give each batch a provider's latency, so that the two runs overlap.
    answer_now = SandboxGateway.charge_many

    def answer_after_a_while(self, requests):
        time.sleep(0.05)
        return answer_now(self, requests)

    monkeypatch.setattr(SandboxGateway, "charge_many", answer_after_a_while)
    clock.set(RETRY_AT)
    runs = run_job_in_two_threads("payment-retry", as_of=RETRY_AT, timeout=300)
    assert sum(run.counts.get("attempts", 0) for run in runs) == n
    assert all(run.counts.get("attempts", 0) > 0 for run in runs), "one worker did all the work"
    assert_each_attempt_once(organization, n)
    assert Counter(RecoveryRecord.objects.filter(attempt_number=1).values_list("method", "outcome")) == {
        ("card", "failed"): n, ("bank_slip", "issued"): n}
    assert Event.objects.filter(type="dunning.retry_attempted").count() == n
    assert set(DunningInvoice.objects.values_list("status", "next_attempt_number", "next_attempt_at")) == {
        ("scheduled", 2, day(3, 6))}


@pytest.mark.django_db(transaction=True)
def test_a_large_sweep_on_postgresql_runs_in_processes_and_makes_each_attempt_once(committed, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite sweeps run in one process (one writer at a time)")
    from cobrador.core import parallel
    from cobrador.dunning import sweeps

    # The spawned process reads its batch size from the environment; this one is given it directly.
    monkeypatch.setenv("COBRADOR_DUNNING_BATCH_SIZE", "25")
    monkeypatch.setattr(retries, "BATCH_SIZE", 25)
    monkeypatch.setattr(sweeps, "SWEEP_PROCESSES", 2)
    monkeypatch.setattr(sweeps, "PROCESSES_FROM", 100)
    organization = make_org("Spread", "test").organization
    n = 400
    bulk_failed_invoices(organization, n)
    # This process's gateway is slow, so the spawned one (a second or so to start) gets batches too.
    answer_now = SandboxGateway.charge_many
    monkeypatch.setattr(SandboxGateway, "charge_many", lambda self, requests: (time.sleep(0.5),
                                                                                answer_now(self, requests))[1])
    lanes = []
    run_in_processes = parallel.run_in_processes
    monkeypatch.setattr(parallel, "run_in_processes",
                        lambda *args, **kwargs: lanes.extend(run_in_processes(*args, **kwargs)) or lanes)
    clock.set(RETRY_AT)
    run = run_job("payment-retry", as_of=RETRY_AT)
    assert run.status == "succeeded"
    assert len(lanes) == 2 and all(lane.done > 0 for lane in lanes), [lane.done for lane in lanes]
    assert sum(lane.done for lane in lanes) == n
    assert run.counts == {"marked_overdue": n, "failed": n, "issued": n, "attempts": n}
    assert_each_attempt_once(organization, n)
    # The spawned process ran at the frozen clock: the next retries are due by the policy from day 1.
    assert set(DunningInvoice.objects.values_list("status", "next_attempt_number", "next_attempt_at")) == {
        ("scheduled", 2, day(3, 6))}
    assert set(RecoveryRecord.objects.filter(attempt_number=1).values_list("attempted_at", flat=True)) == {RETRY_AT}


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_died_mid_attempt_is_taken_over_after_its_lease(committed):
    organization = make_org("Crashy", "test").organization
    n = 40
    bulk_failed_invoices(organization, n)
    clock.set(RETRY_AT)
    # Worker A claims 10 attempts and dies at once.
    claimed_a, _ = retries.claim_due(as_of=RETRY_AT, limit=10)
    # Worker B claims 10, writes its card payments, calls the gateway and dies before recording the answers.
    claimed_b, token_b = retries.claim_due(as_of=RETRY_AT, limit=10)
    rows = list(DunningInvoice.objects.filter(pk__in=claimed_b).select_related("organization", "account", "invoice"))
    attempts = [retries.Attempt(dunning=row, number=1, methods=list(row.next_methods), anchor=RETRY_AT,
                                token=token_b) for row in rows]
    charged = retries._prepare_round(attempts, retries._MethodsOnFile({r.account_id for r in rows}), Counter())
    charging.call_concurrently(lambda pair: charging.send_charge(pair[0]), charged)
    assert RecoveryRecord.objects.filter(outcome="processing").count() == 10

    # A run at the same time leaves the leased attempts alone.
    run = run_job("payment-retry", as_of=RETRY_AT)
    assert run.counts["attempts"] == n - 20
    assert DunningInvoice.objects.filter(status="running").count() == 20

    # After the lease, the next run takes them over: A's walk from the start, B's not again.
    clock.set(RETRY_AT + retries.LEASE + timedelta(seconds=1))
    run = run_job("payment-retry", as_of=RETRY_AT)
    assert run.counts["attempts"] == 20
    assert not DunningInvoice.objects.filter(status="running").exists()
    per_invoice = Counter(RecoveryRecord.objects.filter(attempt_number=1).values_list("invoice_id", flat=True))
    assert set(per_invoice.values()) == {1, 2}  # B's attempts ended at their unrecorded card charge

    # Reconciliation settles B's card charges; their records follow.
    clock.set(RETRY_AT + timedelta(minutes=30))
    run_job("payment-reconciliation")
    assert not RecoveryRecord.objects.filter(outcome="processing").exists()
    assert RecoveryRecord.objects.filter(invoice_id__in=[r.invoice_id for r in rows], attempt_number=1).count() == 10
    assert set(RecoveryRecord.objects.filter(invoice_id__in=[r.invoice_id for r in rows], attempt_number=1)
               .values_list("method", "outcome")) == {("card", "failed")}
    assert_each_attempt_once(organization, n)
    assert DunningInvoice.objects.filter(status="scheduled", next_attempt_number=2).count() == n


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_sweep_killed_halfway_and_rerun_makes_each_attempt_exactly_once(committed, settings):
    settings.JOB_ABANDONED_AFTER = 1
    organization = make_org("Killed", "test").organization
    n = 600
    bulk_failed_invoices(organization, n)
    clock.set(RETRY_AT)
    env = processes.worker_env(COBRADOR_TIME_TRAVEL="1", COBRADOR_DUNNING_BATCH_SIZE="20", **processes.HEARTBEAT_ENV)
    proc = processes.start("jobs", "run", "payment-retry", "--at", RETRY_AT.isoformat(), env=env)
    try:
        processes.wait_until(lambda: DunningInvoice.objects.filter(next_attempt_number=2).count() >= 40
                             or proc.poll() is not None, timeout=120, interval=0.005,
                             message="some finished attempts")
    finally:
        processes.kill(proc)
    done = DunningInvoice.objects.filter(next_attempt_number=2).count()
    assert 0 < done < n, f"the run was not killed halfway ({done} of {n}): {processes.output(proc)}"

    clock.set(RETRY_AT + retries.LEASE + timedelta(seconds=1))
    processes.wait_until_abandonable("payment-retry", after=1)
    run = run_job("payment-retry", as_of=RETRY_AT)
    assert run.status == "succeeded"
    # Reconciliation settles what the killed run left in flight (a charge that never reached the
    # sandbox is failed after the second ask, an hour later).
    for minutes in (30, 120):
        clock.set(RETRY_AT + timedelta(minutes=minutes))
        run_job("payment-reconciliation")

    assert not DunningInvoice.objects.filter(status="running").exists()
    assert DunningInvoice.objects.filter(status="scheduled", next_attempt_number=2).count() == n
    assert not RecoveryRecord.objects.filter(outcome="processing").exists()
    assert_each_attempt_once(organization, n)
