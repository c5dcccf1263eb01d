"""JobRun life: one run of a job at a time (the next tick is recorded as skipped), a heartbeat while it
runs, a dead run marked abandoned, empty scheduled checks kept as the job's last check instead of a
row each, and a worker's stop request ending a sweep between batches."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from cobrador.core import clock as clock_module
from cobrador.core import stopping
from cobrador.jobs import catalog
from cobrador.jobs.catalog import JobSpec
from cobrador.jobs.models import JobRun, JobState
from cobrador.jobs.runner import run_job
from cobrador.organizations.models import Organization
from tests.conftest import make_org

JOB = "test-touch-organizations"
SEEN: list[list[int]] = []
GATE = {"entered": threading.Event(), "release": threading.Event(), "hold": ""}


def _hold() -> None:
    GATE["entered"].set()
    assert GATE["release"].wait(30)


def touch_organizations_sweep(run) -> None:
    """Counts organizations in batches of 2; waits for GATE["release"] at its start (GATE["hold"] "start",
    outside any transaction) or inside its first batch ("batch")."""
    if GATE["hold"] == "start":
        _hold()
    ids = list(Organization.objects.order_by("pk").values_list("pk", flat=True))

    def handle(batch):
        SEEN.append(list(batch))
        if GATE["hold"] == "batch":
            _hold()
        run.count("touched", len(batch))

    run.process(ids, handle, batch_size=2)


@pytest.fixture(autouse=True)
def registered_job(monkeypatch):
    monkeypatch.setitem(catalog.JOBS, JOB, JobSpec(JOB, "* * * * *", f"{__name__}.touch_organizations_sweep",
                                                   "test sweep"))
    SEEN.clear()
    GATE.update(entered=threading.Event(), release=threading.Event(), hold="")
    stopping.clear()
    yield
    stopping.clear()


@pytest.mark.django_db
def test_an_empty_scheduled_tick_writes_no_run_row_but_records_the_check(clock):
    run = run_job(JOB)
    assert run.status == "succeeded" and run.pk is None
    assert not JobRun.objects.exists()
    state = JobState.objects.get(job_name=JOB)
    assert state.last_checked_at == clock.now() and state.last_success_at == clock.now()

    clock.advance(timedelta(minutes=1))
    run_job(JOB)
    assert not JobRun.objects.exists()
    assert JobState.objects.get(job_name=JOB).last_checked_at == clock.now()


@pytest.mark.django_db
def test_a_tick_with_work_and_a_manual_run_keep_their_rows(clock):
    make_org("Acme", "test")
    run_job(JOB)
    run_job(JOB, trigger="cli")
    assert list(JobRun.objects.order_by("pk").values_list("trigger", "status", "items_done")) == [
        ("schedule", "succeeded", 1), ("cli", "succeeded", 1)]
    assert JobState.objects.get(job_name=JOB).last_checked_at is None


@pytest.mark.django_db
def test_a_running_run_with_a_fresh_heartbeat_makes_the_next_tick_skip(clock):
    alive = JobRun.objects.create(job_name=JOB, as_of=clock.now(), started_at=clock.now(),
                                  heartbeat_at=clock_module.wall_now())
    make_org("Acme", "test")

    run = run_job(JOB)

    assert run.status == "skipped" and f"run {alive.pk}" in run.error
    assert SEEN == []  # the sweep did not run
    assert JobRun.objects.get(pk=alive.pk).status == "running"
    assert JobRun.objects.filter(job_name=JOB, status="skipped").count() == 1


@pytest.mark.django_db
def test_a_running_run_whose_heartbeat_is_stale_is_abandoned_and_the_next_run_takes_over(clock, settings):
    settings.JOB_ABANDONED_AFTER = 60
    dead = JobRun.objects.create(job_name=JOB, as_of=clock.now(), started_at=clock.now(),
                                 heartbeat_at=clock_module.wall_now() - timedelta(seconds=61))
    make_org("Acme", "test")

    run = run_job(JOB)

    assert run.status == "succeeded" and run.items_done == 1
    dead.refresh_from_db()
    assert dead.status == "abandoned" and "no heartbeat" in dead.error and dead.finished_at == clock.now()


@pytest.mark.django_db(transaction=True)
def test_a_running_run_writes_its_heartbeat_and_two_at_once_run_once(settings):
    settings.JOB_HEARTBEAT_SECONDS = 0.05
    make_org("Acme", "test")
    GATE["hold"] = "start"
    first: list[JobRun] = []
    thread = threading.Thread(target=lambda: (first.append(run_job(JOB)), connection.close()))
    thread.start()
    try:
        assert GATE["entered"].wait(30)
        running = JobRun.objects.get(job_name=JOB, status="running")
        beat = running.heartbeat_at
        deadline = clock_module.wall_now() + timedelta(seconds=10)
        while JobRun.objects.get(pk=running.pk).heartbeat_at == beat:
            assert clock_module.wall_now() < deadline, "the heartbeat was never written"
        second = run_job(JOB)
        assert second.status == "skipped"
    finally:
        GATE["release"].set()
        thread.join(30)
    assert first[0].status == "succeeded"
    assert list(JobRun.objects.order_by("pk").values_list("status", flat=True)) == ["succeeded", "skipped"]


@pytest.mark.django_db(transaction=True)
def test_a_stop_request_ends_the_sweep_after_the_batch_in_hand_and_the_next_run_finishes():
    for i in range(6):
        make_org(f"Org{i}", "test")
    GATE["hold"] = "batch"
    result: list[JobRun] = []
    thread = threading.Thread(target=lambda: (result.append(run_job(JOB)), connection.close()))
    thread.start()
    assert GATE["entered"].wait(30)
    stopping.request()  # what StoppableWorker does on SIGTERM
    GATE["release"].set()
    thread.join(30)

    run = JobRun.objects.get(pk=result[0].pk)
    assert run.status == "interrupted" and run.items_done == 2 and "next run" in run.error
    stopping.clear()
    GATE["hold"] = ""
    rest = run_job(JOB)
    # A level-triggered sweep: it starts over with everything (this one has no "done" marker).
    assert rest.status == "succeeded" and rest.items_done == 6
