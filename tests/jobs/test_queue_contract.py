"""The queue contract (design section 6), checked against real `cobrador worker` processes on the test
database: what any backend upgrade must keep. Test tasks (tests/queue_tasks.py) append a line per
execution to a file, so "ran once" is counted outside the queue's own bookkeeping."""

from collections import Counter

import pytest
from django.db import transaction
from django_ox.models import OxScheduleTick, OxTask

from tests import queue_tasks
from tests.processes import kill, output, run, start_worker, stop, wait_ready, wait_until, worker_env
from tests.queue_tasks import read_lines

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class Rollback(Exception):
    pass


def ran(path, label=None) -> list[list[str]]:
    return [w for w in read_lines(path) if w[0] == "ran" and (label is None or w[1] == label)]


def test_an_enqueue_inside_a_rolled_back_transaction_leaves_nothing(tmp_path):
    log = tmp_path / "runs.log"
    with pytest.raises(Rollback), transaction.atomic():
        queue_tasks.record.enqueue(path=str(log), label="rolled-back")
        raise Rollback
    with transaction.atomic():
        queue_tasks.record.enqueue(path=str(log), label="committed")

    assert OxTask.objects.count() == 1
    result = run("worker", "--drain", timeout=30)
    assert result.returncode == 0, result.stderr

    assert [w[1] for w in ran(log)] == ["committed"]


def test_with_two_workers_each_task_runs_once(tmp_path):
    log = tmp_path / "runs.log"
    labels = [f"t{i}" for i in range(200)]
    # A long lease: a reclaim (correct at-least-once behaviour on a starved machine) is not what this checks.
    env = worker_env(COBRADOR_TASK_LOCK_TIMEOUT=60)
    workers = [start_worker("--concurrency", "2", "--interval", "0.1", env=env) for _ in range(2)]
    try:
        for worker in workers:
            wait_ready(worker)
        with transaction.atomic():
            for label in labels:
                queue_tasks.record.enqueue(path=str(log), label=label)
        wait_until(lambda: not OxTask.objects.exclude(status="SUCCESSFUL").exists(), timeout=25,
                   interval=0.2, message="every task to succeed")
    finally:
        for worker in workers:
            stop(worker)

    runs = ran(log)
    assert Counter(w[1] for w in runs) == Counter(labels), "a task ran twice or never"
    pids = {w[2] for w in runs}
    assert pids <= {str(worker.pid) for worker in workers}
    assert len(pids) == 2, "both workers should have taken part (else this test proves nothing)"


def test_a_failing_task_is_retried(tmp_path):
    log = tmp_path / "runs.log"
    flaky = queue_tasks.fail_times.enqueue(path=str(log), label="flaky", failures=2)
    doomed = queue_tasks.always_fail.enqueue(path=str(log), label="doomed")

    worker = start_worker("--interval", "0.1")
    try:
        # About 3 s on an idle machine (backoff 0.5 s, then 1 s); the margin is for a loaded CI machine.
        # (Only these two: a minute boundary meanwhile also enqueues the every-minute jobs.)
        wait_until(lambda: OxTask.objects.filter(id__in=[flaky.id, doomed.id],
                                                 status__in=["SUCCESSFUL", "FAILED"]).count() == 2, timeout=60,
                   interval=0.1, message=lambda: "both tasks to finish: "
                   f"{list(OxTask.objects.values_list('status', 'attempts', 'run_after'))}\n{output(worker)}")
    finally:
        stop(worker)

    flaky_row, doomed_row = OxTask.objects.get(id=flaky.id), OxTask.objects.get(id=doomed.id)
    assert (flaky_row.status, flaky_row.attempts, len(flaky_row.errors)) == ("SUCCESSFUL", 3, 2)
    assert [w[0] for w in read_lines(log) if w[1] == "flaky"] == ["failed", "failed", "ran"]
    # A task's own budget bounds the retries: two attempts, then FAILED with both tracebacks kept.
    assert (doomed_row.status, doomed_row.attempts, len(doomed_row.errors)) == ("FAILED", 2, 2)
    assert [w[0] for w in read_lines(log) if w[1] == "doomed"] == ["failed", "failed"]


def test_the_task_of_a_killed_worker_is_run_by_another_worker(tmp_path):
    log = tmp_path / "runs.log"
    result = queue_tasks.slow_record.enqueue(path=str(log), label="long", seconds=3)

    first = start_worker("--interval", "0.1")
    second = None
    try:
        wait_until(lambda: any(w[0] == "started" for w in read_lines(log)), timeout=15,
                   message="the first worker to start the task")
        assert kill(first) == -9
        assert not ran(log), "the task finished before the worker was killed; nothing was tested"
        second = start_worker("--interval", "0.1")
        # LOCK_TIMEOUT is 3 s in tests/queue_settings.py: the lease expires and the task is reclaimed.
        wait_until(lambda: ran(log), timeout=20,
                   message=lambda: f"the second worker to finish the task\n{output(second)}")
        wait_until(lambda: OxTask.objects.get(id=result.id).status == "SUCCESSFUL", timeout=5)
    finally:
        stop(first)
        if second is not None:
            stop(second)

    lines = read_lines(log)
    assert [(w[0], w[2]) for w in lines] == [("started", str(first.pid)), ("started", str(second.pid)),
                                             ("ran", str(second.pid))]
    assert OxTask.objects.get(id=result.id).attempts == 2


def test_a_schedule_fires_once_per_tick_with_two_workers(tmp_path):
    log = tmp_path / "ticks.log"
    env = worker_env(COBRADOR_TEST_TICK_LOG=log)  # tests/queue_settings.py adds an every-second schedule
    workers = [start_worker("--concurrency", "2", "--interval", "0.1", env=env) for _ in range(2)]
    try:
        wait_until(lambda: len(read_lines(log)) >= 4, timeout=20, interval=0.1,
                   message=lambda: f"four ticks\n{output(workers[0])}")
    finally:
        for worker in workers:
            stop(worker)

    executed = [w[1] for w in read_lines(log)]
    assert len(executed) == len(set(executed)), "a tick's task ran twice"
    ticks = list(OxScheduleTick.objects.filter(schedule_name="queue-test-tick", task__isnull=False)
                 .order_by("scheduled_for"))
    tick_tasks = OxTask.objects.filter(task_path="tests.queue_tasks.record_tick")
    # One task per tick, however many workers were polling: no second enqueue for the same tick.
    assert tick_tasks.count() == len(ticks)
    assert set(executed) <= {str(t.task_id) for t in ticks}
    assert len(ticks) >= 4
    seconds = [(b.scheduled_for - a.scheduled_for).total_seconds() for a, b in zip(ticks, ticks[1:], strict=False)]
    assert all(s >= 1 for s in seconds), seconds
