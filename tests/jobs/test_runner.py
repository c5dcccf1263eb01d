"""The sweep runner: JobRun rows, one transaction per batch, failing items isolated, counted,
recorded and parked. The sweep under test is a tiny one defined here and registered as a job."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobrador.jobs import catalog
from cobrador.jobs.catalog import JobSpec
from cobrador.jobs.models import FailedItem, JobRun
from cobrador.jobs.runner import run_job
from cobrador.organizations.models import Organization

JOB = "test-mark-organizations"
BATCHES: list[dict] = []  # what mark_batch saw, per call
BATCH_SIZE = {"value": 2}


def mark_organizations_sweep(run) -> None:
    """Appends "+" to the name of every organization created by `as_of`; names starting with
    "poison" make their batch fail after the write, so a rollback is visible."""
    ids = Organization.objects.filter(created_at__lte=run.as_of).order_by("pk").values_list("pk", flat=True)

    def mark_batch(batch):
        BATCHES.append({"ids": list(batch), "outermost_transaction": connection.in_atomic_block
                        and not connection.savepoint_ids})
        Organization.objects.filter(pk__in=batch).update(name=Concat(F("name"), Value("+")))
        run.count("marked", len(batch))
        poisoned = Organization.objects.filter(pk__in=batch, name__startswith="poison").first()
        if poisoned is not None:
            raise ValueError(f"cannot mark {poisoned.public_id}")

    run.process(ids, mark_batch, batch_size=BATCH_SIZE["value"])


def exploding_sweep(run) -> None:
    raise RuntimeError("the sweep itself broke")


@pytest.fixture(autouse=True)
def registered_jobs(monkeypatch):
    monkeypatch.setitem(catalog.JOBS, JOB, JobSpec(JOB, "0 * * * *", f"{__name__}.mark_organizations_sweep",
                                                   "test sweep"))
    monkeypatch.setitem(catalog.JOBS, "test-exploding", JobSpec("test-exploding", "0 * * * *",
                                                                f"{__name__}.exploding_sweep", "test sweep"))
    BATCHES.clear()
    BATCH_SIZE["value"] = 2
    yield
    BATCHES.clear()


def make_organizations(names: list[str], at: datetime) -> list[Organization]:
    return [Organization.objects.create(name=name, created_at=at) for name in names]


def names() -> list[str]:
    return list(Organization.objects.order_by("pk").values_list("name", flat=True))


@pytest.mark.django_db
def test_a_run_writes_a_job_run_with_its_counts(clock):
    make_organizations(["a", "b", "c"], clock.now() - timedelta(days=1))
    make_organizations(["later"], clock.now() + timedelta(days=1))  # not due as of now

    run = run_job(JOB, trigger="cli")

    run.refresh_from_db()
    assert (run.job_name, run.trigger, run.status) == (JOB, "cli", "succeeded")
    assert run.as_of == clock.now() and run.started_at == clock.now() and run.finished_at == clock.now()
    assert (run.items_done, run.items_failed, run.items_skipped) == (3, 0, 0)
    assert run.counts == {"marked": 3}
    assert run.error == ""
    assert names() == ["a+", "b+", "c+", "later"]


@pytest.mark.django_db
def test_as_of_decides_what_is_due(clock):
    make_organizations(["now"], clock.now())
    make_organizations(["tomorrow"], clock.now() + timedelta(days=1))

    run = run_job(JOB, as_of=clock.now() + timedelta(days=1))

    assert run.as_of == clock.now() + timedelta(days=1)
    assert run.items_done == 2
    assert names() == ["now+", "tomorrow+"]


@pytest.mark.django_db(transaction=True)
def test_items_are_processed_in_bounded_batches_of_one_transaction_each(clock):
    make_organizations([f"o{i}" for i in range(5)], clock.now())

    run_job(JOB)

    assert [len(batch["ids"]) for batch in BATCHES] == [2, 2, 1]
    assert all(batch["outermost_transaction"] for batch in BATCHES)


@pytest.mark.django_db(transaction=True)
def test_a_failing_item_is_isolated_and_the_rest_of_its_batch_commits(clock):
    organizations = make_organizations(["a", "b", "poison", "c", "d"], clock.now())
    poison = organizations[2]

    run = run_job(JOB)

    # Batch [b, poison] fails and is rolled back whole, then retried item by item: b commits once.
    assert names() == ["a+", "b+", "poison", "c+", "d+"]
    assert (run.status, run.items_done, run.items_failed, run.items_skipped) == ("partial", 4, 1, 0)
    # Work counted inside a rolled-back batch is not counted.
    assert run.counts == {"marked": 4}
    failure = FailedItem.objects.get()
    assert (failure.job_name, failure.item_key, failure.attempts, failure.parked) == (JOB, str(poison.pk), 1, False)
    assert f"cannot mark {poison.public_id}" in failure.last_error
    assert failure.first_failed_at == failure.last_failed_at == clock.now()


@pytest.mark.django_db
def test_an_item_failing_three_times_is_parked_and_later_runs_skip_it(clock):
    poison, ok = make_organizations(["poison", "ok"], clock.now())
    first_failure = clock.now()

    for attempt in (1, 2, 3):
        run = run_job(JOB)
        failure = FailedItem.objects.get(item_key=str(poison.pk))
        assert (run.items_failed, failure.attempts, failure.parked) == (1, attempt, attempt == 3)
        clock.advance(timedelta(hours=1))

    BATCHES.clear()
    run = run_job(JOB)

    assert (run.status, run.items_done, run.items_failed, run.items_skipped) == ("succeeded", 1, 0, 1)
    assert run.counts == {"marked": 1, "skipped_parked": 1}
    assert all(poison.pk not in batch["ids"] for batch in BATCHES), "a parked item was tried again"
    failure = FailedItem.objects.get()
    assert (failure.attempts, failure.first_failed_at) == (3, first_failure)
    assert failure.last_failed_at == first_failure + timedelta(hours=2)

    # An operator unparks it (the admin action deletes the row) once the cause is fixed.
    Organization.objects.filter(pk=poison.pk).update(name="fixed")
    failure.delete()
    run = run_job(JOB)
    assert (run.items_done, run.items_failed, run.items_skipped) == (2, 0, 0)


@pytest.mark.django_db
def test_an_item_that_recovers_starts_counting_failures_afresh(clock):
    (flaky,) = make_organizations(["poison"], clock.now())
    run_job(JOB)
    run_job(JOB)
    assert FailedItem.objects.get().attempts == 2

    Organization.objects.filter(pk=flaky.pk).update(name="healthy")
    assert run_job(JOB).items_done == 1
    # Two old failures and a new one are not three failures in a row: it must not be parked.
    Organization.objects.filter(pk=flaky.pk).update(name="poison again")
    run_job(JOB)

    failure = FailedItem.objects.get()
    assert (failure.attempts, failure.parked) == (1, False)


@pytest.mark.django_db
def test_a_sweep_that_raises_marks_its_run_failed_with_the_error(clock):
    run = run_job("test-exploding")

    run.refresh_from_db()
    assert run.status == "failed"
    assert "the sweep itself broke" in run.error
    assert run.finished_at == clock.now()


@pytest.mark.django_db
def test_an_unknown_job_is_a_clear_error():
    with pytest.raises(LookupError, match="unknown job 'no-such-job'"):
        run_job("no-such-job")
    assert not JobRun.objects.exists()


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flags=st.lists(st.booleans(), min_size=0, max_size=12), batch_size=st.integers(1, 5))
def test_every_healthy_item_is_done_exactly_once_whatever_the_batches(flags, batch_size):
    """flags[i] says whether item i is poisoned; batches of any size and poison anywhere."""
    BATCH_SIZE["value"] = batch_size
    at = datetime(2026, 3, 1, tzinfo=UTC)
    with transaction.atomic():
        organizations = make_organizations([("poison" if bad else "ok") + str(i) for i, bad in enumerate(flags)], at)
        run = run_job(JOB, as_of=at)

        bad = sum(flags)
        assert (run.items_done, run.items_failed) == (len(flags) - bad, bad)
        assert run.counts.get("marked", 0) == len(flags) - bad
        for organization, poisoned in zip(organizations, flags, strict=True):
            organization.refresh_from_db()
            assert organization.name.endswith("+") != poisoned
            assert not organization.name.endswith("++")
        assert FailedItem.objects.count() == bad
        transaction.set_rollback(True)
